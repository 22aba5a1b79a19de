"""Network scale: peak memory and simulated tasks/s against the number of devices, and what holds the memory.

Run ``python benchmarks/bench_scale.py [--devices 20 200 2000] [--repeats 3] [--slots 100]``;
prints a markdown table. ``--baseline DIR`` measures another checkout too (e.g. ``git worktree add
/tmp/base COMMIT``): this script's ``--child`` with ``PYTHONPATH=DIR`` (that checkout's
``simulator``), on the same scenario files, alternating with this tree run by run, and adds the
after/before ratios.
``--plot PATH`` draws peak RSS and tasks/s against the device count (log–log; both trees with
``--baseline``); ``--save PATH`` keeps the measured points as JSON and ``--replot PATH`` redraws
from such a file. ``--tracemalloc 50 200`` instead compares what the world allocates at
two device counts, grouped by traceback, and prints the largest per-device growth.
``run()`` returns the rows (keys ``name``, ``value``, ``unit``, ``note``). Needs the encoders of
``scenarios/mismatch.yaml`` (trained on first use and cached).

Scenarios
---------
Made from ``scenarios/multi-device.yaml`` (:func:`scale_scenario`): its faults removed, its static
controller kept; device ``i`` copies the file's transmitter ``i mod 8`` (encoders, link, radio,
queue, CPU) with Poisson traffic of 2 tasks per slot; one server per ten devices, server ``j``
copying the file's receiver ``j mod 2``; ``channel.bandwidth_hz`` is 1 MHz per device of a server
(the file's 4 MHz for four devices), so links keep the file's bandwidth whatever the size. Each
scenario is written as JSON (the same data a YAML file holds: 10,000 devices exceed the 1 MiB that
``relcomm`` accepts in a scenario file) into a temporary folder that this script creates and
removes, and validated by :func:`simulator.config.parse_scenario` in the child.

What is measured
----------------
Every run is a fresh subprocess (``--child``), so one size's memory does not leak into the next:

- **peak RSS**: the child's ``VmHWM`` (from ``/proc/self/status``) after ``World.run``: the whole
  process, interpreter, torch and the cached latents included;
- **simulated tasks/s**: tasks arrived / wall time of ``World.run`` (the world's build excluded);
- **tasks per CPU-second**: tasks arrived / the process's CPU time (``time.process_time``) over
  ``World.run``: less sensitive than wall time to other processes on a loaded machine;
- **CPU time per task**, split into the event loop (arrivals, encoding, attempts, the servers'
  CPUs) and the per-slot steps (slot opening, slot closing, semantic outcomes, ``tasks.csv`` rows),
  timed around the world's methods (:func:`_time_parts`): which part grows with the size;
- **memory slope**: least-squares slope of peak RSS against the device count over the sizes run —
  the memory each added device costs.

Peak RSS and tasks/s are medians of ``repeats`` runs per size (one run for sizes above
``--single-above``, 2,000 by default: they take minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from common import markdown_table

from simulator.config import parse_scenario, read_yaml
from simulator.latent.zoo import Zoo
from simulator.network.world import World

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "scenarios" / "multi-device.yaml"
DEVICES_PER_SERVER = 10
BANDWIDTH_PER_DEVICE_HZ = 1e6
RATE_PER_SLOT = 2.0
KIB, MIB = 2**10, 2**20
RATIO_TARGET = ((20, 2000), 0.9)
"""Issue 14's throughput target: tasks/s at 2,000 devices at least 0.9 times the rate at 20."""


