"""The energy–backlog trade-off of the drift-plus-penalty controller: a V sweep, the baselines, a plot.

A small driver until the sweep engine exists: one scenario whose ``controller`` is ``lyapunov``
is run once per value of ``controller.v_sweep`` (V overridden, each run its own results
directory), then once per baseline (same scenario, ``controller.kind`` replaced), and every run
is summarized in ``tradeoff.csv``; :func:`plot_tradeoff` draws ``tradeoff.png`` from that file
alone.

Settled statistics. Every figure in ``tradeoff.csv`` is taken over the *settled window*: the
tasks that arrive from slot ``controller.settle_slots`` on (read from ``tasks.csv``) and, for
the controller's own figures and the offline bound, the same slots (``summary.json``). A run
meets the constraints when, over that window, its realized mean delay is at most
``delay_target_s`` × (1 + ``DELAY_TOLERANCE``) and its realized accuracy (test split) at least
``accuracy_target`` − ``ACCURACY_TOLERANCE``.

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
transient shrinks. ``--no-placeholder`` starts every run from ``initial_delay_queue`` and
``initial_accuracy_queue`` as given.

Run ``python -m simulator.experiment.tradeoff SCENARIO.yaml [--out DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from simulator.config import LyapunovControllerConfig, Scenario, load_scenario, parse_scenario, scenario_to_dict
from simulator.errors import ScenarioError
from simulator.experiment.calibration import calibration_rows
from simulator.experiment.runner import run_scenario
from simulator.latent.zoo import Zoo
from simulator.network.controller import AccuracyTable
from simulator.results import read_csv, write_csv

DELAY_TOLERANCE = 0.05
"""Relative slack on the delay target when judging a run (issue 5: delay ≤ target + 5 %)."""
ACCURACY_TOLERANCE = 0.01
"""Absolute slack on the accuracy target when judging a run (issue 5: accuracy ≥ target − 0.01)."""
BASELINES = ("static", "max-accuracy", "min-energy", "greedy")

COLUMNS = ("kind", "v", "tasks", "delivered", "dropped", "mean_delay_s", "accuracy", "energy_per_task_j",
           "decision_energy_j", "decision_delay_s", "decision_accuracy", "delay_queue_mean", "accuracy_queue_mean",
           "energy_lower_bound_j", "optimality_gap", "realized_gap", "delay_target_s", "accuracy_target",
           "accuracy_margin", "delay_met", "accuracy_met", "constraints_met", "run_dir")


def settled_metrics(run_dir: Path, start_s: float, include_server_energy: bool) -> dict[str, Any]:
    """Realized statistics of the tasks that arrived at or after ``start_s`` (from ``tasks.csv``).

    Returns tasks, delivered, dropped, mean delay (s) and accuracy of the delivered ones, and
    the energy per arrived task (J; server part only when ``include_server_energy``).
    """
    delays, correct, energy = [], [], 0.0
    tasks = dropped = 0
    with open(Path(run_dir) / "tasks.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if float(row["arrival_s"]) < start_s:
                continue
            tasks += 1
            energy += float(row["energy_tx_j"]) + float(row["energy_cpu_j"])
            if include_server_energy:
                energy += float(row["energy_server_j"])
            if row["status"] == "delivered":
                delays.append(float(row["delay_s"]))
                correct.append(row["correct"] == "1")
            elif row["status"] == "dropped":
                dropped += 1
    return {"tasks": tasks, "delivered": len(delays), "dropped": dropped,
            "mean_delay_s": float(np.mean(delays)) if delays else None,
            "accuracy": float(np.mean(correct)) if correct else None,
            "energy_per_task_j": energy / tasks if tasks else None}


def _with_controller(scenario: Scenario, controller: dict[str, Any], seed: int | None = None) -> Scenario:
    data = scenario_to_dict(scenario)
    data["controller"] = controller
    if seed is not None:
        data["seed"] = seed
    return parse_scenario(data)


def _option_fields(cfg: LyapunovControllerConfig) -> dict[str, Any]:
    """The option-set settings every dynamic kind shares (what the baselines are run with)."""
    skip = {"kind", "v", "mu", "nu", "initial_delay_queue", "initial_accuracy_queue", "v_sweep"}
    return {k: v for k, v in cfg.model_dump(mode="json").items() if k not in skip}


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


def pilot_multipliers(scenario: Scenario, zoo: Zoo, out_dir: Path,
                      log: Callable[[str], None]) -> tuple[float, float]:
    """(λ̂, η̂): the offline bound's multipliers on a pilot run with seed + 1 (module docstring).

    Averaged over transmitters (the initial queues are one number each).
    """
    pilot = _with_controller(scenario, scenario_to_dict(scenario)["controller"], seed=scenario.seed + 1)
    log(f"pilot run (seed {pilot.seed}) for the place-holder backlogs")
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
    m = settled_metrics(run_dir, window.settle_slots * sim.slot_s, window.include_server_energy)
    stats = summary.get("controller_stats") or {}
    bound = summary.get("energy_lower_bound_j")
    delay_ok = (m["mean_delay_s"] is not None and sim.delay_target_s is not None
                and m["mean_delay_s"] <= sim.delay_target_s * (1.0 + DELAY_TOLERANCE))
    acc_ok = (m["accuracy"] is not None and sim.accuracy_target is not None
              and m["accuracy"] >= sim.accuracy_target - ACCURACY_TOLERANCE)
    n_tx = len(scenario.transmitters)
    realized_gap = (m["energy_per_task_j"] * n_tx / bound - 1.0
                    if bound and m["energy_per_task_j"] is not None else None)
    return {"kind": kind, "v": v, **m, "decision_energy_j": stats.get("decision_energy_j"),
            "decision_delay_s": stats.get("decision_delay_s"), "decision_accuracy": stats.get("decision_accuracy"),
            "delay_queue_mean": stats.get("delay_queue_mean"), "accuracy_queue_mean": stats.get("accuracy_queue_mean"),
            "energy_lower_bound_j": bound, "optimality_gap": summary.get("optimality_gap"),
            "realized_gap": realized_gap, "delay_target_s": sim.delay_target_s,
            "accuracy_target": sim.accuracy_target, "accuracy_margin": window.accuracy_margin,
            "delay_met": delay_ok, "accuracy_met": acc_ok,
            "constraints_met": delay_ok and acc_ok, "run_dir": str(run_dir)}


def run_tradeoff(scenario: Scenario, out_dir: Path, *, baselines: Sequence[str] = BASELINES,
                 placeholder: bool = True, zoo: Zoo | None = None,
                 log: Callable[[str], None] = lambda _m: None) -> list[dict[str, Any]]:
    """Run the V sweep and the baselines; write ``tradeoff.csv`` and ``tradeoff.png`` into ``out_dir``.

    Returns the rows of ``tradeoff.csv`` (module docstring for every column).
    """
    cfg = scenario.controller
    if not isinstance(cfg, LyapunovControllerConfig):
        raise ScenarioError("the trade-off driver needs controller.kind lyapunov", path="controller.kind")
    if not cfg.v_sweep:
        raise ScenarioError("list the V values to run", path="controller.v_sweep")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    zoo = zoo if zoo is not None else Zoo.build(scenario, log=log)
    lam, eta = pilot_multipliers(scenario, zoo, out_dir, log) if placeholder else (None, None)
    if placeholder:
        log(f"place-holder backlogs: Z0 = {lam:.4g}·V, Y0 = {eta:.4g}·V")
    base = scenario_to_dict(scenario)["controller"]
    rows = []
    for v in cfg.v_sweep:
        ctl = {**base, "v": v}
        if placeholder:
            ctl.update(initial_delay_queue=lam * v, initial_accuracy_queue=eta * v)
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
    plot_tradeoff(out_dir / "tradeoff.csv", out_dir / "tradeoff.png")
    return rows


def _describe(row: dict[str, Any], wall_s: float) -> str:
    name = f"V = {row['v']:g}" if row["v"] is not None else row["kind"]
    gap = "" if row["optimality_gap"] is None else f", gap {row['optimality_gap']:+.2%}"
    return (f"{name}: {row['energy_per_task_j']:.4g} J/task, delay {row['mean_delay_s'] * 1e3:.3f} ms, "
            f"accuracy {row['accuracy']:.4f}{gap}, constraints {'met' if row['constraints_met'] else 'NOT met'} "
            f"({wall_s:.0f} s)")


def _float(cell: str) -> float:
    return math.nan if cell in ("", "None") else float(cell)


def plot_tradeoff(csv_path: Path, png_path: Path) -> Path:
    """Draw the trade-off figure from ``tradeoff.csv`` alone (six panels; V on log axes).

    Top: energy per task against V with the offline bound; its excess over the bound; the mean
    virtual queues with a ∝ V guide. Bottom: the baselines' energy next to the controller's
    (hatched when a run misses the targets); the realized mean delay and accuracy against their
    targets and tolerances. Every controller point is labelled with its V.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_csv(csv_path)
    dyn = [r for r in rows if r["kind"] == "lyapunov"]
    base = [r for r in rows if r["kind"] != "lyapunov"]
    v = np.array([_float(r["v"]) for r in dyn])

    def col(rs, key):
        return np.array([_float(r.get(key, "")) for r in rs])

    def label_v(ax, x, y, dy=6):
        for xi, yi in zip(x, y):
            if np.isfinite(yi):
                ax.annotate(f"{xi:g}", (xi, yi), textcoords="offset points", xytext=(0, dy), fontsize=7,
                            ha="center")

    def finish(ax, title, ylabel):
        ax.set(xlabel="V (energy weight of the drift-plus-penalty objective)", ylabel=ylabel, title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)

    fig, axes = plt.subplots(2, 3, figsize=(16, 9), constrained_layout=True)
    energy = col(dyn, "energy_per_task_j") * 1e6
    bound = col(dyn, "energy_lower_bound_j") * 1e6
    ax = axes[0, 0]
    ax.semilogx(v, energy, "o-", label="Lyapunov, realized energy per task")
    ax.semilogx(v, col(dyn, "decision_energy_j") * 1e6, "x--", label="Lyapunov, decisions (predicted)")
    ax.semilogx(v, bound, "k:", lw=2, label="offline lower bound")
    label_v(ax, v, energy)
    finish(ax, "Energy per task and the offline bound", "energy per task (µJ)")

    ax = axes[0, 1]
    excess = (energy / bound - 1.0) * 100
    ax.loglog(v, excess, "o-", label="realized energy / bound − 1")
    ax.loglog(v, col(dyn, "optimality_gap") * 100, "x--", label="decisions / bound − 1 (optimality_gap)")
    ok = np.isfinite(excess) & (excess > 0)
    if ok.any():
        i = int(np.argmax(ok))
        ax.loglog(v, excess[i] * v[i] / v, "k:", label="∝ 1/V")
    ax.set_ylim(bottom=max(np.nanmin(np.where(ok, excess, np.nan)) / 3, 1e-2) if ok.any() else None)
    label_v(ax, v, excess)
    finish(ax, "Excess energy over the bound, against a ∝ 1/V guide", "excess over the bound (%)")

    ax = axes[0, 2]
    z = col(dyn, "delay_queue_mean")
    ax.loglog(v, z, "o-", label="delay queue Z (mean)")
    ax.loglog(v, col(dyn, "accuracy_queue_mean"), "s-", label="accuracy queue Y (mean)")
    ok = np.isfinite(z) & (z > 0)
    if ok.any():
        ax.loglog(v, np.nanmedian(z[ok] / v[ok]) * v, "k:", label="∝ V")
    label_v(ax, v, z)
    finish(ax, "Virtual-queue backlog grows as O(V)", "mean backlog (objective units)")

    ax = axes[1, 0]
    met_dyn = np.array([r["constraints_met"] == "True" for r in dyn], dtype=bool)
    best = int(np.nanargmin(np.where(met_dyn, energy, np.nan))) if met_dyn.any() else None
    names, values, met = [], [], []
    if best is not None:
        names.append(f"Lyapunov\nV={v[best]:g}")
        values.append(energy[best])
        met.append(dyn[best]["constraints_met"] == "True")
    for r in base:
        names.append(r["kind"].replace("-", "-\n"))
        values.append(_float(r["energy_per_task_j"]) * 1e6)
        met.append(r["constraints_met"] == "True")
    bars = ax.bar(names, values, color=["C0" if i == 0 and best is not None else "grey" for i in range(len(names))])
    for b, m, val in zip(bars, met, values):
        if not m:
            b.set_hatch("//")
            b.set_alpha(0.5)
        ax.annotate(f"{val:.3g}", (b.get_x() + b.get_width() / 2, val), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=8)
    if dyn:
        ax.axhline(np.nanmin(bound), color="k", ls=":", label="offline lower bound")
    ax.bar([0], [0], color="white", hatch="//", edgecolor="grey", label="misses a target")
    ax.set_yscale("log")
    ax.set(ylabel="energy per task (µJ)", title="Against the baselines (same scenario and channel)")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", which="both", alpha=0.3)

    ax = axes[1, 1]
    target = _float(dyn[0]["delay_target_s"]) * 1e3 if dyn else math.nan
    ax.semilogx(v, col(dyn, "mean_delay_s") * 1e3, "o-", label="realized mean delay")
    ax.semilogx(v, col(dyn, "decision_delay_s") * 1e3, "x--", label="decisions (predicted)")
    ax.axhline(target, color="k", ls=":", label="target")
    ax.axhline(target * (1 + DELAY_TOLERANCE), color="r", ls=":", lw=0.8, label="target + 5 %")
    finish(ax, "Mean delay (settled window)", "mean delay (ms)")

    ax = axes[1, 2]
    target = _float(dyn[0]["accuracy_target"]) if dyn else math.nan
    margin = _float(dyn[0].get("accuracy_margin", "")) if dyn else math.nan
    ax.semilogx(v, col(dyn, "accuracy"), "o-", label="realized accuracy (test split)")
    ax.semilogx(v, col(dyn, "decision_accuracy"), "x--", label="calibrated Ĝ of the decisions (validation)")
    ax.axhline(target, color="k", ls=":", label="target")
    if np.isfinite(margin) and margin > 0:
        ax.axhline(target + margin, color="C1", ls=":", lw=0.8, label="target + margin (what Ĝ aims at)")
    ax.axhline(target - ACCURACY_TOLERANCE, color="r", ls=":", lw=0.8, label="target − 0.01")
    finish(ax, "Accuracy (settled window)", "accuracy")
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.experiment.tradeoff", description=__doc__.split("\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default results/<name>-tradeoff")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=BASELINES)
    parser.add_argument("--no-placeholder", action="store_true", help="start every run from the configured queues")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        scenario = load_scenario(args.scenario)
        out = args.out or Path("results") / f"{scenario.name}-tradeoff"
        rows = run_tradeoff(scenario, out, baselines=args.baselines, placeholder=not args.no_placeholder, log=log)
    except ScenarioError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    met = [r for r in rows if r["kind"] == "lyapunov" and r["constraints_met"]]
    print(f"wrote {out}/tradeoff.csv and tradeoff.png: {len(rows)} runs, "
          f"{len(met)}/{len(scenario.controller.v_sweep)} values of V meet the targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["run_tradeoff", "plot_tradeoff", "settled_metrics", "pilot_multipliers", "static_choice",
           "DELAY_TOLERANCE", "ACCURACY_TOLERANCE", "BASELINES", "COLUMNS"]
