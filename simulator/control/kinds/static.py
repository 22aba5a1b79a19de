"""``controller.kind: static``: fixed options every slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field, field_validator

from simulator.control.interface import (
    ControllerSettings,
    Decision,
    Feedback,
    NetworkSpec,
    Observation,
)
from simulator.control.registry import register
from simulator.errors import quoted
from simulator.schema import Located, PositiveInt, bits_value

if TYPE_CHECKING:
    from simulator.config import Scenario


class StaticControllerConfig(ControllerSettings):
    """Fixed options every slot (the baseline until the drift-plus-penalty controller is selected)."""

    needs_calibration: ClassVar[bool] = False

    kind: Literal["static"] = "static"
    encoder: str | None = Field(None, description="encoder every device uses (must be in each pool); "
                                "empty = the first of each device's pool")
    anchors: PositiveInt = Field(64, description="K: anchors sent per task (a prefix of the anchor list)")
    bits: int = Field(8, description="b: bits per entry (32 = float32)")
    rate_bps: float | None = Field(None, gt=0.0, le=1e12, description="fixed rate (outage when the slot's "
                                   "R_max is lower); empty = the slot's R_max at full power")
    cpu_hz: float | None = Field(None, gt=0.0, le=1e12, description="device CPU frequency, clipped to "
                                 "[f_min_hz, f_max_hz]; empty = f_max_hz")

    @field_validator("bits")
    @classmethod
    def _bits_ok(cls, value: int) -> int:
        return bits_value(value)

    def anchor_options(self) -> tuple[int, ...]:
        return (self.anchors,)

    def check_scenario(self, scenario: Scenario) -> None:
        """The encoder is known and in every pool; K fits the anchor list."""
        if self.encoder is not None:
            encoders = {e.id for e in scenario.encoders}
            if self.encoder not in encoders:
                raise Located(f"unknown encoder {quoted(self.encoder)} (known: {', '.join(sorted(encoders))})",
                              ("controller", "encoder"))
            for tx in scenario.transmitters:
                if self.encoder not in tx.encoders:
                    raise Located(f"encoder {quoted(self.encoder)} is not in the pool of transmitter {quoted(tx.id)}",
                                  ("controller", "encoder"))
        if scenario.transmitters and self.anchors > scenario.anchors.count:
            raise Located(f"K = {self.anchors} exceeds the anchor list length "
                          f"anchors.count = {scenario.anchors.count}", ("controller", "anchors"))


@register(StaticControllerConfig)
class StaticController:
    """Fixed options every slot (``controller.kind: static``).

    Encoder: ``controller.encoder`` or the first of each pool; K and b as given; rate: the fixed
    ``rate_bps`` (outage when the slot cannot carry it) or, when empty, the slot's ``R_max``
    (full power; a link with ``R_max = 0`` holds); device clock ``cpu_hz`` clipped to
    ``[f_min, f_max]`` or ``f_max``; server shares equal among each receiver's devices.
    """

    def __init__(self, scenario: Scenario, spec: NetworkSpec, calibration: Sequence[Any] | None = None):
        cfg = scenario.controller
        n = spec.n_tx
        enc = [spec.encoder_ids.index(cfg.encoder) if cfg.encoder is not None else int(pool[0])
               for pool in spec.pools]
        counts = np.bincount(spec.receiver_of, minlength=len(spec.receiver_ids))
        cpu = spec.f_max_hz if cfg.cpu_hz is None else np.clip(cfg.cpu_hz, spec.f_min_hz, spec.f_max_hz)
        self._fixed_rate = cfg.rate_bps
        self._decision = Decision(np.asarray(enc, dtype=np.int64), np.full(n, cfg.anchors, dtype=np.int64),
                                  np.full(n, cfg.bits, dtype=np.int64),
                                  np.full(n, cfg.rate_bps or 0.0), np.asarray(cpu, dtype=np.float64),
                                  1.0 / counts[spec.receiver_of])

    def decide(self, observation: Observation) -> Decision:
        if self._fixed_rate is not None:
            return self._decision
        d = self._decision
        return Decision(d.encoder, d.anchors, d.bits, observation.r_max_bps.copy(), d.cpu_hz, d.server_share)

    def update(self, feedback: Feedback) -> None:
        """The static controller learns nothing."""


__all__ = ["StaticControllerConfig", "StaticController"]
