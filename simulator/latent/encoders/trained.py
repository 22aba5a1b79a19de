"""The encoder of the families trained here on images (MLP, CNN): a torch module over pixel tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec
from simulator.latent.encoders.nets import count_flops


class TrainedImageEncoder(Encoder):
    """A network trained here from the spec's seed; its inputs are the images as they are (n, C, H, W)."""

    trained_here = True

    def __init__(self, spec: EncoderSpec, module: nn.Module, data: DataInfo, latent_dim: int):
        self.spec, self.module, self.data, self._latent_dim = spec, module, data, latent_dim
        self._flops: int | None = None

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    def digest(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", exclude={"id"})

    def inputs(self, samples: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))

    def flops(self, samples: np.ndarray) -> np.ndarray:
        if self._flops is None:
            device = next(self.module.parameters()).device
            self._flops = count_flops(self.module, torch.zeros((1, *self.data.sample_shape), device=device))
        return np.full(len(samples), self._flops, dtype=np.int64)


__all__ = ["TrainedImageEncoder"]
