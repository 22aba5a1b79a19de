"""Network-simulation speed and memory: tasks per second, ratio to the inference floor, peak memory.

Run ``python benchmarks/bench_network.py [--repeats N] [--quick]``; prints a markdown table.
``run()`` returns the rows (keys ``name``, ``value``, ``unit``, ``note``) for
``benchmarks/run_all.py``. Needs the encoders of ``scenarios/mismatch.yaml`` (trained on first
use and cached; ``relcomm stitch scenarios/mismatch.yaml`` or ``make demo`` fills the cache).

What is measured
----------------
- **simulated tasks/s**: tasks arrived / wall time of ``World.run`` (the whole event loop:
  channel states, controller, SimPy events, outcome batches on cached latents, CSV streaming),
  median of ``repeats`` runs after a warm-up run. Building the world (link tables, loading heads)
  is not included; it is reported separately.
- **inference floor**: the same tasks' samples (as images) pushed through the same encoders
  (a real forward pass per task, batched by encoder, 8192 at a time), projected onto the same
  anchors and classified by the same receiver heads — one batched pass, no simulation; median of
  ``repeats``. The ratio is ``sim wall / floor``. Note the asymmetry, in the floor's favour of
  honesty: the simulation never runs the encoders (their latents of every test sample are
  precomputed and cached once per encoder, DESIGN §3), so the ratio compares simulating the
  network against merely computing the tasks' inferences.
- **memory**: a single-device run with light traffic (0.01 tasks/slot) of 10⁵ and of 10⁶ slots,
  each in a fresh subprocess: the largest resident set size sampled during ``World.run`` (every
  10 % of the slots) minus the RSS when the run starts, and the growth of the process's peak RSS
  (``ru_maxrss``) over the run. Memory that does not grow with the run's length gives the same
  (small) figures for both lengths. (tracemalloc was tried and slows the event loop ~7×.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from common import markdown_table, median_s

from simulator.config import Scenario, load_scenario
from simulator.latent.zoo import Zoo
from simulator.network.world import World

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def _simulate(scenario: Scenario, zoo: Zoo, folder: Path) -> tuple[dict, float, float]:
    """(summary, build seconds, run seconds) of one fresh world."""
    t0 = time.perf_counter()
    world = World(scenario, zoo)
    t1 = time.perf_counter()
    summary = world.run(folder)
    return summary, t1 - t0, time.perf_counter() - t1


def _floor(zoo: Zoo, tasks_csv: Path, repeats: int) -> tuple[float, int]:
    """Median seconds of one batched inference pass over the tasks of a run, and the task count."""
    import csv

    by_tx: dict[str, list[int]] = defaultdict(list)
    heads: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    with open(tasks_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["tx_encoder"] and r["rx_encoder"]:
                by_tx[r["tx_encoder"]].append(int(r["sample"]))
                heads[(r["tx_encoder"], r["rx_encoder"], int(r["anchors"]))].append(len(by_tx[r["tx_encoder"]]) - 1)
    images = torch.from_numpy(zoo.dataset.x_test)
    idx = {enc: torch.tensor(s) for enc, s in by_tx.items()}
    rows = {key: torch.tensor(v) for key, v in heads.items()}

    @torch.no_grad()
    def one_pass() -> None:
        latents = {}
        for enc, samples in idx.items():
            model = zoo.encoders[enc].encoder.module  # the image families trained here
            latents[enc] = torch.cat([model(images[samples[i:i + 8192]]) for i in range(0, len(samples), 8192)])
        for (enc, rx, k), r in rows.items():
            rel = zoo.projector(enc, k)(latents[enc][r])
            zoo.relative_head(rx, k)(rel).argmax(1)

    return median_s(one_pass, repeats), sum(len(s) for s in by_tx.values())


def _speed_rows(name: str, repeats: int) -> list[dict]:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    zoo = Zoo.build(scenario, log=lambda m: None)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats + 1):  # the first is a warm-up
            folder = Path(tmp) / str(i)
            folder.mkdir()
            runs.append(_simulate(scenario, zoo, folder))
        floor_s, n_floor = _floor(zoo, Path(tmp) / "0" / "tasks.csv", repeats)
    timed = sorted(runs[1:], key=lambda r: r[2])
    summary, build_s, sim_s = timed[len(timed) // 2]
    tasks = summary["tasks_arrived"]
    note = (f"{scenario.simulation.slots} slots, {len(scenario.transmitters)} tx, {tasks} tasks; "
            f"median of {repeats} `World.run`, torch threads={torch.get_num_threads()}, "
            f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return [
        dict(name=f"{name}: simulated tasks/s", value=tasks / sim_s, unit="tasks/s", note=note),
        dict(name=f"{name}: sim wall time", value=sim_s, unit="s",
             note=f"world build (not included: links, cached heads) {build_s * 1e3:.0f} ms"),
        dict(name=f"{name}: inference floor", value=floor_s, unit="s",
             note=f"{n_floor} tasks: encoder forward from images + projection + head, one batched pass"),
        dict(name=f"{name}: sim / inference floor", value=sim_s / floor_s, unit="x",
             note="target <= 3 for multi-device"),
    ]


def _rss_b() -> int:
    """Current resident set size of this process (bytes), from /proc."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def _memory_child(slots: int) -> None:
    """Subprocess body: one light-traffic quickstart run of ``slots`` slots; prints JSON."""
    base = load_scenario(SCENARIOS / "quickstart.yaml")
    tx = base.transmitters[0]
    scenario = base.model_copy(update={
        "simulation": base.simulation.model_copy(update={"slots": slots}),
        "transmitters": (tx.model_copy(update={"traffic": tx.traffic.model_copy(update={"rate_per_slot": 0.01})}),)})
    zoo = Zoo.build(scenario, log=lambda m: None)
    world = World(scenario, zoo)
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        rss0, maxrss0 = _rss_b(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        summary = world.run(Path(tmp), log=lambda _m: samples.append(_rss_b()))  # called every 10 % of slots
        wall = time.perf_counter() - t0
        samples.append(_rss_b())
        maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    print(json.dumps({"slots": slots, "tasks": summary["tasks_arrived"], "rss_start_b": rss0,
                      "rss_growth_b": max(samples) - rss0, "rss_first_to_last_b": samples[-1] - samples[0],
                      "maxrss_growth_b": (maxrss1 - maxrss0) * 1024, "wall_s": wall, "files_b": size}))


def _memory_rows(slot_counts: tuple[int, ...]) -> list[dict]:
    rows = []
    for slots in slot_counts:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(slots)], check=True,
                             capture_output=True, text=True, cwd=ROOT)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        mib = 2**20
        note = (f"{m['tasks']} tasks in {m['wall_s']:.1f} s; RSS at start {m['rss_start_b'] / mib:.0f} MiB, "
                f"10 %-of-run sample to last {m['rss_first_to_last_b'] / mib:+.1f} MiB, max-RSS growth "
                f"{m['maxrss_growth_b'] / mib:.1f} MiB; CSV written {m['files_b'] / mib:.0f} MiB")
        rows.append(dict(name=f"memory growth during a {slots:.0e}-slot single-device run", unit="MiB",
                         value=m["rss_growth_b"] / mib, note=note))
    return rows


def run(repeats: int = 3, quick: bool = False) -> list[dict]:
    """All network benchmarks; ``quick`` skips the 10⁶-slot memory run.

    Parameters
    ----------
    repeats : int, default 3
        Timed runs per measurement (median reported), ``>= 1``.
    quick : bool, default False

    Returns
    -------
    list of dict
        Keys ``name``, ``value`` (float), ``unit``, ``note``.
    """
    rows = _speed_rows("quickstart", repeats) + _speed_rows("multi-device", repeats)
    return rows + _memory_rows((100_000,) if quick else (100_000, 1_000_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the 10^6-slot memory run")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child)
        return
    print(markdown_table(run(args.repeats, args.quick)))


if __name__ == "__main__":
    main()
