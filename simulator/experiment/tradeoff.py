"""The energy–backlog trade-off of the drift-plus-penalty controller: a V sweep, the baselines, a plot.

One seed, every V and the baselines side by side (``relcomm sweep`` runs the same V grid with seed
replicates and error bars, but no baselines): one scenario whose ``controller`` is ``lyapunov``
is run once per value of ``controller.v_sweep`` (or, when that is empty, of
``sweep.grid["controller.v"]``; V overridden, each run its own results directory), then once
per baseline (same scenario, ``controller.kind`` replaced), and every run is summarized in
``tradeoff.csv``; :func:`simulator.plots.v_sweep_figure` draws ``tradeoff.png`` from that file
alone.

Settled statistics. Every figure in ``tradeoff.csv`` is taken over the *settled window*: the
tasks that arrive from slot ``controller.settle_slots`` on (read from ``tasks.csv``) and, for
the controller's own figures and the offline bound, the same slots (``summary.json``). A run
meets the constraints when, over that window, its realized mean delay is at most
``delay_target_s`` × (1 + ``simulation.delay_tolerance``) and its realized accuracy (test split) at least
``accuracy_target`` − ``simulation.accuracy_tolerance`` (5 % and 0.01 by default).

Energy. ``energy_per_task_j`` is the realized energy of the window's tasks (device transmit +
device compute, + server decoding when ``controller.include_server_energy``) divided by the
tasks that arrived in it; ``decision_energy_j`` the controller's predicted per-task energy of
its decisions averaged over the window's slots, the figure the offline bound
(``energy_lower_bound_j``) bounds; ``optimality_gap`` compares those two. With one task per slot
and transmitter (the paper's set-up) ``energy_per_task_j`` × transmitters is the same quantity
realized, and ``realized_gap`` compares it to the bound too.

Place-holder backlogs. The virtual queues settle near ``Z ≈ λ* V`` and ``Y ≈ η* V``
(λ*, η* the optimal dual multipliers of the delay and accuracy constraints); from empty
queues that takes O(V/μ) slots, far longer than a short run at V = 10⁶. As in Neely's
place-holder backlogs and the learning-aided drift-plus-penalty of Huang and Neely, the queues
may start at ``V λ̂`` and ``V η̂`` instead, with (λ̂, η̂) *learned on another channel
realization*: the offline bound's multipliers on a pilot run of the same scenario with seed + 1
(not the seed the sweep runs). The steady state does not depend on the start; only the
transient shrinks. The runs get them as ``controller.delay_queue_per_v = λ̂`` and
``accuracy_queue_per_v = η̂`` (Z₀ = V λ̂). A scenario that already sets those fields (as
``scenarios/paper-tradeoff.yaml`` does, so that its sweep runs are self-contained) is run with
them and no pilot; ``--pilot-only`` learns them and prints the two lines to paste.
``--no-placeholder`` starts every run from the configured queues. The pilot runs
``--pilot-slots`` slots (default 4 × ``simulation.slots``): λ̂ is an average over the pilot's
trace, and a longer pilot leaves less of its own sampling noise in it.

Run ``relcomm tradeoff SCENARIO.yaml [--out DIR] [--baselines …] [--pilot-only]`` (or
``python -m simulator tradeoff …``, the same).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from simulator import plots
from simulator.config import Scenario, parse_scenario, scenario_to_dict
from simulator.control.kinds.lyapunov import LyapunovControllerConfig
from simulator.control.policy import OptionSetConfig
from simulator.control.tables import AccuracyTable
from simulator.errors import ScenarioError
from simulator.experiment.calibration import calibration_rows
from simulator.experiment.runner import judge, run_scenario, settled_metrics
from simulator.folders import claim
from simulator.latent.zoo import Zoo
from simulator.results import write_csv

BASELINES = ("static", "max-accuracy", "min-energy", "greedy")

COLUMNS = ("kind", "v", "tasks", "delivered", "dropped", "mean_delay_s", "accuracy", "energy_per_task_j",
           "decision_energy_j", "decision_delay_s", "decision_accuracy", "delay_queue_mean", "accuracy_queue_mean",
           "energy_lower_bound_j", "optimality_gap", "realized_gap", "delay_target_s", "accuracy_target",
           "accuracy_margin", "delay_tolerance", "accuracy_tolerance", "delay_met", "accuracy_met",
           "constraints_met", "run_dir")


def _with_controller(scenario: Scenario, controller: dict[str, Any], seed: int | None = None) -> Scenario:
    data = scenario_to_dict(scenario)
    data.pop("sweep", None)  # each run is one run (a baseline has no controller.v to sweep)
    data["controller"] = controller
    if seed is not None:
        data["seed"] = seed
    return parse_scenario(data)


def _option_fields(cfg: LyapunovControllerConfig) -> dict[str, Any]:
    """The option-set settings every dynamic kind shares (what the baselines are run with)."""
    return {k: v for k, v in cfg.model_dump(mode="json").items() if k in OptionSetConfig.model_fields}


def static_choice(scenario: Scenario, accuracy: AccuracyTable) -> dict[str, Any]:
    """The ``static`` baseline: the first pool encoder with the smallest payload K·b whose Ĝ meets the target.

    Fixed by hand from the calibration table, as an engineer without a controller would; the
    most accurate (K, b) when none meets it. Sent at full power and f_max.
    """
    cfg, sim = scenario.controller, scenario.simulation
    tx = scenario.transmitters[0]
    rx = next(r.encoder for r in scenario.receivers if r.id == tx.receiver)
    enc = tx.encoders[0]
    need = (sim.accuracy_target or 0.0) + cfg.accuracy_margin
    cells = [(accuracy.ideal(enc, rx, k, b), k, b) for k in cfg.anchors for b in cfg.bits]
    good = [(k * b, k, b) for g, k, b in cells if g >= need]
    _, k, b = min(good) if good else max(cells)
    return {"kind": "static", "encoder": enc, "anchors": k, "bits": b}


def lyapunov_section(scenario: Scenario) -> LyapunovControllerConfig:
    """The scenario's controller section; a ScenarioError unless it is ``lyapunov``."""
    if not isinstance(scenario.controller, LyapunovControllerConfig):
        raise ScenarioError("the trade-off driver needs controller.kind lyapunov", path="controller.kind")
    return scenario.controller


