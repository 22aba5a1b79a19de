"""Task arrival processes of a transmitter (Poisson, deterministic, bursty on-off), generated in chunks.

Each task is a sample of the dataset's test split, drawn uniformly with replacement. Arrival
times are produced a chunk at a time (4096 at once, vectorized), so a long run keeps only the
current chunk in memory: as arrays, 12 bytes per arrival (48 KiB per device at most), and no
arrival past the run's end.
"""

from __future__ import annotations

import numpy as np

from simulator.config import TrafficConfig

_CHUNK = 4096


class ArrivalStream:
    """Absolute arrival times (s) of one transmitter's tasks and the test-split index of each.

    Models, with λ = ``rate_per_slot`` and slot length ``τ``:

    - ``poisson``: gaps i.i.d. exponential with mean ``τ/λ``;
    - ``deterministic``: one task every ``τ/λ`` seconds, the first at ``t = 0``;
    - ``bursty``: a two-state on-off source. On and off periods are exponential with means
      ``mean_on_slots · τ`` and ``mean_off_slots · τ``; during an on period tasks arrive as a
      Poisson process of rate λ per slot, during an off period none. The source starts in its
      stationary state (on with probability on/(on+off); exponential periods are memoryless, so
      the residual of the first period has the same law). Mean rate λ·on/(on+off) per slot.

    Parameters
    ----------
    cfg : TrafficConfig
    slot_s : float
        Slot length τ (s).
    n_samples : int
        Size of the test split (sample indices are drawn in ``0..n_samples-1``).
    generator : numpy.random.Generator
        This transmitter's own stream (from the seed tree).
    horizon_s : float, default inf
        No arrival at or after it is returned; once a chunk reaches it, the stream ends (empty
        chunks). A chunk is still drawn whole, so the arrivals before it do not depend on it.
    """

    def __init__(self, cfg: TrafficConfig, slot_s: float, n_samples: int, generator: np.random.Generator,
                 horizon_s: float = np.inf):
        self.cfg = cfg
        self.slot_s = float(slot_s)
        self.n_samples = int(n_samples)
        self.gen = generator
        self.horizon_s = float(horizon_s)
        self._ended = False
        self._t = 0.0  # poisson: last arrival; bursty: start of the next cycle
        self._k = 0  # deterministic: index of the next arrival
        self._first = True

    @property
    def mean_rate_per_slot(self) -> float:
        return self.cfg.mean_rate_per_slot

    def next_chunk(self) -> tuple[np.ndarray, np.ndarray]:
        """The next arrivals in time order: times (s, float64) and sample indices (int32), shape (n,).

        Empty once the horizon has been reached.
        """
        if self._ended:
            return np.empty(0), np.empty(0, dtype=np.int32)
        kind = self.cfg.kind
        times = (self._poisson() if kind == "poisson" else
                 self._deterministic() if kind == "deterministic" else self._bursty())
        samples = self.gen.integers(0, self.n_samples, size=len(times))
        if times[-1] >= self.horizon_s:
            self._ended = True
            keep = int(np.searchsorted(times, self.horizon_s))
            times, samples = times[:keep].copy(), samples[:keep]  # copies: the whole chunk is not kept
        return times, samples.astype(np.int32)

    def _poisson(self) -> np.ndarray:
        gaps = self.gen.exponential(self.slot_s / self.cfg.rate_per_slot, size=_CHUNK)
        times = self._t + np.cumsum(gaps)
        self._t = float(times[-1])
        return times

    def _deterministic(self) -> np.ndarray:
        period = self.slot_s / self.cfg.rate_per_slot
        times = (self._k + np.arange(_CHUNK, dtype=np.float64)) * period  # exact multiples, no drift
        self._k += _CHUNK
        return times

    def _bursty(self) -> np.ndarray:
        c, tau, gen = self.cfg, self.slot_s, self.gen
        while True:
            if self._first:
                self._first = False
                p_on = c.mean_on_slots / (c.mean_on_slots + c.mean_off_slots)
                if gen.random() >= p_on:  # stationary start in an off period
                    self._t += gen.exponential(c.mean_off_slots * tau)
            # Enough on-off cycles for about a chunk of arrivals (at least one cycle).
            n_cycles = max(1, int(_CHUNK / max(c.rate_per_slot * c.mean_on_slots, 1e-9)))
            n_cycles = min(n_cycles, _CHUNK)
            on = gen.exponential(c.mean_on_slots * tau, size=n_cycles)
            off = gen.exponential(c.mean_off_slots * tau, size=n_cycles)
            starts = self._t + np.concatenate(([0.0], np.cumsum(on + off)[:-1]))
            self._t = float(starts[-1] + on[-1] + off[-1])
            counts = gen.poisson(c.rate_per_slot * on / tau)
            u = gen.random(int(counts.sum()))
            times = np.sort(np.repeat(starts, counts) + np.repeat(on, counts) * u)
            if len(times):
                return times


__all__ = ["ArrivalStream"]
