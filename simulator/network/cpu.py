"""A server CPU shared by many jobs: FIFO, processor sharing or controller-set partitions, with slowdowns.

SimPy's ``Resource`` grants whole units FIFO; it cannot share one CPU among jobs at once nor
change speed mid-job. This is a fluid server driven by SimPy timeouts instead: every job holds
its remaining cycles; between two changes (an arrival, a completion, a share or speed change)
each job in service runs at a constant rate, so the next completion time is exact. A change
re-plans the next completion; the stale timeout is ignored (version check), since SimPy events
cannot be cancelled. FIFO, with one job in service, takes a short path through the same formulas,
and a partitioned CPU keeps the list of its busy slices, so an event costs what is in service,
not what the server could serve.

Policies, for a CPU of clock ``F`` (Hz) and slowdown factor ``φ`` (1 normally, from the fault
schedule):

- ``fifo``: the head job runs at ``φ F`` cycles/s, the rest wait (M/D/1 with fixed work);
- ``processor-sharing``: each of the ``n`` jobs in the system runs at ``φ F / n``;
- ``partitioned``: device ``c`` owns a slice ``s_c F`` (``Σ s_c ≤ 1``, set by the controller
  every slot); its jobs are served FIFO at ``φ s_c F``.

Energy: a cycle executed on a clock of ``f`` Hz costs ``κ f²`` (f = F, or the slice clock
``s_c F`` when partitioned, as in DESIGN §2's ``κ_s x² W_rx``). A slowdown models contention
(fewer cycles for this system per second), not a lower clock, so it does not change the energy
per cycle.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import deque
from functools import partial
from typing import Any, Callable, Sequence

import simpy

from simulator.network.faults import IntervalSet
from simulator.network.schedule import call_after

POLICIES = ("fifo", "processor-sharing", "partitioned")
# A job is done when less than this fraction of its work is left (floating-point residue).
_DONE_RTOL = 1e-9


class SharedCpu:
    """Fluid model of one CPU serving jobs; calls ``on_done(job)`` when a job's cycles are done.

    A job is any object with attributes ``remaining`` (cycles left, set by the caller),
    ``rx_cycles`` (its total cycles), ``cpu_class`` (the owner's slice index, for
    ``partitioned``) and ``e_srv`` (J, incremented here).

    Parameters
    ----------
    env : simpy.Environment
    cpu_hz : float
        Clock ``F`` (Hz).
    kappa : float
        ``κ`` of the server (energy ``κ f²`` per cycle).
    policy : {"fifo", "processor-sharing", "partitioned"}
    n_classes : int
        Number of slices (the receiver's devices); shares start equal.
    slowdown : IntervalSet
        Intervals whose value is the speed factor ``φ`` in them.
    on_done : callable
        Called with each finished job, at its completion time.
    fast : bool, default True
        Serve FIFO and partitioned CPUs through their own paths; False plans them through the
        general one (the same results; kept to test the fast paths against).
    """

    __slots__ = ("env", "cpu_hz", "kappa", "policy", "_fifo", "_partitioned", "_sliced", "_queued", "on_done", "_queues",
                 "shares", "_busy", "n_jobs", "energy_j", "busy_s", "_t", "_version", "_slowdown", "factor", "_rates",
                 "_joules")

    def __init__(self, env: simpy.Environment, cpu_hz: float, kappa: float, policy: str, n_classes: int,
                 slowdown: IntervalSet, on_done: Callable[[Any], None], fast: bool = True):
        if policy not in POLICIES:
            raise ValueError(f"unknown CPU policy {policy!r}")
        self.env = env
        self.cpu_hz = float(cpu_hz)
        self.kappa = float(kappa)
        self.policy = policy
        # the FIFO and partitioned paths (their rates kept per slice); fast=False plans every policy from
        # the list of jobs in service (:meth:`_serving`), the same floats at a higher cost (tests compare them)
        self._fifo = fast and policy == "fifo"
        self._partitioned = fast and policy == "partitioned"
        self._sliced = policy == "partitioned"
        self._queued = policy != "processor-sharing"  # a job waits behind its queue's head
        self.on_done = on_done
        n_classes = max(1, int(n_classes))
        self._queues: list[deque] = [deque() for _ in range(n_classes if policy == "partitioned" else 1)]
        self.shares = [1.0 / n_classes] * n_classes
        self._busy: list[int] = []  # partitioned: slices with jobs, in slice order
        self.n_jobs = 0
        self.energy_j = 0.0
        self.busy_s = 0.0
        self._t = env.now
        self._version = 0
        self._slowdown = slowdown
        self.factor = slowdown.value_at(env.now)
        self._speeds()
        self._plan_boundary(env.now)

    # ---------------------------------------------------------------- service plan
    def _serving(self) -> list[tuple[Any, float, float]]:
        """(job, cycles per second, clock Hz) of every job in service now."""
        f, phi = self.cpu_hz, self.factor
        if self.policy == "fifo":
            q = self._queues[0]
            return [(q[0], phi * f, f)] if q else []
        if self.policy == "processor-sharing":
            q = self._queues[0]
            return [(job, phi * f / len(q), f) for job in q]
        queues, shares = self._queues, self.shares
        return [(queues[c][0], phi * shares[c] * f, shares[c] * f) for c in self._busy]

    def _speeds(self) -> None:
        """Cycles per second and joules per cycle of each slice (partitioned) or of the head job (FIFO).

        The products :meth:`_serving` and :meth:`_advance` form, in the same order (``φ s F`` as
        ``(φ s) F``, ``κ c²`` as ``(κ c) c``), kept until the shares or the slowdown change.
        """
        f, phi, kappa = self.cpu_hz, self.factor, self.kappa
        if self.policy == "partitioned":
            self._rates = [phi * s * f for s in self.shares]
            self._joules = [kappa * (s * f) * (s * f) for s in self.shares]
        else:
            self._rates, self._joules = [phi * f], [kappa * f * f]

    def _advance(self, serving: list | None = None) -> None:
        """Run the jobs in service from the last change to now (``serving``: :meth:`_serving` of now, if known)."""
        now = self.env._now
        dt = now - self._t
        if dt > 0.0 and self.n_jobs:
            self.busy_s += dt
            if self._fifo:  # the head job alone, at φ F (as _serving gives it)
                job = self._queues[0][0]
                done = min(self._rates[0] * dt, job.remaining)
                job.remaining -= done
                energy = self._joules[0] * done
                job.e_srv += energy
                self.energy_j += energy
            elif self._partitioned:
                queues, rates, joules = self._queues, self._rates, self._joules
                for c in self._busy:
                    job = queues[c][0]
                    done = min(rates[c] * dt, job.remaining)
                    job.remaining -= done
                    energy = joules[c] * done
                    job.e_srv += energy
                    self.energy_j += energy
            else:
                for job, rate, clock in (self._serving() if serving is None else serving):
                    done = min(rate * dt, job.remaining)
                    job.remaining -= done
                    energy = self.kappa * clock * clock * done
                    job.e_srv += energy
                    self.energy_j += energy
        self._t = now

    def _replan(self) -> None:
        self._version += 1
        if self._fifo:
            q, rate = self._queues[0], self._rates[0]
            if q and rate > 0.0:
                call_after(self.env, max(q[0].remaining / rate, 0.0), partial(self._fire, self._version))
            return
        best = math.inf
        if self._partitioned:
            queues, rates = self._queues, self._rates
            for c in self._busy:
                rate = rates[c]
                if rate > 0.0:
                    best = min(best, queues[c][0].remaining / rate)
        else:
            for job, rate, _ in self._serving():
                if rate > 0.0:
                    best = min(best, job.remaining / rate)
        if best < math.inf:
            call_after(self.env, max(best, 0.0), partial(self._fire, self._version))

    @staticmethod
    def _finished(job: Any, rate: float, now: float) -> bool:
        """Done: (almost) no work left, or so little that finishing it would not move the clock."""
        return job.remaining <= _DONE_RTOL * job.rx_cycles or (rate > 0.0 and now + job.remaining / rate <= now)

    def _fire(self, version: int, _event: simpy.Event) -> None:
        if version != self._version:
            return  # superseded by a later plan
        if self._fifo:
            q = self._queues[0]
            job = q[0]
            self._advance()
            if self._finished(job, self._rates[0], self.env._now):
                q.popleft()
                self.n_jobs -= 1
                self._replan()
                self.on_done(job)
            else:
                self._replan()
            return
        if self._partitioned:
            self._advance()
            now, queues, rates, busy = self.env._now, self._queues, self._rates, self._busy
            finished = [queues[c][0] for c in busy if self._finished(queues[c][0], rates[c], now)]
            for job in finished:
                q = queues[job.cpu_class]
                q.popleft()
                if not q:
                    busy.remove(job.cpu_class)
                self.n_jobs -= 1
        else:
            serving = self._serving()
            self._advance(serving)
            now = self.env._now
            finished = [job for job, rate, _ in serving if self._finished(job, rate, now)]
            partitioned = self._sliced
            for job in finished:
                q = self._queues[job.cpu_class if partitioned else 0]
                if q[0] is job:
                    q.popleft()
                else:
                    q.remove(job)
                if partitioned and not q:
                    self._busy.remove(job.cpu_class)
                self.n_jobs -= 1
        self._replan()
        for job in finished:
            self.on_done(job)

    # ---------------------------------------------------------------- changes
    def submit(self, job: Any) -> None:
        """A job arrives (its ``remaining`` cycles already set)."""
        q = self._queues[job.cpu_class if self._sliced else 0]
        if q and self._queued:
            q.append(job)  # waits behind its queue's head: nothing in service changes
            self.n_jobs += 1
            return
        self._advance()
        q.append(job)
        self.n_jobs += 1
        if self._sliced:
            insort(self._busy, job.cpu_class)
        self._replan()

    def set_shares(self, shares: Sequence[float]) -> None:
        """New slice shares (partitioned policy), one per class; a no-op when unchanged."""
        shares = [float(s) for s in shares]
        if shares == self.shares:
            return
        if len(shares) != len(self.shares) or any(s < 0 for s in shares) or sum(shares) > 1.0 + 1e-9:
            raise ValueError(f"shares must be {len(self.shares)} non-negative values summing to <= 1")
        self._advance()
        self.shares = shares
        self._speeds()
        self._replan()

    def _plan_boundary(self, t: float) -> None:
        nxt = self._slowdown.next_boundary(t)
        if nxt < math.inf:
            self.env.timeout(nxt - self.env.now).callbacks.append(partial(self._at_boundary, nxt))

    def _at_boundary(self, t: float, _event: simpy.Event) -> None:
        self._advance()
        self.factor = self._slowdown.value_at(t)
        self._speeds()
        self._replan()
        self._plan_boundary(t)

    def jobs(self) -> list[Any]:
        """Every job in the system (waiting or in service)."""
        return [job for q in self._queues for job in q]


__all__ = ["SharedCpu", "POLICIES"]
