"""`relcomm run`: one network scenario → one results directory (DESIGN §4).

The directory holds ``scenario.yaml`` (resolved, with seed and version), ``slots.csv``,
``tasks.csv`` and ``summary.json``. Everything is written into a hidden, marked staging folder
beside the target and swapped into place at the end (:mod:`simulator.folders`: only a missing or
empty path or a relcomm results folder is replaced), so a directory that exists is complete;
``summary.json`` is the last file written into it.

``wall_s`` in ``summary.json`` is the wall time of the simulation itself (the event loop and the
outcome batches; not building or loading the encoder zoo), ``bound_wall_s`` that of the offline
bound. They are the only fields that differ between two runs of the same scenario and seed:
compare summaries with :func:`comparable_summary`.

Offline bound (every ``controller.kind`` but ``static``, with both simulation targets set). The
controller records the realized channel trace; after the run
:func:`~simulator.control.oracle.offline_lower_bound` is computed on it over the settled window
(slots ``controller.settle_slots`` … end) with the same options, Ĝ and physical parameters. It
bounds, from below, the *predicted per-task* energy ``p N/R + κ f² W_tx [+ κ_s x² W_rx]`` of
every decision sequence whose predicted delay and Ĝ meet the targets on average, per device:

* ``energy_bound_per_slot_j`` — J per slot, summed over transmitters; ``energy_bound_per_task_j``
  — per decision (per task when each slot with a decision carries one task, the paper's set-up;
  correct with several transmitters); ``energy_bound_j`` — per task × the window's tasks, the
  window total to set against the realized energy of those tasks
  (``settled.energy_per_task_j`` × ``settled.tasks_arrived``);
* ``optimality_gap`` — the decisions' energy / bound − 1 (like for like), only when the decisions
  meet the bound's constraints (within a small slack, against the bound at the decisions' own
  average where it is past a target); else null and ``optimality_gap_reason`` says which they break;
* ``inefficiency_gap`` — decisions / the bound re-solved at the decisions' own average delay and
  Ĝ − 1: ≥ 0 for every policy, O(1/V) for drift-plus-penalty;
* ``settling`` (controllers with queues) — Z̄/V and Ȳ/V against the multipliers λ*, η* and
  whether they agree within 5 %; ``placeholders`` — where the queues' starting backlogs came
  from (:mod:`simulator.experiment.pilot`);
* ``controller_stats`` — the decisions' energy per slot and per task, predicted delay and Ĝ,
  and the virtual queues over the window; ``offline_bound`` — the dual's status and multipliers.

The *realized* energy (``energy_j`` and its parts) is the world's: tasks (one per arrival, not one
per slot), retransmissions, idle power.

Settled window (``settled`` in ``summary.json``, every controller): realized statistics of the
tasks that *arrived* at or after slot ``controller.settle_slots`` (0 when the controller has no
such setting), tallied by the world as it records each task (:class:`~simulator.network.metrics.WindowTally`;
:func:`settled_metrics` re-reads another window from ``tasks.csv``) — ``tasks``, ``delivered``, ``dropped``,
``mean_delay_s`` and ``accuracy`` of the delivered ones, ``energy_per_task_j`` (device transmit
+ device compute energy of those tasks, + server decoding unless the controller's
``include_server_energy`` is false, divided by the tasks) and ``from_s``. These are the figures
a trade-off curve compares: the start-up transient of the virtual queues is left out. With
targets, ``delay_limit_s`` = ``delay_target_s`` × (1 + ``simulation.delay_tolerance``) and
``accuracy_limit`` = ``accuracy_target`` − ``simulation.accuracy_tolerance``.

Verdicts: the top-level ``delay_met`` and ``accuracy_met`` are the run's one verdict per
constraint — the settled window's realized mean delay ≤ ``delay_limit_s`` and realized test
accuracy ≥ ``accuracy_limit`` (null without a target) — the same verdicts the CLI prints. The
whole run's ``mean_delay_s`` and ``accuracy`` are reported beside them, unjudged.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Callable

from simulator import __version__, plots
from simulator.config import Scenario, scenario_to_dict
from simulator.folders import claim
from simulator.experiment.calibration import calibration_rows
from simulator.experiment.pilot import resolve_placeholders
from simulator.latent.zoo import Zoo
from simulator.network.metrics import WindowTally
from simulator.network.world import RunCounts, World, require_network
from simulator.results import write_json, write_yaml

NONDETERMINISTIC_KEYS = ("wall_s", "bound_wall_s")


class ConservationError(RuntimeError):
    """Tasks were lost or invented: arrived ≠ delivered + dropped + pending."""


def check_conservation(counts: RunCounts) -> None:
    """Raise :class:`ConservationError` unless ``arrived = delivered + dropped + pending``."""
    if counts.arrived != counts.delivered + counts.dropped + counts.pending:
        raise ConservationError(f"task conservation violated: arrived {counts.arrived} != delivered "
                                f"{counts.delivered} + dropped {counts.dropped} + pending {counts.pending}")


def comparable_summary(summary: dict) -> dict:
    """The summary without the fields that legitimately change between identical runs (``wall_s``)."""
    return {k: v for k, v in summary.items() if k not in NONDETERMINISTIC_KEYS}


def run_scenario(scenario: Scenario, out_dir: Path, log: Callable[[str], None] = lambda _m: None,
                 zoo: Zoo | None = None, split: Callable[[Scenario, Zoo, Path, Callable], dict] | None = None) -> dict:
    """Build (or reuse) the zoo, simulate the network, and publish the results directory.

    Parameters
    ----------
    scenario : Scenario
    out_dir : Path
        Results directory: missing, empty or a relcomm results folder (replaced as a whole);
        anything else is refused before work (:mod:`simulator.folders`).
    log : callable
        Progress messages.
    zoo : Zoo, optional
        A zoo built for the same latent sections (tests and benchmarks share one).
    split : callable, optional
        ``split(scenario, zoo, folder, log) → summary`` simulates the network in place of one
        :class:`World` (:func:`simulator.experiment.split.split_runner`: independent cells in
        parallel); only for controllers without an offline bound.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    require_network(scenario)  # before the zoo is trained or the folder claimed
    with claim(out_dir, "run") as target:  # checked and locked before any work
        zoo = zoo if zoo is not None else Zoo.build(scenario, log=log)
        # A dynamic controller plans with Ĝ; World checks the accuracy target against it
        # (ScenarioError at simulation.accuracy_target when no option reaches it).
        calibration = calibration_rows(zoo, log) if scenario.controller.needs_calibration else None
        scenario, placeholders = resolve_placeholders(scenario, zoo, calibration, run_scenario, log)
        world = World(scenario, zoo, calibration) if split is None else None
        with target.staging() as staging:
            write_yaml(staging / "scenario.yaml", {**scenario_to_dict(scenario), "version": __version__})
            log(f"simulating {scenario.simulation.slots} slots of {scenario.simulation.slot_s} s: "
                f"{len(scenario.transmitters)} transmitters, {len(scenario.receivers)} receivers")
            t0 = time.perf_counter()
            summary = world.run(staging, log) if split is None else split(scenario, zoo, staging, log)
            wall = time.perf_counter() - t0
            counts = summary.pop("counts")
            check_conservation(counts)
            summary["wall_s"] = wall
            if placeholders is not None:
                summary["placeholders"] = placeholders
            summary.update(controller_entries(world, log) if world is not None else no_bound_entries(scenario))
            settled = judge(summary["settled"], scenario)
            # one verdict per constraint: the settled window's, with the tolerances (module docstring)
            summary["delay_met"] = settled.pop("delay_met", None)
            summary["accuracy_met"] = settled.pop("accuracy_met", None)
            summary["settled"] = settled
            per_task = summary.get("energy_bound_per_task_j")
            summary["energy_bound_j"] = None if per_task is None else per_task * settled["tasks_arrived"]
            write_json(staging / "summary.json", summary)
            if scenario.outputs.plots:
                plots.draw_run_plots(staging, log)
    return summary


