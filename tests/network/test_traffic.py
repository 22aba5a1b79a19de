"""Arrival processes: rates, gap laws and the bursty source's long-run rate."""

import math

import numpy as np
import pytest

from simulator.config import TrafficConfig
from simulator.network.traffic import ArrivalStream
from simulator.rng import SeedTree

Z = 4.0


def arrivals(cfg: dict, horizon_s: float, slot_s: float = 0.01, seed: str = "t"):
    stream = ArrivalStream(TrafficConfig.model_validate(cfg), slot_s, 100, SeedTree(5).child(seed).numpy())
    times, samples = [], []
    while not times or times[-1] < horizon_s:
        t, s = stream.next_chunk()
        times += t.tolist()
        samples += s.tolist()
    times, samples = np.array(times), np.array(samples)
    keep = times < horizon_s
    return times[keep], samples[keep], stream


def test_poisson_counts_and_exponential_gaps():
    lam, slot, n_slots = 3.0, 0.01, 20_000
    t, s, _ = arrivals({"kind": "poisson", "rate_per_slot": lam}, n_slots * slot)
    assert abs(len(t) - lam * n_slots) <= Z * math.sqrt(lam * n_slots)
    gaps = np.diff(t)
    assert np.all(gaps > 0)
    cv = gaps.std() / gaps.mean()  # 1 for the exponential law
    # Delta method for Exp: Var(s) ≈ 2/n, Var(m) = 1/n, Cov(s, m) ≈ 1/n, so sd(s/m) ≈ 1/sqrt(n).
    assert abs(cv - 1.0) < Z / math.sqrt(len(gaps))
    assert s.min() >= 0 and s.max() < 100


def test_deterministic_is_exactly_periodic():
    t, _, _ = arrivals({"kind": "deterministic", "rate_per_slot": 4.0}, 100.0)
    assert len(t) == 40_000
    assert np.allclose(np.diff(t), 0.0025, rtol=0, atol=1e-12) and t[0] == 0.0


def test_bursty_long_run_rate_and_burstiness():
    cfg = {"kind": "bursty", "rate_per_slot": 5.0, "mean_on_slots": 10.0, "mean_off_slots": 30.0}
    slot, n_batches, batch_slots = 0.01, 100, 4000
    t, _, stream = arrivals(cfg, n_batches * batch_slots * slot)
    assert stream.mean_rate_per_slot == pytest.approx(1.25)
    # Counts in long batches (100 on-off cycles each) are nearly independent: batch-means SE.
    counts = np.histogram(t, bins=n_batches, range=(0, n_batches * batch_slots * slot))[0] / batch_slots
    se = counts.std(ddof=1) / math.sqrt(n_batches)
    assert abs(counts.mean() - 1.25) <= Z * se
    per_slot = np.bincount((t / slot).astype(int), minlength=n_batches * batch_slots)
    assert per_slot.var() > 2 * per_slot.mean()  # overdispersed: not Poisson


def test_streams_are_reproducible_and_seed_dependent():
    a, _, _ = arrivals({"rate_per_slot": 1.0}, 10.0, seed="x")
    b, _, _ = arrivals({"rate_per_slot": 1.0}, 10.0, seed="x")
    c, _, _ = arrivals({"rate_per_slot": 1.0}, 10.0, seed="y")
    assert np.array_equal(a, b) and not np.array_equal(a, c)
