"""Statistical tests of the fading models against their theoretical laws."""

import math

import numpy as np
import pytest
from scipy import special, stats

from simulator.channel.fading import fading_trace, gain_trace, jakes_rho
from simulator.rng import SeedTree

KS_ALPHA = 1e-3  # a fixed-seed KS test rejects a correct law with probability 1e-3


def _gen(*names):
    return SeedTree(2024).child("fading", *names).numpy()


def _mean_with_se(samples):
    """Mean and standard error of i.i.d. samples (one per independent link)."""
    samples = np.asarray(samples)
    return samples.mean(), samples.std(ddof=1) / math.sqrt(samples.size)


@pytest.mark.parametrize("rho", [0.0, 0.95])
@pytest.mark.parametrize(
    "model, kwargs",
    [
        ("none", {}),
        ("rayleigh", {}),
        ("rician", {"k_factor": 0.0}),
        ("rician", {"k_factor": 4.0}),
        ("nakagami", {"m": 0.5}),
        ("nakagami", {"m": 2.5}),
    ],
)
def test_unit_mean_power(model, kwargs, rho):
    n_slots, n_links = 50, 4000
    g = gain_trace(model, n_slots, n_links, _gen(model, rho), rho=rho, **kwargs)
    assert g.shape == (n_slots, n_links) and g.dtype == np.float64
    # Links are independent, so per-link time averages are i.i.d. samples.
    mean, se = _mean_with_se(g.mean(axis=0))
    assert abs(mean - 1.0) <= 5.0 * se + 1e-12
    # Stationary from the first slot on, also for AR(1).
    for t in (0, n_slots - 1):
        mean, se = _mean_with_se(g[t])
        assert abs(mean - 1.0) <= 5.0 * se + 1e-12


def test_rayleigh_is_circular_complex_gaussian():
    n = 200_000
    h = fading_trace("rayleigh", n, 1, _gen("circular"))[:, 0]
    var_sd = 0.5 * math.sqrt(2.0 / (n - 1))  # sd of the sample variance of N(0, 1/2)
    assert abs(h.real.var(ddof=1) - 0.5) <= 5.0 * var_sd
    assert abs(h.imag.var(ddof=1) - 0.5) <= 5.0 * var_sd
    # Covariance of independent N(0, 1/2) parts: sd of the estimate is 1/2 / sqrt(n).
    assert abs(np.mean(h.real * h.imag)) <= 5.0 * 0.5 / math.sqrt(n)
    assert stats.kstest(np.abs(h) ** 2, stats.expon().cdf).pvalue > KS_ALPHA


@pytest.mark.parametrize("k_factor", [0.5, 3.0, 10.0])
@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_rician_amplitude_matches_scipy_rice(k_factor, rho):
    law = stats.rice(b=math.sqrt(2.0 * k_factor), scale=math.sqrt(1.0 / (2.0 * (k_factor + 1.0))))
    # One slot per link (independent samples), taken late in an AR(1) trace.
    h = fading_trace("rician", 3, 20_000, _gen("rice", k_factor, rho), k_factor=k_factor, rho=rho)
    assert stats.kstest(np.abs(h[-1]), law.cdf).pvalue > KS_ALPHA


@pytest.mark.parametrize("m", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_nakagami_power_is_gamma_and_phase_uniform(m, rho):
    h = fading_trace("nakagami", 3, 20_000, _gen("nakagami", m, rho), m=m, rho=rho)[-1]
    assert stats.kstest(np.abs(h) ** 2, stats.gamma(a=m, scale=1.0 / m).cdf).pvalue > KS_ALPHA
    assert stats.kstest(np.angle(h), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > KS_ALPHA


def test_nakagami_m1_is_the_rayleigh_process():
    kwargs = dict(n_slots=100, n_links=50, rho=0.8)
    h_rayleigh = fading_trace("rayleigh", generator=_gen("same"), **kwargs)
    h_nakagami = fading_trace("nakagami", generator=_gen("same"), m=1.0, **kwargs)
    np.testing.assert_allclose(h_nakagami, h_rayleigh, rtol=1e-9, atol=1e-12)


def test_jakes_rho_is_bessel_j0():
    assert jakes_rho(0.0, 1e-3) == 1.0
    assert jakes_rho(100.0, 1e-3) == pytest.approx(special.j0(2 * math.pi * 0.1), rel=1e-15)


@pytest.mark.parametrize("doppler_hz, slot_s", [(30.0, 1e-3), (10.0, 0.05), (500.0, 1e-3)])
def test_ar1_correlation_is_jakes(doppler_hz, slot_s):
    rho = jakes_rho(doppler_hz, slot_s)
    n_slots, n_links = 40, 10_000
    h = fading_trace("rayleigh", n_slots, n_links, _gen("ar1", doppler_hz), rho=rho)
    for lag in (1, 3):
        # E[h_t h*_{t-lag}] = rho^lag; per-link time averages are independent across links.
        per_link = np.mean(h[lag:] * np.conj(h[:-lag]), axis=0)
        mean_re, se_re = _mean_with_se(per_link.real)
        mean_im, se_im = _mean_with_se(per_link.imag)
        assert abs(mean_re - rho**lag) <= 5.0 * se_re
        assert abs(mean_im) <= 5.0 * se_im


def test_rician_ar1_correlates_only_the_scattered_part():
    k_factor, rho = 3.0, jakes_rho(50.0, 2e-3)
    h = fading_trace("rician", 40, 10_000, _gen("rician-ar1"), k_factor=k_factor, rho=rho)
    los = math.sqrt(k_factor / (k_factor + 1.0))
    scatter = h - los
    mean, se = _mean_with_se(scatter.real.mean(axis=0))
    assert abs(mean) <= 5.0 * se  # LOS kept, scatter zero-mean
    per_link = np.mean(scatter[1:] * np.conj(scatter[:-1]), axis=0)
    mean, se = _mean_with_se(per_link.real)
    assert abs(mean - rho / (k_factor + 1.0)) <= 5.0 * se


def test_block_fading_is_uncorrelated_across_slots():
    h = fading_trace("rayleigh", 40, 10_000, _gen("iid"))
    per_link = np.mean(h[1:] * np.conj(h[:-1]), axis=0)
    mean, se = _mean_with_se(per_link.real)
    assert abs(mean) <= 5.0 * se


def test_same_generator_state_gives_same_trace():
    a = gain_trace("rician", 20, 3, _gen("repro"), k_factor=2.0, rho=0.5)
    b = gain_trace("rician", 20, 3, _gen("repro"), k_factor=2.0, rho=0.5)
    c = gain_trace("rician", 20, 3, _gen("other"), k_factor=2.0, rho=0.5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_none_is_one():
    np.testing.assert_array_equal(fading_trace("none", 3, 2, _gen("none")), np.ones((3, 2)))


@pytest.mark.parametrize(
    "model, kwargs",
    [
        ("rayleighh", {}),
        ("rician", {"k_factor": -0.1}),
        ("nakagami", {"m": 0.3}),
        ("rayleigh", {"rho": 1.5}),
        ("rayleigh", {"rho": float("nan")}),
        ("rayleigh", {"n_slots": 0}),
    ],
)
def test_invalid_parameters_raise(model, kwargs):
    args = dict(n_slots=10, n_links=2, generator=_gen("bad"))
    args.update(kwargs)
    with pytest.raises(ValueError):
        fading_trace(model, **args)


def test_jakes_rho_validation():
    with pytest.raises(ValueError):
        jakes_rho(-1.0, 1e-3)
    with pytest.raises(ValueError):
        jakes_rho(10.0, 0.0)
