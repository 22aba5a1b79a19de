"""Closed forms of the per-slot controller against independent numerical minimizers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from simulator.channel.link import max_rate_bps
from simulator.control.closed_form import (
    _cubic_root,
    _one_plus_w0,
    optimal_cpu_frequency,
    optimal_rate,
    optimal_server_frequencies,
    server_frequency_at_price,
)
from simulator.rng import SeedTree

LN2 = np.log(2.0)


def _rng(name: str) -> np.random.Generator:
    return SeedTree(2024).child("tests", "control", name).numpy()


def _log_uniform(rng, lo_exp, hi_exp, size):
    return 10.0 ** rng.uniform(lo_exp, hi_exp, size)


def _argmin_log(fun, lo, hi):
    """Numerical argmin of ``fun`` on [lo, hi] (0 < lo < hi): Brent, polish, endpoints.

    Brent's bounded method runs on u = ln x. Its stopping tolerance is ~sqrt(eps)·|u|
    (scipy), i.e. ~3e-7 relative in x for x ~ 1e9, so a second Brent run on a window of
    ±1e-4 around the first result, in the shifted variable u − u₁ (|u − u₁| small, so the
    tolerance falls to ~1e-12), polishes it. The endpoints are candidates too: a clipped
    optimum sits exactly on a bound, where Brent only gets within its tolerance.
    """
    u_lo, u_hi = np.log(lo), np.log(hi)
    opts = {"xatol": 1e-12, "maxiter": 5000}
    u1 = minimize_scalar(lambda u: fun(np.exp(u)), bounds=(u_lo, u_hi), method="bounded",
                         options=opts).x
    w_lo, w_hi = max(u_lo - u1, -1e-4), min(u_hi - u1, 1e-4)
    du = minimize_scalar(lambda d: fun(np.exp(u1 + d)), bounds=(w_lo, w_hi), method="bounded",
                         options=opts).x
    candidates = [float(np.exp(u1 + du)), float(lo), float(hi)]
    return min(candidates, key=fun)


def _assert_argmin_close(x_cf, x_num, f, rtol=1e-6):
    """The closed form's argmin is within ``rtol`` of the numerical one and never worse.

    Both checks: the argmin comparison is the real test; the objective comparison guards the
    rare flat case (objective curvature so low that Brent stops farther than rtol away), where
    the closed form must then be at least as good as the numerical point, to rounding.
    """
    f_cf, f_num = f(x_cf), f(x_num)
    assert f_cf <= f_num + 1e-12 * abs(f_num), (x_cf, x_num, f_cf, f_num)
    assert abs(x_cf - x_num) <= rtol * x_cf, (x_cf, x_num)


def test_optimal_rate_matches_numerical_minimizer():
    rng = _rng("rate")
    n = 300
    v = _log_uniform(rng, -2, 4, n)
    z = _log_uniform(rng, -4, 4, n)
    n0 = _log_uniform(rng, -21, -19, n)
    b = _log_uniform(rng, 4, 7, n)
    g = _log_uniform(rng, -14, -8, n)
    p_max = _log_uniform(rng, -2, 0, n)
    r_max = max_rate_bps(p_max, g, n0, b)
    r_min = np.minimum(_log_uniform(rng, -1, 3, n), 1e-3 * r_max)
    n_bits = _log_uniform(rng, 2, 5, n)
    r_cf = optimal_rate(v, z, n0, b, g, r_min, r_max)
    interior = 0
    for i in range(n):
        c = n0[i] * b[i] / g[i]

        def cost(r, i=i, c=c):  # V E + Z L for an N-bit payload
            return n_bits[i] * (v[i] * c * np.expm1(r * LN2 / b[i]) + z[i]) / r

        r_num = _argmin_log(cost, r_min[i], r_max[i])
        _assert_argmin_close(r_cf[i], r_num, cost)
        interior += r_min[i] * 1.001 < r_cf[i] < r_max[i] / 1.001
    # the draw must exercise the Lambert-W branch, not only the clipping
    assert interior >= n // 3


def _expm1_minus_x(x: float) -> float:
    """e^x − 1 − x without cancellation (series below 0.1)."""
    if x >= 0.1:
        return float(np.expm1(x) - x)
    term, total = x * x / 2.0, 0.0
    for k in range(3, 30):
        total += term
        term *= x / k
    return total


def test_optimal_rate_tiny_and_huge_a():
    """a = Z/(Vc) from 1e-12 (branch-point series) to 1e10, without clipping.

    The reference minimizes ψ(x) − 1 = (e^x − 1 − x + a)/x in x = R ln2/B rather than
    ψ(x) = (e^x − 1 + a)/x itself: for small a, ψ ≈ 1 + sqrt(2a) near its minimum, so the
    constant 1 would leave only ~sqrt(eps / sqrt(2a)) relative resolution of the argmin from
    function values (5e-6 at a = 1e-12). Subtracting the constant (an identity, computed
    without cancellation) restores a well-conditioned reference.
    """
    rng = _rng("rate-a")
    a = _log_uniform(rng, -12, 10, 200)
    b, c = 1e6, 1.0  # c = N0 B / g = 1 W
    r_cf = optimal_rate(1.0, a, c / b, b, 1.0, 1e-300, 1e300)  # V = 1, Z = a
    x_cf = r_cf * LN2 / b
    for i in range(a.size):

        def excess(x, i=i):
            return (_expm1_minus_x(x) + a[i]) / x

        x_num = _argmin_log(excess, x_cf[i] / 50.0, min(x_cf[i] * 50.0, 600.0))
        _assert_argmin_close(x_cf[i], x_num, excess)


def test_lambert_w_branch_series_against_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    a = np.concatenate([10.0 ** np.linspace(-15, 12, 120), [2.9e-4, 3e-4, 3.1e-4]])
    got = _one_plus_w0(a)
    want = np.array([float(1 + mp.lambertw((mp.mpf(x) - 1) / mp.e)) for x in a])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_optimal_rate_edge_cases():
    n0, b, g = 4e-21, 1e6, 1e-10
    r_max = float(max_rate_bps(0.2, g, n0, b))
    # Z = 0: energy per bit increases with R, delay is free -> the lowest rate
    assert optimal_rate(1.0, 0.0, n0, b, g, 10.0, r_max) == 10.0
    # huge Z: delay dominates -> full power
    assert optimal_rate(1.0, 1e30, n0, b, g, 10.0, r_max) == r_max
    # V = 0 with a backlog: energy is free
    assert optimal_rate(0.0, 1.0, n0, b, g, 10.0, r_max) == r_max
    assert optimal_rate(0.0, 0.0, n0, b, g, 10.0, r_max) == 10.0
    # no feasible rate
    assert np.isnan(optimal_rate(1.0, 1.0, n0, b, g, 10.0, 5.0))
    # deep fade: R_max ~ 0 < R_min
    tiny = float(max_rate_bps(0.2, 1e-30, n0, b))
    assert tiny < 1e-6 and np.isnan(optimal_rate(1.0, 1.0, n0, b, 1e-30, 1.0, tiny))
    # broadcasting over (devices, options)
    out = optimal_rate(1.0, np.array([[0.1], [10.0]]), n0, b, g, np.ones((1, 3)), r_max)
    assert out.shape == (2, 3)


def test_optimal_cpu_frequency_matches_numerical_minimizer():
    rng = _rng("cpu")
    n = 300
    v = _log_uniform(rng, -2, 4, n)
    z = _log_uniform(rng, -6, 4, n)
    kappa = _log_uniform(rng, -29, -26, n)
    f_min = _log_uniform(rng, 7, 8.5, n)
    f_max = f_min * _log_uniform(rng, 0.3, 2.5, n)
    w = _log_uniform(rng, 5, 9, n)
    f_cf = optimal_cpu_frequency(v, z, kappa, f_min, f_max)
    interior = 0
    for i in range(n):

        def cost(f, i=i):
            return w[i] * (v[i] * kappa[i] * f * f + z[i] / f)

        _assert_argmin_close(f_cf[i], _argmin_log(cost, f_min[i], f_max[i]), cost)
        interior += f_min[i] * 1.001 < f_cf[i] < f_max[i] / 1.001
    assert interior >= n // 4


def test_optimal_cpu_frequency_edges():
    assert optimal_cpu_frequency(1.0, 0.0, 1e-28, 1e8, 2e9) == 1e8
    assert optimal_cpu_frequency(1.0, 1e30, 1e-28, 1e8, 2e9) == 2e9
    assert optimal_cpu_frequency(0.0, 1.0, 1e-28, 1e8, 2e9) == 2e9
    np.testing.assert_allclose(optimal_cpu_frequency(1.0, 2e-28 * 1e27, 1e-28, 1e8, 2e9), 1e9)


def test_cubic_root_to_1e12():
    rng = _rng("cubic")
    n = 20000
    a = _log_uniform(rng, -35, -10, n)
    b = _log_uniform(rng, -4, 10, n)
    lam = _log_uniform(rng, -20, -4, n)
    x = _cubic_root(a, b, lam)
    # relative residual of the equation; each term is positive, so this is a relative error
    res = np.abs(a * x**3 + lam * x**2 - b) / b
    assert np.max(res) <= 1e-12
    # closed-form limits
    np.testing.assert_allclose(_cubic_root(a, b, np.zeros(n)), np.cbrt(b / a), rtol=1e-14)
    np.testing.assert_allclose(_cubic_root(np.zeros(n), b, lam), np.sqrt(b / lam), rtol=1e-14)
    assert _cubic_root(np.array(1.0), np.array(0.0), np.array(1.0)) == 0.0
    assert np.isinf(_cubic_root(np.array(0.0), np.array(1.0), np.array(0.0)))


def test_server_frequency_at_price_matches_numerical_minimizer():
    rng = _rng("server-price")
    n = 250
    v = _log_uniform(rng, -1, 3, n)
    z = _log_uniform(rng, -3, 3, n)
    kappa = _log_uniform(rng, -29, -27, n)
    w = _log_uniform(rng, 5, 8, n)
    lam = np.where(rng.random(n) < 0.2, 0.0, _log_uniform(rng, -16, -8, n))
    x_cf = server_frequency_at_price(v, z, kappa, w, lam)
    for i in range(n):

        def cost(x, i=i):
            return v[i] * kappa[i] * x * x * w[i] + z[i] * w[i] / x + lam[i] * x

        _assert_argmin_close(x_cf[i], _argmin_log(cost, x_cf[i] / 1e3, x_cf[i] * 1e3), cost)
    # the floor is exact clipping of a convex function
    floor = 2.0 * x_cf
    np.testing.assert_array_equal(server_frequency_at_price(v, z, kappa, w, lam, floor), floor)


def _kkt_reference(v, z, kappa, w, cap, idx, f_min):
    """Independent KKT solution: np.roots for each device's cubic, brentq on each price."""
    x = np.zeros(z.size)

    def response(i, lam):
        roots = np.roots([2 * v * kappa * w[i], lam, 0.0, -z[i] * w[i]])
        real = roots[(np.abs(roots.imag) <= 1e-9 * np.abs(roots)) & (roots.real > 0)].real
        return max(f_min, float(real.max()))

    prices = np.zeros(cap.size)
    for j in range(cap.size):
        members = np.flatnonzero(idx == j)
        if members.size == 0:
            continue
        free = [response(i, 0.0) for i in members] if kappa > 0 else [np.inf]
        if sum(free) <= cap[j]:
            x[members] = free
            continue
        lo, hi = 1e-30, 1.0
        while sum(response(i, hi) for i in members) > cap[j]:
            hi *= 10.0
        lam = brentq(
            lambda l: sum(response(i, l) for i in members) - cap[j], lo, hi, xtol=1e-300,
            rtol=1e-15, maxiter=500,
        )
        prices[j] = lam
        x[members] = [response(i, lam) for i in members]
    return x, prices


