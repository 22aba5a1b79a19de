"""The agents of the SimPy world: tasks, transmitters (IoT devices) and receivers (edge servers).

A task's life (DESIGN §2): arrival at its transmitter → bounded FIFO queue → encode and project
on the device CPU (``W_tx / f`` seconds, ``κ f² W_tx`` joules, ``W_tx`` from the encoder's real
FLOPs) → transmission of ``N = K·b + header`` bits at the slot's rate ``R`` (airtime ``N/R``,
energy ``p N/R``), repeated on outage or packet error up to ``max_attempts`` → the receiver's
CPU (``W_rx`` cycles of its head) → completion. Only timing and costs live here; whether the
receiver understood the task is computed later in batches (:mod:`simulator.network.semantic`).

Decisions (encoder, K, b, f) are read when the encoding starts; rate and power when each
attempt starts (block fading: one channel state per slot, kept for the whole attempt even if
it spills into the next slot).

Events per task: the device's next arrival is one SimPy event that both queues the task (the
world's callback) and wakes an idle device; encoding and first attempt are one event when
nothing can come between them (no fault, the encoding ends inside the slot and before the
deadline, the slot sends at a rate its channel carries): the attempt then starts at the encoding's
end in the same slot, so it uses the same decision and channel state, and every time, cost and
random draw is the one the two separate steps would give. Per-device costs of the slot's
decision (cycles, encoding time and energy, payload, airtime, transmit energy) are computed
once per slot for all devices (:class:`~simulator.network.world.SlotState`) and looked up here.

Faults (:mod:`simulator.network.faults`), known in advance, are handled without interrupts:
work that a device-off interval (or, on the air, a link outage) would cut is stopped at the
interval start, its partial energy charged, and redone after the interval (``retries``); a
device with its link down or switched off waits (its sensor keeps producing tasks, which
queue). After an outage attempt (the slot cannot carry the rate) the device retries in the
next slot, since the channel state is constant within one; after a random packet error it
retries at once. Deadlines (``task_timeout_s``) are
checked whenever a task changes stage: dequeue, each attempt, arrival at the receiver.
"""

from __future__ import annotations

import math
from collections import deque
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import simpy

from simulator.channel import fbl_error_probability
from simulator.network.cpu import SharedCpu
from simulator.network.energy import compute_energy_j, transmit_energy_j
from simulator.network.faults import IntervalSet
from simulator.network.metrics import SlotTally
from simulator.network.schedule import at, call_at

if TYPE_CHECKING:
    from simulator.network.world import World

INF = math.inf
_UNIFORM_CHUNK = 1024


class Task:
    """One sample travelling from a transmitter to a receiver (a plain record, slots for speed)."""

    __slots__ = ("id", "tx", "rx", "sample", "arrival_s", "deadline_s", "encoder", "rx_encoder", "anchors", "bits",
                 "cpu_hz", "rate_bps", "power_w", "payload_bits", "bits_sent", "attempts", "retries", "snr",
                 "coded", "e_tx", "e_cpu", "e_srv", "remaining", "rx_cycles", "cpu_class", "end_s", "status",
                 "reason", "prediction", "correct", "texts")

    def __init__(self, task_id: int, tx: int, rx: int, sample: int, arrival_s: float, deadline_s: float):
        self.id = task_id
        self.tx = tx
        self.rx = rx
        self.sample = sample
        self.arrival_s = arrival_s
        self.deadline_s = deadline_s
        self.encoder = self.rx_encoder = ""
        self.anchors = self.bits = self.payload_bits = self.bits_sent = self.attempts = self.retries = 0
        self.cpu_hz = self.rate_bps = self.power_w = self.snr = 0.0
        self.coded = False
        self.e_tx = self.e_cpu = self.e_srv = 0.0
        self.remaining = self.rx_cycles = 0.0
        self.cpu_class = 0
        self.end_s = None
        self.status = "pending"
        self.reason = ""
        self.prediction = None
        self.correct = None
        # set by a first attempt sent in one step: the tasks.csv texts its device and slot share (World.slot_texts)
        self.texts = None


