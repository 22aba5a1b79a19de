"""``arch: cnn`` — a small convolutional network over images, trained here from its seed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simulator.errors import ScenarioError
from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec
from simulator.latent.encoders.registry import register
from simulator.schema import PositiveInt, TrainConfig


@register
class CNNSpec(EncoderSpec):
    """[Conv3×3 → ReLU → MaxPool2] × len(hidden) → Linear(latent_dim), trained through a cosine head."""

    arch: Literal["cnn"]
    latent_dim: int = Field(64, ge=2, le=4096)
    hidden: tuple[PositiveInt, ...] = Field((512, 256), description="channels of the conv blocks")
    train: TrainConfig = TrainConfig()

    def build(self, data: DataInfo) -> Encoder:
        from simulator.latent.encoders.nets import CNNEncoder
        from simulator.latent.encoders.trained import TrainedImageEncoder

        try:
            net = CNNEncoder(data.sample_shape, tuple(self.hidden), self.latent_dim)
        except ValueError as exc:
            raise ScenarioError(str(exc), path=f"encoder {self.id}: hidden") from None
        return TrainedImageEncoder(self, net, data, self.latent_dim)


__all__ = ["CNNSpec"]
