"""Baseline policies against brute force: each does what its docstring claims."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from simulator.channel.link import max_rate_bps
from simulator.control.baselines import (
    BASELINES,
    GreedyPolicy,
    MinEnergyPolicy,
    greedy_decision,
    least_energy_within_deadline,
    make_baseline,
    max_accuracy_decision,
    min_energy_decision,
    static_decision,
)
from simulator.control.lyapunov import LyapunovController
from simulator.errors import ScenarioError
from simulator.rng import SeedTree

LN2 = np.log(2.0)


def _rng(name: str) -> np.random.Generator:
    return SeedTree(2024).child("tests", "control", "baselines", name).numpy()


def _slot(rng, n, m, *, servers=1, per_device_accuracy=False):
    """Random per-slot inputs (solve_slot's keyword arguments without V and the queues)."""
    return dict(
        gain=10.0 ** rng.uniform(-12, -9.5, n),
        noise_psd_w_hz=4e-21,
        bandwidth_hz=10.0 ** rng.uniform(5, 6, n),
        max_power_w=0.2,
        payload_bits=rng.integers(64, 4096, m).astype(float),
        tx_cycles=10.0 ** rng.uniform(5, 7, m),
        rx_cycles=10.0 ** rng.uniform(4, 6.5, m),
        accuracy=rng.uniform(0.5, 0.97, (n, m) if per_device_accuracy else m),
        kappa_device=1e-28,
        f_min_hz=1e8,
        f_max_hz=2e9,
        kappa_server=1e-28,
        server_freq_hz=np.full(servers, 4e9),
        server_index=np.arange(n) % servers,
        server_freq_min_hz=1e6,
        r_min_bps=100.0,
    )


def _x_cap(p):
    counts = np.bincount(p["server_index"], minlength=p["server_freq_hz"].size)
    return p["server_freq_hz"][p["server_index"]] / counts[p["server_index"]]


def _model(p, i, o, rate, f, x):
    """Energy and delay of device i, option o at (R, f, x), written out from DESIGN §2."""
    c = p["noise_psd_w_hz"] * p["bandwidth_hz"][i] / p["gain"][i]
    power = c * (2.0 ** (rate / p["bandwidth_hz"][i]) - 1.0)
    n_bits, w_tx, w_rx = p["payload_bits"][o], p["tx_cycles"][o], p["rx_cycles"][o]
    energy = power * n_bits / rate + 1e-28 * f * f * w_tx + 1e-28 * x * x * w_rx
    return energy, n_bits / rate + w_tx / f + w_rx / x


def _brute_deadline(p, deadline):
    """Least energy within the deadline per (device, option), by SLSQP in log variables.

    Independent of the closed forms: minimizes E(R, f, x) subject to L ≤ D over the box in
    u = ln(R/R_max), ln(f/f_max), ln(x/x_cap) (the problem is convex in these), starting from
    full speed. Returns energies (inf where full speed misses D) and the full-speed delays.
    """
    n, m = p["gain"].size, p["payload_bits"].size
    r_max = max_rate_bps(p["max_power_w"], p["gain"], p["noise_psd_w_hz"], p["bandwidth_hz"])
    x_cap = _x_cap(p)
    energy = np.full((n, m), np.inf)
    fastest = np.empty((n, m))
    for i in range(n):
        top = np.array([r_max[i], p["f_max_hz"], x_cap[i]])
        bottom = np.array([p["r_min_bps"], p["f_min_hz"], p["server_freq_min_hz"]])
        for o in range(m):
            e_top, fastest[i, o] = _model(p, i, o, *top)
            if fastest[i, o] > deadline:
                continue

            def obj(u, i=i, o=o, top=top, e_top=e_top):
                return _model(p, i, o, *(top * np.exp(u)))[0] / e_top

            def slack(u, i=i, o=o, top=top):
                return 1.0 - _model(p, i, o, *(top * np.exp(u)))[1] / deadline

            res = minimize(obj, np.zeros(3), method="SLSQP",
                           bounds=list(zip(np.log(bottom / top), np.zeros(3))),
                           constraints=[{"type": "ineq", "fun": slack}],
                           options={"ftol": 1e-15, "maxiter": 1000})
            assert slack(res.x) >= -1e-9, res
            energy[i, o] = obj(res.x) * e_top
    return energy, fastest


def test_static_is_the_given_option_at_full_speed():
    rng = _rng("static")
    n, m = 6, 5
    p = _slot(rng, n, m, servers=2)
    p["gain"][4] = 0.0  # no link this slot
    mask = np.ones((n, m), bool)
    mask[5, 3] = False  # device 5's option is not allowed
    option = np.array([0, 1, 2, 3, 4, 3])
    d = static_decision(option, **p, option_mask=mask)
    ok = np.array([True, True, True, True, False, False])
    np.testing.assert_array_equal(d.feasible, ok)
    np.testing.assert_array_equal(d.option, np.where(ok, option, -1))
    r_max = max_rate_bps(p["max_power_w"], p["gain"], p["noise_psd_w_hz"], p["bandwidth_hz"])
    np.testing.assert_array_equal(d.rate_bps[ok], r_max[ok])
    np.testing.assert_allclose(d.power_w[ok], p["max_power_w"], rtol=1e-12)
    assert np.all(d.cpu_freq_hz[ok] == p["f_max_hz"])
    # equal split: 3 devices on each server, whether they transmit or not
    np.testing.assert_allclose(d.server_share[ok], 1.0 / 3.0, rtol=1e-15)
    for i in np.flatnonzero(ok):
        e, l = _model(p, i, option[i], d.rate_bps[i], d.cpu_freq_hz[i], d.server_freq_hz[i])
        np.testing.assert_allclose([d.energy_j[i], d.delay_s[i]], [e, l], rtol=1e-12)
    assert np.all(d.rate_bps[~ok] == 0) and np.all(np.isinf(d.delay_s[~ok]))
    np.testing.assert_array_equal(d.objective[ok], d.energy_j[ok])
    # one option for every device
    assert np.all(static_decision(2, **p).option[ok] == 2)
    with pytest.raises(ScenarioError):
        static_decision(m, **p)


def test_max_accuracy_picks_the_most_accurate_allowed_option():
    rng = _rng("max-accuracy")
    n, m = 5, 7
    p = _slot(rng, n, m, per_device_accuracy=True)
    mask = rng.uniform(size=(n, m)) < 0.7
    mask[:, 0] = True
    d = max_accuracy_decision(**p, option_mask=mask)
    want = np.argmax(np.where(mask, p["accuracy"], -1.0), axis=1)
    np.testing.assert_array_equal(d.option, want)
    np.testing.assert_array_equal(d.accuracy, p["accuracy"][np.arange(n), want])
    ref = static_decision(want, **p)
    np.testing.assert_array_equal(d.rate_bps, ref.rate_bps)
    np.testing.assert_array_equal(d.energy_j, ref.energy_j)


def test_least_energy_within_deadline_matches_numerical_minimizer():
    rng = _rng("deadline")
    n, m = 4, 5
    interior = 0
    for trial in range(3):
        p = _slot(rng, n, m)
        deadline = float(10.0 ** rng.uniform(-3, -1.5))
        sol = least_energy_within_deadline(deadline, **p)
        brute, fastest = _brute_deadline(p, deadline)
        np.testing.assert_allclose(sol.fastest_delay_s, fastest, rtol=1e-12)
        np.testing.assert_array_equal(sol.meets, np.isfinite(brute))
        assert trial != 0 or (np.any(sol.meets) and np.any(~sol.meets))
        ok = sol.meets
        assert np.all(sol.delay_s[ok] <= deadline * (1 + 1e-12))
        # never worse than the numerical optimum, and equal to it
        np.testing.assert_allclose(sol.energy_j[ok], brute[ok], rtol=1e-8)
        for i, o in zip(*np.nonzero(ok)):
            e, l = _model(p, i, o, sol.rate_bps[i, o], sol.cpu_freq_hz[i, o],
                          sol.server_freq_hz[i, o])
            np.testing.assert_allclose([sol.energy_j[i, o], sol.delay_s[i, o]], [e, l],
                                       rtol=1e-12)
        # the deadline binds wherever the slowest point does not fit (complementary slackness)
        binding = ok & (sol.delay_price > 0)
        np.testing.assert_allclose(sol.delay_s[binding], deadline, rtol=1e-9)
        interior += int(binding.sum())
    assert interior >= 10


def test_slowest_point_when_the_deadline_is_loose():
    rng = _rng("loose")
    p = _slot(rng, 2, 3)
    sol = least_energy_within_deadline(1e6, **p)
    assert np.all(sol.delay_price == 0)
    assert np.all(sol.rate_bps == p["r_min_bps"]) and np.all(sol.cpu_freq_hz == p["f_min_hz"])
    assert np.all(sol.server_freq_hz == p["server_freq_min_hz"])


def _expected_choice(p, brute, fastest, a_min):
    """The greedy rule applied to brute-force energies (None: near tie, skip)."""
    n, m = brute.shape
    acc = np.broadcast_to(p["accuracy"], (n, m))
    out = []
    for i in range(n):
        meets = np.isfinite(brute[i])
        if not meets.any():
            out.append(int(np.argmin(fastest[i])))
            continue
        cand = meets & (acc[i] >= a_min) if a_min is not None else meets
        if not cand.any():
            cand = meets & (acc[i] == acc[i][meets].max())
        e = np.where(cand, brute[i], np.inf)
        srt = np.sort(e)
        if srt.size > 1 and np.isfinite(srt[1]) and srt[1] - srt[0] <= 1e-5 * srt[0]:
            out.append(None)
        else:
            out.append(int(np.argmin(e)))
    return out


def test_greedy_meets_the_target_with_the_cheapest_option():
    rng = _rng("greedy")
    n, m = 6, 5
    branches = {"accurate": 0, "closest": 0, "fastest": 0}
    for trial in range(3):
        p = _slot(rng, n, m, per_device_accuracy=True)
        p["gain"] = 10.0 ** np.linspace(-13.5, -9.5, n)  # from hopeless to easy
        full = [[_model(p, i, o, *top)[1] for o in range(m)] for i, top in enumerate(zip(
            max_rate_bps(p["max_power_w"], p["gain"], p["noise_psd_w_hz"], p["bandwidth_hz"]),
            np.full(n, p["f_max_hz"]), _x_cap(p)))]
        l_max = float(np.quantile(full, 0.4))  # some options of some devices miss it
        a_min = float(np.quantile(p["accuracy"], 0.6))
        d = greedy_decision(l_max, a_min, **p)
        brute, fastest = _brute_deadline(p, l_max)
        want = _expected_choice(p, brute, fastest, a_min)
        for i, o in enumerate(want):
            if o is None:
                continue
            meets = np.isfinite(brute[i])
            assert d.option[i] == o, (trial, i, brute[i])
            if meets.any():
                # the target is met whenever some option can meet it
                assert d.delay_s[i] <= l_max * (1 + 1e-12)
                np.testing.assert_allclose(d.energy_j[i], brute[i, o], rtol=1e-8)
                accurate = (meets & (p["accuracy"][i] >= a_min)).any()
                branches["accurate" if accurate else "closest"] += 1
            else:  # nothing meets L_max: the fastest option at full speed
                np.testing.assert_allclose(d.delay_s[i], fastest[i, o], rtol=1e-12)
                branches["fastest"] += 1
    assert min(branches.values()) >= 2, branches


def test_greedy_fallbacks():
    rng = _rng("fallback")
    n, m = 4, 6
    p = _slot(rng, n, m)
    # no option can meet the target: the fastest option, full speed
    d = greedy_decision(1e-9, 0.5, **p)
    sol = least_energy_within_deadline(1e-9, **p)
    np.testing.assert_array_equal(d.option, np.argmin(sol.fastest_delay_s, axis=1))
    np.testing.assert_array_equal(d.rate_bps, max_rate_bps(
        p["max_power_w"], p["gain"], p["noise_psd_w_hz"], p["bandwidth_hz"]))
    assert np.all(d.cpu_freq_hz == p["f_max_hz"])
    # the accuracy target is out of reach: the most accurate option that meets the deadline
    loose = 1.0
    d = greedy_decision(loose, 0.999, **p)
    sol = least_energy_within_deadline(loose, **p)
    assert np.all(sol.meets)
    assert np.all(d.option == np.argmax(p["accuracy"]))
    assert np.all(d.delay_s <= loose)


def test_min_energy_is_the_argmin_of_energy_under_the_cap():
    rng = _rng("min-energy")
    n, m = 5, 5
    for _ in range(2):
        p = _slot(rng, n, m, per_device_accuracy=True)
        cap = float(10.0 ** rng.uniform(-2.5, -1.5))
        d = min_energy_decision(cap, **p)
        brute, fastest = _brute_deadline(p, cap)
        want = _expected_choice(p, brute, fastest, None)
        for i, o in enumerate(want):
            if o is not None:
                assert d.option[i] == o
                np.testing.assert_allclose(d.energy_j[i], brute[i, o], rtol=1e-8)
        ok = np.isfinite(brute).any(axis=1)
        np.testing.assert_allclose(d.energy_j[ok], np.min(brute[ok], axis=1), rtol=1e-8)
        assert np.all(d.delay_s[ok] <= cap * (1 + 1e-12))
        # accuracy is ignored: a reshuffled accuracy table changes nothing
        shuffled = {**p, "accuracy": rng.permuted(p["accuracy"], axis=1)}
        np.testing.assert_array_equal(
            MinEnergyPolicy(n, delay_cap_s=cap).decide(**shuffled).option, d.option)


def test_policies_share_the_controllers_call_shape():
    """The slot clock drives every policy the same way: decide(**slot), update(...)."""
    rng = _rng("shape")
    n, m = 3, 4
    p = _slot(rng, n, m)
    static = {k: v for k, v in p.items() if k != "gain"}
    static["max_coupling_rounds"] = 4  # solver-only settings are accepted and ignored
    policies = [
        LyapunovController(n, v=1e3, mu=1.0, nu=1.0, delay_max_s=0.01, accuracy_min=0.8,
                           static=static),
        make_baseline("static", n, option=1, static=static),
        make_baseline("max-accuracy", n, static=static),
        make_baseline("min-energy", n, delay_cap_s=0.01, static=static),
        make_baseline("greedy", n, delay_max_s=0.01, accuracy_min=0.8, static=static),
    ]
    assert set(BASELINES) == {"static", "max-accuracy", "min-energy", "greedy"}
    for policy in policies:
        for _ in range(3):
            d = policy.decide(gain=p["gain"] * rng.exponential(1.0, n))
            assert d.option.shape == (n,) and d.energy_j.shape == (n,)
            assert np.all(d.server_share >= 0) and d.server_share.sum() <= 1 + 1e-12
            policy.update(np.where(d.feasible, d.delay_s, 0.0), d.accuracy, observed=d.feasible)
    with pytest.raises(ScenarioError):
        make_baseline("oracle", n)
    with pytest.raises(ScenarioError):
        GreedyPolicy(n, delay_max_s=0.0, accuracy_min=0.5)
    with pytest.raises(TypeError):
        make_baseline("max-accuracy", n).decide(**p, v=1.0)
