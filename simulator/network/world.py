"""The SimPy world: agents, links, faults and a controller wired together, run slot by slot with metrics on disk.

Event loop
----------
One ``simpy.Environment`` holds

- the **slot clock**: at ``t = s·slot_s`` it closes slot ``s − 1`` (writes its ``slots.csv`` rows,
  gives the controller its feedback, resolves a batch of task outcomes when enough are
  waiting) and opens slot ``s``: reads the link gains of the slot, builds the
  :class:`~simulator.control.interface.Observation`, asks the controller, and publishes the
  decision in :attr:`World.state` (plain Python lists, read by the agents). Its events run
  before any other event at the same instant (SimPy's URGENT priority), so an arrival at a
  slot boundary belongs to the new slot;
- one **arrival source** per transmitter (:class:`_Source`: an event per arrival, whose callback
  queues the task and which an idle device waits on; times drawn in chunks);
- the **service** of each transmitter (one event for the encoding and the first attempt when
  nothing can come between them, else one per encoding and per attempt:
  :mod:`~simulator.network.agents`): callbacks for a device without faults, a SimPy process
  for one with faults;
- one fluid **CPU** per receiver (an event per completion or re-plan).

Per-task events are light ones (:mod:`~simulator.network.schedule`: a callback on SimPy's queue,
scheduled exactly as a timeout), and :meth:`World.run` steps the queue in its own loop; the
order of events, ties included, is SimPy's (``World(..., fast=False)`` runs the general
processes and CPU plans, and writes the same bytes).

SimPy events carry timing only. What a receiver understands of a task (projection,
quantization, bit errors or noise, head) is computed in batches of at least
``OUTCOME_BATCH`` delivered tasks, grouped by (tx encoder, K, b, rx encoder), by
:class:`~simulator.network.semantic.OutcomeResolver` — never one Python call per sample.

Memory is bounded: rows stream to disk, tallies are per agent, delays go to a fixed-size
histogram, and at most ``OUTCOME_BATCH`` plus one slot's worth of finished tasks wait for their
outcome. Per device it is a few KiB whatever the run's length: its agent objects, generators and
tallies; its queued tasks; at most 4096 pending arrivals as arrays (12 bytes each, none past the
run's end); ``BLOCK_SLOTS`` slots of link gains (16 KiB; a correlated link holds its chunk,
:mod:`~simulator.network.links`); and its column of the ``slots.csv`` block (at most
``BLOCK_CELLS`` cells in all).
"""

from __future__ import annotations

import csv
import gc
import io
import math
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import simpy
from simpy.core import URGENT
from simpy.events import Event

from simulator import __version__
from simulator.channel import linear_to_db
from simulator.config import Scenario
from simulator.control import Feedback, NetworkSpec, Observation, anchor_options, build_controller
from simulator.errors import ScenarioError
from simulator.latent.zoo import Zoo
from simulator.network.agents import Receiver, Task, Transmitter
from simulator.network.energy import EnergyLedger, cycles, head_flops, idle_energy_j, projection_flops
from simulator.network.faults import FaultSchedule
from simulator.network.links import LinkTable
from simulator.network.metrics import (SLOT_COLUMNS, TASK_COLUMNS, VIRTUAL_QUEUE_COLUMNS, CsvStream, LogHistogram,
                                       TaskTally, WindowTally)
from simulator.network.schedule import after, call_after, run_while
from simulator.network.semantic import OutcomeResolver
from simulator.network.traffic import ArrivalStream
from simulator.rng import SeedTree

OUTCOME_BATCH = 2048
"""Delivered tasks waiting for their semantic outcome before a batch is resolved (at a slot end)."""

BLOCK_SLOTS = 1024
"""Slots whose ``slots.csv`` rows are kept in arrays and written (and their power computed) at once, at
most; also the period over which device energy is summed before it is added to the totals."""

BLOCK_CELLS = 1 << 16
"""Slot × transmitter cells of a block at most: a network of more than 64 devices writes fewer
slots at once, so a block costs at most ~9 MiB whatever the size (17 fields of 8 bytes)."""

_ARRIVAL_PIECE = 64
"""Arrivals of a source converted to Python numbers at once (about 4 KiB of Python objects)."""

PART_FILES = ("keys.csv", "arrivals.f64")
"""What a part of a split network writes beside its CSVs: a merge key per ``tasks.csv`` row, and the
event time at which each of its tasks arrived (float64, by task id)."""

ZOO_FIELDS = ("data", "encoders", "anchors", "relative", "heads")
_BLOCK_FIELDS = (("gain", np.float64), ("r_max", np.float64), ("link_up", bool), ("device_on", bool),
                 ("encoder", np.int64), ("anchors", np.int64), ("bits", np.int64), ("rate", np.float64),
                 ("cpu_hz", np.float64), ("share", np.float64), ("backlog", np.int64), ("arrivals", np.int64),
                 ("delivered", np.int64), ("dropped", np.int64), ("e_tx", np.float64), ("e_cpu", np.float64),
                 ("delay_sum", np.float64))


class _Table(dict):
    """A dict that computes a missing entry once with ``factory(key)``."""

    def __init__(self, factory: Callable[[Any], Any]):
        super().__init__()
        self._factory = factory

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self._factory(key)
        return value