class Transmitter:
    """A device: bounded task queue, CPU, radio, serving its queue in order (by callbacks, or a SimPy process with faults).

    Parameters
    ----------
    world : World
        Gives the slot's decision (``world.state``) and takes finished tasks.
    index : int
        Position in the world's transmitter list.
    cfg : TransmitterConfig
    receiver : Receiver
    bandwidth_hz : float
        This link's share of the receiver's band.
    tx_cycles : dict
        ``(encoder id, K) → W_tx`` cycles (encoder forward + projection, ``/β``), with the
        encoder's mean FLOPs per sample: what the controller plans with.
    sample_cycles : dict
        ``encoder id → (n_test,)`` cycles each test sample's encoding costs beyond the mean
        (text: longer texts cost more), for the encoders whose samples differ; empty when none
        do. A task is charged ``tx_cycles[(encoder, K)] + sample_cycles[encoder][sample]``.
    off, outage : IntervalSet
        Device-off and link-outage fault intervals.
    generator : numpy.random.Generator
        For packet-error draws.
    fast : bool, default True
        A device without faults serves by callbacks (:meth:`_serve_next`); False runs the general
        process (:meth:`_serve`) whatever the faults (the same events; kept to test against).
    """

    __slots__ = ("world", "env", "index", "id", "cfg", "receiver", "bandwidth_hz", "tx_cycles", "sample_cycles", "off",
                 "outage", "has_faults", "kappa", "max_power_w", "max_attempts", "coded", "capacity", "drop_oldest",
                 "queue", "current", "tally", "next_arrival", "_gen", "_uniforms", "_next_uniform", "_eps_key", "_eps",
                 "process", "_lost", "waiting")

    def __init__(self, world: "World", index: int, cfg, receiver: "Receiver", bandwidth_hz: float,
                 tx_cycles: dict, off: IntervalSet, outage: IntervalSet, generator: np.random.Generator,
                 sample_cycles: dict | None = None, fast: bool = True):
        self.world = world
        self.env: simpy.Environment = world.env
        self.index = index
        self.id = cfg.id
        self.cfg = cfg
        self.receiver = receiver
        self.bandwidth_hz = float(bandwidth_hz)
        self.tx_cycles = tx_cycles
        self.sample_cycles = sample_cycles or {}
        self.off = off
        self.outage = outage
        self.has_faults = bool(off) or bool(outage)
        self.kappa = cfg.cpu.kappa
        self.max_power_w = cfg.radio.max_power_w
        self.max_attempts = cfg.radio.max_attempts
        self.coded = cfg.radio.packet_errors == "fbl"
        self.capacity = cfg.queue.capacity
        self.drop_oldest = cfg.queue.drop_policy == "drop-oldest"
        self.queue: deque[Task] = deque()
        self.current: Task | None = None
        self.tally = SlotTally()
        self.next_arrival: simpy.Event = self.env.event()  # set by the world; a process device waits on it
        self.waiting = False  # a callback device, idle: the next arrival's callback serves it (after queuing the task)
        self._gen = generator
        self._uniforms = np.empty(0)
        self._next_uniform = 0
        self._eps_key: tuple = ()
        self._eps = 0.0
        # A device with faults runs the general service process; one without serves by callbacks (start()).
        self.process = self.env.process(self._serve()) if self.has_faults or not fast else None
        self._lost = False

    # ---------------------------------------------------------------- arrivals
    def arrive(self, task: Task) -> None:
        """A new task enters the queue (or is dropped when it is full)."""
        self.tally.arrivals += 1
        if len(self.queue) >= self.capacity:
            if not self.drop_oldest:
                self.world.drop(task, "queue-full")
                return
            self.world.drop(self.queue.popleft(), "queue-full")
        self.queue.append(task)

    @property
    def backlog(self) -> int:
        return len(self.queue) + (self.current is not None)

    # ---------------------------------------------------------------- service
    def start(self) -> None:
        """Begin serving: a callback device waits for its first arrival (a process waits on ``next_arrival``)."""
        if self.process is None:
            self.waiting = True

    def _serve_next(self) -> None:
        """:meth:`_serve` of a device without faults, as callbacks: the same steps, in the same event steps.

        A generator process costs a resume (``Process._resume``) per event; here the common cycle
        (dequeue, encode and send as one step, hand over at the attempt's end) is plain calls on
        light events (:mod:`~simulator.network.schedule`), and what it does not cover (an encoding
        that ends in the next slot, a retry) runs the general steps' generators, driven in place.
        """
        world, queue = self.world, self.queue
        env = self.env
        while queue:
            task = self.current = queue.popleft()
            if env._now > task.deadline_s:  # world.expired
                world.drop(task, "timeout")
                continue
            first = self._encode_and_send(task)
            if first is None:
                self._drive(self._encode_then_transmit(task))
                return
            end_s, self._lost = first
            call_at(env, end_s, self._sent)
            return
        self.current = None
        self.waiting = True  # the next arrival's callback queues the task, then calls this

    def _sent(self, _event) -> None:
        task = self.current
        if not self._lost:
            self.receiver.receive(task)
        elif task.attempts >= self.max_attempts:
            self.world.drop(task, "packet-error")
        else:
            self._drive(self._transmit(task))  # a packet error: retried at once
            return
        self._serve_next()

    def _encode_then_transmit(self, task: Task):
        yield from self._encode(task)
        if task.status == "pending":
            yield from self._transmit(task)

    def _drive(self, steps, event=None) -> None:
        """Run the generator ``steps`` to its next wait (as ``Process._resume`` would), then serve on."""
        try:
            ev = next(steps) if event is None else steps.send(event._value)
            while ev.callbacks is None:  # already processed: resumes at once
                ev = steps.send(ev._value)
        except StopIteration:
            self._serve_next()
            return
        ev.callbacks.append(partial(self._drive, steps))

    def _serve(self):
        world = self.world
        while True:
            if not self.queue:
                # the arrival's own callback (registered first) queues the task before this resumes
                yield self.next_arrival
                continue
            task = self.current = self.queue.popleft()
            if world.expired(task):
                world.drop(task, "timeout")
            else:
                first = None if self.has_faults else self._encode_and_send(task)
                if first is None:
                    yield from self._encode(task)
                    if task.status == "pending":
                        yield from self._transmit(task)
                else:
                    end_s, lost = first
                    yield at(self.env, end_s)
                    if not lost:
                        self.receiver.receive(task)
                    elif task.attempts >= self.max_attempts:
                        world.drop(task, "packet-error")
                    else:
                        yield from self._transmit(task)  # a packet error: retried at once
            self.current = None

    def _encode_and_send(self, task: Task) -> tuple[float, bool] | None:
        """Encode ``task`` and start its first attempt as one step, when nothing can come between them.

        Returns the attempt's end time and whether it is lost (a packet error), after charging
        both energies as :meth:`_encode` and :meth:`_transmit` would at the encoding's end; None
        (nothing done) when the encoding would end at or after the slot's end or past the
        deadline, or when the slot holds the device or its channel cannot carry the rate.
        """
        world, i = self.world, self.index
        enc, k, bits, f, rate, work, duration, e_cpu, payload, airtime = world.state.device[i]
        shared = not (self.sample_cycles and enc in self.sample_cycles)  # every task of the slot costs the same
        if not shared:
            work += float(self.sample_cycles[enc][task.sample])
            duration, e_cpu = work / f, compute_energy_j(self.kappa, f, work)
        end_encode = self.env._now + duration  # the time a timeout of ``duration`` would fire at
        if not (end_encode < world.slot_end_s and end_encode <= task.deadline_s and rate > 0.0):
            return None
        outage, power, snr, e_tx, eps = world.link_state().link[i]
        if outage:
            return None
        task.encoder, task.anchors, task.bits, task.cpu_hz = enc, k, bits, f
        self._charge_cpu(task, e_cpu)
        task.payload_bits = payload
        task.coded = self.coded
        if self.coded:  # the slot's packet: its error probability was computed with the other devices'
            self._eps_key, self._eps = (world.slot, payload, airtime), eps
        lost = self.coded and self._uniform() < self._packet_error(task, snr, airtime)
        task.rate_bps, task.power_w, task.snr = rate, power, snr
        task.attempts += 1
        task.bits_sent += payload
        self._charge_tx(task, e_tx)
        if shared:
            task.texts = world.slot_texts(i)
        return end_encode + airtime, lost

    def _fault_end(self, intervals: IntervalSet) -> float:
        """End of the fault interval containing now (0 when none): how long to wait before working."""
        if not intervals:
            return 0.0
        now = self.env.now
        return intervals.end_at(now) - now

    def _encode(self, task: Task):
        env, state, i = self.env, self.world.state, self.index
        while True:
            if self.world.expired(task):
                self.world.drop(task, "timeout")
                return
            wait = self._fault_end(self.off)
            if wait > 0.0:
                yield env.timeout(wait)
                continue
            task.encoder, task.anchors, task.bits = state.encoder[i], state.anchors[i], state.bits[i]
            f = task.cpu_hz = state.cpu_hz[i]
            work = self.tx_cycles[(task.encoder, task.anchors)]
            if self.sample_cycles and task.encoder in self.sample_cycles:  # image pools: one falsy check
                work += float(self.sample_cycles[task.encoder][task.sample])
            now = env.now
            duration = work / f
            cut, back = self.off.next_interval(now) if self.off else (INF, INF)
            if cut < now + duration:  # the device switches off mid-encode: that work is lost
                self._charge_cpu(task, compute_energy_j(self.kappa, f, f * (cut - now)))
                task.retries += 1
                yield env.timeout(back - now)  # straight to the interval's end (no float creep at its start)
                continue
            yield env.timeout(duration)
            self._charge_cpu(task, compute_energy_j(self.kappa, f, work))
            task.payload_bits = self.world.payload_bits(task.anchors, task.bits)
            task.coded = self.coded
            return

    def _charge_cpu(self, task: Task, energy: float) -> None:
        task.e_cpu += energy
        self.tally.e_cpu += energy

    def _charge_tx(self, task: Task, energy: float) -> None:
        task.e_tx += energy
        self.tally.e_tx += energy

    def _transmit(self, task: Task):
        env, world, i = self.env, self.world, self.index
        while True:
            if world.expired(task):
                world.drop(task, "timeout")
                return
            wait = max(self._fault_end(self.off), self._fault_end(self.outage))
            if wait > 0.0:
                yield env.timeout(wait)
                continue
            state = world.state
            rate = state.rate_bps[i]
            if rate <= 0.0:  # the controller holds this device for the slot
                yield state.next_slot
                continue
            state = world.link_state()
            outage = state.outage[i]
            power = self.max_power_w if outage else state.power_w[i]
            airtime = world.airtime_s(task, rate, self.bandwidth_hz)
            now = env.now
            cut, back = (min(self.off.next_interval(now), self.outage.next_interval(now))
                         if self.has_faults else (INF, INF))
            if cut < now + airtime:  # a fault cuts the attempt: retried after it, not counted by ARQ
                self._charge_tx(task, transmit_energy_j(power, cut - now))
                task.bits_sent += int(task.payload_bits * (cut - now) / airtime)
                task.retries += 1
                yield env.timeout(back - now)
                continue
            lost = outage or (self.coded and self._uniform() < self._packet_error(task, state.snr[i], airtime))
            task.rate_bps, task.power_w, task.snr = rate, power, state.snr[i]
            task.attempts += 1
            task.bits_sent += task.payload_bits
            self._charge_tx(task, transmit_energy_j(power, airtime))
            yield env.timeout(airtime)
            if not lost:
                self.receiver.receive(task)
                return
            if task.attempts >= self.max_attempts:
                world.drop(task, "outage" if outage else "packet-error")
                return
            if outage:
                yield world.state.next_slot

    def _uniform(self) -> float:
        # drawn a chunk at a time, kept as an array (8 bytes each, not a list of Python floats)
        if self._next_uniform == len(self._uniforms):
            self._uniforms, self._next_uniform = self._gen.random(_UNIFORM_CHUNK), 0
        self._next_uniform += 1
        return float(self._uniforms[self._next_uniform - 1])

    def _packet_error(self, task: Task, snr: float, airtime: float) -> float:
        """Finite-blocklength error probability of this packet in the current slot (cached per slot and N)."""
        key = (self.world.slot, task.payload_bits, airtime)
        if key != self._eps_key:
            n = max(1.0, self.bandwidth_hz * airtime)
            self._eps = float(fbl_error_probability(snr, n, task.payload_bits))
            self._eps_key = key
        return self._eps


