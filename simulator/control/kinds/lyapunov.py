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
    relearn: bool = Field(True, description="re-learn the place-holders from this run's own channel (learning-aided "
                          "drift-plus-penalty; only when V ≥ placeholder_from_v, where the queues move too slowly "
                          "to correct a place-holder's error within the run): at checkpoints the queues restart at V "
                          "times the multipliers of the offline problem on the states observed so far, with "
                          "targets that pay the window's accumulated excess back over its remaining slots")
    pilot_slots: int | None = Field(None, ge=1, le=10**8, description="length of the 'auto' pilot run "
                                    "(default 4 × simulation.slots)")
    v_sweep: tuple[Annotated[float, Field(ge=0.0, le=1e15)], ...] = Field(
        (), description="V values run by the trade-off driver (relcomm tradeoff); empty = "
        "the values of sweep.grid's controller.v; relcomm run uses v")

    @property
    def pilot_wanted(self) -> bool:
        """Whether an ``auto`` place-holder comes from a pilot run (V ≥ ``placeholder_from_v``); else it means 0."""
        return "auto" in (self.delay_queue_per_v, self.accuracy_queue_per_v) and self.v >= self.placeholder_from_v


def relearn_checkpoints(slots: int, settle: int, first: int = 256, shortest: int = 100) -> tuple[int, ...]:
    """Slots at whose start the place-holders are re-learned: ``first``·2^j before the settled window
    (before its first tenth when it starts at 0), the window's start, and each tenth of the window
    after it, a tenth being at least ``shortest`` slots (all in 1 … slots − 1).

    Doubling keeps the early estimates cheap while the sample grows; the window's tenths let the
    targets pay back the window's accumulated excess while enough slots remain to do it gently.
    Measured on paper-tradeoff at V = 1e6 (the sweep's 3 seeds on one zoo): optimality gaps 0.046,
    0.006, 0.021 % with tenths against 0.113, 0.003, 0.070 % with fifths; seed 0 on two zoos went
    the other way (0.117 and 0.098 % against 0.047 and 0.018 %): what is left is one segment's
    estimation noise, at the 0.1 % level either way. Halving the remaining slots down to 50 at
    the end was worse: the multipliers then swing over the last slots, and the decisions'
    inefficiency at their own averages grew from 0.011 % to 0.059 % (seed 0, V = 1e6). Over a
    short segment, discrete options cannot pay an excess back smoothly (a 20-slot last segment
    overshot the accuracy target by 6e-4 in a 200-slot window): hence ``shortest``.
    """
    step = max(1, shortest, -(-(slots - settle) // 10))
    points = {settle + k * step for k in range(10)}
    j = first
    while j < (settle or step):
        points.add(j)
        j *= 2
    return tuple(sorted(p for p in points if 0 < p < slots))


@register(LyapunovControllerConfig)
class DriftPlusPenaltyController(PolicyController):
    """:class:`~simulator.control.lyapunov.LyapunovController` in the world (:class:`PolicyController`).

    **Re-learned place-holders** (``relearn``, at V ≥ ``placeholder_from_v``). At such V the queues
    move by O(μ/V) of their value per slot: a place-holder a few per cent off the multipliers of
    *this* run's trace (a pilot learns them on another seed's) stays off for the whole run, and the
    decisions over- or under-shoot both targets (energy above the bound, or a target missed).
    Learning-aided drift-plus-penalty (Huang, Liu and Hao, "The power of online learning in
    stochastic network optimization", SIGMETRICS 2014) learns the multipliers from the states
    observed so far instead. At each checkpoint (:func:`relearn_checkpoints`) slot s:

    * the empirical problem: the offline bound's dual (:mod:`simulator.control.oracle`) over the
      states of slots 0 … s − 1 (causal: no future state is used), with each device's targets
      moved by what the settled window has accumulated so far, spread over its expected
      remaining decisions r = (slots − s) · (share of window slots with a decision):
      ``L = L_max − Σ_window (L_t − L_max) / r`` and ``A = A_min + Σ_window (A_min − Ĝ_t) / r``
      (the role the queue backlog plays at small V, paid back over the horizon instead of O(V/μ));
    * the queues restart at V·λ̂ and V·η̂ of that problem, and drift-plus-penalty goes on from there.

    When the moved targets cannot be met on the observed states the scenario's own targets are
    used; when those cannot either, the queues keep their values. Each checkpoint is listed in the
    report's ``placeholder_relearning``.
    """

    rate_search = True

    def __init__(self, scenario: Scenario, spec: Any, calibration: Any = None):
        super().__init__(scenario, spec, calibration)
        cfg = scenario.controller
        on = cfg.relearn and cfg.v > 0 and cfg.v >= cfg.placeholder_from_v
        self.checkpoints = frozenset(relearn_checkpoints(self.n_slots, self.settle)) if on else frozenset()
        self.relearned: list[dict[str, Any]] = []

    def decide(self, observation: Any) -> Any:
        if observation.slot in self.checkpoints:
            self._relearn(observation.slot)
        return super().decide(observation)

    def _relearn(self, s: int) -> None:
        """Restart the queues at V × the multipliers of the empirical problem at slot ``s`` (class docstring)."""
        l_max, a_min = np.full(self.n, self.delay_max_s), np.full(self.n, self.accuracy_min)
        moved_l, moved_a = l_max, a_min
        if s > self.settle:
            sums = self._sums
            act = sums["active"]
            remaining = np.maximum(act / (s - self.settle) * (self.n_slots - s), 1.0)
            moved_l = l_max - (sums["delay"] - l_max * act) / remaining
            moved_a = np.clip(a_min + (a_min * act - sums["accuracy"]) / remaining, 0.0, 1.0)
        entry: dict[str, Any] = {"slot": s}
        bound = None
        v = self.policy.v
        start = (self.policy.queues.delay / v, self.policy.queues.accuracy / v)
        for targets in ((moved_l, moved_a), (l_max, a_min)):
            if np.all(targets[0] > 0):
                # the multipliers need not be exact to 1e-8 of the dual's value: 1e-6, from the last ones
                bound = self.offline_bound(*targets, slots=(0, s), rtol=1e-6, start=start)
                if bound is not None and bound.status != "infeasible":
                    entry.update(delay_target_s=targets[0].tolist(), accuracy_min=targets[1].tolist())
                    break
                bound = None
        if bound is None:
            entry["status"] = "infeasible on the observed states: queues kept"
        else:
            self.policy.queues = VirtualQueues(v * bound.delay_multiplier, v * bound.accuracy_multiplier)
            entry.update(status=bound.status, delay_queue_per_v=bound.delay_multiplier.tolist(),
                         accuracy_queue_per_v=bound.accuracy_multiplier.tolist())
        self.relearned.append(entry)

    def report(self) -> dict[str, Any]:
        out = super().report()
        if self.checkpoints:
            out["placeholder_relearning"] = self.relearned
        return out

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
