"""Light SimPy events: a callback put on the environment's queue without an Event object's bookkeeping.

SimPy's ``Environment.step`` pops ``(time, priority, id, event)`` from its heap, calls each of
``event.callbacks`` with the event and checks ``event._ok``; a :class:`Mark` has just those
attributes (and ``_value``, so a process may wait on one). The world schedules one per arrival,
per attempt end and per server completion: a ``Timeout`` would check its delay, hold the
environment and build its callbacks list through ``Event.__init__``, about a microsecond more
each. Marks are scheduled exactly as SimPy schedules a timeout (``now + delay``, or an absolute
time, with the next insertion id), so the order of events — ties included — is SimPy's.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, Callable

import simpy
from simpy.core import NORMAL, EmptySchedule


class Mark:
    """An already-triggered event (value None) waiting on the queue; ``callbacks`` as SimPy's."""

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self, callback: Callable[[Any], None] | None = None):
        self.callbacks = [] if callback is None else [callback]
        self._ok = True
        self._value = None


def after(env: simpy.Environment, delay: float, callback: Callable[[Any], None] | None = None) -> Mark:
    """A :class:`Mark` that fires ``delay`` seconds from now (at ``now + delay``, as ``env.timeout``)."""
    mark = Mark(callback)
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), mark))
    return mark


def at(env: simpy.Environment, t: float, callback: Callable[[Any], None] | None = None) -> Mark:
    """A :class:`Mark` that fires at exactly ``t`` (≥ now), normal priority, after the events already due then."""
    mark = Mark(callback)
    heappush(env._queue, (t, NORMAL, next(env._eid), mark))
    return mark


def run_while(env: simpy.Environment, running: Callable[[], bool]) -> None:
    """``env.step()`` while ``running()``: the same steps, without a method call and a ``try`` per event."""
    queue = env._queue
    while running():
        if not queue:
            raise EmptySchedule()
        env._now, _, _, event = heappop(queue)
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc


__all__ = ["Mark", "after", "at", "run_while"]
