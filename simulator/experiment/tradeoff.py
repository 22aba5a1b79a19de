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

Energy, per task throughout. ``energy_per_task_j`` is the realized energy of the window's tasks
(device transmit + device compute, + server decoding when ``controller.include_server_energy``)
divided by the tasks that arrived in it; ``decision_energy_per_task_j`` the controller's
predicted per-task energy of its decisions over the window, the figure the offline bound
``energy_bound_per_task_j`` bounds. ``optimality_gap`` compares those two, and only when the
decisions meet the bound's constraints (else it is empty and ``optimality_gap_reason`` says
why); ``inefficiency_gap`` compares them with the bound at the decisions' own averages (≥ 0,
O(1/V)); ``realized_gap`` compares the realized energy per task with the same bound.

Settling. ``settled`` says whether the run's queues sat where theory puts them over the window
(Z̄/V and Ȳ/V within 5 % of the bound's multipliers λ*, η*; ``summary.json``'s ``settling``);
``delay_queue_per_v``, ``delay_multiplier``, ``accuracy_queue_per_v`` and
``accuracy_multiplier`` are the figures it compares (means over transmitters). A V that did not
settle is marked, not dropped: its energy is that of a controller still in its transient.

Place-holder backlogs come from the scenario: ``auto`` (the default) learns them on a cached
pilot run with another seed (:mod:`simulator.experiment.pilot`), once for every V;
``--pilot-only`` runs (or reads) that pilot and prints the two numbers; ``--no-placeholder``
starts every run from empty queues; ``--pilot-slots`` sets ``controller.pilot_slots``.

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
from simulator.control.tables import AccuracyTable, accuracy_margin
from simulator.errors import ScenarioError
from simulator.experiment.calibration import calibration_rows
from simulator.experiment.pilot import pilot_multipliers
from simulator.experiment.runner import judge, run_scenario, settled_metrics
from simulator.folders import claim
from simulator.latent.zoo import Zoo
from simulator.results import write_csv

BASELINES = ("static", "max-accuracy", "min-energy", "greedy")

COLUMNS = ("kind", "v", "tasks_arrived", "tasks_delivered", "tasks_dropped", "mean_delay_s", "accuracy", "energy_per_task_j",
           "decision_energy_per_task_j", "decision_delay_s", "decision_accuracy", "energy_bound_per_task_j",
           "optimality_gap", "optimality_gap_reason", "inefficiency_gap", "realized_gap", "settled",
           "delay_queue_per_v", "delay_multiplier", "accuracy_queue_per_v", "accuracy_multiplier",
           "placeholders", "delay_target_s", "accuracy_target", "accuracy_margin", "delay_tolerance",
           "accuracy_tolerance", "delay_met", "accuracy_met", "constraints_met", "run_dir")


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
    need = (sim.accuracy_target or 0.0) + accuracy_margin(scenario, accuracy)
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


def learn_placeholders(scenario: Scenario, log: Callable[[str], None] = lambda _m: None) -> tuple[float, float]:
    """(λ̂, η̂): the pilot's multipliers for ``scenario`` (run now, or read from the cache)."""
    lyapunov_section(scenario)
    zoo = Zoo.build(scenario, log=log)
    lam, eta, _cached = pilot_multipliers(scenario, zoo, calibration_rows(zoo, log), run_scenario, log)
    return lam, eta


def _mean(values: Any) -> float | None:
    return None if values is None else float(np.mean(values))


def _row(kind: str, v: float | None, scenario: Scenario, summary: dict, run_dir: Path,
         window: LyapunovControllerConfig) -> dict[str, Any]:
    """One line of ``tradeoff.csv``; ``window`` gives every run the sweep's window and energy accounting."""
    sim = scenario.simulation
    start = window.settle_slots * sim.slot_s
    m = dict(summary["settled"])  # the runner's window: the sweep's own unless the controller lacks those settings
    delay_ok, acc_ok = summary.get("delay_met"), summary.get("accuracy_met")
    if m["from_s"] != start or getattr(scenario.controller, "include_server_energy", True) != window.include_server_energy:
        m = judge(settled_metrics(Path(run_dir) / "tasks.csv", start, window.include_server_energy), scenario)
        delay_ok, acc_ok = m.pop("delay_met", None), m.pop("accuracy_met", None)
    for name in ("from_s", "delay_limit_s", "accuracy_limit"):
        m.pop(name, None)
    stats = summary.get("controller_stats") or {}
    bound = summary.get("energy_bound_per_task_j")
    realized_gap = (m["energy_per_task_j"] / bound - 1.0
                    if bound and m["energy_per_task_j"] is not None else None)
    settling = summary.get("settling") or {}
    return {"kind": kind, "v": v, **m, "decision_energy_per_task_j": stats.get("decision_energy_per_task_j"),
            "decision_delay_s": stats.get("decision_delay_s"), "decision_accuracy": stats.get("decision_accuracy"),
            "energy_bound_per_task_j": bound, "optimality_gap": summary.get("optimality_gap"),
            "optimality_gap_reason": summary.get("optimality_gap_reason"),
            "inefficiency_gap": summary.get("inefficiency_gap"), "realized_gap": realized_gap,
            "settled": settling.get("settled"), "delay_queue_per_v": _mean(settling.get("delay_queue_per_v")),
            "delay_multiplier": _mean(settling.get("delay_multiplier")),
            "accuracy_queue_per_v": _mean(settling.get("accuracy_queue_per_v")),
            "accuracy_multiplier": _mean(settling.get("accuracy_multiplier")),
            "placeholders": (summary.get("placeholders") or {}).get("source"),
            "delay_target_s": sim.delay_target_s,
            "accuracy_target": sim.accuracy_target, "accuracy_margin": summary.get("accuracy_margin"),
            "delay_tolerance": sim.delay_tolerance, "accuracy_tolerance": sim.accuracy_tolerance,
            "delay_met": bool(delay_ok), "accuracy_met": bool(acc_ok),
            "constraints_met": bool(delay_ok) and bool(acc_ok), "run_dir": str(run_dir)}


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
    if pilot_slots is not None:
        base["pilot_slots"] = pilot_slots
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
    ineff = "" if row["inefficiency_gap"] is None else f", inefficiency {row['inefficiency_gap']:+.3%}"
    settled = {None: "", True: ", settled", False: ", NOT settled"}[row["settled"]]
    return (f"{name}: {row['energy_per_task_j']:.4g} J/task, delay {row['mean_delay_s'] * 1e3:.3f} ms, "
            f"accuracy {row['accuracy']:.4f}{gap}{ineff}{settled}, constraints "
            f"{'met' if row['constraints_met'] else 'NOT met'} ({wall_s:.0f} s)")


__all__ = ["run_tradeoff", "v_values", "lyapunov_section", "learn_placeholders", "static_choice",
"BASELINES", "COLUMNS"]
