"""One network split into independent cells, run in separate processes or Dask workers, merged exactly.

A **cell** is a receiver (an edge server) with the transmitters attached to it. Cells share no
state in the world when every per-device quantity is per cell: a device's random streams are
named by its id in the seed tree (``network/traffic/<id>``, ``…/packets/<id>``,
``…/channel/fading/<id>``, ``…/channel/shadowing/<id>``: :mod:`simulator.rng`), never by its
position, so a device draws the same numbers whatever else runs beside it; bandwidth and the
server CPU are shared only inside a cell; faults are per agent. What couples cells
(:func:`coupling`):

* a controller that plans with Ĝ (every kind but ``static``): its offline bound and
  ``controller_stats`` are computed over all devices at once and cannot be merged exactly;
* ``channel.mode`` digital or analog with devices whose packets are not coded: the bit errors
  and noise of every device's payloads come from one stream (``network/payload``), consumed in
  the order batches of tasks are resolved across the whole network.

A coupled scenario runs in one process (the caller prints the reason). An independent one is cut
into ``workers`` **parts** (whole cells, balanced by device count); each part runs as a
sub-scenario (:func:`part_scenario`: the same scenario with only its agents) in its own
process, writes its CSVs plus the merge keys (:data:`~simulator.network.world.PART_FILES`), and
returns its tallies (:class:`~simulator.network.world.RunTallies`).

Merging gives the single process's files byte for byte and its summary float for float:

* ``slots.csv``: each slot's rows taken from the parts in the scenario's transmitter order
  (each row depends on its own device only);
* ``tasks.csv``: the whole network records a drop when it happens, and delivered tasks in
  batches, at the close of a slot once :data:`~simulator.network.world.OUTCOME_BATCH` deliveries
  have gathered, then the tasks still pending (transmitters in order, then receivers). The merge
  rebuilds those batch points from every part's delivery slots, then orders drops, and each
  batch's deliveries, by event time, and the pending tasks by owner. Task ids are the whole
  network's arrival ranks (arrivals ordered by event time);
* summary: per-agent tallies put back in the scenario's order and summed as the single process
  sums them (:func:`~simulator.network.world.summarize`); the delay histogram's counts added (the
  p95 is exact: integer counts); the settled window re-read from the merged ``tasks.csv``
  (:func:`~simulator.experiment.runner.settled_metrics`, the single process's order; CSV floats
  round-trip exactly).

Event time orders events of different cells exactly unless two cells have an event at the same
instant (the single process then orders them by its event queue's insertion order, which the parts
do not see): with continuous random arrivals and fading this does not happen, but deterministic
traffic or deadlines that expire at slot boundaries can make it. The merge detects such a tie
(:class:`SplitTie`) and the network is then simulated again in one process, with a line saying so.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from simulator.config import Scenario, parse_scenario, scenario_to_dict
from simulator.errors import ScenarioError
from simulator.experiment.executors import open_executor
from simulator.experiment.runner import settled_metrics
from simulator.latent.zoo import Zoo
from simulator.network.world import OUTCOME_BATCH, PART_FILES, RunTallies, World, summarize
from simulator.results import atomic_open

Log = Callable[[str], None]


class SplitTie(RuntimeError):
    """Two cells had an event at the same instant: their order in one process is not known to the merge."""


def coupling(scenario: Scenario) -> str | None:
    """Why the scenario's network cannot be split into independent cells (None when it can)."""
    n_cells = len({t.receiver for t in scenario.transmitters})
    if n_cells < 2:
        return "its transmitters are attached to one receiver: a single cell"
    ctl = scenario.controller
    if ctl.needs_calibration:
        return (f"controller.kind {ctl.kind} plans with Ĝ, and its offline bound and controller statistics are "
                "computed over all devices together")
    ch = scenario.channel
    if ch.mode != "ideal" and any(t.radio.packet_errors != "fbl" for t in scenario.transmitters):
        return (f"channel.mode {ch.mode}: every device's payload errors are drawn from one shared random stream, "
                "in the order the whole network resolves its tasks")
    return None