def v_values(scenario: Scenario) -> tuple[float, ...]:
    """The V values the driver runs: ``controller.v_sweep``, else ``sweep.grid["controller.v"]``."""
    cfg = scenario.controller
    values = tuple(cfg.v_sweep) if cfg.v_sweep else tuple(
        float(v) for v in (scenario.sweep.grid.get("controller.v", ()) if scenario.sweep else ()))
    if not values:
        raise ScenarioError("list the V values to run (or sweep.grid: {controller.v: [...]})",
                            path="controller.v_sweep")
    return values


def pilot_multipliers(scenario: Scenario, zoo: Zoo | None, out_dir: Path,
                      log: Callable[[str], None], slots: int | None = None) -> tuple[float, float]:
    """(λ̂, η̂): the offline bound's multipliers on a pilot run with seed + 1 (module docstring).

    ``slots``: the pilot's length (default 4 × ``simulation.slots``; the settled window's start
    stays where it is). Averaged over transmitters (the queues start from one number each).
    """
    lyapunov_section(scenario)
    zoo = zoo if zoo is not None else Zoo.build(scenario, log=log)
    data = scenario_to_dict(scenario)
    data["simulation"]["slots"] = slots or 4 * scenario.simulation.slots
    data["controller"].update(initial_delay_queue=0.0, initial_accuracy_queue=0.0)
    data["seed"] = scenario.seed + 1
    data.pop("sweep", None)
    pilot = parse_scenario(data)
    log(f"pilot run (seed {pilot.seed}, {pilot.simulation.slots} slots) for the place-holder backlogs")
    summary = run_scenario(pilot, out_dir / "pilot", zoo=zoo)
    bound = summary.get("offline_bound")
    if not bound or bound["status"] == "infeasible":
        raise ScenarioError("the pilot run's offline bound is infeasible: the targets cannot be met on its trace",
                            path="simulation")
    return float(np.mean(bound["delay_multiplier"])), float(np.mean(bound["accuracy_multiplier"]))


def _row(kind: str, v: float | None, scenario: Scenario, summary: dict, run_dir: Path,
         window: LyapunovControllerConfig) -> dict[str, Any]:
    """One line of ``tradeoff.csv``; ``window`` gives every run the sweep's window and energy accounting."""
    sim = scenario.simulation
    start = window.settle_slots * sim.slot_s
    m = dict(summary["settled"])  # the runner's window: the sweep's own unless the controller lacks those settings
    if m["from_s"] != start or getattr(scenario.controller, "include_server_energy", True) != window.include_server_energy:
        m = judge(settled_metrics(Path(run_dir) / "tasks.csv", start, window.include_server_energy), scenario)
    m.pop("from_s")
    delay_ok, acc_ok = bool(m.pop("delay_met", False)), bool(m.pop("accuracy_met", False))
    m.pop("delay_limit_s", None)
    m.pop("accuracy_limit", None)
    stats = summary.get("controller_stats") or {}
    bound = summary.get("energy_lower_bound_j")
    n_tx = len(scenario.transmitters)
    realized_gap = (m["energy_per_task_j"] * n_tx / bound - 1.0
                    if bound and m["energy_per_task_j"] is not None else None)
    return {"kind": kind, "v": v, **m, "decision_energy_j": stats.get("decision_energy_j"),
            "decision_delay_s": stats.get("decision_delay_s"), "decision_accuracy": stats.get("decision_accuracy"),
            "delay_queue_mean": stats.get("delay_queue_mean"), "accuracy_queue_mean": stats.get("accuracy_queue_mean"),
            "energy_lower_bound_j": bound, "optimality_gap": summary.get("optimality_gap"),
            "realized_gap": realized_gap, "delay_target_s": sim.delay_target_s,
            "accuracy_target": sim.accuracy_target, "accuracy_margin": window.accuracy_margin,
            "delay_tolerance": sim.delay_tolerance, "accuracy_tolerance": sim.accuracy_tolerance,
            "delay_met": delay_ok, "accuracy_met": acc_ok,
            "constraints_met": delay_ok and acc_ok, "run_dir": str(run_dir)}


