"""``controller.kind: lyapunov``: the drift-plus-penalty controller in the world."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from simulator.control.lyapunov import LyapunovController, VirtualQueues
from simulator.control.policy import OptionSetConfig, PolicyController
from simulator.control.registry import register

if TYPE_CHECKING:
    from simulator.config import Scenario


PerV = Annotated[float, Field(ge=0.0, le=1e6)] | Literal["auto"]
"""A place-holder backlog per unit V (J/s for Z, J for Y), or ``"auto"``."""


class LyapunovControllerConfig(OptionSetConfig):
    """Drift-plus-penalty (DESIGN §2): each slot min V·E + Z·L − Y·Ĝ, then the queues advance.

    ``Z_{t+1} = max(0, Z_t + μ (L_t − L_max))`` with L_t the mean delay of the tasks completed
    in the slot (the decision's predicted delay when none completed), and
    ``Y_{t+1} = max(0, Y_t + ν (A_min − Ĝ_t))`` with Ĝ_t the calibrated accuracy of the
    decision (labels are never seen) and A_min = accuracy_target + accuracy_margin. Only V/μ
    and ν/μ shape the behaviour (scaling V, μ, ν and the queues together changes nothing); the
    queues settle near V·λ* and V·η* (the optimal multipliers) after O(V/μ) slots.
    """

    requires_targets: ClassVar[bool] = True

    kind: Literal["lyapunov"]
    v: float = Field(1e3, ge=0.0, le=1e15, description="V: weight of energy against the queues "
                     "(energy O(1/V) from optimal, queues O(V))")
    mu: float = Field(1.0, gt=0.0, le=1e15, description="μ: step of the delay queue (objective units per s²)")
    nu: float = Field(1.0, gt=0.0, le=1e15, description="ν: step of the accuracy queue")
    initial_delay_queue: float = Field(0.0, ge=0.0, le=1e15, description="Z_0 (added to V·delay_queue_per_v)")
    initial_accuracy_queue: float = Field(0.0, ge=0.0, le=1e15, description="Y_0 (added to V·accuracy_queue_per_v)")
    delay_queue_per_v: PerV = Field(
        "auto", description="place-holder backlog per unit V: Z starts at initial_delay_queue + V·this, an "
        "estimate λ̂ of the delay multiplier, so that the queue need not climb to V·λ* from empty (O(V/μ) "
        "slots); 'auto': the offline bound's multiplier on a pilot run with another seed, cached by zoo and "
        "scenario, when V ≥ placeholder_from_v (else 0)")
    accuracy_queue_per_v: PerV = Field(
        "auto", description="the same for Y: Y starts at initial_accuracy_queue + V·this (η̂); 'auto' as above")
    placeholder_from_v: float = Field(1e3, ge=0.0, le=1e15, description="the smallest V at which 'auto' "
                                      "place-holders come from a pilot run (below it they are 0: the queues "
                                      "reach V·λ* quickly from empty)")
    pilot_slots: int | None = Field(None, ge=1, le=10**8, description="length of the 'auto' pilot run "
                                    "(default 4 × simulation.slots)")
    v_sweep: tuple[Annotated[float, Field(ge=0.0, le=1e15)], ...] = Field(
        (), description="V values run by the trade-off driver (relcomm tradeoff); empty = "
        "the values of sweep.grid's controller.v; relcomm run uses v")

    @property
    def pilot_wanted(self) -> bool:
        """Whether an ``auto`` place-holder comes from a pilot run (V ≥ ``placeholder_from_v``); else it means 0."""
        return "auto" in (self.delay_queue_per_v, self.accuracy_queue_per_v) and self.v >= self.placeholder_from_v


@register(LyapunovControllerConfig)
class DriftPlusPenaltyController(PolicyController):
    """:class:`~simulator.control.lyapunov.LyapunovController` in the world (:class:`PolicyController`)."""

    rate_search = True

    def make_policy(self, scenario: Scenario) -> Any:
        cfg, n = scenario.controller, self.n
        if cfg.pilot_wanted:
            raise ValueError("'auto' place-holders at V ≥ placeholder_from_v must be resolved by a pilot "
                             "before the world is built (simulator.experiment.pilot.resolve_placeholders)")
        per_v = [0.0 if p == "auto" else p for p in (cfg.delay_queue_per_v, cfg.accuracy_queue_per_v)]
        queues = VirtualQueues(np.full(n, cfg.initial_delay_queue + cfg.v * per_v[0]),
                               np.full(n, cfg.initial_accuracy_queue + cfg.v * per_v[1]))
        return LyapunovController(n, v=cfg.v, mu=cfg.mu, nu=cfg.nu, delay_max_s=self.delay_max_s,
                                  accuracy_min=self.accuracy_min, static=self.params, queues=queues)


__all__ = ["LyapunovControllerConfig", "DriftPlusPenaltyController"]
