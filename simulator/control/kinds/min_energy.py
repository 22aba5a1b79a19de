"""``controller.kind: min-energy``: the baseline of least energy within a per-task delay cap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from simulator.control.baselines import MinEnergyPolicy
from simulator.control.policy import OptionSetConfig, PolicyController
from simulator.control.registry import register

if TYPE_CHECKING:
    from simulator.config import Scenario


class MinEnergyControllerConfig(OptionSetConfig):
    """Baseline: least energy with predicted delay ≤ ``delay_cap_s``, accuracy ignored."""

    kind: Literal["min-energy"]
    delay_cap_s: float | None = Field(None, gt=0.0, le=3600.0, description="per-task delay cap; "
                                      "empty = simulation.slot_s")


@register(MinEnergyControllerConfig)
class MinEnergyController(PolicyController):
    """:class:`~simulator.control.baselines.MinEnergyPolicy` in the world; the cap defaults to one slot."""

    def make_policy(self, scenario: Scenario) -> Any:
        cfg = scenario.controller
        cap = cfg.delay_cap_s if cfg.delay_cap_s is not None else scenario.simulation.slot_s
        return MinEnergyPolicy(self.n, delay_cap_s=cap, static=self.params)


__all__ = ["MinEnergyControllerConfig", "MinEnergyController"]