@dataclass(frozen=True)
class Part:
    """Whole cells run together: indices into the scenario's transmitter and receiver lists (ascending)."""

    transmitters: tuple[int, ...]
    receivers: tuple[int, ...]


def plan_parts(scenario: Scenario, n_parts: int) -> list[Part]:
    """Cells dealt to at most ``n_parts`` parts, biggest first to the part with fewest devices.

    A receiver without transmitters joins the first part. Every part has at least one transmitter.
    """
    rx_index = {r.id: j for j, r in enumerate(scenario.receivers)}
    cells: dict[int, list[int]] = {}
    for i, t in enumerate(scenario.transmitters):
        cells.setdefault(rx_index[t.receiver], []).append(i)
    n = max(1, min(n_parts, len(cells)))
    load = [0] * n
    members: list[list[int]] = [[] for _ in range(n)]
    for j in sorted(cells, key=lambda j: (-len(cells[j]), j)):
        k = min(range(n), key=lambda k: (load[k], k))
        members[k].append(j)
        load[k] += len(cells[j])
    members[0] += [j for j in range(len(scenario.receivers)) if j not in cells]
    return [Part(tuple(sorted(i for j in rxs for i in cells.get(j, ()))), tuple(sorted(rxs))) for rxs in members]


def part_scenario(scenario: Scenario, part: Part) -> Scenario:
    """The scenario with only the part's agents (and their faults); every other section unchanged."""
    txs = tuple(scenario.transmitters[i] for i in part.transmitters)
    rxs = tuple(scenario.receivers[j] for j in part.receivers)
    ids = {a.id for a in (*txs, *rxs)}
    f = scenario.faults
    faults = f.model_copy(update={"link_outages": tuple(x for x in f.link_outages if x.transmitter in ids),
                                  "device_off": tuple(x for x in f.device_off if x.transmitter in ids),
                                  "server_slowdowns": tuple(x for x in f.server_slowdowns if x.receiver in ids)})
    return scenario.model_copy(update={"transmitters": txs, "receivers": rxs, "faults": faults})


def run_part(scenario_data: dict, folder: str) -> RunTallies:
    """Simulate one part (a worker's job): its CSVs and merge keys in ``folder``, its tallies returned."""
    scenario = parse_scenario(scenario_data)
    world = World(scenario, Zoo.build(scenario), part=True)
    summary = world.run(Path(folder))
    return world.tallies(summary["counts"].pending)


# ------------------------------------------------------------------------------------------ merging


def _check_tie(times: Sequence[float], sources: Sequence[int], what: str) -> None:
    """Raise :class:`SplitTie` when two neighbours in time order are equal and come from different parts."""
    for a in range(len(times) - 1):
        if times[a] == times[a + 1] and sources[a] != sources[a + 1]:
            raise SplitTie(f"two cells {what} at the same instant t = {times[a]!r} s")


def global_task_ids(folders: Sequence[Path]) -> list[np.ndarray]:
    """Per part, the whole network's id of each of its tasks (by local id): ranks of the arrival event times."""
    times = [np.fromfile(f / PART_FILES[1], dtype="<f8") for f in folders]
    flat = np.concatenate(times)
    source = np.repeat(np.arange(len(times)), [len(t) for t in times])
    order = np.argsort(flat, kind="stable")  # stable: a part's own order on its ties
    ts, ss = flat[order], source[order]
    tie = np.flatnonzero((ts[1:] == ts[:-1]) & (ss[1:] != ss[:-1]))
    if len(tie):
        raise SplitTie(f"tasks of two cells arrived at the same instant t = {ts[tie[0]]!r} s")
    ids = np.empty(len(flat), dtype=np.int64)
    ids[order] = np.arange(len(flat))
    return np.split(ids, np.cumsum([len(t) for t in times])[:-1])


