"""Light SimPy events: a callback put on the environment's queue without an Event object's bookkeeping.

SimPy's ``Environment.step`` pops ``(time, priority, id, event)`` from its heap, calls each of
``event.callbacks`` with the event and checks ``event._ok``; a :class:`Mark` has just those
attributes (and ``_value``, so a process may wait on one). The world schedules one per arrival
(the idle device waits on it too): a ``Timeout`` would check its delay, hold the environment and
build its callbacks list through ``Event.__init__``, about a microsecond more each. Where nothing
else waits — an attempt's end, a server's completion — not even a Mark is made: the callback
itself (a bound method or a ``functools.partial``) goes on the queue (:func:`call_at`,
:func:`call_after`), and :func:`run_while` calls it. Both are keyed exactly as SimPy keys a
timeout (``now + delay``, or an absolute time, with the next insertion id), so the order of
events — ties included — is SimPy's. A queue holding such calls is run by :func:`run_while` only:
SimPy's own ``step`` would take a call for an event.
"""

from __future__ import annotations

from functools import partial
from heapq import heappop, heappush
from types import MethodType
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


def call_after(env: simpy.Environment, delay: float, call: Callable[[None], None]) -> None:
    """Call ``call(None)`` ``delay`` seconds from now, as :func:`after` would with it as the callback.

    What goes on the queue is ``call`` itself (a bound method or a ``functools.partial``), with the
    key a :class:`Mark` would have: no event object is made, and nothing else can wait on it.
    Any other callable is refused (TypeError): :func:`run_while` would take it for an event.
    """
    if call.__class__ is not MethodType and call.__class__ is not partial:
        raise TypeError(f"call_after needs a bound method or a functools.partial, got {type(call).__name__}")
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), call))


def call_at(env: simpy.Environment, t: float, call: Callable[[None], None]) -> None:
    """Call ``call(None)`` at exactly ``t`` (≥ now), as :func:`at` would with it as the callback (see :func:`call_after`)."""
    if call.__class__ is not MethodType and call.__class__ is not partial:
        raise TypeError(f"call_at needs a bound method or a functools.partial, got {type(call).__name__}")
    heappush(env._queue, (t, NORMAL, next(env._eid), call))


def run_while(env: simpy.Environment, running: Callable[[], bool]) -> None:
    """``env.step()`` while ``running()``: the same steps, without a method call and a ``try`` per event."""
    queue = env._queue
    while running():
        if not queue:
            raise EmptySchedule()
        env._now, _, _, event = heappop(queue)
        kind = event.__class__
        if kind is MethodType or kind is partial:  # queued by call_after / call_at
            event(None)
            continue
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc


__all__ = ["Mark", "after", "at", "call_after", "call_at", "run_while"]
