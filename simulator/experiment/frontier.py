"""The trade-off surface: energy per task against the delay and accuracy targets, the offline optimum's frontier.

What it computes (``relcomm frontier SCENARIO.yaml``), for a scenario whose controller is
``lyapunov``:

1. **The realized channel trace.** One simulation of the scenario's seed (the ``max-accuracy``
   baseline, into ``runs/max-accuracy``: no pilot, no targets needed) gives the trace —
   ``slots.csv``'s gains and link/device flags over the settled window (slots
   ``controller.settle_slots`` … end). The channel, faults and arrivals are drawn from the seed tree
   whatever the policy decides, so every run of the same seed sees this trace, and the bound
   the runner reports for any of them is the bound below at that run's targets.
2. **The offline bound at every target pair** of the fine grid (``delay_targets_s`` ×
   ``accuracy_targets``): :func:`~simulator.control.oracle.offline_lower_bound` on that trace,
   with the controller's own options, Ĝ and physical parameters (those of
   :meth:`~simulator.control.policy.PolicyController.offline_bound`), at L_max = the delay target
   and A_min = the accuracy target + the scenario's ``accuracy_margin`` (``auto`` resolved at
   that target). Reported per pair: the bound per task, its multipliers λ* (J/s) and η* (J), and
   what the optimum chooses — the per-slot minimizers of the Lagrangian at (λ*, η*) (the
   relaxed optimum time-shares between them and their neighbours in at most one (slot, device)
   pair per constraint): the mean K, the mean b and the share of each encoder over the slots
   with a decision.
3. **Feasibility.** A pair is infeasible when no policy can meet both targets on the trace (the
   dual is unbounded: the bound's status ``infeasible``); such pairs are kept, marked, with the
   best reachable figures: ``best_accuracy`` — the mean over the trace of the best Ĝ of each
   slot (any delay), and ``best_delay_s`` — the least mean predicted delay at which the mean Ĝ
   still reaches A_min (time-sharing allowed; ∞ above ``best_accuracy``). The pair is feasible
   when its delay target is at least ``best_delay_s`` of its accuracy target.
4. **Simulations** on the coarser ``run_*`` grid, feasible pairs only, in parallel through the
   sweep's executors (:mod:`simulator.experiment.executors`, local process pool or dask): the
   lyapunov controller at V = ``frontier.v`` (large; place-holder backlogs as the scenario says,
   ``auto`` by default: item 5) and ``greedy`` at each pair, ``static`` at each accuracy target
   (its choice depends on the accuracy target only), ``min-energy`` and ``max-accuracy`` once
   (they use no target). Every run is judged at each pair it stands for, over the settled
   window, with the runner's verdicts (:func:`~simulator.experiment.runner.judge`: realized mean
   delay ≤ target × (1 + ``delay_tolerance``), realized test accuracy ≥ target −
   ``accuracy_tolerance``).
5. **One pilot for every controller run.** ``auto`` place-holders are the offline bound's
   multipliers on a pilot run with seed + 1 (:mod:`simulator.experiment.pilot`; never the run's
   own seed: causal). Each pair's pilot would see the same trace (item 1's argument, for seed
   + 1) and differ only in the bound's targets, so the frontier runs the pilot once
   (:func:`~simulator.experiment.pilot.shared_pilot`: ``controller.pilot_slots`` slots, default 4
   × ``simulation.slots``) and computes every pair's place-holders on its trace — the numbers each
   pair's own pilot would give, bit for bit, without the pilot cache — then runs the controller
   with them as numbers (``delay_queue_per_v``, ``accuracy_queue_per_v``; its ``summary.json``'s
   ``placeholders`` then says ``scenario``). A pair whose pilot bound is infeasible is not run
   (its row's ``error`` says why). ``summary.json``'s ``placeholders`` lists the pilot's seed and
   slots and the values at every pair (null when no run wants a pilot: numbers in the scenario,
   or V below ``placeholder_from_v``).

Units: energies are J per task (device transmit + compute [+ server decoding when
``include_server_energy``]); ``energy_bound_per_task_j`` is the bound per slot summed over
transmitters × window slots / the (slot, device) pairs with a decision — the unit of the
decisions' ``decision_energy_per_task_j``.

``frontier.csv``: one row per (delay target, accuracy target, policy). ``policy`` ``bound`` rows
cover the fine grid (``energy_per_task_j`` = the bound per task, ``decision_delay_s`` and
``decision_accuracy`` = the relaxed optimum's mean predicted delay and Ĝ, the choice columns
``mean_anchors``, ``mean_bits``, ``share_<encoder>``); the simulated policies' rows cover the run
grid with their realized ``energy_per_task_j``, ``mean_delay_s`` and ``accuracy`` (settled
window), their decisions' predicted figures, the verdicts, the bound and two gaps:
``optimality_gap`` = decisions / bound − 1, only when the decisions' mean predicted delay and Ĝ
meet the pair's L_max and A_min (the slack of :class:`~simulator.control.policy.PolicyController`;
otherwise empty: a policy that breaks the constraints may sit below the bound), and
``realized_gap`` = realized energy per task / bound − 1. ``summary.json`` holds the grids, the
counts, the wall times (``pilot_wall_s``: the shared pilot and its bounds) and the place-holders
(item 5); ``plots/frontier.png`` (:func:`simulator.plots_frontier.frontier_figure`) is drawn from
``frontier.csv`` alone.

Default grids (no ``frontier:`` section, no flags): delay targets 0.2 … 2 × ``delay_target_s``
(8 geometric steps), accuracy targets ``accuracy_target`` − 0.02, − 0.01, + 0, + 0.01; the run grid
takes every other value of each, the largest included.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from simulator import __version__
from simulator.config import Scenario, parse_scenario, scenario_to_dict
from simulator.control.oracle import OfflineBound, dual_function, offline_lower_bound, slot_minimizers
from simulator.control.policy import OptionSetConfig, PolicyController
from simulator.control.tables import AccuracyTable, accuracy_margin
from simulator.errors import ScenarioError
from simulator.experiment.calibration import calibration_rows
from simulator.experiment.executors import Executor, open_executor
from simulator.experiment.pilot import INFEASIBLE, PER_V, pilot_scenario, shared_pilot, wants_pilot
from simulator.experiment.runner import judge, run_scenario, settled_metrics
from simulator.experiment.sweep import execute_run, prepare_shared
from simulator.experiment.tradeoff import BASELINES, lyapunov_section, static_choice
from simulator.folders import claim, mark
from simulator.latent.zoo import Zoo
from simulator.network.world import World
from simulator.plots_frontier import frontier_figure
from simulator.results import read_csv, write_csv, write_json, write_yaml

Log = Callable[[str], None]

DEFAULT_DELAY_FACTORS = tuple(float(x) for x in np.geomspace(0.2, 2.0, 8))
DEFAULT_ACCURACY_OFFSETS = (-0.02, -0.01, 0.0, 0.01)
TRACE_RUN = "max-accuracy"
"""The policy whose run gives the trace (no pilot and no target: the cheapest run that is a baseline too)."""

COLUMNS = ("delay_target_s", "accuracy_target", "policy", "v", "feasible", "accuracy_min", "best_delay_s",
           "best_accuracy", "energy_bound_per_task_j", "bound_status", "delay_multiplier", "accuracy_multiplier",
           "energy_per_task_j", "mean_delay_s", "accuracy", "tasks_arrived", "decision_energy_per_task_j",
           "decision_delay_s", "decision_accuracy", "delay_met", "accuracy_met", "constraints_met",
           "optimality_gap", "realized_gap", "settled", "mean_anchors", "mean_bits", "error", "run_dir")
"""Columns of ``frontier.csv`` (module docstring); one ``share_<encoder>`` column per pool encoder follows."""

# Weight of the delay against the energy when the least reachable delay is searched: large enough that
# energy only breaks ties.
_FAST_WEIGHT = 1e6
_BISECTIONS = 60


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class FrontierPlan:
    """The grids and the simulations of one frontier (module docstring)."""

    delay_targets_s: tuple[float, ...]
    accuracy_targets: tuple[float, ...]
    run_delay_targets_s: tuple[float, ...]
    run_accuracy_targets: tuple[float, ...]
    baselines: tuple[str, ...]
    v: float


def _every_other(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(values[::-1][::2][::-1])


def _grid(values: Sequence[float] | None, field: str, low: float, high: float) -> tuple[float, ...] | None:
    if values is None:
        return None
    for v in values:
        if not (low < v < high) or not math.isfinite(v):
            raise ScenarioError(f"{v!r} is out of range ({low:g}, {high:g})", path=field)
    return tuple(sorted(set(float(v) for v in values)))


def _targets(given: Sequence[float] | None, flag: str, high: float, section_value: Sequence[float] | None,
             section_field: str, default: Callable[[], tuple[tuple[float, ...], str]]
             ) -> tuple[tuple[float, ...], str]:
    """(targets, where they came from): the flag's (checked to lie in (0, ``high``)), else the scenario's
    ``frontier.<section_field>`` (None: not set), else ``default()``."""
    values = _grid(given, flag, 0.0, high)
    if values is not None:
        return values, flag
    if section_value is not None:
        return tuple(section_value), f"frontier.{section_field}"
    return default()


def _subset(run: tuple[float, ...], grid: tuple[float, ...], field: str, grid_field: str) -> tuple[float, ...]:
    out = []
    for v in run:
        match = [g for g in grid if math.isclose(g, v, rel_tol=1e-3)]  # as printed: 4 significant digits
        if not match:
            raise ScenarioError(f"{v:g} is not one of the bound's targets ({grid_field})", path=field)
        out.append(match[0])
    return tuple(out)


def frontier_plan(scenario: Scenario, *, delay_targets: Sequence[float] | None = None,
                  accuracy_targets: Sequence[float] | None = None, run_delay_targets: Sequence[float] | None = None,
                  run_accuracy_targets: Sequence[float] | None = None, baselines: Sequence[str] | None = None,
                  v: float | None = None) -> FrontierPlan:
    """The plan: the command line's values over the scenario's ``frontier:`` section over the defaults.

    Raises :class:`ScenarioError` naming the flag or field at fault.
    """
    lyapunov_section(scenario)
    sec, sim = scenario.frontier, scenario.simulation

    def default_delays() -> tuple[tuple[float, ...], str]:
        if sim.delay_target_s is None:
            raise ScenarioError("needed for the default delay targets (or give --delay-targets)",
                                path="simulation.delay_target_s")
        d = tuple(sim.delay_target_s * f for f in DEFAULT_DELAY_FACTORS)
        return d, "the default grid, 0.2 … 2 × simulation.delay_target_s: " + ", ".join(f"{x:.4g}" for x in d)

    def default_accuracies() -> tuple[tuple[float, ...], str]:
        if sim.accuracy_target is None:
            raise ScenarioError("needed for the default accuracy targets (or give --accuracy-targets)",
                                path="simulation.accuracy_target")
        a = tuple(sorted({round(sim.accuracy_target + d, 6) for d in DEFAULT_ACCURACY_OFFSETS
                          if 0.0 < sim.accuracy_target + d < 1.0}))
        return a, "the default grid around simulation.accuracy_target: " + ", ".join(f"{x:g}" for x in a)

    def section(name: str, empty_is_absent: bool = False):
        value = getattr(sec, name) if sec is not None else None
        return None if (empty_is_absent and not value) else value

    delays, where_delay = _targets(delay_targets, "--delay-targets", 3600.0, section("delay_targets_s", True),
                                   "delay_targets_s", default_delays)
    accs, where_acc = _targets(accuracy_targets, "--accuracy-targets", 1.0, section("accuracy_targets", True),
                               "accuracy_targets", default_accuracies)
    if not delays:
        raise ScenarioError("give at least one delay target", path=where_delay)
    if not accs:
        raise ScenarioError("give at least one accuracy target", path=where_acc)
    run_d, where = _targets(run_delay_targets, "--run-delay-targets", 3600.0, section("run_delay_targets_s"),
                            "run_delay_targets_s", lambda: (_every_other(delays), ""))
    run_d = _subset(run_d, delays, where, where_delay)
    run_a, where = _targets(run_accuracy_targets, "--run-accuracy-targets", 1.0, section("run_accuracy_targets"),
                            "run_accuracy_targets", lambda: (_every_other(accs), ""))
    run_a = _subset(run_a, accs, where, where_acc)
    if baselines is None:
        baselines = sec.baselines if sec is not None else BASELINES
    for b in baselines:
        if b not in BASELINES:
            raise ScenarioError(f"unknown baseline {b!r}; choose from {', '.join(BASELINES)}", path="--baselines")
    if v is None:
        v = sec.v if sec is not None else 1.0e5
    if not (v > 0 and math.isfinite(v)):
        raise ScenarioError(f"must be a positive number, got {v!r}", path="--v")
    return FrontierPlan(tuple(delays), tuple(accs), run_d, run_a, tuple(dict.fromkeys(baselines)), float(v))


# --------------------------------------------------------------------------- scenarios of the runs


def at_targets(scenario: Scenario, controller: dict[str, Any], delay_s: float, accuracy: float) -> Scenario:
    """``scenario`` with ``controller`` and the two simulation targets replaced; one run (no sweep, no frontier)."""
    data = scenario_to_dict(scenario)
    for name in ("sweep", "frontier"):
        data.pop(name, None)
    data["controller"] = controller
    data["simulation"].update(delay_target_s=delay_s, accuracy_target=accuracy)
    return parse_scenario(data)


@dataclass(frozen=True)
class Simulation:
    """One run of the frontier: ``policy`` at the targets it was run with; ``pairs`` it is judged at."""

    name: str
    policy: str
    scenario: Scenario
    pairs: tuple[tuple[float, float], ...]
    v: float | None = None


def _tag(delay_s: float | None = None, accuracy: float | None = None) -> str:
    parts = ([] if delay_s is None else [f"L{delay_s * 1e3:.6g}ms"]) + ([] if accuracy is None else [f"A{accuracy:.6g}"])
    return "-".join(parts)


def simulations(scenario: Scenario, plan: FrontierPlan, pairs: Sequence[tuple[float, float]],
                calibration: Sequence[Any]) -> list[Simulation]:
    """The runs for the feasible run pairs ``pairs`` (module docstring, item 4), the controller's first."""
    cfg = lyapunov_section(scenario)
    base = scenario_to_dict(scenario)["controller"]
    shared = {k: v for k, v in cfg.model_dump(mode="json").items() if k in OptionSetConfig.model_fields}
    ref_l, ref_a = scenario.simulation.delay_target_s, scenario.simulation.accuracy_target
    out = [Simulation(f"lyapunov-{_tag(l, a)}", "lyapunov", at_targets(scenario, {**base, "v": plan.v}, l, a),
                      ((l, a),), plan.v) for l, a in pairs]
    if "greedy" in plan.baselines:
        out += [Simulation(f"greedy-{_tag(l, a)}", "greedy", at_targets(scenario, {**shared, "kind": "greedy"}, l, a),
                           ((l, a),)) for l, a in pairs]
    if "static" in plan.baselines:
        table = AccuracyTable(calibration)
        for a in sorted({a for _, a in pairs}):
            probe = at_targets(scenario, {**shared, "kind": "greedy"}, ref_l or max(plan.delay_targets_s), a)
            sc = at_targets(scenario, static_choice(probe, table), ref_l or max(plan.delay_targets_s), a)
            out.append(Simulation(f"static-{_tag(accuracy=a)}", "static", sc, tuple(p for p in pairs if p[1] == a)))
    if "min-energy" in plan.baselines and pairs:
        out.append(Simulation("min-energy", "min-energy",
                              at_targets(scenario, {**shared, "kind": "min-energy"}, ref_l, ref_a), tuple(pairs)))
    return out