class _Records:
    """One part's ``tasks.csv`` rows of one kind with their merge keys, read in the part's order."""

    def __init__(self, folder: Path, kind: str):
        self._tasks = open(folder / "tasks.csv", newline="")
        self._keys = open(folder / PART_FILES[0], newline="")
        next(self._tasks), next(self._keys)
        self._kind = kind
        self.head: tuple | None = None
        self._advance()

    def _advance(self) -> None:
        for line, key in zip(self._tasks, self._keys):
            kind, slot, time_s, owner = key.rstrip("\n").split(",")
            if kind == self._kind:
                self.head = (int(slot) if slot else -1, float(time_s) if time_s else 0.0,
                             int(owner) if owner else -1, line)
                return
        self.head = None
        self._tasks.close()
        self._keys.close()

    def take_until(self, last_slot: float) -> list[tuple]:
        """Every remaining record whose slot is at most ``last_slot``."""
        out = []
        while self.head is not None and self.head[0] <= last_slot:
            out.append(self.head)
            self._advance()
        return out


def _batch_slots(folders: Sequence[Path], n_slots: int) -> list[int]:
    """Slots at whose close the whole network resolves a batch of deliveries (and records it)."""
    delivered = np.zeros(n_slots, dtype=np.int64)
    for f in folders:
        with open(f / PART_FILES[0], newline="") as fh:
            next(fh)
            slots = [int(k.split(",", 2)[1]) for k in fh if k.startswith("v,")]
        delivered += np.bincount(np.asarray(slots, dtype=np.int64), minlength=n_slots)
    out, waiting = [], 0
    for s, n in enumerate(delivered.tolist()):
        waiting += n
        if waiting >= OUTCOME_BATCH:
            out.append(s)
            waiting = 0
    return out


def _task_lines(folders: Sequence[Path], parts: Sequence[Part], ids: Sequence[np.ndarray], n_slots: int,
                n_tx: int) -> Iterator[str]:
    """The merged ``tasks.csv`` rows, in the single process's order, with the whole network's task ids."""
    def relabel(p: int, line: str) -> str:
        local, rest = line.split(",", 1)
        return f"{ids[p][int(local)]},{rest}"

    def by_time(streams: list[_Records], last_slot: float, what: str) -> Iterator[str]:
        rows = [(rec[1], p, rec[3]) for p, s in enumerate(streams) for rec in s.take_until(last_slot)]
        rows.sort(key=lambda r: r[0])  # stable: a part's own order among its equal times
        _check_tie([r[0] for r in rows], [r[1] for r in rows], what)
        return (relabel(p, line) for _, p, line in rows)

    drops = [_Records(f, "d") for f in folders]
    deliveries = [_Records(f, "v") for f in folders]
    for last in [*_batch_slots(folders, n_slots), float("inf")]:
        yield from by_time(drops, last, "dropped a task")
        yield from by_time(deliveries, last, "delivered a task")
    pending = []
    for p, (f, part) in enumerate(zip(folders, parts)):
        owners = (*part.transmitters, *(n_tx + j for j in part.receivers))
        pending += [(owners[rec[2]], p, rec[3]) for rec in _Records(f, "p").take_until(float("inf"))]
    pending.sort(key=lambda r: r[0])
    yield from (relabel(p, line) for _, p, line in pending)


def _slot_lines(folders: Sequence[Path], parts: Sequence[Part], n_slots: int) -> Iterator[str]:
    """The merged ``slots.csv`` rows: each slot's rows in the scenario's transmitter order."""
    files = [open(f / "slots.csv", newline="") for f in folders]
    try:
        headers = {next(fh) for fh in files}
        if len(headers) != 1:
            raise RuntimeError("the parts' slots.csv headers differ")
        yield headers.pop()
        pick = sorted((i, p, c) for p, part in enumerate(parts) for c, i in enumerate(part.transmitters))
        sizes = [len(part.transmitters) for part in parts]
        for _ in range(n_slots):
            rows = [[next(fh) for _ in range(n)] for fh, n in zip(files, sizes)]
            yield from (rows[p][c] for _, p, c in pick)
    finally:
        for fh in files:
            fh.close()


