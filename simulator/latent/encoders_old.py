"""Encoder architectures (MLP, CNN), the cosine classifier they train with, and FLOP counts."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from simulator.config import EncoderConfig


class MLPEncoder(nn.Module):
    """Flatten → [Linear → ReLU] × len(hidden) → Linear(latent_dim)."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: tuple[int, ...], latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = image_shape[0] * image_shape[1] * image_shape[2]
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, latent_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNEncoder(nn.Module):
    """[Conv3×3 → ReLU → MaxPool2] × len(channels) → Flatten → Linear(latent_dim)."""

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...], latent_dim: int):
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


ARCHITECTURES: dict[str, Callable[[tuple[int, int, int], tuple[int, ...], int], nn.Module]] = {
    "mlp": MLPEncoder,
    "cnn": CNNEncoder,
}


def build_encoder(cfg: EncoderConfig, image_shape: tuple[int, int, int]) -> nn.Module:
    """Instantiate the encoder an :class:`EncoderConfig` describes (weights uninitialised by seed)."""
    return ARCHITECTURES[cfg.arch](image_shape, tuple(cfg.hidden), cfg.latent_dim)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass of one sample, counted from the model.

    Convention: a multiply-accumulate is 2 FLOPs. Linear: 2·in·out + out (bias);
    Conv2d: (2·C_in/groups·k_h·k_w + 1)·C_out·H_out·W_out; ReLU and each max-pool output
    element: 1 per input element compared. Counted by running a dummy sample through forward hooks,
    so any composition of these layers is counted exactly.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += (2 * module.in_features + (module.bias is not None)) * module.out_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_out = 2 * (module.in_channels // module.groups) * kh * kw + (module.bias is not None)
            total += per_out * output.numel()
        elif isinstance(module, (nn.ReLU, nn.MaxPool2d)):
            total += inputs[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
    return int(total)