def scale_scenario(devices: int, slots: int = 100, seed: int = 0) -> dict:
    """Raw scenario data (as read from YAML) of ``devices`` transmitters made from multi-device.yaml."""
    data, _ = read_yaml(BASE)
    tx_templates, rx_templates = data["transmitters"], data["receivers"]
    n_rx = math.ceil(devices / DEVICES_PER_SERVER)
    receivers = [{**rx_templates[j % len(rx_templates)], "id": f"edge-{j}"} for j in range(n_rx)]
    transmitters = [{**tx_templates[i % len(tx_templates)], "id": f"dev-{i}", "receiver": f"edge-{i // DEVICES_PER_SERVER}",
                     "traffic": {"kind": "poisson", "rate_per_slot": RATE_PER_SLOT}} for i in range(devices)]
    data = {k: v for k, v in data.items() if k != "faults"}
    data.update(name=f"scale-{devices}", seed=seed, receivers=receivers, transmitters=transmitters,
                simulation={**data["simulation"], "slots": slots})
    data["channel"] = {**data["channel"], "bandwidth_hz": BANDWIDTH_PER_DEVICE_HZ * DEVICES_PER_SERVER}
    return data


def _peak_rss_b() -> int:
    """This process's peak resident set size (``VmHWM``), bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KIB
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child(path: Path, trace_frames: int) -> None:
    """Subprocess body: build and run one scenario file; prints one JSON line.

    With ``trace_frames > 0`` tracemalloc runs from before the world is built, and the line holds
    the allocations alive at the run's first progress message (10 % of the slots), grouped by
    traceback of ``trace_frames`` frames.
    """
    scenario = parse_scenario(json.loads(path.read_text()), source=str(path))
    zoo = Zoo.build(scenario, log=lambda m: None)
    stats: list = []
    if trace_frames:
        tracemalloc.start(trace_frames)

    def snapshot(_message: str) -> None:
        if trace_frames and not stats:
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            stats.extend(snap.statistics("traceback"))

    t0 = time.perf_counter()
    world = World(scenario, zoo)
    parts = _time_parts(world)
    t1, c1 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as out:
        summary = world.run(Path(out), log=snapshot)
    cpu, wall = time.process_time() - c1, time.perf_counter() - t1
    groups = [{"size_b": s.size, "count": s.count,
               "where": [f"{f.filename.replace(str(ROOT) + '/', '')}:{f.lineno}" for f in s.traceback]}
              for s in stats]
    print(json.dumps({"devices": len(scenario.transmitters), "tasks": summary["tasks_arrived"], "run_s": wall,
                      "cpu_s": cpu, "build_s": t1 - t0, "peak_rss_b": _peak_rss_b(), "parts_cpu_s": parts,
                      "traced": groups}))


PARTS = {"events": "event loop (arrivals, encoding, attempts, server CPUs)", "open": "slot opening (decision)",
         "close": "slot closing (tallies, slots.csv)", "resolve": "semantic outcomes", "rows": "tasks.csv rows"}
"""Where a run's CPU time goes (:func:`_time_parts`): the per-slot steps, and the event loop as the rest."""


def _time_parts(world: World) -> dict[str, float]:
    """CPU seconds the run spends in each of ``world``'s per-slot steps, filled in as it runs.

    Wraps the world's slot opening and closing, its flush of delivered tasks, and its resolver's
    ``resolve`` (inside the flush) with ``time.process_time``: four calls per slot at most, a few
    microseconds against milliseconds (:func:`_parts_per_task` makes the parts of :data:`PARTS`).
    """
    spent = {"open": 0.0, "close": 0.0, "flush": 0.0, "resolve": 0.0}

    def timed(owner, name: str, key: str) -> None:
        step = getattr(owner, name)

        def run_timed(*args):
            t = time.process_time()
            try:
                return step(*args)
            finally:
                spent[key] += time.process_time() - t
        setattr(owner, name, run_timed)

    timed(world, "_open_slot", "open")
    timed(world, "_close_slot", "close")
    timed(world, "_flush", "flush")
    timed(world.resolver, "resolve", "resolve")
    return spent