def merge_parts(scenario: Scenario, parts: Sequence[Part], folders: Sequence[Path], tallies: Sequence[RunTallies],
                out: Path) -> dict:
    """Write the merged ``tasks.csv`` and ``slots.csv`` into ``out`` and return the summary (module docstring).

    Raises :class:`SplitTie` (before writing anything) when the parts' task arrivals tie, or
    while writing ``tasks.csv`` when drops or deliveries of two cells tie.
    """
    sim, n_tx = scenario.simulation, len(scenario.transmitters)
    ids = global_task_ids(folders)
    with open(folders[0] / "tasks.csv", newline="") as fh:
        header = next(fh)
    for name, lines in (("tasks.csv", (header, *_task_lines(folders, parts, ids, sim.slots, n_tx))),
                        ("slots.csv", _slot_lines(folders, parts, sim.slots))):
        with atomic_open(out / name, "w", newline="", buffering=1 << 20) as fh:
            fh.writelines(lines)

    where_tx = {i: (p, c) for p, part in enumerate(parts) for c, i in enumerate(part.transmitters)}
    where_rx = {j: (p, c) for p, part in enumerate(parts) for c, j in enumerate(part.receivers)}
    txs = [where_tx[i] for i in range(n_tx)]
    rxs = [where_rx[j] for j in range(len(scenario.receivers))]
    ctl = scenario.controller
    merged = RunTallies(
        [tallies[p].tx_tally[c] for p, c in txs], [tallies[p].tx_energy[c] for p, c in txs],
        [tallies[p].tx_entries[c] for p, c in txs], [tallies[p].rx_energy[c] for p, c in rxs],
        [tallies[p].rx_entries[c] for p, c in rxs], sum(t.delay_counts for t in tallies),
        settled_metrics(out / "tasks.csv", getattr(ctl, "settle_slots", 0) * sim.slot_s,
                        getattr(ctl, "include_server_energy", True)),
        sum(t.n_pending for t in tallies))
    return summarize(scenario, merged)


# ------------------------------------------------------------------------------------------ running


def split_runner(executor: str, workers: int | None = None, scheduler: str | None = None
                 ) -> Callable[[Scenario, Zoo, Path, Log], dict]:
    """The ``split`` step of :func:`~simulator.experiment.runner.run_scenario` on ``executor``.

    The flags are checked now (one-line :class:`~simulator.errors.ScenarioError` naming the flag).
    The step cuts the network into as many parts as the executor has workers, runs them, and
    merges them into the results folder; on a :class:`SplitTie` it simulates the network again in
    this process.
    """
    open_executor(executor, workers, scheduler)  # checks --workers and --scheduler before any work

    def split(scenario: Scenario, zoo: Zoo, folder: Path, log: Log) -> dict:
        reason = coupling(scenario)
        if reason is not None:  # run_scenario's callers check first; kept for direct callers
            raise ScenarioError(f"cannot split the network: {reason}", path="--executor")
        work = folder / ".parts"
        try:
            with open_executor(executor, workers, scheduler) as ex:
                parts = plan_parts(scenario, ex.workers)
                folders = [work / f"part-{p}" for p in range(len(parts))]
                log(f"{len(parts)} parts of whole cells ({', '.join(str(len(p.transmitters)) for p in parts)} "
                    f"transmitters) on the {ex.description}")
                jobs = [(f"part-{p}", run_part, (scenario_to_dict(part_scenario(scenario, part)), str(f)))
                        for p, (part, f) in enumerate(zip(parts, folders))]
                t0 = time.perf_counter()
                done = dict(ex.run(jobs))
                t_parts = time.perf_counter() - t0
            failed = [(k, v) for k, v in sorted(done.items()) if isinstance(v, BaseException)]
            if failed:
                raise RuntimeError(f"{failed[0][0]} of the split network failed: {failed[0][1]!r}")
            try:
                t0 = time.perf_counter()
                summary = merge_parts(scenario, parts, folders, [done[f"part-{p}"] for p in range(len(parts))], folder)
                log(f"parts simulated in {t_parts:.1f} s (each: its zoo, world and event loop), merged in "
                    f"{time.perf_counter() - t0:.1f} s")
                return summary
            except SplitTie as tie:
                log(f"{tie}: their order in one process is not known to the merge; simulating in one process")
                for name in ("tasks.csv", "slots.csv"):
                    (folder / name).unlink(missing_ok=True)
                return World(scenario, zoo).run(folder, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return split


__all__ = ["coupling", "Part", "plan_parts", "part_scenario", "run_part", "merge_parts", "global_task_ids",
           "split_runner", "SplitTie"]
