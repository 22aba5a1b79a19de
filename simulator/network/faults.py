"""Fault intervals from the scenario (link outage, device off, server slowdown) and the time queries agents make.

Faults are known in advance (they come from the scenario), so agents do not need SimPy
interrupts: before starting a piece of work of duration ``d`` at time ``t`` an agent asks when
the next fault interval starts; if that is before ``t + d`` the work is cut there, its partial
cost is charged, and the work is redone after the interval ends. Intervals are half-open,
``[start_s, end_s)``, in simulated seconds.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Iterable, Sequence

from simulator.config import FaultsConfig

INF = math.inf


class IntervalSet:
    """Sorted, disjoint half-open intervals ``[start, end)`` of simulated time, each with a value.

    Parameters
    ----------
    intervals : iterable of (start_s, end_s) or (start_s, end_s, value)
        Disjoint intervals in any order; ``value`` defaults to 1.0 (slowdowns use it for the
        speed factor).

    Examples
    --------
    >>> s = IntervalSet([(1.0, 2.0), (5.0, 6.0)])
    >>> s.end_at(1.5), s.end_at(3.0), s.next_start(3.0)
    (2.0, 3.0, 5.0)
    """

    __slots__ = ("starts", "ends", "values")

    def __init__(self, intervals: Iterable[Sequence[float]] = ()):
        items = sorted((float(iv[0]), float(iv[1]), float(iv[2]) if len(iv) > 2 else 1.0) for iv in intervals)
        for (s0, e0, _), (s1, _, _) in zip(items, items[1:]):
            if s1 < e0:
                raise ValueError(f"intervals [{s0}, {e0}) and [{s1}, …) overlap")
        if any(e <= s for s, e, _ in items):
            raise ValueError("every interval needs end > start")
        self.starts = [s for s, _, _ in items]
        self.ends = [e for _, e, _ in items]
        self.values = [v for _, _, v in items]

    def __len__(self) -> int:
        return len(self.starts)

    def __bool__(self) -> bool:
        return bool(self.starts)

    def index_at(self, t: float) -> int:
        """Index of the interval containing ``t``, or −1."""
        i = bisect_right(self.starts, t) - 1
        return i if i >= 0 and t < self.ends[i] else -1

    def end_at(self, t: float) -> float:
        """End of the interval containing ``t``; ``t`` itself when no interval contains it."""
        i = self.index_at(t)
        return self.ends[i] if i >= 0 else t

    def next_start(self, t: float) -> float:
        """Start of the first interval that begins strictly after ``t`` (``inf`` when none)."""
        i = bisect_right(self.starts, t)
        return self.starts[i] if i < len(self.starts) else INF

    def next_interval(self, t: float) -> tuple[float, float]:
        """(start, end) of the first interval that begins strictly after ``t``; ``(inf, inf)`` when none."""
        i = bisect_right(self.starts, t)
        return (self.starts[i], self.ends[i]) if i < len(self.starts) else (INF, INF)

    def value_at(self, t: float, default: float = 1.0) -> float:
        i = self.index_at(t)
        return self.values[i] if i >= 0 else default

    def next_boundary(self, t: float) -> float:
        """First start or end strictly after ``t`` (``inf`` when none): when ``value_at`` may change."""
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and t < self.ends[i]:
            return self.ends[i]
        return self.starts[i + 1] if i + 1 < len(self.starts) else INF

    def covered_s(self, horizon_s: float) -> float:
        """Total length of the intervals inside ``[0, horizon_s)``."""
        return sum((max(0.0, min(e, horizon_s) - s) for s, e in zip(self.starts, self.ends)), 0.0)


@dataclass(frozen=True)
class FaultSchedule:
    """Every agent's fault intervals, indexed like the world's transmitter and receiver lists.

    Attributes
    ----------
    link_outage, device_off : list of IntervalSet
        One per transmitter.
    slowdown : list of IntervalSet
        One per receiver; each interval's value is the speed factor in ``[0, 1)``.
    """

    link_outage: list[IntervalSet]
    device_off: list[IntervalSet]
    slowdown: list[IntervalSet]

    @classmethod
    def from_config(cls, faults: FaultsConfig, tx_ids: Sequence[str], rx_ids: Sequence[str]) -> "FaultSchedule":
        def per_agent(items, key: str, ids: Sequence[str], with_value: bool) -> list[IntervalSet]:
            return [IntervalSet((f.start_s, f.end_s, f.factor) if with_value else (f.start_s, f.end_s)
                                for f in items if getattr(f, key) == agent) for agent in ids]

        return cls(per_agent(faults.link_outages, "transmitter", tx_ids, False),
                   per_agent(faults.device_off, "transmitter", tx_ids, False),
                   per_agent(faults.server_slowdowns, "receiver", rx_ids, True))


__all__ = ["IntervalSet", "FaultSchedule"]