class Receiver:
    """An edge server: its encoder's heads decode on a CPU shared by its devices.

    Parameters
    ----------
    world : World
    index : int
    cfg : ReceiverConfig
    n_devices : int
        Number of transmitters associated with it (the CPU's slices).
    head_cycles : dict
        ``K → W_rx`` cycles of one head decision.
    slowdown : IntervalSet
    fast : bool, default True
        Passed to the CPU (:class:`~simulator.network.cpu.SharedCpu`).
    """

    __slots__ = ("world", "index", "id", "cfg", "encoder", "capacity", "head_cycles", "slot_of", "cpu", "decoded")

    def __init__(self, world: "World", index: int, cfg, n_devices: int, head_cycles: dict,
                 slowdown: IntervalSet, fast: bool = True):
        self.world = world
        self.index = index
        self.id = cfg.id
        self.cfg = cfg
        self.encoder = cfg.encoder
        self.capacity = cfg.queue_capacity
        self.head_cycles = head_cycles
        self.slot_of: dict[int, int] = {}  # transmitter index → CPU slice
        self.cpu = SharedCpu(world.env, cfg.cpu_hz, cfg.kappa, cfg.scheduling, n_devices, slowdown, world.deliver,
                             fast=fast)
        self.decoded = 0

    def receive(self, task: Task) -> None:
        """A payload arrived: queue it for decoding (or drop it on deadline or a full input queue)."""
        world = self.world
        if world.env._now > task.deadline_s:  # world.expired
            world.drop(task, "timeout")
            return
        if self.capacity is not None and self.cpu.n_jobs >= self.capacity:
            self.world.drop(task, "receiver-queue-full")
            return
        task.rx_encoder = self.encoder
        task.remaining = task.rx_cycles = self.head_cycles[task.anchors]
        task.cpu_class = self.slot_of[task.tx]
        self.cpu.submit(task)


__all__ = ["Task", "Transmitter", "Receiver"]
