"""Sweep throughput with 1, 2 and 4 workers, on a dask LocalCluster and on the local process pool.

Run ``python benchmarks/bench_sweep.py [--runs N] [--slots S] [--workers 1 2 4] [--repeats R]
[--executors dask local]``; prints a markdown table. ``run()`` returns the rows (keys ``name``,
``value``, ``unit``, ``note``) for ``benchmarks/run_all.py``. Needs the encoders and the K = 64
head of ``scenarios/quickstart.yaml`` in ``$RELCOMM_HOME`` (``relcomm run
scenarios/quickstart.yaml`` fills the cache; otherwise the first sweep trains them, outside the
timed part).

What is measured
----------------
One sweep — ``scenarios/quickstart.yaml`` with ``simulation.slots = S``, ``controller.bits`` in
{4, 8} and N/2 seed replicates — run in full by each executor and worker count, each time into
a fresh output folder (so no run is skipped and every configuration does the same runs). R
rounds each run :func:`~simulator.experiment.sweep.run_sweep` once per configuration,
interleaved, so that a change in the machine's load hits every configuration alike; the best
round of each is kept. Before it is timed, a configuration's executor is started and warmed (a
``LocalCluster`` of single-threaded worker processes, or a process pool, each worker having
loaded the zoo as its first run would), and it is closed right after, so no idle cluster
shares the cores with the one being measured. **runs/s** is N / ``SweepReport.run_s``, the time from the first
dispatch to the last completion: the runs themselves (simulation, CSVs, the run's plots,
publication) and the scheduling between them. The parent's preparation (loading the zoo once),
the tables and the trade-off plot are the same for every configuration and are reported once as
"sweep overhead". The **speed-up** is runs/s with w workers over runs/s with the first count of
the same executor, measured in the same invocation (each round's ratio is in the note). Other
processes on the same cores lower it, so each round also measures the machine's ceiling at that
moment: how much faster two CPU-bound processes run at once than one after the other (2.0 on
two idle cores); the load average before and after is in the notes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import markdown_table

from simulator.config import parse_scenario, read_yaml
from simulator.experiment.executors import DaskExecutor, LocalExecutor
from simulator.experiment.sweep import expand, prepare_shared, run_sweep, warm_worker

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "quickstart.yaml"


def _spin(n: int) -> float:
    """Seconds of a pure-Python loop of n steps (no memory traffic, no I/O)."""
    t0 = time.perf_counter()
    acc = 0
    for i in range(n):
        acc += i * i
    return time.perf_counter() - t0


def cpu_scaling(pool, n: int = 10_000_000) -> float:
    """How much faster the machine does 2 CPU-bound loops at once than one after the other, now.

    The ceiling of the 2-worker speed-up at this moment (2.0 on two idle cores); measured next
    to each round, so that a low speed-up can be told apart from a busy machine.
    """
    before = _spin(n)
    t0 = time.perf_counter()
    pool.map(_spin, [n, n])
    both = time.perf_counter() - t0
    return (before + _spin(n)) / both  # the serial time: one loop before and one after


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def sweep_data(runs: int, slots: int) -> dict:
    """The benchmark sweep: quickstart, ``slots`` slots, bits {4, 8} × runs/2 replicates."""
    data, _ = read_yaml(SCENARIO)
    data = copy.deepcopy(data)
    data["simulation"]["slots"] = slots
    data["sweep"] = {"grid": {"controller.bits": [4, 8]}, "seeds": max(1, runs // 2)}
    return data


def _warm_pool(pool: LocalExecutor, scenario: dict, workers: int) -> set[int]:
    """Start and warm every process of a local pool: ``workers`` warm jobs at once, one per process."""
    futures = [pool._pool.submit(warm_worker, scenario) for _ in range(workers)]
    return {f.result() for f in futures}


def run(runs: int = 12, slots: int = 1000, worker_counts: tuple[int, ...] = (1, 2, 4), repeats: int = 3,
        executors: tuple[str, ...] = ("dask", "local")) -> list[dict]:
    data = sweep_data(runs, slots)
    plan = expand(data)
    cores = len(os.sched_getaffinity(0))
    load_before = _load()
    t0 = time.perf_counter()
    prepare_shared([parse_scenario(plan[0].scenario)], log=lambda m: print(m, file=sys.stderr))
    configs = [(kind, w) for kind in executors for w in worker_counts]
    rates: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    overhead, ceiling = [], []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp, contextlib.ExitStack() as stack:
        spinners = stack.enter_context(multiprocessing.get_context("spawn").Pool(2))
        spinners.map(_spin, [1, 1])  # the children import this module once, outside the measurement
        # Rounds interleave the configurations, so a change in the machine's load hits all of them.
        # Each configuration is started and warmed just before it is timed, and closed after: idle
        # clusters left running (their heartbeats) would tax the ones being measured.
        for r in range(repeats):
            ceiling.append(cpu_scaling(spinners))
            print(f"round {r}: 2 CPU-bound processes run {ceiling[-1]:.2f}× as fast as one", file=sys.stderr)
            for kind, w in configs:
                with (DaskExecutor(workers=w) if kind == "dask" else LocalExecutor(workers=w)) as pool:
                    if kind == "dask":
                        pids = set(pool.client.run(warm_worker, plan[0].scenario).values())
                    else:
                        pids = _warm_pool(pool, plan[0].scenario, w)
                    assert len(pids) == w, pids
                    report = run_sweep(data, Path(tmp) / f"round{r}-{kind}{w}", executor=pool)
                assert report.completed == len(plan) and report.failed == 0, report.line()
                rates[kind, w].append(len(plan) / report.run_s)
                overhead.append(report.wall_s - report.run_s)
                print(f"round {r}, {pool.description}: {len(plan)} runs in {report.run_s:.2f} s "
                      f"({rates[kind, w][-1]:.2f} runs/s); load {_load()}", file=sys.stderr)
    load_after = _load()
    best = {c: max(v) for c, v in rates.items()}
    note = (f"{len(plan)} runs of quickstart.yaml, {slots} slots, best of {repeats} interleaved rounds; "
            f"1 thread per worker; {cores} cores, load avg (1/5 min) {load_before} before, {load_after} after")
    names = {"dask": "dask LocalCluster", "local": "local process pool"}
    rows = []
    for kind in executors:
        base = worker_counts[0]
        rows += [{"name": f"sweep throughput, {names[kind]}, {w} worker{'s' * (w != 1)}", "value": best[kind, w],
                  "unit": "runs/s", "note": "same runs"} for w in worker_counts]
        rows += [{"name": f"sweep speed-up, {names[kind]}, {w} vs {base} worker{'s' * (base != 1)}",
                  "value": best[kind, w] / best[kind, base], "unit": "×",
                  "note": "runs/s ratio, same invocation; rounds: " + ", ".join(
                      f"{a / b:.2f}" for a, b in zip(rates[kind, w], rates[kind, base]))}
                 for w in worker_counts[1:]]
    rows[0]["note"] = note
    rows.append({"name": "machine ceiling: 2 CPU-bound processes vs 1", "value": statistics.median(ceiling),
                 "unit": "×", "note": f"median of the {repeats} rounds (2.0 on two idle cores; others' load lowers it): "
                 + ", ".join(f"{c:.2f}" for c in ceiling)})
    rows.append({"name": "sweep overhead (prepare, tables, plot)", "value": min(overhead), "unit": "s",
                 "note": f"per sweep, any executor; whole benchmark {time.perf_counter() - t0:.0f} s"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12, help="runs per sweep (even)")
    parser.add_argument("--slots", type=int, default=1000, help="slots per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts; the first is the base")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best of each count is kept")
    parser.add_argument("--executors", nargs="+", default=["dask", "local"], choices=["dask", "local"])
    args = parser.parse_args()
    print(markdown_table(run(args.runs, args.slots, tuple(args.workers), args.repeats, tuple(args.executors))))


if __name__ == "__main__":
    main()
