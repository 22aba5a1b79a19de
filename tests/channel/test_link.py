"""Tests of the link budget: rates, power inversion, outage, finite-blocklength PER and ARQ."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.channel.fading import gain_trace
from simulator.channel.link import (
    arq,
    capacity_bps,
    channel_uses,
    empirical_outage_probability,
    fbl_error_probability,
    max_rate_bps,
    power_for_rate_w,
    rayleigh_outage_probability,
    snr,
)
from simulator.channel.pathloss import db_to_linear, noise_psd_w_hz
from simulator.rng import SeedTree

N0 = float(noise_psd_w_hz(-174.0))


def test_snr_and_capacity_values():
    gamma = snr(power_w=0.1, gain=1e-10, noise_psd_w_hz=N0, bandwidth_hz=1e6)
    assert gamma == pytest.approx(0.1 * 1e-10 / (N0 * 1e6), rel=1e-15)
    assert capacity_bps(3.0, 1e6) == pytest.approx(2e6, rel=1e-15)
    assert capacity_bps(3.0, 1e6, gap=3.0) == pytest.approx(1e6, rel=1e-15)


def test_power_for_rate_inverts_capacity_on_a_grid():
    rate = np.logspace(2, 8, 25)[:, None, None]
    gain = np.logspace(-14, -6, 9)[None, :, None]
    bandwidth = np.array([1e5, 1e6, 2e7])[None, None, :]
    for gap in (1.0, db_to_linear(6.0)):
        p = power_for_rate_w(rate, gain, N0, bandwidth, gap)
        achieved = capacity_bps(snr(p, gain, N0, bandwidth), bandwidth, gap)
        np.testing.assert_allclose(achieved, np.broadcast_to(rate, achieved.shape), rtol=1e-12)


@given(
    rate_per_hz=st.floats(1e-6, 30.0),
    gain_db=st.floats(-150.0, -40.0),
    bandwidth_hz=st.floats(1e3, 1e8),
    gap_db=st.floats(0.0, 10.0),
)
def test_power_for_rate_inverts_capacity(rate_per_hz, gain_db, bandwidth_hz, gap_db):
    rate, gain, gap = rate_per_hz * bandwidth_hz, db_to_linear(gain_db), db_to_linear(gap_db)
    p = power_for_rate_w(rate, gain, N0, bandwidth_hz, gap)
    assert capacity_bps(snr(p, gain, N0, bandwidth_hz), bandwidth_hz, gap) == pytest.approx(
        rate, rel=1e-12
    )


def test_max_rate_uses_max_power():
    gain, bandwidth = np.array([1e-12, 1e-10, 1e-8]), 1e6
    r_max = max_rate_bps(0.2, gain, N0, bandwidth)
    np.testing.assert_allclose(power_for_rate_w(r_max, gain, N0, bandwidth), 0.2, rtol=1e-12)
    assert power_for_rate_w(0.0, 0.0, N0, bandwidth) == 0.0
    assert power_for_rate_w(1e6, 0.0, N0, bandwidth) == np.inf


def test_rayleigh_outage_matches_simulation():
    n, bandwidth, mean_snr = 400_000, 1e6, db_to_linear(10.0)
    g = gain_trace("rayleigh", n, 1, SeedTree(5).child("outage").numpy())
    rates = np.array([0.5e6, 1e6, 2e6, 3e6, 4e6])
    theory = rayleigh_outage_probability(rates, bandwidth, mean_snr)
    np.testing.assert_allclose(theory, 1.0 - np.exp(-(2.0 ** (rates / bandwidth) - 1.0) / mean_snr))
    empirical = np.array(
        [empirical_outage_probability(r, bandwidth, mean_snr * g[:, 0]) for r in rates]
    )
    assert np.all(np.abs(empirical - theory) <= 5.0 * np.sqrt(theory * (1 - theory) / n))


def test_rayleigh_outage_with_gap_shifts_threshold():
    gap, mean_snr = db_to_linear(3.0), 20.0
    assert rayleigh_outage_probability(2e6, 1e6, mean_snr, gap) == pytest.approx(
        rayleigh_outage_probability(2e6, 1e6, mean_snr / gap), rel=1e-12
    )


def test_empirical_outage_per_link():
    trace = np.array([[1.0, 10.0], [3.0, 0.1], [0.5, 7.0], [15.0, 15.0]])
    out = empirical_outage_probability(1e6, 1e6, trace)  # threshold SNR = 1
    np.testing.assert_array_equal(out, [0.25, 0.25])


def test_fbl_reference_value():
    # gamma = 1: C = 1 bit/use, V = 3/4 log2(e)^2; n = 1000, k = 900.
    n, k = 1000, 900
    arg = (n - k + 0.5 * math.log2(n)) / math.sqrt(n * 0.75 / math.log(2) ** 2)
    expected = 0.5 * math.erfc(arg / math.sqrt(2))
    assert fbl_error_probability(1.0, n, k) == pytest.approx(expected, rel=1e-10)


def test_fbl_decreases_with_blocklength_below_capacity_and_tends_to_one_above():
    gamma = db_to_linear(5.0)
    capacity = math.log2(1 + gamma)
    n = np.array([100, 200, 500, 1000, 2000, 5000, 10000])
    below = fbl_error_probability(gamma, n, 0.8 * capacity * n)
    above = fbl_error_probability(gamma, n, 1.1 * capacity * n)
    # Non-strict where float64 saturates at 0 or 1.
    assert np.all(np.diff(below) <= 0) and below[0] > 1e-4 > 1e-10 > below[-1]
    assert np.all(np.diff(above) >= 0) and above[0] < 0.9 < 1.0 - 1e-10 < above[-1]
    assert fbl_error_probability(0.0, 500, 10) == 1.0


def test_fbl_decreases_with_snr():
    eps = fbl_error_probability(np.logspace(-1, 2, 20), 500, 400)
    assert np.all(np.diff(eps) <= 0)


def test_channel_uses():
    assert channel_uses(1e6, 2e-3) == pytest.approx(2000.0)


def _truncated_geometric(eps, max_attempts):
    """Exact mean and variance of attempts = min(N, M), P[N > j] = eps^j."""
    j = np.arange(1, max_attempts + 1)
    pmf = eps ** (j - 1) * (1 - eps)
    pmf[-1] = eps ** (max_attempts - 1)
    mean = np.sum(j * pmf)
    return mean, np.sum(j**2 * pmf) - mean**2


def test_arq_statistics():
    n, eps, max_attempts = 200_000, 0.3, 4
    out = arq(np.full(n, eps), 1e-3, 0.1, max_attempts, SeedTree(5).child("arq").numpy())
    p_success = 1 - eps**max_attempts
    assert abs(out.success.mean() - p_success) <= 5 * math.sqrt(p_success * (1 - p_success) / n)
    mean, var = _truncated_geometric(eps, max_attempts)
    assert abs(out.attempts.mean() - mean) <= 5 * math.sqrt(var / n)
    assert out.attempts.min() == 1 and out.attempts.max() == max_attempts
    assert out.success[out.attempts < max_attempts].all()
    np.testing.assert_allclose(out.airtime_s, out.attempts * 1e-3, rtol=1e-15)
    np.testing.assert_allclose(out.energy_j, out.attempts * 1e-3 * 0.1, rtol=1e-15)


def test_arq_extremes_and_broadcasting():
    gen = SeedTree(5).child("arq-extremes").numpy()
    out = arq([0.0, 1.0, 0.0], np.array([1e-3, 2e-3, 3e-3]), 0.5, 3, gen)
    np.testing.assert_array_equal(out.attempts, [1, 3, 1])
    np.testing.assert_array_equal(out.success, [True, False, True])
    np.testing.assert_allclose(out.energy_j, [0.5e-3, 3e-3, 1.5e-3])
    once = arq(np.full(1000, 0.5), 1e-3, 1.0, 1, gen)
    assert (once.attempts == 1).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda: snr(0.1, 1e-10, N0, -1e6),
        lambda: capacity_bps(1.0, 0.0),
        lambda: capacity_bps(-1.0, 1e6),
        lambda: capacity_bps(1.0, 1e6, gap=0.5),
        lambda: power_for_rate_w(-1.0, 1e-10, N0, 1e6),
        lambda: rayleigh_outage_probability(1e6, 1e6, 0.0),
        lambda: fbl_error_probability(1.0, 0.5, 10),
        lambda: arq(1.5, 1e-3, 0.1, 3, SeedTree(0).numpy()),
        lambda: arq(0.1, 1e-3, 0.1, 0, SeedTree(0).numpy()),
    ],
)
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