class SlotState:
    """The decision in force during the current slot and what it costs: Python lists indexed by transmitter.

    Set when a decision changes (vectorized over devices): ``encoder`` (id), ``anchors``, ``bits``,
    ``rate_bps``, ``cpu_hz``, and ``device``: per device the tuple ``(encoder, K, b, f, R, W_tx,
    W_tx / f, κ f² W_tx, N, airtime)`` (``W_tx`` cycles at the encoder's mean FLOPs, payload ``N``
    bits, airtime ``N / R`` s; analog ``⌈K·spaces/2⌉ / B``). Set on the slot's first attempt
    (:meth:`World.link_state`): ``power_w`` (the power the rate needs, capped at ``P_max``),
    ``outage``, ``snr``, and ``link``: per device ``(outage, power, snr, e_tx, eps)`` with ``e_tx =
    p · airtime`` at the power used (``P_max`` in outage) and ``eps`` the finite-blocklength error
    probability of the slot's packet for a device that codes it
    (:func:`~simulator.channel.fbl_error_probability`, ``n = max(1, B · airtime)``; else 1).
    One tuple per device keeps what a task reads of its slot together in memory.
    ``next_slot`` is an event that fires when the next slot opens (devices held by the controller
    wait on it).
    """

    __slots__ = ("encoder", "anchors", "bits", "rate_bps", "power_w", "outage", "snr", "cpu_hz", "device", "link",
                 "next_slot")


@dataclass(frozen=True)
class RunCounts:
    """Task accounting at the end of a run (pending counted by walking every queue)."""

    arrived: int
    delivered: int
    dropped: int
    pending: int


def _sample_cycles(encoder, flops_per_cycle: float) -> np.ndarray | None:
    """Cycles each test sample costs beyond the encoder's mean (None when all cost the same)."""
    per_sample = encoder.flops_test
    if per_sample is None or len(per_sample) == 0 or (per_sample == per_sample[0]).all():
        return None
    return (per_sample.astype(np.float64) - encoder.flops) / flops_per_cycle


def require_network(scenario: Scenario) -> None:
    """Refuse a scenario with no transmitter or no receiver (a ScenarioError naming the empty list).

    Checked by :class:`World` and, before any training or folder is touched, by the runner.
    """
    if not scenario.transmitters or not scenario.receivers:
        raise ScenarioError("a network run needs at least one transmitter and one receiver",
                            path="transmitters" if not scenario.transmitters else "receivers")


