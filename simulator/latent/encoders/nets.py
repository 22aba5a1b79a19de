"""Torch networks trained here (MLP, CNN, word bag), the cosine classifier, and FLOPs counted from a model."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode


def _perceptron(width: int, hidden: tuple[int, ...], latent_dim: int) -> list[nn.Module]:
    """[Linear → ReLU] × len(hidden) → Linear(latent_dim), from inputs of ``width``."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return layers + [nn.Linear(width, latent_dim)]


class MLPEncoder(nn.Module):
    """Flatten → [Linear → ReLU] × len(hidden) → Linear(latent_dim)."""

    def __init__(self, image_shape: tuple[int, ...], hidden: tuple[int, ...], latent_dim: int):
        super().__init__()
        width = 1
        for n in image_shape:
            width *= n
        self.net = nn.Sequential(nn.Flatten(), *_perceptron(width, hidden, latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNEncoder(nn.Module):
    """[Conv3×3 → ReLU → MaxPool2] × len(channels) → Flatten → Linear(latent_dim)."""

    def __init__(self, image_shape: tuple[int, ...], channels: tuple[int, ...], latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, h, w = image_shape
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in, h, w = c_out, h // 2, w // 2
            if h < 1 or w < 1:
                raise ValueError(f"too many conv blocks ({len(channels)}) for {image_shape[1]}×{image_shape[2]} images")
        layers += [nn.Flatten(), nn.Linear(c_in * h * w, latent_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class WordBagEncoder(nn.Module):
    """Token ids (n, L), 0 = padding → mean of their embeddings (EmbeddingBag) → [Linear → ReLU] × hidden → Linear(d)."""

    def __init__(self, buckets: int, embed_dim: int, hidden: tuple[int, ...], latent_dim: int):
        super().__init__()
        self.bag = nn.EmbeddingBag(buckets, embed_dim, mode="mean", padding_idx=0)
        self.net = nn.Sequential(*_perceptron(embed_dim, hidden, latent_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(self.bag(tokens))


class CosineClassifier(nn.Module):
    """Logits s·⟨z/‖z‖, w_c/‖w_c‖⟩ with a fixed scale s.

    Training the encoders through an angular head makes class structure live in directions,
    which is what cosine relative representations measure; it is also the *absolute head* a
    receiver uses on its own latents (and what translated latents are fed to).
    """

    def __init__(self, latent_dim: int, n_classes: int, scale: float = 16.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, latent_dim) / latent_dim**0.5)
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T


@torch.no_grad()
def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass of ``model`` on ``example`` (a batch of one), counted by torch.

    Uses ``torch.utils.flop_counter.FlopCounterMode``: every matrix product, convolution and
    attention kernel the forward pass dispatches, 2 FLOPs per multiply-accumulate. Elementwise
    work (biases, activations, norms, pooling) is not counted (see
    :mod:`simulator.latent.encoders.base`).
    """
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


__all__ = ["MLPEncoder", "CNNEncoder", "WordBagEncoder", "CosineClassifier", "count_flops"]