def settled_metrics(tasks_csv: Path, start_s: float, include_server_energy: bool = True) -> dict:
    """The ``settled`` figures (module docstring) of another window, read back from ``tasks.csv``.

    The world tallies the run's own window as it records tasks; this re-reads a finished run
    to judge it on a different window or energy accounting (the trade-off driver's ``static``).
    """
    window = WindowTally(start_s, include_server_energy)
    with open(tasks_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            delivered = row["status"] == "delivered"
            window.add(float(row["arrival_s"]), row["status"], float(row["delay_s"]) if delivered else None,
                       row["correct"] == "1", float(row["energy_tx_per_task_j"]),
                       float(row["energy_cpu_per_task_j"]), float(row["energy_server_per_task_j"]))
    return window.as_dict()


def judge(window: dict, scenario: Scenario) -> dict:
    """Add the limits and the ``delay_met`` / ``accuracy_met`` verdicts to a settled window (module docstring)."""
    sim = scenario.simulation
    out = dict(window)
    if sim.delay_target_s is not None:
        out["delay_limit_s"] = sim.delay_target_s * (1.0 + sim.delay_tolerance)
        out["delay_met"] = window["mean_delay_s"] is not None and window["mean_delay_s"] <= out["delay_limit_s"]
    if sim.accuracy_target is not None:
        out["accuracy_limit"] = sim.accuracy_target - sim.accuracy_tolerance
        out["accuracy_met"] = window["accuracy"] is not None and window["accuracy"] >= out["accuracy_limit"]
    return out


def no_bound_entries(scenario: Scenario) -> dict:
    """The offline-bound entries of a controller without a bound (``static``): nulls and the reason."""
    return {"energy_bound_per_slot_j": None, "energy_bound_per_task_j": None, "optimality_gap": None,
            "optimality_gap_reason": f"no bound for controller.kind {scenario.controller.kind}",
            "inefficiency_gap": None}


def controller_entries(world: World, log: Callable[[str], None] = lambda _m: None) -> dict:
    """The offline-bound entries of ``summary.json`` (module docstring); None for ``static``."""
    report = getattr(world.controller, "report", None)
    if report is None:
        return no_bound_entries(world.scenario)
    log("offline lower bound on the realized channel trace")
    t0 = time.perf_counter()
    out = report()
    out["bound_wall_s"] = time.perf_counter() - t0
    if out["energy_bound_per_task_j"] is not None:
        gap = (f"gap {out['optimality_gap']:.3%}" if out["optimality_gap"] is not None
               else f"no optimality gap ({out['optimality_gap_reason']})")
        ineff = "" if out["inefficiency_gap"] is None else f", inefficiency {out['inefficiency_gap']:.3%}"
        log(f"bound {out['energy_bound_per_task_j']:.4g} J per task, {gap}{ineff} "
            f"({out['offline_bound']['status']}) in {out['bound_wall_s']:.1f} s")
    return out


__all__ = ["run_scenario", "controller_entries", "no_bound_entries", "settled_metrics", "judge", "check_conservation", "comparable_summary", "ConservationError",
           "NONDETERMINISTIC_KEYS"]