@pytest.mark.parametrize("kappa", [1e-28, 0.0])
def test_optimal_server_frequencies_match_reference(kappa):
    rng = _rng(f"kkt-{kappa}")
    for trial in range(40):
        n = int(rng.integers(2, 7))
        n_srv = int(rng.integers(1, 4))
        z = _log_uniform(rng, -2, 2, n)
        w = _log_uniform(rng, 5, 8, n)
        idx = rng.integers(0, n_srv, n)
        # capacities from "ample" to "tight" relative to the unconstrained demand
        free = np.cbrt(z / (2 * kappa)) if kappa > 0 else np.full(n, 1e9)
        demand = np.bincount(idx, weights=free, minlength=n_srv)
        cap = np.maximum(demand, 1e6) * _log_uniform(rng, -2, 0.5, n_srv)
        f_min = float(rng.choice([0.0, 1e-3 * cap.min() / n]))
        x, price = optimal_server_frequencies(1.0, z, kappa, w, cap, idx, f_min)
        x_ref, price_ref = _kkt_reference(1.0, z, kappa, w, cap, idx, f_min)
        np.testing.assert_allclose(x, x_ref, rtol=1e-9)
        np.testing.assert_allclose(price, price_ref, rtol=1e-7, atol=0)
        used = np.bincount(idx, weights=x, minlength=n_srv)
        assert np.all(used <= cap)
        assert np.all(x >= f_min)


def test_server_square_root_rule_without_server_energy():
    rng = _rng("sqrt-rule")
    z = _log_uniform(rng, -2, 2, 8)
    w = _log_uniform(rng, 5, 8, 8)
    x, price = optimal_server_frequencies(1.0, z, 0.0, w, 1e10)
    np.testing.assert_allclose(x, 1e10 * np.sqrt(z * w) / np.sqrt(z * w).sum(), rtol=1e-12)
    np.testing.assert_allclose(price, (np.sqrt(z * w).sum() / 1e10) ** 2, rtol=1e-12)


def test_server_frequencies_uncoupled_when_capacity_is_ample():
    z = np.array([0.0, 1e-3, 1.0, 1e3])
    x, price = optimal_server_frequencies(1.0, z, 1e-28, 1e6, 1e15, f_min_hz=1e3)
    np.testing.assert_allclose(x, np.maximum(np.cbrt(z / 2e-28), 1e3), rtol=1e-15)
    assert price[0] == 0.0
    with pytest.raises(ValueError):
        optimal_server_frequencies(1.0, z, 1e-28, 1e6, 1e3, f_min_hz=1e3)