def trace_simulation(scenario: Scenario, plan: FrontierPlan, pairs: Sequence[tuple[float, float]]) -> Simulation:
    """The ``max-accuracy`` run that gives the trace (and is that baseline's run)."""
    cfg = lyapunov_section(scenario)
    shared = {k: v for k, v in cfg.model_dump(mode="json").items() if k in OptionSetConfig.model_fields}
    sim = scenario.simulation
    sc = at_targets(scenario, {**shared, "kind": TRACE_RUN}, sim.delay_target_s or max(plan.delay_targets_s),
                    sim.accuracy_target or min(plan.accuracy_targets))
    return Simulation(TRACE_RUN, TRACE_RUN, sc, tuple(pairs) if TRACE_RUN in plan.baselines else ())


def with_placeholders(sims: Sequence[Simulation], zoo: Zoo, calibration: Sequence[Any], log: Log = lambda _m: None
                      ) -> tuple[list[Simulation], dict[str, str], dict[str, Any] | None]:
    """(``sims`` with the controller's ``auto`` place-holders as numbers, the runs that cannot start, the record).

    The numbers of one pilot run for every target pair (module docstring, item 4;
    :func:`~simulator.experiment.pilot.shared_pilot`). A run whose pilot bound is infeasible at its
    pair is left out, with the error its own pilot would have raised. The record (``summary.json``'s
    ``placeholders``): the pilot's seed and slots and the two values per unit V at each pair; None
    when no run wants a pilot (numbers in the scenario, or V below ``placeholder_from_v``).
    """
    wanted = [s for s in sims if s.policy == "lyapunov" and wants_pilot(s.scenario)]
    if not wanted:
        return list(sims), {}, None
    learned = dict(zip((s.name for s in wanted), shared_pilot([s.scenario for s in wanted], zoo, calibration, log)))
    pilot = pilot_scenario(wanted[0].scenario)
    record: dict[str, Any] = {"source": "one pilot run for every target pair", "pilot_seed": pilot.seed,
                              "pilot_slots": pilot.simulation.slots, "pairs": []}
    out, errors = [], {}
    for sim in sims:
        values = learned.get(sim.name, ())
        if values is None:
            errors[sim.name] = INFEASIBLE
        elif values:
            data = scenario_to_dict(sim.scenario)
            data["controller"].update({f: v for f, v in zip(PER_V, values) if data["controller"][f] == "auto"})
            sim = replace(sim, scenario=parse_scenario(data))
        if sim.name in learned:
            (l_max, a), = sim.pairs
            record["pairs"].append({"delay_target_s": l_max, "accuracy_target": a,
                                    **{f: None if values is None else getattr(sim.scenario.controller, f)
                                       for f in PER_V}})
        if sim.name not in errors:
            out.append(sim)
    return out, errors, record


