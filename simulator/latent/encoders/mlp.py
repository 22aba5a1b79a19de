"""``arch: mlp`` — a multilayer perceptron over pixels, trained here from its seed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec
from simulator.latent.encoders.registry import register
from simulator.schema import PositiveInt, TrainConfig


@register
class MLPSpec(EncoderSpec):
    """Flatten → [Linear → ReLU] × len(hidden) → Linear(latent_dim), trained as a classifier through a cosine head."""

    arch: Literal["mlp"]
    latent_dim: int = Field(64, ge=2, le=4096)
    hidden: tuple[PositiveInt, ...] = Field((512, 256), description="widths of the hidden layers")
    train: TrainConfig = TrainConfig()

    def build(self, data: DataInfo) -> Encoder:
        from simulator.latent.encoders.nets import MLPEncoder
        from simulator.latent.encoders.trained import TrainedImageEncoder

        return TrainedImageEncoder(self, MLPEncoder(data.sample_shape, tuple(self.hidden), self.latent_dim), data,
                                   self.latent_dim)


__all__ = ["MLPSpec"]