class World:
    """A network scenario ready to run: ``World(scenario, zoo).run(folder)``.

    Parameters
    ----------
    scenario : Scenario
        Needs at least one transmitter and one receiver.
    zoo : Zoo
        Built from a scenario with the same ``data``, ``encoders``, ``anchors``, ``relative`` and
        ``heads`` sections (usually ``Zoo.build(scenario)``).
    calibration : sequence of StitchRow, optional
        The calibration table Ĝ (:func:`simulator.experiment.calibration.calibration_rows`),
        needed by every ``controller.kind`` but ``static``.
    part : bool
        This network is a part of a larger one split into independent cells
        (:mod:`simulator.experiment.split`): the run also writes what the merge needs to put its
        records in the whole network's order (``PART_FILES``), and device energy is summed slot
        after slot even for a single device (the whole network, with more than one device, sums
        its columns in that order; NumPy sums a lone column pairwise).
    fast : bool, default True
        Devices without faults serve by callbacks, FIFO and partitioned servers take their own
        paths, and delivered tasks' rows are formatted directly; False runs every device as a SimPy
        process, plans every server from its list of jobs in service and writes every row through
        the CSV writer. Both give the same events in the same order, so the same files, bit for
        bit (``tests/network/test_fastpath.py``); False is there to test the fast paths against.
    """

    def __init__(self, scenario: Scenario, zoo: Zoo, calibration: Sequence[Any] | None = None, part: bool = False,
                 fast: bool = True):
        require_network(scenario)
        for name in ZOO_FIELDS:
            if getattr(zoo.scenario, name) != getattr(scenario, name):
                raise ValueError(f"the zoo was built for a different {name!r} section")
        self.scenario = scenario
        self.zoo = zoo
        sim, ch = scenario.simulation, scenario.channel
        self.slot_s = sim.slot_s
        self.n_slots = sim.slots
        self.timeout_s = sim.task_timeout_s if sim.task_timeout_s is not None else math.inf
        self.mode = ch.mode
        self.header_bits = ch.header_bits
        self.n_spaces = len(scenario.relative.similarity)
        self.env = simpy.Environment()
        seeds = SeedTree(scenario.seed).child("network")

        txs, rxs = scenario.transmitters, scenario.receivers
        self.tx_ids = tuple(t.id for t in txs)
        self.rx_ids = tuple(r.id for r in rxs)
        self.encoder_ids = tuple(e.id for e in scenario.encoders)
        rx_index = {rid: j for j, rid in enumerate(self.rx_ids)}
        self.receiver_of = np.array([rx_index[t.receiver] for t in txs], dtype=np.int64)
        self.faults = FaultSchedule.from_config(scenario.faults, self.tx_ids, self.rx_ids)
        max_power = np.array([t.radio.max_power_w for t in txs])
        self.links = LinkTable(ch, txs, rxs, self.slot_s, seeds.child("channel"), max_power,
                               horizon_slots=self.n_slots)

        rel, heads = scenario.relative, scenario.heads
        n_classes = zoo.dataset.n_classes
        self.receivers = []
        for j, rcfg in enumerate(rxs):
            beta = rcfg.flops_per_cycle
            table = _Table(lambda k, beta=beta: cycles(head_flops(k, self.n_spaces, heads.hidden, n_classes), beta))
            devices = [i for i, t in enumerate(txs) if t.receiver == rcfg.id]
            rx = Receiver(self, j, rcfg, len(devices), table, self.faults.slowdown[j], fast=fast)
            rx.slot_of = {i: c for c, i in enumerate(devices)}
            self.receivers.append(rx)
        self.transmitters = []
        for i, tcfg in enumerate(txs):
            beta = tcfg.cpu.flops_per_cycle

            def tx_work(key, beta=beta):
                enc, k = key
                e = zoo.encoders[enc]
                return cycles(e.flops + projection_flops(e.latent_dim, k, rel.similarity, rel.center,
                                                         rel.standardize), beta)

            self.transmitters.append(Transmitter(
                self, i, tcfg, self.receivers[self.receiver_of[i]], self.links.bandwidth_hz[i], _Table(tx_work),
                self.faults.device_off[i], self.faults.link_outage[i], seeds.child("packets", tcfg.id).numpy(),
                sample_cycles={e: c for e in tcfg.encoders if (c := _sample_cycles(zoo.encoders[e], beta)) is not None},
                fast=fast))
        self._payload = _Table(lambda key: key[0] * self.n_spaces * key[1] + self.header_bits)

        enc_index = {e: n for n, e in enumerate(self.encoder_ids)}
        self.spec = NetworkSpec(
            self.tx_ids, self.rx_ids, self.encoder_ids, self.receiver_of,
            tuple(np.array([enc_index[e] for e in t.encoders], dtype=np.int64) for t in txs),
            np.array([t.cpu.f_min_hz for t in txs]), np.array([t.cpu.f_max_hz for t in txs]),
            np.array([t.cpu.kappa for t in txs]), max_power, self.links.bandwidth_hz.copy(),
            self.links.noise_psd_w_hz, self.links.gap, np.array([r.cpu_hz for r in rxs]), scenario.anchors.count,
            receiver_encoders=tuple(r.encoder for r in rxs),
            tx_cycles=lambda i, enc, k: self.transmitters[i].tx_cycles[(enc, k)],
            rx_cycles=lambda j, k: self.receivers[j].head_cycles[k], payload_bits=self.payload_bits)
        self.controller = build_controller(scenario, self.spec, calibration)
        self.resolver = OutcomeResolver(zoo, ch.mode, ch.modulation, seeds.child("payload").torch())
        self.n_test = len(self.resolver.labels)
        # Heads and projectors of every option are loaded (or trained) now, not inside the run.
        for tx in self.transmitters:
            for enc in tx.cfg.encoders:
                for k in anchor_options(scenario):
                    self.resolver.prepare(enc, tx.receiver.encoder, k)
        # The run ends at n_slots·slot_s; a slot of margin keeps an arrival whose timeout rounds to
        # just before the end (it would be simulated) in the stream.
        horizon_s = (self.n_slots + 1) * self.slot_s
        self._streams = [ArrivalStream(t.traffic, self.slot_s, self.n_test, seeds.child("traffic", t.id).numpy(),
                                       horizon_s) for t in txs]

        self.state = SlotState()
        self.state.next_slot = self.env.event()
        self.slot = -1
        self.slot_end_s = 0.0  # event time of the current slot's end (no slot open: nothing fits before it)
        self._kappa = np.array([t.cpu.kappa for t in txs])
        self._rx_of = self.receiver_of.tolist()
        self._coded = np.array([tx.coded for tx in self.transmitters], dtype=bool)
        self._next_task_id = 0
        self._delivered: list[Task] = []
        self._texts: list[list | None] = []  # per device, this slot's shared tasks.csv texts (slot_texts)
        self._csv_line = _CsvLine()
        self._fast_rows = fast  # delivered rows by one format each (False: through the CSV writer, to test against)
        # per device, its transmitter and receiver ids as one piece of a tasks.csv row
        self._pair_text = [self._csv_line.piece((self.tx_ids[i], self.rx_ids[j])) for i, j in enumerate(self._rx_of)]
        self.tx_tally = [TaskTally() for _ in txs]
        # the settled window (after the controller's settle_slots) that trade-off curves compare
        ctl = scenario.controller
        self.window = WindowTally(getattr(ctl, "settle_slots", 0) * self.slot_s,
                                  getattr(ctl, "include_server_energy", True))
        self.tx_energy = [EnergyLedger() for _ in txs]
        self.delays = LogHistogram()
        self._slots_csv: CsvStream | None = None
        self._tasks_csv: CsvStream | None = None
        n_tx = len(txs)
        self._has_tx_faults = any(self.faults.link_outage) or any(self.faults.device_off)
        self._all_true = np.ones(n_tx, dtype=bool)
        self._all_true.setflags(write=False)
        self._partitioned = [rx for rx in self.receivers if rx.cpu.policy == "partitioned"]
        self._last_decision = None
        self._block_start = 0
        self._row = 0
        self._rows = max(1, min(BLOCK_SLOTS, BLOCK_CELLS // n_tx, self.n_slots))
        self._block = {name: np.zeros((self._rows, n_tx), dtype=dtype) for name, dtype in _BLOCK_FIELDS}
        # device energy of the current BLOCK_SLOTS period (rows tx, cpu), when a block is shorter than one
        self._period_j = (None if self._rows in (BLOCK_SLOTS, self.n_slots) and not (part and n_tx == 1)
                          else np.zeros((2, n_tx)))
        self.part = part
        self._keys: CsvStream | None = None  # part: one merge key per tasks.csv row
        self._arrivals: list[float] | None = [] if part else None  # part: env time of each arrival, by task id
        self._arrivals_fh = None
        self._delivery_slots: deque[int] = deque()  # part: slot of each delivery awaiting its record
        # a controller with virtual queues (lyapunov) adds their values at each decision to slots.csv
        self._has_queues = getattr(self.controller, "queues", None) is not None
        if self._has_queues:
            for name in VIRTUAL_QUEUE_COLUMNS:
                self._block[name] = np.zeros((self._rows, n_tx))
        self._done = False
        self._log: Callable[[str], None] | None = None

    # ---------------------------------------------------------------- hooks used by the agents
    def expired(self, task: Task) -> bool:
        return self.env._now > task.deadline_s

    def payload_bits(self, k: int, bits: int) -> int:
        """``N = K · spaces · b + header`` (digital and ideal); 0 in analog mode (symbols, not bits)."""
        return 0 if self.mode == "analog" else self._payload[(k, bits)]

    def airtime_s(self, task: Task, rate_bps: float, bandwidth_hz: float) -> float:
        """Digital: ``N / R``. Analog: ``⌈K·spaces / 2⌉ / B`` (two real entries per complex symbol)."""
        if self.mode == "analog":
            return math.ceil(task.anchors * self.n_spaces / 2) / bandwidth_hz
        return task.payload_bits / rate_bps

    def slot_texts(self, i: int) -> list:
        """The ``tasks.csv`` text that the tasks device ``i`` sends in one step in this slot share.

        Such a task's encoders, K, b, ``cpu_hz``, ``rate_bps``, ``power_w``, payload, ``snr_db``
        and energies per task (device transmit and compute) are the slot's, as long as it makes
        one attempt; their text (two pieces of a row, :func:`_shared_pieces`) is formatted from
        the first of them recorded (:meth:`_record_delivered`), then reused. One list per device
        and slot.
        """
        texts = self._texts[i]
        if texts is None:
            texts = self._texts[i] = []
        return texts

    def drop(self, task: Task, reason: str) -> None:
        task.status, task.reason, task.end_s = "dropped", reason, self.env._now
        self.transmitters[task.tx].tally.dropped += 1
        self._record(task)

    def deliver(self, task: Task) -> None:
        now = self.env._now
        task.status, task.end_s = "delivered", now
        tally = self.transmitters[task.tx].tally
        tally.delivered += 1
        tally.delay_sum_s += now - task.arrival_s
        self.receivers[task.rx].decoded += 1
        self._delivered.append(task)
        if self.part:
            self._delivery_slots.append(self.slot)

    # ---------------------------------------------------------------- processes
    def new_task(self, tx: int, sample: int, arrival_s: float) -> Task:
        """A task arriving now at transmitter ``tx`` (ids are arrival ranks), counted as arrived."""
        task = Task(self._next_task_id, tx, self._rx_of[tx], sample, arrival_s, arrival_s + self.timeout_s)
        self._next_task_id += 1
        if self._arrivals is not None:
            self._note_arrival(self.env.now)
        self.tx_tally[tx].arrived += 1
        return task

    def _at(self, t: float) -> Event:
        """An event at absolute time ``t`` that runs before the other events of that instant (a slot's end).

        ``slot_end_s`` becomes the time it fires at (``now + (t − now)``, which may differ from ``t``
        in the last bit): what an encoding must end before to start its attempt in the same slot.
        """
        ev = Event(self.env)
        ev._ok, ev._value = True, None
        delay = max(0.0, t - self.env.now)
        self.slot_end_s = self.env.now + delay
        self.env.schedule(ev, URGENT, delay)
        return ev

    def _clock(self):
        every = max(1, self.n_slots // 10)
        for s in range(self.n_slots):
            if self._log is not None and s and s % every == 0:
                self._log(f"slot {s}/{self.n_slots}: {sum(t.arrived for t in self.tx_tally)} tasks so far")
            self._open_slot(s)
            yield self._at((s + 1) * self.slot_s)
            self._close_slot(s)
            if len(self._delivered) >= OUTCOME_BATCH:
                self._flush()
        self._done = True  # the run loop stops here, before any other event at the final instant

    def _open_slot(self, s: int) -> None:
        self.slot = s
        t = s * self.slot_s
        b = self._row = s - self._block_start
        blk = self._block
        gain, r_max = self.links.state(s)
        if self._has_tx_faults:
            # Blockage is enforced in continuous time by the agents (faults.py); the gain stays the
            # channel's, so a slot that starts blocked but clears mid-slot is usable afterwards.
            link_up = np.array([tx.outage.end_at(t) <= t for tx in self.transmitters])
            device_on = np.array([tx.off.end_at(t) <= t for tx in self.transmitters])
        else:
            link_up = device_on = self._all_true
        backlog = [tx.backlog for tx in self.transmitters]
        obs = Observation(s, t, gain, r_max, np.array(backlog, dtype=np.int64),
                          np.array([rx.cpu.n_jobs for rx in self.receivers], dtype=np.int64), link_up, device_on)
        if self._has_queues:  # the backlogs this slot's decision sees (the controller replaces them each update)
            queues = self.controller.queues
            blk["delay_queue"][b], blk["accuracy_queue"][b] = queues.delay, queues.accuracy
        dec = self.controller.decide(obs)
        blk["gain"][b], blk["r_max"][b], blk["link_up"][b], blk["device_on"][b] = gain, r_max, link_up, device_on
        blk["encoder"][b], blk["anchors"][b], blk["bits"][b] = dec.encoder, dec.anchors, dec.bits
        blk["rate"][b], blk["cpu_hz"][b], blk["share"][b], blk["backlog"][b] = (dec.rate_bps, dec.cpu_hz,
                                                                              dec.server_share, backlog)
        st = self.state
        if dec is not self._last_decision:  # a controller may return the same object: skip the conversions
            st.encoder = [self.encoder_ids[e] for e in dec.encoder.tolist()]
            st.anchors, st.bits = dec.anchors.tolist(), dec.bits.tolist()
            st.rate_bps, st.cpu_hz = dec.rate_bps.tolist(), dec.cpu_hz.tolist()
            if self._partitioned:
                shares = dec.server_share.tolist()
                for rx in self._partitioned:
                    rx.cpu.set_shares([shares[i] for i in rx.slot_of])
            self._last_decision = dec
            self._plan(st)
        st.power_w = st.outage = st.snr = st.link = None  # computed when the slot's first attempt needs them
        self._texts = [None] * len(self.transmitters)
        wake, st.next_slot = st.next_slot, self.env.event()
        wake.succeed()

    def _plan(self, st: SlotState) -> None:
        """Per-device costs of the decision in ``st`` (see :class:`SlotState`), vectorized over devices.

        The same IEEE operations, in the same order, as the scalar formulas of the agents
        (:func:`~simulator.network.energy.compute_energy_j`, :meth:`payload_bits`, :meth:`airtime_s`),
        so a task costs what it would cost computed on its own.
        """
        txs = self.transmitters
        work = np.array([tx.tx_cycles[(e, k)] for tx, e, k in zip(txs, st.encoder, st.anchors)])
        cpu_hz = np.array(st.cpu_hz, dtype=np.float64)
        anchors = np.array(st.anchors, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):  # a held device (f or R of 0) never uses them
            duration = work / cpu_hz
            if self.mode == "analog":
                payload = np.zeros(len(txs), dtype=np.int64)
                airtime = np.ceil(anchors * self.n_spaces / 2) / self.links.bandwidth_hz
            else:
                payload = anchors * self.n_spaces * np.array(st.bits, dtype=np.int64) + self.header_bits
                airtime = payload / np.array(st.rate_bps, dtype=np.float64)
        st.device = list(zip(st.encoder, st.anchors, st.bits, st.cpu_hz, st.rate_bps, work.tolist(), duration.tolist(),
                             (self._kappa * cpu_hz * cpu_hz * work).tolist(), payload.tolist(), airtime.tolist()))
        self._airtime, self._payload_bits = airtime, payload

    def link_state(self) -> SlotState:
        """The slot state with its link budget filled in (once per slot, on first use; :meth:`LinkTable.attempts`)."""
        st = self.state
        if st.power_w is None:
            b, blk = self._row, self._block
            power, outage, gamma, e_tx, eps = self.links.attempts(blk["rate"][b], blk["gain"][b], blk["r_max"][b],
                                                                   self._airtime, self._payload_bits, self._coded)
            st.power_w, st.outage, st.snr = power.tolist(), outage.tolist(), gamma.tolist()
            st.link = list(zip(st.outage, st.power_w, st.snr, e_tx.tolist(), eps.tolist()))
        return st

    def _close_slot(self, s: int) -> None:
        b, blk, txs = self._row, self._block, self.transmitters
        tallies = [tx.tally for tx in txs]
        blk["arrivals"][b] = [tl.arrivals for tl in tallies]
        blk["delivered"][b] = [tl.delivered for tl in tallies]
        blk["dropped"][b] = [tl.dropped for tl in tallies]
        blk["e_tx"][b] = [tl.e_tx for tl in tallies]
        blk["e_cpu"][b] = [tl.e_cpu for tl in tallies]
        blk["delay_sum"][b] = [tl.delay_sum_s for tl in tallies]
        for tl in tallies:
            tl.reset()
        with np.errstate(invalid="ignore", divide="ignore"):
            delay = blk["delay_sum"][b] / blk["delivered"][b]
        self.controller.update(Feedback(s, blk["delivered"][b], delay, blk["dropped"][b],
                                        blk["e_tx"][b] + blk["e_cpu"][b]))
        if b + 1 == self._rows or s + 1 == self.n_slots:
            self._write_block(b + 1)

    def _write_block(self, n: int) -> None:
        """Write ``slots.csv`` rows of the block's first ``n`` slots (vectorized), then start a new block."""
        blk, n_tx = self._block, len(self.transmitters)
        v = {k: a[:n] for k, a in blk.items()}
        self._add_energy(v["e_tx"], v["e_cpu"])
        power, outage, gamma = self.links.budget(v["rate"], v["gain"], v["r_max"])
        slots = np.arange(self._block_start, self._block_start + n)
        with np.errstate(divide="ignore"):
            gain_db = linear_to_db(v["gain"])
            snr_db = np.where(gamma > 0, linear_to_db(gamma), None)  # empty when nothing is sent, as in tasks.csv
        enc_ids = np.array(self.encoder_ids, dtype=object)
        cols = [np.repeat(slots, n_tx), np.repeat(slots * self.slot_s, n_tx), np.tile(np.array(self.tx_ids, object), n),
                np.tile(np.array([tx.receiver.id for tx in self.transmitters], object), n), gain_db, v["r_max"],
                v["link_up"], v["device_on"], enc_ids[v["encoder"]], v["anchors"], v["bits"], v["rate"], power,
                snr_db, outage, v["cpu_hz"], v["share"], v["backlog"], v["arrivals"], v["delivered"], v["dropped"],
                v["e_tx"], v["e_cpu"]]
        if self._has_queues:
            cols += [v[name] for name in VIRTUAL_QUEUE_COLUMNS]
        self._slots_csv.writerows(zip(*(c.reshape(-1).tolist() for c in cols)))
        self._block_start += n

    def _add_energy(self, e_tx: np.ndarray, e_cpu: np.ndarray) -> None:
        """Add a block's device energy, (n, n_tx) J per slot, to the ledgers, summed per BLOCK_SLOTS period.

        The sum of a period is NumPy's column sum of its rows (what the totals have always been):
        taken directly when a block is a whole period; otherwise (more than 64 devices) accumulated
        row after row — the order of NumPy's column sum over a 2-D array with n_tx ≥ 2 columns — so
        the block size does not change the totals' rounding.
        """
        if self._period_j is None:
            self._credit(e_tx.sum(0), e_cpu.sum(0))
            return
        acc = self._period_j
        for s, tx_row, cpu_row in zip(range(self._block_start, self._block_start + len(e_tx)), e_tx, e_cpu):
            acc[0] += tx_row
            acc[1] += cpu_row
            if (s + 1) % BLOCK_SLOTS == 0 or s + 1 == self.n_slots:
                self._credit(acc[0], acc[1])
                acc[:] = 0.0

    def _credit(self, tx_j: np.ndarray, cpu_j: np.ndarray) -> None:
        for ledger, e_tx, e_cpu in zip(self.tx_energy, tx_j.tolist(), cpu_j.tolist()):
            ledger.tx_j += e_tx
            ledger.cpu_j += e_cpu

    # ---------------------------------------------------------------- task records
    def _flush(self) -> None:
        if self._delivered:
            self.resolver.resolve(self._delivered)
            self._record_delivered(self._delivered)
            self._delivered = []

    def _record_delivered(self, tasks: list[Task]) -> None:
        """Tally delivered tasks, in order, and write their rows at once.

        A task sent in one attempt with its device's shared slot texts (:meth:`slot_texts`) is
        written with one ``%`` format (:data:`_DELIVERED_LINE`): the fields it shares with its
        device's other tasks of the slot are two pieces of CSV text made once per device and slot
        (:func:`_shared_pieces`), its own numbers are ``%d`` (``str`` of an int) and ``%r``
        (``repr`` of a float), what the CSV writer writes for them. Any other task goes through
        the CSV writer (:class:`_CsvLine`), as does every task of a ``fast=False`` world.
        """
        tallies, add_delay, add_window = self.tx_tally, self.delays.add, self.window.add
        pair_text, label, csv_line, fast_rows = self._pair_text, self.resolver.label, self._csv_line, self._fast_rows
        lines = []
        for task in tasks:
            tally = tallies[task.tx]
            delay = task.end_s - task.arrival_s
            correct = task.correct
            tally.delivered += 1
            tally.correct += bool(correct)
            tally.delay_sum_s += delay
            add_delay(delay)
            tally.bits_sent += task.bits_sent
            e_tx, e_cpu, e_srv = task.e_tx, task.e_cpu, task.e_srv
            add_window(task.arrival_s, "delivered", delay, correct, e_tx, e_cpu, e_srv)
            texts = task.texts
            if fast_rows and texts is not None and task.attempts == 1:  # (a retry changes the attempt's numbers)
                if not texts:
                    texts.extend(_shared_pieces(task, csv_line))
                lines.append(_DELIVERED_LINE % (
                    task.id, pair_text[task.tx], task.sample, label(task.sample), task.arrival_s, task.end_s, delay,
                    texts[0], task.bits_sent, 1, task.retries, texts[1], e_srv, e_tx + e_cpu + e_srv,
                    task.prediction, correct))
                continue
            lines.append(csv_line(self._task_row(task, delay)))
        self._tasks_csv.write_text("".join(lines))
        if self._keys is not None:
            self._keys.writerows([self._merge_key(task) for task in tasks])

    def _record(self, task: Task) -> None:
        """Tally and write a dropped or pending task (delivered ones: :meth:`_record_delivered`)."""
        tally = self.tx_tally[task.tx]
        if task.status == "dropped":
            tally.dropped[task.reason] = tally.dropped.get(task.reason, 0) + 1
        tally.bits_sent += task.bits_sent
        self.window.add(task.arrival_s, task.status, None, task.correct, task.e_tx, task.e_cpu, task.e_srv)
        self._tasks_csv.writerow(self._task_row(task, None))
        if self._keys is not None:
            self._keys.writerow(self._merge_key(task))

    def _task_row(self, task: Task, delay: float | None) -> tuple:
        """``task``'s ``tasks.csv`` row (``TASK_COLUMNS`` order) for the CSV writer; ``delay`` None unless delivered."""
        cpu_hz, rate_bps, power_w, snr_db, e_tx_text, e_cpu_text = _texts(task)
        return (task.id, self.tx_ids[task.tx], self.rx_ids[task.rx], task.sample, self.resolver.label(task.sample),
                task.arrival_s, task.end_s, delay, task.status, task.reason, task.encoder, task.rx_encoder,
                task.anchors or None, task.bits or None, cpu_hz, rate_bps, power_w, task.payload_bits, task.bits_sent,
                task.attempts, task.retries, snr_db, e_tx_text, e_cpu_text, task.e_srv,
                task.e_tx + task.e_cpu + task.e_srv, task.prediction,
                None if task.correct is None else int(task.correct))

    # ---------------------------------------------------------------- part of a split network
    def _merge_key(self, task: Task) -> tuple:
        """``(kind, slot, time_s, owner)`` of a record: kind ``d`` dropped (slot and time of the drop),
        ``v`` delivered (of the delivery), ``p`` pending (owner: the transmitter's index, or the
        number of transmitters + the receiver's index when the task is at the receiver)."""
        if task.status == "dropped":
            return "d", self.slot, task.end_s, ""
        if task.status == "delivered":
            return "v", self._delivery_slots.popleft(), task.end_s, ""
        at_receiver = bool(task.rx_encoder)
        return "p", "", "", len(self.transmitters) + task.rx if at_receiver else task.tx

    def _note_arrival(self, now: float) -> None:
        self._arrivals.append(now)
        if len(self._arrivals) >= _ARRIVAL_PIECE * 1024:
            self._write_arrivals()

    def _write_arrivals(self) -> None:
        np.asarray(self._arrivals, dtype="<f8").tofile(self._arrivals_fh)
        self._arrivals.clear()

    def pending_tasks(self) -> list[Task]:
        """Every task still in the system, found by walking the device queues and the server CPUs."""
        out: list[Task] = []
        for tx in self.transmitters:
            out.extend(tx.queue)
            if tx.current is not None:
                out.append(tx.current)
        for rx in self.receivers:
            out.extend(rx.cpu.jobs())
        return out

    # ---------------------------------------------------------------- running
    def run(self, folder: Path, log: Callable[[str], None] | None = None) -> dict:
        """Simulate every slot, stream ``slots.csv`` and ``tasks.csv`` into ``folder``, return the summary.

        The summary has the DESIGN §4 keys except ``wall_s`` (the runner adds it) and a
        ``counts`` entry (:class:`RunCounts`) for the conservation check.
        """
        if self._slots_csv is not None:
            raise RuntimeError("a World runs once; build a new one for another run")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._log = log
        self._slots_csv = CsvStream(folder / "slots.csv", SLOT_COLUMNS + (VIRTUAL_QUEUE_COLUMNS if self._has_queues else ()))
        self._tasks_csv = CsvStream(folder / "tasks.csv", TASK_COLUMNS)
        if self.part:
            self._keys = CsvStream(folder / PART_FILES[0], ("kind", "slot", "time_s", "owner"))
            self._arrivals_fh = open(folder / PART_FILES[1], "wb")
        try:
            # The clock starts first: a task arriving at t = 0 must find slot 0 open.
            self.env.process(self._clock())
            for tx, stream in zip(self.transmitters, self._streams):
                _Source(self, tx, stream).start()
            with _older_objects_frozen():
                run_while(self.env, lambda: not self._done)
            self._flush()
            pending = self.pending_tasks()
            for task in pending:
                self._record(task)
            self._slots_csv.close()
            self._tasks_csv.close()
            if self.part:
                self._keys.close()
                self._write_arrivals()
                self._arrivals_fh.close()
        except BaseException:
            self._slots_csv.abort()
            self._tasks_csv.abort()
            if self.part:
                self._keys.abort()
                self._arrivals_fh.close()
            raise
        return self._summary(len(pending))

    def _summary(self, n_pending: int) -> dict:
        return summarize(self.scenario, self.tallies(n_pending))

    def tallies(self, n_pending: int) -> "RunTallies":
        """What the summary is made of, per agent (in list order), at the end of a run."""
        duration = self.n_slots * self.slot_s
        pending_by_tx = [0] * len(self.transmitters)
        for task in self.pending_tasks():
            pending_by_tx[task.tx] += 1
        tx_entries = []
        for i, tx in enumerate(self.transmitters):
            led = self.tx_energy[i]
            off_s = tx.off.covered_s(duration)
            led.idle_j = idle_energy_j(tx.cfg.idle_power_w, duration - off_s)
            tx_entries.append((tx.id, {"kind": "transmitter", "receiver": tx.receiver.id, **self.tx_tally[i].as_dict(),
                                       "tasks_pending": pending_by_tx[i], **led.as_dict(),
                                       "avg_power_w": led.total_j / duration, "off_s": off_s,
                                       "bandwidth_hz": float(self.links.bandwidth_hz[i])}))
        rx_energy, rx_entries = [], []
        for rx in self.receivers:
            led = EnergyLedger(server_j=rx.cpu.energy_j, idle_j=idle_energy_j(rx.cfg.idle_power_w, duration))
            rx_energy.append(led)
            rx_entries.append((rx.id, {"kind": "receiver", "encoder": rx.encoder, "tasks_decoded": rx.decoded,
                                       "jobs_pending": rx.cpu.n_jobs, "busy_fraction": rx.cpu.busy_s / duration,
                                       **led.as_dict(), "avg_power_w": led.total_j / duration}))
        return RunTallies(list(self.tx_tally), list(self.tx_energy), tx_entries, rx_energy, rx_entries,
                          self.delays.counts, self.window.as_dict(), n_pending)


@contextmanager
def _older_objects_frozen():
    """Leave the objects that exist now (interpreter, torch, the zoo, the world) out of garbage collection
    while the block runs (``gc.freeze``), unless the caller froze some already.

    The event loop allocates millions of short-lived objects; each of the collector's full
    passes then also walked every object the process had before the run — 10–15 % of a
    2,000-device run's CPU time, and a run of a few thousand tasks could take twice as long
    when one fell inside it. What is collected, and when, changes nothing the run computes.
    """
    frozen = gc.get_freeze_count() == 0
    if frozen:
        gc.freeze()
    try:
        yield
    finally:
        if frozen:
            gc.unfreeze()


def _texts(task: Task) -> list:
    """``cpu_hz``, ``rate_bps``, ``power_w``, ``snr_db`` and device energies of a task's ``tasks.csv``
    row as the CSV writer writes them (``str``, empty for None): every row's, delivered or not."""
    values = (task.cpu_hz or None, task.rate_bps or None, task.power_w if task.attempts else None,
              10.0 * math.log10(task.snr) if task.snr > 0 else None, task.e_tx, task.e_cpu)
    return ["" if v is None else str(v) for v in values]


_DELIVERED_LINE = "%d,%s,%d,%d,%r,%r,%r,delivered,,%s,%d,%d,%d,%s,%r,%r,%d,%d\n"
"""A ``tasks.csv`` row of a task delivered in one attempt with its slot's shared texts (TASK_COLUMNS order):
task, the transmitter and receiver ids (one piece), sample, label, arrival, end, delay, status, drop
reason, the first shared piece (encoders … payload_bits), bits_sent, attempts, retries, the second
shared piece (snr_db and the device energies), server and total energy, prediction, correct."""


class _CsvLine:
    """Rows and pieces of rows as the CSV writer writes them to ``tasks.csv`` (quoting, ``repr`` of floats, ``\\n``)."""

    def __init__(self) -> None:
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\n")
        self._quoted: dict[str, str] = {"": ""}

    def __call__(self, row: Sequence) -> str:
        """The line of ``row``."""
        self._writer.writerow(row)
        text = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        return text

    def piece(self, fields: Sequence) -> str:
        """Several fields of a row, as they appear between two commas of the written line."""
        return self(fields)[:-1]

    def text(self, value: str) -> str:
        """One text field as written in a row of several (quoted when the dialect needs it); kept per value."""
        quoted = self._quoted.get(value)
        if quoted is None:
            quoted = self._quoted[value] = self.piece((value, ""))[:-1]
        return quoted


def _shared_pieces(task: Task, csv_line: _CsvLine) -> list[str]:
    """The two pieces of :data:`_DELIVERED_LINE` that the tasks a device sends in one step in a slot share:
    ``tx_encoder`` … ``payload_bits``, and ``snr_db`` with the device energies.

    The numbers' texts (``str``, empty for None) hold no character the CSV dialect quotes.
    """
    cpu_hz, rate_bps, power_w, snr_db, e_tx_text, e_cpu_text = _texts(task)
    text = csv_line.text
    return [f"{text(task.encoder)},{text(task.rx_encoder)},{task.anchors or ''},{task.bits or ''},{cpu_hz},{rate_bps},"
            f"{power_w},{task.payload_bits}",
            f"{snr_db},{e_tx_text},{e_cpu_text}"]


class _Source:
    """The arrivals of one transmitter as a chain of timeouts whose callback queues the task.

    A device run as a process waits, when idle, on the same event (``tx.next_arrival``, a
    :class:`~simulator.network.schedule.Mark`): the callback, added first, queues the task, then
    the device resumes. For a device served by callbacks nothing else waits on the arrival, so it
    is a queued call (:func:`~simulator.network.schedule.call_after`) that queues the task and
    then serves the device if it is idle (``tx.waiting``) — the same steps in the same event.
    Arrivals due at the same time are queued in one callback. The first event is an immediate one
    of the start's priority (what a SimPy process's start is), so arrivals at ``t = 0`` come after
    the clock opens slot 0.
    """

    __slots__ = ("world", "tx", "feed", "due")

    def __init__(self, world: World, tx: Transmitter, stream: ArrivalStream):
        self.world, self.tx, self.feed = world, tx, self._pieces(stream)
        self.due = None

    @staticmethod
    def _pieces(stream: ArrivalStream):
        while True:
            times, samples = stream.next_chunk()
            if not len(times):
                return
            # Python numbers a piece at a time: a whole chunk of them would cost ~70 bytes per arrival.
            for lo in range(0, len(times), _ARRIVAL_PIECE):
                yield from zip(times[lo:lo + _ARRIVAL_PIECE].tolist(), samples[lo:lo + _ARRIVAL_PIECE].tolist())

    def start(self) -> None:
        env = self.world.env
        self.due = next(self.feed, None)
        ev = Event(env)
        ev._ok, ev._value = True, None
        ev.callbacks.append(self.fire)
        env.schedule(ev, URGENT)
        self.tx.next_arrival = ev
        self.tx.start()

    def fire(self, _event: Event | None) -> None:
        world, tx, env = self.world, self.tx, self.world.env
        index, due, now = tx.index, self.due, env._now
        while due is not None:
            t, sample = due
            if t > now:
                if tx.process is None:  # nothing waits on the arrival but its device, served below
                    call_after(env, t - now, self.fire)
                else:
                    tx.next_arrival = after(env, t - now, self.fire)
                break
            tx.arrive(world.new_task(index, sample, t))
            due = next(self.feed, None)
        else:
            tx.next_arrival = env.event()  # the stream ended: an event that never fires
        self.due = due
        if tx.waiting:  # what the device's callback on the arrival's event did, after this one
            tx.waiting = False
            tx._serve_next()


@dataclass
class RunTallies:
    """The per-agent tallies a summary is made of (picklable: a split run merges those of its parts).

    Transmitter lists are in one order, receiver lists in another; :func:`summarize` sums them
    in those orders, so the parts of a split network, put back in the scenario's order, give
    the floats of the single-process run.
    """

    tx_tally: list[TaskTally]
    tx_energy: list[EnergyLedger]
    tx_entries: list[tuple[str, dict]]
    rx_energy: list[EnergyLedger]
    rx_entries: list[tuple[str, dict]]
    delay_counts: np.ndarray
    """Counts of the :class:`~simulator.network.metrics.LogHistogram` of delivered tasks' delays."""
    settled: dict
    """The settled window (:meth:`~simulator.network.metrics.WindowTally.as_dict`)."""
    n_pending: int


def summarize(scenario: Scenario, t: RunTallies) -> dict:
    """The run summary (DESIGN §4 keys but ``wall_s``, plus ``counts``) from its tallies."""
    sim = scenario.simulation
    duration = sim.slots * sim.slot_s
    total = EnergyLedger()
    for led in (*t.tx_energy, *t.rx_energy):
        total.add(led)
    tallies = t.tx_tally
    arrived = sum(x.arrived for x in tallies)
    delivered = sum(x.delivered for x in tallies)
    dropped = sum(x.n_dropped for x in tallies)
    correct = sum(x.correct for x in tallies)
    reasons: dict[str, int] = {}
    for x in tallies:
        for r, c in x.dropped.items():
            reasons[r] = reasons.get(r, 0) + c
    accuracy = correct / delivered if delivered else None
    mean_delay = sum(x.delay_sum_s for x in tallies) / delivered if delivered else None
    delays = LogHistogram()
    delays.counts, delays.n = t.delay_counts, int(t.delay_counts.sum())
    return {
        "name": scenario.name, "version": __version__, "seed": scenario.seed, "controller": scenario.controller.kind,
        "slots": sim.slots, "slot_s": sim.slot_s, "duration_s": duration,
        "tasks_arrived": arrived, "tasks_delivered": delivered, "tasks_dropped": dropped,
        "tasks_pending": t.n_pending, "dropped_by_reason": dict(sorted(reasons.items())),
        "accuracy": accuracy, "mean_delay_s": mean_delay, "p95_delay_s": delays.quantile(0.95),
        "avg_power_w": total.total_j / duration, **total.as_dict(),
        "delay_target_s": sim.delay_target_s, "accuracy_target": sim.accuracy_target,
        "delay_met": (None if sim.delay_target_s is None or mean_delay is None
                      else mean_delay <= sim.delay_target_s),
        "accuracy_met": (None if sim.accuracy_target is None or accuracy is None
                         else accuracy >= sim.accuracy_target),
        "per_agent": dict(t.tx_entries + t.rx_entries), "settled": t.settled,
        "counts": RunCounts(arrived, delivered, dropped, t.n_pending),
    }


__all__ = ["World", "require_network", "SlotState", "RunCounts", "RunTallies", "summarize", "OUTCOME_BATCH"]
