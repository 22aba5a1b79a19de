"""Pydantic building blocks shared by the scenario schema and the plug-ins' own config models.

``config.py`` composes the scenario from these and from the families' config models (encoder
families live in :mod:`simulator.latent.encoders`); the plug-ins import only this module, so
that no import cycle runs through the scenario schema.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Located(ValueError):
    """A validation error that knows the path of the field it blames (relative to the model)."""

    def __init__(self, message: str, loc: tuple[str | int, ...]):
        super().__init__(message)
        self.loc = loc


class Strict(BaseModel):
    """Unknown keys refused, instances immutable, NaN and infinity refused in every float field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, values: Any) -> Any:
        # NaN and inf make no sense for any quantity in a scenario.
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise Located(f"must be a finite number, got {value}", (key,))
        return values


PositiveInt = Annotated[int, Field(gt=0)]


def bits_value(value: int) -> int:
    """Check a bit width b per entry: 1..16, or 32 (float32)."""
    if not (1 <= value <= 16 or value == 32):
        raise ValueError(f"must be in 1..16 or 32 (float32), got {value}")
    return value


class TrainConfig(Strict):
    """Training budget of an encoder (as a classifier with a cosine head) or a receiver head."""

    epochs: PositiveInt = 4
    batch_size: PositiveInt = 256
    lr: float = Field(2e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    subset: PositiveInt | None = Field(
        None, description="train on this many samples of the training split (drawn from the "
        "encoder's own seed) instead of all of it")


__all__ = ["Located", "Strict", "PositiveInt", "TrainConfig", "bits_value"]
