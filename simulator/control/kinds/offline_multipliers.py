"""``controller.kind: offline-multipliers``: the drift-plus-penalty slot problem at the offline bound's multipliers.

The Lagrangian of the long-term problem separates by slot into the drift-plus-penalty slot
problem with fixed multipliers, ``min E + λ·L − η·Ĝ`` (V = 1, :mod:`simulator.control.oracle`).
At the multipliers (λ*, η*) that maximize the dual — the offline bound's own — its per-slot
minimizers are the optimum's own policy: on the trace the bound was computed on, their
time-average energy is within one option switch per constraint and device of the bound (the
relaxed optimum time-shares between the minimizers on the two sides of a tie, in at most that
many slots), and so are their average delay and Ĝ of the targets. The Lyapunov controller at
V with queues Z = V·λ*, Y = V·η* solves the same problem each slot; this baseline is that
controller with the queues frozen, so the difference between the two is what learning the
multipliers online costs.

The channel trace depends on the scenario and its seed, not on the controller, so the
multipliers that ``summary.json`` reports (``offline_bound.delay_multiplier`` and
``accuracy_multiplier``) of any run of the same scenario and seed are this trace's λ*, η*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import Field, field_validator

from simulator.control.lyapunov import LyapunovController, VirtualQueues
from simulator.control.policy import OptionSetConfig, PolicyController
from simulator.control.registry import register
from simulator.schema import Located

if TYPE_CHECKING:
    from simulator.config import Scenario

Multiplier = Annotated[float, Field(ge=0.0, le=1e15)]


class OfflineMultipliersControllerConfig(OptionSetConfig):
    """Baseline: each slot ``min E + λ*·L − η*·Ĝ`` with the offline bound's multipliers λ*, η* fixed.

    One value for every transmitter, or one per transmitter (the bound's multipliers are per
    device).
    """

    requires_targets: ClassVar[bool] = True

    kind: Literal["offline-multipliers"]
    delay_multiplier: tuple[Multiplier, ...] = Field(
        min_length=1, description="λ* (J/s): the offline bound's delay multiplier (summary.json "
        "offline_bound.delay_multiplier of a run with the same scenario and seed)")
    accuracy_multiplier: tuple[Multiplier, ...] = Field(
        min_length=1, description="η* (J): the offline bound's accuracy multiplier "
        "(offline_bound.accuracy_multiplier)")

    @field_validator("delay_multiplier", "accuracy_multiplier", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    def check_scenario(self, scenario: "Scenario") -> None:
        super().check_scenario(scenario)
        n = len(scenario.transmitters)
        for name in ("delay_multiplier", "accuracy_multiplier"):
            if n and len(getattr(self, name)) not in (1, n):
                raise Located(f"give one value or one per transmitter ({n}), got {len(getattr(self, name))}",
                              ("controller", name))


class FrozenQueues(LyapunovController):
    """:class:`~simulator.control.lyapunov.LyapunovController` whose queues never move (``update`` keeps them)."""

    def update(self, realized_delay_s: ArrayLike, realized_accuracy: ArrayLike, observed=None) -> VirtualQueues:
        return self.queues


@register(OfflineMultipliersControllerConfig)
class OfflineMultipliersController(PolicyController):
    """The slot problem at V = 1 with the queues held at (λ*, η*) (module docstring)."""

    rate_search = True

    def make_policy(self, scenario: "Scenario") -> Any:
        cfg, n = scenario.controller, self.n
        queues = VirtualQueues(np.broadcast_to(np.asarray(cfg.delay_multiplier, dtype=float), (n,)),
                               np.broadcast_to(np.asarray(cfg.accuracy_multiplier, dtype=float), (n,)))
        # μ and ν are never used: the queues do not step
        return FrozenQueues(n, v=1.0, mu=1.0, nu=1.0, delay_max_s=self.delay_max_s, accuracy_min=self.accuracy_min,
                            static=self.params, queues=queues)


__all__ = ["OfflineMultipliersControllerConfig", "OfflineMultipliersController", "FrozenQueues"]