# --------------------------------------------------------------------------- the trace and the bound


@dataclass(frozen=True)
class Trace:
    """A realized trace in the bound's inputs (what :meth:`PolicyController.offline_bound` passes the oracle).

    Attributes
    ----------
    gain : float64 (T, n)
        Channel gains of the window's slots (linear).
    accuracy, option_mask : (n, m) or (T, n, m)
        Ĝ of every option (digital links: its running maximum over the SNR grid read at the
        full-power SNR) and the allowed options (masked where a link or device is down).
    params : dict
        The slot-invariant keyword arguments of :func:`~simulator.control.lyapunov.solve_slot`.
    window : (int, int)
        The slots (start, end) of the run.
    """

    gain: np.ndarray
    accuracy: np.ndarray
    option_mask: np.ndarray
    params: dict[str, Any]
    window: tuple[int, int]


def read_trace(slots_csv: Path, n_tx: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """(gain (T, n), active (T, n)) of slots ``start`` … end from a run's ``slots.csv`` (one row per slot and device)."""
    gain_db, active = [], []
    with open(slots_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            gain_db.append(float(row["gain_db"]))
            active.append(row["link_up"] == "True" and row["device_on"] == "True")
    g = 10.0 ** (np.asarray(gain_db).reshape(-1, n_tx) / 10.0)
    return g[start:], np.asarray(active, bool).reshape(-1, n_tx)[start:]


def bound_trace(controller: PolicyController, gain: np.ndarray, active: np.ndarray,
                window: tuple[int, int]) -> Trace:
    """The bound's inputs on a recorded trace (:meth:`PolicyController.bound_inputs`)."""
    acc, mask, params = controller.bound_inputs(gain, active)
    return Trace(gain, acc, mask, params, window)


def bound_at(trace: Trace, delay_s: float, accuracy_min: float) -> OfflineBound:
    """The offline bound on ``trace`` at L_max = ``delay_s`` and A_min = ``accuracy_min`` (every device).

    Overflow warnings are silenced: an unreachable target drives the dual's multipliers up by
    decades until the search calls it infeasible (its status says so).
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return offline_lower_bound(gain=trace.gain, accuracy=trace.accuracy, delay_max_s=delay_s,
                                   accuracy_min=accuracy_min, option_mask=trace.option_mask, **trace.params)


def _point(trace: Trace, lam: np.ndarray, eta: np.ndarray):
    return dual_function(lam, eta, gain=trace.gain, accuracy=trace.accuracy, delay_max_s=1.0, accuracy_min=0.5,
                         option_mask=trace.option_mask, **trace.params)


def reachable(trace: Trace, accuracy_min: float) -> tuple[np.ndarray, np.ndarray]:
    """(best_delay_s, best_accuracy) per device on ``trace`` (module docstring, item 3).

    The least mean predicted delay with mean Ĝ ≥ ``accuracy_min``: per slot minimize L − w Ĝ
    (energy weighted 1/:data:`_FAST_WEIGHT` only breaks ties), so that the averages (L(w), Ĝ(w))
    run along the lower-left boundary of the reachable (delay, Ĝ) set as w grows; w is bisected
    (in ln w, per device) to the Ĝ = ``accuracy_min`` crossing and the two sides are time-shared.
    ``best_accuracy``: Ĝ at the largest w (the best Ĝ of each slot, averaged).
    """
    n = trace.gain.shape[1]
    zero = np.zeros(n)
    probe = _point(trace, np.ones(n), zero)
    scale = _FAST_WEIGHT * np.maximum(probe.energy_j, 1e-300) / np.maximum(probe.delay_s, 1e-300)
    fast = _point(trace, scale, zero)
    w_hi = 1e6 * np.maximum(fast.delay_s, 1e-12)  # s per unit of Ĝ: far above any option's ΔL/ΔĜ
    top = _point(trace, scale, scale * w_hi)
    best_acc = top.accuracy
    lo_w, hi_w = np.full(n, 1e-12) * w_hi, w_hi.copy()
    lo = (fast.delay_s, fast.accuracy)
    hi = (top.delay_s, top.accuracy)
    for _ in range(_BISECTIONS):
        w = np.sqrt(lo_w * hi_w)
        p = _point(trace, scale, scale * w)
        up = p.accuracy < accuracy_min
        lo_w, hi_w = np.where(up, w, lo_w), np.where(up, hi_w, w)
        lo = (np.where(up, p.delay_s, lo[0]), np.where(up, p.accuracy, lo[1]))
        hi = (np.where(up, hi[0], p.delay_s), np.where(up, hi[1], p.accuracy))
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.clip((accuracy_min - lo[1]) / (hi[1] - lo[1]), 0.0, 1.0)
        between = lo[0] + np.nan_to_num(theta) * (hi[0] - lo[0])
    best_delay = np.where(fast.accuracy >= accuracy_min, fast.delay_s,
                          np.where(best_acc >= accuracy_min, between, np.inf))
    return best_delay, best_acc


def optimum_choices(trace: Trace, controller: PolicyController, bound: OfflineBound) -> dict[str, float]:
    """Mean K, mean b and each pool encoder's share of the per-slot minimizers at the bound's multipliers.

    Over the (slot, device) pairs with a decision (:func:`~simulator.control.oracle.slot_minimizers`).
    """
    t = controller.table
    best = slot_minimizers(bound.delay_multiplier, bound.accuracy_multiplier, gain=trace.gain,
                           accuracy=trace.accuracy, option_mask=trace.option_mask, **trace.params)
    option, feas = best.option, best.feasible
    o = option[feas]
    out = {"mean_anchors": float(np.mean(t.anchors[o])) if o.size else None,
           "mean_bits": float(np.mean(t.bits[o])) if o.size else None}
    enc = t.encoder[np.nonzero(feas)[1], o]
    for j, name in enumerate(controller.spec.encoder_ids):
        if np.any(t.encoder[t.allowed] == j):
            out[f"share_{name}"] = float(np.mean(enc == j)) if o.size else None
    return out


# --------------------------------------------------------------------------- rows


def _per_task(bound_j: float, trace: Trace, bound: OfflineBound) -> float | None:
    active = float(np.sum(bound.point.active_slots))
    return bound_j * trace.gain.shape[0] / active if active else None


def bound_row(delay_s: float, accuracy: float, a_min: float, best: tuple[np.ndarray, np.ndarray],
              bound: OfflineBound | None, trace: Trace, choices: dict[str, float]) -> dict[str, Any]:
    """The ``bound`` row of one pair; ``bound`` None: outside the reachable set (status ``infeasible``)."""
    feasible = bound is not None and bound.status != "infeasible"
    per_task = _per_task(bound.bound_j, trace, bound) if feasible else None
    row = {"delay_target_s": delay_s, "accuracy_target": accuracy, "policy": "bound", "feasible": feasible,
           "accuracy_min": a_min, "best_delay_s": float(np.max(best[0])), "best_accuracy": float(np.min(best[1])),
           "energy_bound_per_task_j": per_task, "bound_status": "infeasible" if bound is None else bound.status,
           "delay_multiplier": float(np.mean(bound.delay_multiplier)) if feasible else None,
           "accuracy_multiplier": float(np.mean(bound.accuracy_multiplier)) if feasible else None,
           "energy_per_task_j": per_task, "decision_energy_per_task_j": per_task}
    if feasible:
        active = np.maximum(bound.point.active_slots, 1)
        w = bound.point.active_slots / active.sum()
        row["decision_delay_s"] = float(np.sum(w * bound.relaxed_delay_s))
        row["decision_accuracy"] = float(np.sum(w * bound.relaxed_accuracy))
        row.update(choices)
    return row


def run_row(sim: Simulation, pair: tuple[float, float], bound: dict[str, Any], run_dir: Path, summary: dict | None,
            error: str | None, window_start_s: float, include_server_energy: bool, scenario: Scenario) -> dict[str, Any]:
    """One simulated policy judged at ``pair`` against that pair's bound row."""
    l_max, a = pair
    row = {k: bound.get(k) for k in ("feasible", "accuracy_min", "best_delay_s", "best_accuracy",
                                     "energy_bound_per_task_j", "bound_status", "delay_multiplier",
                                     "accuracy_multiplier")}
    row.update(delay_target_s=l_max, accuracy_target=a, policy=sim.policy, v=sim.v, run_dir=str(run_dir),
               error=error)
    if summary is None:
        return row
    judged = at_targets(scenario, scenario_to_dict(scenario)["controller"], l_max, a)
    m = judge(settled_metrics(run_dir / "tasks.csv", window_start_s, include_server_energy), judged)
    stats = summary.get("controller_stats") or {}
    e_dec, l_dec, g_dec = (stats.get(k) for k in ("decision_energy_per_task_j", "decision_delay_s",
                                                  "decision_accuracy"))
    per_task = bound.get("energy_bound_per_task_j")
    row.update(energy_per_task_j=m["energy_per_task_j"], mean_delay_s=m["mean_delay_s"], accuracy=m["accuracy"],
               tasks_arrived=m["tasks_arrived"], decision_energy_per_task_j=e_dec, decision_delay_s=l_dec, decision_accuracy=g_dec,
               delay_met=m.get("delay_met"), accuracy_met=m.get("accuracy_met"),
               constraints_met=bool(m.get("delay_met")) and bool(m.get("accuracy_met")),
               settled=(summary.get("settling") or {}).get("settled") if sim.policy == "lyapunov" else None)
    if per_task:
        if m["energy_per_task_j"] is not None:
            row["realized_gap"] = m["energy_per_task_j"] / per_task - 1.0
        meets = (e_dec is not None and l_dec is not None and g_dec is not None
                 and l_dec <= l_max * (1.0 + PolicyController.DELAY_SLACK)
                 and g_dec >= bound["accuracy_min"] - PolicyController.ACCURACY_SLACK)
        if meets:
            row["optimality_gap"] = e_dec / per_task - 1.0
    return row


# --------------------------------------------------------------------------- the driver


@dataclass
class FrontierReport:
    """What :func:`run_frontier` did (also in ``summary.json``)."""

    out_dir: Path
    rows: list[dict[str, Any]]
    pairs: int
    feasible: int
    runs: int
    failed: int
    wall_s: float
    bound_wall_s: float
    executor: str

    def controller_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["policy"] == "lyapunov"]


def run_frontier(scenario: Scenario, out_dir: Path, plan: FrontierPlan | None = None, *,
                 executor: Executor | str = "local", workers: int | None = None, scheduler: str | None = None,
                 zoo: Zoo | None = None, log: Log = lambda _m: None) -> FrontierReport:
    """Compute the frontier of ``scenario`` into ``out_dir`` (module docstring); return the report.

    ``executor``: ``"local"`` or ``"dask"`` (started here, with ``workers`` / ``scheduler``) or an
    executor already entered. ``zoo``: a zoo built for the scenario (its shared artifacts are
    then assumed built, e.g. in tests).
    """
    plan = plan or frontier_plan(scenario)
    cfg = lyapunov_section(scenario)
    owned = isinstance(executor, str)
    ex = open_executor(executor, workers, scheduler) if owned else executor  # checks the flags now
    t_start = time.perf_counter()
    with claim(out_dir, "frontier") as target:  # checked and locked before any work
        out = target.in_place()
        write_yaml(out / "scenario.yaml", {**scenario_to_dict(scenario), "version": __version__})
        built = zoo is None
        zoo = zoo if zoo is not None else Zoo.build(scenario, log=log)
        calibration = calibration_rows(zoo, log)
        runs_dir = out / "runs"
        mark(runs_dir, "frontier-runs")
        run_pairs = [(l, a) for a in plan.run_accuracy_targets for l in plan.run_delay_targets_s]

        # 1. the trace
        trace_sim = trace_simulation(scenario, plan, run_pairs)
        log(f"trace: {trace_sim.policy} run of seed {scenario.seed} ({scenario.simulation.slots} slots)")
        trace_summary = run_scenario(trace_sim.scenario, runs_dir / trace_sim.name, zoo=zoo)
        start = cfg.settle_slots
        gain, active = read_trace(runs_dir / trace_sim.name / "slots.csv", len(scenario.transmitters), start)
        controller = table_controller(scenario, plan, zoo, calibration)
        trace = bound_trace(controller, gain, active, (start, scenario.simulation.slots))

        # 2-3. the bound, the choices and what is reachable, at every pair
        t0 = time.perf_counter()
        bounds: dict[tuple[float, float], dict[str, Any]] = {}
        for a in plan.accuracy_targets:
            t_row = time.perf_counter()
            probe = at_targets(scenario, scenario_to_dict(scenario)["controller"], plan.delay_targets_s[0], a)
            a_min = a + accuracy_margin(probe, calibration)
            best = reachable(trace, a_min)
            for l_max in plan.delay_targets_s:
                # a pair outside the reachable set is infeasible without asking the dual (whose search then
                # expands its multipliers for 40 decades before it gives up); near the edge the dual decides
                outside = np.any(a_min > best[1] + 1e-12) or np.any(l_max < best[0] * (1.0 - 1e-6))
                b = None if outside else bound_at(trace, l_max, a_min)
                choices = optimum_choices(trace, controller, b) if b is not None and b.status != "infeasible" else {}
                bounds[(l_max, a)] = bound_row(l_max, a, a_min, best, b, trace, choices)
            feas = sum(bounds[(l, a)]["feasible"] for l in plan.delay_targets_s)
            log(f"accuracy target {a:g} (plans for Ĝ ≥ {a_min:.4f}): {feas}/{len(plan.delay_targets_s)} delay "
                f"targets feasible; least reachable delay {np.max(best[0]) * 1e3:.4g} ms, best Ĝ {np.min(best[1]):.4f} "
                f"({time.perf_counter() - t_row:.0f} s)")
        bound_wall = time.perf_counter() - t0

        # 4. the simulations, at the feasible run pairs
        feasible_pairs = [p for p in run_pairs if bounds[p]["feasible"]]
        planned = simulations(scenario, plan, feasible_pairs, calibration)
        t_pilot = time.perf_counter()
        sims, pilot_errors, placeholders = with_placeholders(planned, zoo, calibration, log)
        pilot_wall = time.perf_counter() - t_pilot
        outcomes: dict[str, tuple[dict | None, str | None]] = {trace_sim.name: (trace_summary, None)}
        outcomes.update({name: (None, error) for name, error in pilot_errors.items()})
        if sims:
            if built:
                prepare_shared([s.scenario for s in sims], log)
            log(f"{len(sims)} runs at {len(feasible_pairs)} feasible target pairs "
                f"({len(run_pairs) - len(feasible_pairs)} infeasible not run) on {ex.description}")
            jobs = [(s.name, execute_run, (scenario_to_dict(s.scenario), str(runs_dir / s.name))) for s in sims]
            if owned:
                ex.__enter__()
            try:
                for done, (name, outcome) in enumerate(ex.run(jobs), 1):
                    error = None
                    if isinstance(outcome, BaseException):
                        error = f"the worker failed: {type(outcome).__name__}: {outcome}"
                    elif outcome.get("status") != "ok":
                        error = outcome.get("error")
                    summary = None
                    if error is None:
                        summary = _read_summary(runs_dir / name)
                    outcomes[name] = (summary, error)
                    log(f"[{done}/{len(jobs)}] {name} " + ("ok" if error is None else f"failed: {error}"))
            finally:
                if owned:
                    ex.__exit__(None, None, None)

        # rows: the bound's at every pair, then each run at the pairs it stands for
        window_start_s = start * scenario.simulation.slot_s
        rows = [bounds[(l, a)] for a in plan.accuracy_targets for l in plan.delay_targets_s]
        for sim in [trace_sim, *planned]:
            summary, error = outcomes.get(sim.name, (None, "not run"))
            for pair in sim.pairs:
                rows.append(run_row(sim, pair, bounds[pair], runs_dir / sim.name, summary, error, window_start_s,
                                    cfg.include_server_energy, scenario))
        encoders = sorted({k for r in rows for k in r if k.startswith("share_")})
        write_csv(out / "frontier.csv", COLUMNS + tuple(encoders), [{**dict.fromkeys(COLUMNS + tuple(encoders)), **r}
                                                                     for r in rows])
        failed = sum(1 for s, e in outcomes.values() if e is not None)
        report = FrontierReport(out, rows, len(bounds), sum(r["feasible"] for r in bounds.values()),
                                len(outcomes), failed, time.perf_counter() - t_start, bound_wall, ex.description)
        ctl = report.controller_rows()
        write_json(out / "summary.json", {
            "scenario": scenario.name, "seed": scenario.seed, "trace_run": f"runs/{trace_sim.name}",
            "window_slots": list(trace.window), "delay_targets_s": list(plan.delay_targets_s),
            "accuracy_targets": list(plan.accuracy_targets), "run_delay_targets_s": list(plan.run_delay_targets_s),
            "run_accuracy_targets": list(plan.run_accuracy_targets), "baselines": list(plan.baselines),
            "v": plan.v, "pairs": report.pairs, "feasible_pairs": report.feasible, "runs": report.runs,
            "failed_runs": failed, "executor": report.executor, "wall_s": report.wall_s, "bound_wall_s": bound_wall,
            "placeholders": placeholders, "pilot_wall_s": pilot_wall if placeholders is not None else None,
            "controller": [{k: r.get(k) for k in ("delay_target_s", "accuracy_target", "optimality_gap",
                                                  "realized_gap", "settled", "constraints_met", "error")}
                           for r in ctl]})
        frontier_figure(out / "frontier.csv", out / "plots" / "frontier.png")
    return report


def table_controller(scenario: Scenario, plan: FrontierPlan, zoo: Zoo, calibration: Sequence[Any]) -> PolicyController:
    """A controller with the scenario's option set, Ĝ and physical parameters, for its tables (never run).

    Built by a :class:`World` (which owns the network's cycle and payload tables) at the grid's
    loosest targets, with empty queues (no pilot).
    """
    sc = at_targets(scenario, {**scenario_to_dict(scenario)["controller"], "delay_queue_per_v": 0.0,
                               "accuracy_queue_per_v": 0.0}, max(plan.delay_targets_s), min(plan.accuracy_targets))
    return World(sc, zoo, calibration).controller


def _read_summary(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def read_frontier(out_dir: Path) -> list[dict[str, str]]:
    """The rows of ``frontier.csv`` in ``out_dir``."""
    return read_csv(Path(out_dir) / "frontier.csv")


__all__ = ["FrontierPlan", "FrontierReport", "Simulation", "Trace", "frontier_plan", "run_frontier", "at_targets",
           "simulations", "with_placeholders", "read_trace", "bound_trace", "bound_at", "reachable", "optimum_choices",
           "read_frontier", "COLUMNS"]