def _parts_per_task(run: dict) -> dict[str, float]:
    """A child's CPU time per part (:data:`PARTS`), microseconds per task.

    ``rows`` is the flush less the outcomes in it; ``events``, the event loop, all of ``World.run``'s
    CPU time outside the timed steps.
    """
    p = run["parts_cpu_s"]
    seconds = {"events": run["cpu_s"] - p["open"] - p["close"] - p["flush"], "open": p["open"], "close": p["close"],
               "resolve": p["resolve"], "rows": p["flush"] - p["resolve"]}
    return {k: v / run["tasks"] * 1e6 for k, v in seconds.items()}


def _run_child(devices: int, slots: int, folder: Path, trace_frames: int = 0, tree: Path = ROOT) -> dict:
    """One fresh subprocess run of this script's child with ``tree``'s ``simulator`` (on ``PYTHONPATH``)."""
    path = folder / f"scale-{devices}.json"
    if not path.exists():
        path.write_text(json.dumps(scale_scenario(devices, slots)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    script = Path(__file__).resolve()
    out = subprocess.run([sys.executable, str(script), "--child", str(path), "--frames", str(trace_frames)],
                         check=True, capture_output=True, text=True, cwd=tree, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _point(n: int, runs: list[dict]) -> dict:
    rates = [r["tasks"] / r["run_s"] for r in runs]
    cpu_rates = [r["tasks"] / r["cpu_s"] for r in runs]
    return {"devices": n, "runs": len(runs), "tasks": runs[0]["tasks"],
            "peak_rss_b": statistics.median(r["peak_rss_b"] for r in runs),
            "tasks_per_s": statistics.median(rates), "all_tasks_per_s": rates,
            "tasks_per_cpu_s": statistics.median(cpu_rates), "all_tasks_per_cpu_s": cpu_rates,
            "build_s": statistics.median(r["build_s"] for r in runs),
            "us_per_task": {k: statistics.median(_parts_per_task(r)[k] for r in runs) for k in PARTS}}


def measure(devices: tuple[int, ...], slots: int = 100, repeats: int = 3, single_above: int = 2000,
            trees: tuple[Path, ...] = (ROOT,)) -> list[list[dict]]:
    """Per tree, one dict per size: devices, tasks, peak RSS (bytes) and tasks/s, medians over the runs.

    The trees' runs alternate (this tree, the next, …, then the next repeat), on the same scenario
    files, so a change in the machine's load falls on all of them alike.
    """
    out: list[list[dict]] = [[] for _ in trees]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in devices:
            runs: list[list[dict]] = [[] for _ in trees]
            for _ in range(repeats if n <= single_above else 1):
                for k, tree in enumerate(trees):
                    runs[k].append(_run_child(n, slots, Path(tmp), tree=tree))
            for k, tree in enumerate(trees):
                out[k].append(_point(n, runs[k]))
                print(f"{tree}: {n} devices: {out[k][-1]['peak_rss_b'] / MIB:.0f} MiB, "
                      f"{out[k][-1]['tasks_per_s']:.0f} tasks/s", file=sys.stderr, flush=True)
    return out


def memory_slope_b(points: list[dict]) -> float:
    """Least-squares slope of peak RSS (bytes) against the device count: bytes per added device."""
    x = np.array([p["devices"] for p in points], dtype=np.float64)
    y = np.array([p["peak_rss_b"] for p in points], dtype=np.float64)
    return float(np.polyfit(x, y, 1)[0])


def rows(points: list[dict], slots: int) -> list[dict]:
    note_load = f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    out = []
    for p in points:
        runs = ", ".join(f"{r:.0f}" for r in p["all_tasks_per_s"])
        note = (f"{slots} slots, {p['tasks']} tasks; median of {p['runs']} subprocess runs ({runs} tasks/s); "
                f"world build {p['build_s']:.1f} s; {note_load}")
        out.append(dict(name=f"scale[{p['devices']} devices]: peak RSS", value=p["peak_rss_b"] / MIB, unit="MiB",
                        note="whole process (interpreter, torch, cached latents) at the end of the run"))
        out.append(dict(name=f"scale[{p['devices']} devices]: simulated tasks/s", value=p["tasks_per_s"],
                        unit="tasks/s", note=note))
        if "tasks_per_cpu_s" in p:  # (points saved before CPU time was measured lack it)
            cpu = ", ".join(f"{r:.0f}" for r in p["all_tasks_per_cpu_s"])
            out.append(dict(name=f"scale[{p['devices']} devices]: simulated tasks per CPU-second",
                            value=p["tasks_per_cpu_s"], unit="tasks/s",
                            note=f"median of {p['runs']} ({cpu}); CPU time of the process over World.run"))
        if "us_per_task" in p:  # (nor the parts)
            parts = p["us_per_task"]
            out.append(dict(name=f"scale[{p['devices']} devices]: CPU time per task", value=sum(parts.values()),
                            unit="µs", note="; ".join(f"{PARTS[k]} {v:.1f}" for k, v in parts.items())
                            + f" (medians of {p['runs']} per part)"))
    if len(points) >= 2:
        out.append(dict(name="scale: peak RSS per added device", value=memory_slope_b(points) / KIB, unit="KiB",
                        note=f"least-squares slope over {', '.join(str(p['devices']) for p in points)} devices"))
        first = points[0]
        for p in points[1:]:
            note = f"target >= {RATIO_TARGET[1]}" if (first["devices"], p["devices"]) == RATIO_TARGET[0] else ""
            out.append(dict(name=f"scale: tasks/s at {p['devices']} / at {first['devices']} devices",
                            value=p["tasks_per_s"] / first["tasks_per_s"], unit="x", note=note))
            if "tasks_per_cpu_s" in first:
                out.append(dict(name=f"scale: tasks per CPU-second at {p['devices']} / at {first['devices']} devices",
                                value=p["tasks_per_cpu_s"] / first["tasks_per_cpu_s"], unit="x", note=note))
    return out


def comparison_rows(after: list[dict], before: list[dict], label: str) -> list[dict]:
    """After/before ratios of tasks/s and peak RSS per size (both measured alternately in one run)."""
    out = []
    for a, b in zip(after, before):
        out.append(dict(name=f"scale[{a['devices']} devices]: tasks/s after / before", unit="x",
                        value=a["tasks_per_s"] / b["tasks_per_s"],
                        note=f"before ({label}): {b['tasks_per_s']:.0f} tasks/s, {b['peak_rss_b'] / MIB:.0f} MiB "
                             f"({', '.join(f'{r:.0f}' for r in b['all_tasks_per_s'])})"))
        out.append(dict(name=f"scale[{a['devices']} devices]: tasks per CPU-second after / before", unit="x",
                        value=a["tasks_per_cpu_s"] / b["tasks_per_cpu_s"],
                        note=f"before ({label}): {b['tasks_per_cpu_s']:.0f} tasks per CPU-second "
                             f"({', '.join(f'{r:.0f}' for r in b['all_tasks_per_cpu_s'])})"))
    if len(before) >= 2:
        out.append(dict(name=f"scale (before): tasks/s at {before[-1]['devices']} / at {before[0]['devices']} devices",
                        value=before[-1]["tasks_per_s"] / before[0]["tasks_per_s"], unit="x", note=label))
        out.append(dict(name=f"scale (before): tasks per CPU-second at {before[-1]['devices']} / at "
                             f"{before[0]['devices']} devices",
                        value=before[-1]["tasks_per_cpu_s"] / before[0]["tasks_per_cpu_s"], unit="x", note=label))
    return out


def plot(series: list[tuple[str, list[dict]]], path: Path) -> Path:
    """Peak RSS (MiB) and simulated tasks/s against the device count, log–log, one line per series."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_mem, ax_rate) = plt.subplots(1, 2, figsize=(10, 4.4), layout="constrained")
    # series that coincide (the memory of two trees) stay visible: hollow markers and dashes from the second on
    for k, ((label, points), marker) in enumerate(zip(series, "os^D")):
        n = [p["devices"] for p in points]
        style = dict(marker=marker, label=label, linestyle=("-", "--", "-.", ":")[k % 4],
                     markersize=9 - 2 * min(k, 2), markerfacecolor="none" if k else None)
        ax_mem.plot(n, [p["peak_rss_b"] / MIB for p in points], **style)
        ax_rate.plot(n, [p["tasks_per_s"] for p in points], **style)
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    for ax, what in ((ax_mem, "peak RSS (MiB)"), (ax_rate, "simulated tasks per second (tasks/s)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)  # the values span less than a decade or two: label 2…9 × 10^k too
        ax.set_xlabel("devices (transmitters; one server per ten)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(*ax_rate.get_legend_handles_labels(), loc="outside lower center", ncol=min(3, len(series)))
    ax_mem.set_title("Memory: whole process (VmHWM)")
    ax_rate.set_title("Throughput: tasks arrived / World.run wall time")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def trace_growth(small: int, large: int, slots: int = 100, frames: int = 6, top: int = 12) -> list[tuple]:
    """Tracebacks whose live allocations grow most between ``small`` and ``large`` devices.

    Returns (bytes per added device, allocation count at ``large``, traceback) tuples, largest first.
    """
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        a, b = (_run_child(n, slots, Path(tmp), frames) for n in (small, large))
    sizes = {tuple(g["where"]): g["size_b"] for g in a["traced"]}
    growth = [((g["size_b"] - sizes.get(tuple(g["where"]), 0)) / (large - small), g["count"], g["where"])
              for g in b["traced"]]
    total = (sum(g["size_b"] for g in b["traced"]) - sum(sizes.values())) / (large - small)
    print(f"traced memory per added device, {small} → {large} devices: {total / KIB:.1f} KiB", file=sys.stderr)
    return sorted(growth, key=lambda g: -g[0])[:top]


def run(devices: tuple[int, ...] = (20, 200, 2000), slots: int = 100, repeats: int = 3) -> list[dict]:
    """Scale rows for ``benchmarks/run_all.py``-style tables (see the module docstring)."""
    return rows(measure(devices, slots, repeats)[0], slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[20, 200, 2000])
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single-above", type=int, default=2000, help="one run (not repeats) above this size")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to measure alternately")
    parser.add_argument("--plot", type=Path, default=None, help="write the log-log figure here (PNG)")
    parser.add_argument("--save", type=Path, default=None, help="keep the measured points here (JSON)")
    parser.add_argument("--replot", type=Path, default=None, help="redraw --plot from a --save file, measure nothing")
    parser.add_argument("--tracemalloc", type=int, nargs=2, metavar=("SMALL", "LARGE"), default=None)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.frames)
    elif args.tracemalloc:
        for per_device, count, where in trace_growth(*args.tracemalloc, slots=args.slots):
            print(f"{per_device / KIB:9.1f} KiB/device  {count:8d} blocks  " + " <- ".join(reversed(where)))
    elif args.replot:
        saved = json.loads(args.replot.read_text())
        print(plot([(s["label"], s["points"]) for s in saved], args.plot or args.replot.with_suffix(".png")))
    else:
        trees = (ROOT,) + ((args.baseline.resolve(),) if args.baseline else ())
        measured = measure(tuple(args.devices), args.slots, args.repeats, args.single_above, trees)
        table = rows(measured[0], args.slots)
        series = [("this tree", measured[0])]
        if args.baseline:
            label = _describe(args.baseline)
            table += comparison_rows(measured[0], measured[1], label)
            series = [(f"after ({_describe(ROOT)})", measured[0]), (f"before ({label})", measured[1])]
        print(markdown_table(table))
        if args.save:
            args.save.write_text(json.dumps([{"label": lb, "points": pts} for lb, pts in series], indent=1))
        if args.plot:
            print(f"figure: {plot(series, args.plot)}", file=sys.stderr)


def _describe(tree: Path) -> str:
    """The checkout's commit (short hash), with '+changes' when its work tree differs from it."""
    def git(*cmd: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *cmd], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or str(tree)
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


if __name__ == "__main__":
    main()