def run_tradeoff(scenario: Scenario, out_dir: Path, *, baselines: Sequence[str] = BASELINES,
                 placeholder: bool = True, zoo: Zoo | None = None, pilot_slots: int | None = None,
                 log: Callable[[str], None] = lambda _m: None) -> list[dict[str, Any]]:
    """Run the V sweep and the baselines; write ``tradeoff.csv`` and ``plots/tradeoff.png`` (and .pdf) into ``out_dir``.

    Returns the rows of ``tradeoff.csv`` (module docstring for every column).
    """
    cfg = lyapunov_section(scenario)
    values = v_values(scenario)
    with claim(out_dir, "tradeoff") as target:  # checked and locked before any work
        return _run_tradeoff(scenario, cfg, values, target.in_place(), baselines, placeholder, zoo, pilot_slots, log)


def _run_tradeoff(scenario: Scenario, cfg: LyapunovControllerConfig, values: tuple[float, ...], out_dir: Path,
                  baselines: Sequence[str], placeholder: bool, zoo: Zoo | None, pilot_slots: int | None,
                  log: Callable[[str], None]) -> list[dict[str, Any]]:
    zoo = zoo if zoo is not None else Zoo.build(scenario, log=log)
    base = scenario_to_dict(scenario)["controller"]
    if not placeholder:
        base.update(delay_queue_per_v=0.0, accuracy_queue_per_v=0.0)
    elif cfg.delay_queue_per_v > 0 or cfg.accuracy_queue_per_v > 0:
        log(f"place-holder backlogs from the scenario: Z0 = {cfg.delay_queue_per_v:.4g}·V, "
            f"Y0 = {cfg.accuracy_queue_per_v:.4g}·V")
    else:
        lam, eta = pilot_multipliers(scenario, zoo, out_dir, log, pilot_slots)
        log(f"place-holder backlogs: Z0 = {lam:.4g}·V, Y0 = {eta:.4g}·V")
        base.update(delay_queue_per_v=lam, accuracy_queue_per_v=eta)
    rows = []
    for v in values:
        ctl = {**base, "v": v}
        sc = _with_controller(scenario, ctl)
        run_dir = out_dir / f"v={v:g}"
        t0 = time.perf_counter()
        summary = run_scenario(sc, run_dir, zoo=zoo)
        rows.append(_row("lyapunov", v, sc, summary, run_dir, cfg))
        log(_describe(rows[-1], time.perf_counter() - t0))
    shared = _option_fields(cfg)
    for kind in baselines:
        if kind == "static":
            ctl = static_choice(scenario, AccuracyTable(calibration_rows(zoo)))
        else:
            ctl = {**shared, "kind": kind}
        sc = _with_controller(scenario, ctl)
        run_dir = out_dir / f"baseline-{kind}"
        t0 = time.perf_counter()
        summary = run_scenario(sc, run_dir, zoo=zoo)
        rows.append(_row(kind, None, sc, summary, run_dir, cfg))
        log(_describe(rows[-1], time.perf_counter() - t0))
    write_csv(out_dir / "tradeoff.csv", COLUMNS, rows)
    plots.v_sweep_figure(out_dir / "tradeoff.csv", out_dir / "plots" / "tradeoff.png")
    return rows


def _describe(row: dict[str, Any], wall_s: float) -> str:
    name = f"V = {row['v']:g}" if row["v"] is not None else row["kind"]
    gap = "" if row["optimality_gap"] is None else f", gap {row['optimality_gap']:+.2%}"
    return (f"{name}: {row['energy_per_task_j']:.4g} J/task, delay {row['mean_delay_s'] * 1e3:.3f} ms, "
            f"accuracy {row['accuracy']:.4f}{gap}, constraints {'met' if row['constraints_met'] else 'NOT met'} "
            f"({wall_s:.0f} s)")


__all__ = ["run_tradeoff", "v_values", "lyapunov_section", "pilot_multipliers", "static_choice",
"BASELINES", "COLUMNS"]
