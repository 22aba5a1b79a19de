"""Per-slot decision and virtual queues against brute-force enumeration and the update rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simulator.channel.link import max_rate_bps
from simulator.control.lyapunov import LyapunovController, VirtualQueues, solve_slot
from simulator.errors import ScenarioError
from simulator.rng import SeedTree
from tests.control.test_closed_form import _argmin_log, _kkt_reference

LN2 = np.log(2.0)


def _rng(name: str) -> np.random.Generator:
    return SeedTree(2024).child("tests", "control", "lyapunov", name).numpy()


def _log_uniform(rng, lo_exp, hi_exp, size):
    return 10.0 ** rng.uniform(lo_exp, hi_exp, size)


def _instance(rng, n, m, *, server_freq_hz, per_device_accuracy=False):
    """Random slot inputs for ``n`` devices and ``m`` options (keyword args of solve_slot)."""
    acc_shape = (n, m) if per_device_accuracy else (m,)
    return dict(
        v=float(_log_uniform(rng, 0, 3, None)),
        delay_queue=_log_uniform(rng, -2, 1.5, n),
        accuracy_queue=rng.uniform(0.0, 50.0, n),
        gain=_log_uniform(rng, -12, -9, n),
        noise_psd_w_hz=4e-21,
        bandwidth_hz=_log_uniform(rng, 5, 6, n),
        max_power_w=0.2,
        payload_bits=rng.integers(64, 4096, m).astype(float),
        tx_cycles=_log_uniform(rng, 5, 7, m),
        rx_cycles=_log_uniform(rng, 4, 6.5, m),
        accuracy=rng.uniform(0.5, 0.97, acc_shape),
        kappa_device=1e-28,
        f_min_hz=1e8,
        f_max_hz=2e9,
        kappa_server=1e-28,
        server_freq_hz=server_freq_hz,
        r_min_bps=1.0,
    )


def _min_log(fun, lo, hi):
    x = _argmin_log(fun, lo, hi)
    return x, float(fun(x))


def _brute_non_server_costs(p):
    """(n, m) cost of each (device, option) without the server term, by numerical minimization.

    Loops over devices and options and minimizes the rate and CPU terms numerically (the cost
    is a sum of a function of R and a function of f, so two 1-D minimizations are the joint
    minimum). Returns the costs and the minimizing R and f.
    """
    n = p["delay_queue"].size
    m = p["payload_bits"].size
    acc = np.broadcast_to(p["accuracy"], (n, m))
    cost = np.empty((n, m))
    rate = np.empty((n, m))
    freq = np.empty((n, m))
    v = p["v"]
    for i in range(n):
        z, y, g, b = p["delay_queue"][i], p["accuracy_queue"][i], p["gain"][i], p["bandwidth_hz"][i]
        c = p["noise_psd_w_hz"] * b / g
        r_max = b * np.log2(1 + p["max_power_w"] * g / (p["noise_psd_w_hz"] * b))
        for o in range(m):
            n_bits, w_tx = p["payload_bits"][o], p["tx_cycles"][o]

            def rate_cost(r, n_bits=n_bits, c=c, b=b, z=z):
                power = c * (2.0 ** (r / b) - 1.0)
                return v * power * n_bits / r + z * n_bits / r

            def cpu_cost(f, w_tx=w_tx, z=z):
                return v * p["kappa_device"] * f * f * w_tx + z * w_tx / f

            rate[i, o], c_r = _min_log(rate_cost, p["r_min_bps"], r_max)
            freq[i, o], c_f = _min_log(cpu_cost, p["f_min_hz"], p["f_max_hz"])
            cost[i, o] = c_r + c_f - y * acc[i, o]
    return cost, rate, freq


def _server_cost(v, kappa_s, z, w_rx, x):
    return v * kappa_s * x * x * w_rx + z * w_rx / x


def test_solve_slot_matches_brute_force_when_uncoupled():
    rng = _rng("uncoupled")
    for trial in range(12):
        n, m = 5, 8
        p = _instance(rng, n, m, server_freq_hz=1e16, per_device_accuracy=trial % 2 == 1)
        d = solve_slot(**p)
        cost, rate, freq = _brute_non_server_costs(p)
        # server term: unconstrained 1-D minimization per (device, option)
        total = np.empty((n, m))
        x_best = np.empty((n, m))
        for i in range(n):
            for o in range(m):
                z, w = p["delay_queue"][i], p["rx_cycles"][o]
                x_best[i, o], c_x = _min_log(
                    lambda x, z=z, w=w: _server_cost(p["v"], 1e-28, z, w, x), 1e3, 1e14
                )
                total[i, o] = cost[i, o] + c_x
        assert np.all(d.server_price == 0) and np.all(d.coupling_gap == 0)
        best = np.argmin(total, axis=1)
        for i in range(n):
            srt = np.sort(total[i])
            tie = srt[1] - srt[0] <= 1e-9 * np.abs(srt[0])
            assert tie or d.option[i] == best[i], (trial, i, total[i], d.option[i])
        rows = np.arange(n)
        # the closed form is never worse than the numerical minimum, and agrees with it
        assert np.all(d.objective <= total[rows, best] + 1e-12 * np.abs(total[rows, best]))
        np.testing.assert_allclose(d.objective, total[rows, best], rtol=1e-9)
        np.testing.assert_allclose(d.rate_bps, rate[rows, best], rtol=1e-6)
        np.testing.assert_allclose(d.cpu_freq_hz, freq[rows, best], rtol=1e-6)
        np.testing.assert_allclose(d.server_freq_hz, x_best[rows, best], rtol=1e-6)


def _coupled_instance(rng, n, m):
    """Slot inputs where the shared server matters: options trade bits for server cycles.

    Option o ships ~4096·10^(−1.5 t_o) bits and needs ~10^(6 + 1.5 t_o) server cycles
    (t_o a permutation of 0..1), accuracies are close and the accuracy queue small, and the
    capacity is 3 %–60 % of the devices' unconstrained demand, so the best options under
    the capacity limit often differ from the uncoupled ones.
    """
    p = _instance(rng, n, m, server_freq_hz=1.0)
    t = rng.permutation(m) / (m - 1)
    p["payload_bits"] = np.round(4096 * 10 ** (-1.5 * t))
    p["rx_cycles"] = 10 ** (6 + 1.5 * t + rng.uniform(-0.2, 0.2, m))
    p["accuracy"] = rng.uniform(0.85, 0.9, m)
    p["accuracy_queue"] = rng.uniform(0.0, 2.0, n)
    free = np.cbrt(p["delay_queue"] / (2 * p["v"] * p["kappa_server"]))
    p["server_freq_hz"] = float(free.sum() * _log_uniform(rng, -1.5, -0.2, None))
    return p


def test_solve_slot_coupled_server_against_brute_force():
    """Binding server: enumerate every joint option vector, each with its exact share split.

    The heuristic must never beat the optimum (it returns a feasible point), must be within its
    reported certified gap of it, and must equal it whenever it reports gap 0.
    """
    rng = _rng("coupled")
    exact = coupled = 0
    trials = 24
    n, m = 3, 4
    for trial in range(trials):
        p = _coupled_instance(rng, n, m)
        energy = trial % 3 != 2
        p["include_server_energy"] = energy
        kappa_s = p["kappa_server"] if energy else 0.0
        d = solve_slot(**p)
        cost, _, _ = _brute_non_server_costs(p)
        best_j, best_o = np.inf, None
        for combo in itertools.product(range(m), repeat=n):
            o = np.array(combo)
            w = p["rx_cycles"][o]
            x, _ = _kkt_reference(
                p["v"], p["delay_queue"], kappa_s, w, np.array([p["server_freq_hz"]]),
                np.zeros(n, int), 0.0,
            )
            j = cost[np.arange(n), o].sum() + _server_cost(
                p["v"], kappa_s, p["delay_queue"], w, x
            ).sum()
            if j < best_j:
                best_j, best_o = j, o
        j_heur = d.objective.sum()
        scale = np.abs(d.objective).sum()
        gap = float(d.coupling_gap[0])
        assert d.server_price[0] > 0
        assert d.server_share.sum() <= 1.0 + 1e-12
        assert j_heur >= best_j - 1e-9 * scale
        assert j_heur <= best_j + gap + 1e-9 * scale
        if gap == 0.0:
            assert np.array_equal(d.option, best_o), (trial, d.option, best_o)
        exact += np.array_equal(d.option, best_o)
        # what the devices would pick if the server were not shared
        alone = {**p, "server_freq_hz": 1e30}
        if not energy:
            alone["kappa_server"], alone["include_server_energy"] = 0.0, True
        coupled += not np.array_equal(solve_slot(**alone).option, best_o)
    # the instances exercise the coupling, and the certificate is not vacuous
    assert coupled >= trials // 3
    assert exact >= 0.8 * trials


def test_infeasible_devices_are_reported():
    rng = _rng("infeasible")
    p = _instance(rng, 4, 6, server_freq_hz=1e16)
    p["gain"] = np.array([1e-10, 0.0, 1e-40, 1e-10])  # no link, deep fade
    mask = np.ones((4, 6), bool)
    mask[3] = False  # every option of device 3 disallowed
    p["option_mask"] = mask
    d = solve_slot(**p)
    np.testing.assert_array_equal(d.feasible, [True, False, False, False])
    np.testing.assert_array_equal(d.option[1:], -1)
    assert np.all(np.isinf(d.objective[1:])) and np.all(np.isinf(d.delay_s[1:]))
    for field in ("rate_bps", "power_w", "energy_j", "server_freq_hz", "server_share"):
        assert np.all(getattr(d, field)[1:] == 0.0), field
    assert d.option[0] >= 0 and np.isfinite(d.objective[0])


def test_option_mask_restricts_choice():
    rng = _rng("mask")
    p = _instance(rng, 3, 5, server_freq_hz=1e16)
    free = solve_slot(**p).option
    mask = np.ones((3, 5), bool)
    mask[np.arange(3), free] = False
    d = solve_slot(**p, option_mask=mask)
    assert np.all(d.option != free) and np.all(d.feasible)


def test_zero_and_huge_delay_queue():
    rng = _rng("edges")
    p = _instance(rng, 2, 4, server_freq_hz=1e16)
    p["delay_queue"] = np.array([0.0, 1e12])
    p["server_freq_min_hz"] = 1e6
    d = solve_slot(**p)
    r_max = max_rate_bps(p["max_power_w"], p["gain"], p["noise_psd_w_hz"], p["bandwidth_hz"])
    # Z = 0: delay is free -> lowest rate, idle CPU, the server floor
    assert d.rate_bps[0] == p["r_min_bps"]
    assert d.cpu_freq_hz[0] == p["f_min_hz"]
    assert d.server_freq_hz[0] == 1e6
    # huge Z: full power, full CPU
    assert d.rate_bps[1] == r_max[1]
    np.testing.assert_allclose(d.power_w[1], p["max_power_w"], rtol=1e-12)
    assert d.cpu_freq_hz[1] == p["f_max_hz"]


def test_accuracy_queue_drives_choice():
    rng = _rng("accuracy")
    p = _instance(rng, 3, 6, server_freq_hz=1e16, per_device_accuracy=True)
    p["accuracy_queue"] = np.full(3, 1e9)
    d = solve_slot(**p)
    np.testing.assert_array_equal(d.option, np.argmax(p["accuracy"], axis=1))


def test_decision_fields_are_consistent():
    rng = _rng("fields")
    for energy in (True, False):
        p = _instance(rng, 40, 12, server_freq_hz=np.array([3e9, 5e9]))
        p["server_index"] = rng.integers(0, 2, 40)
        p["include_server_energy"] = energy
        d = solve_slot(**p)
        o = d.option
        np.testing.assert_allclose(
            d.energy_tx_j, d.power_w * p["payload_bits"][o] / d.rate_bps, rtol=1e-12
        )
        np.testing.assert_allclose(
            d.energy_j, d.energy_tx_j + d.energy_cpu_j + (d.energy_server_j if energy else 0),
            rtol=1e-12,
        )
        delay = (
            p["tx_cycles"][o] / d.cpu_freq_hz
            + p["payload_bits"][o] / d.rate_bps
            + p["rx_cycles"][o] / d.server_freq_hz
        )
        np.testing.assert_allclose(d.delay_s, delay, rtol=1e-12)
        obj = p["v"] * d.energy_j + p["delay_queue"] * d.delay_s - p["accuracy_queue"] * d.accuracy
        np.testing.assert_allclose(d.objective, obj, rtol=1e-9, atol=1e-9 * np.abs(obj).max())
        assert np.all(d.power_w <= p["max_power_w"] * (1 + 1e-12))
        shares = np.bincount(p["server_index"], weights=d.server_share, minlength=2)
        assert np.all(shares <= 1.0 + 1e-12)
        assert np.all(d.server_price > 0)  # these capacities bind


def test_price_hint_gives_same_decision():
    rng = _rng("hint")
    p = _instance(rng, 50, 10, server_freq_hz=5e9)
    cold = solve_slot(**p)
    warm = solve_slot(**p, server_price_hint=cold.server_price * 1.3)
    assert warm.objective.sum() <= cold.objective.sum() + cold.coupling_gap.sum() + 1e-9 * np.abs(
        cold.objective
    ).sum()
    assert cold.objective.sum() <= warm.objective.sum() + warm.coupling_gap.sum() + 1e-9 * np.abs(
        warm.objective
    ).sum()


def test_virtual_queue_update_rule_by_hand():
    q = VirtualQueues(np.array([0.5, 0.0, 2.0]), np.array([0.0, 1.0, 0.3]))
    nxt = q.step(
        [0.1, 0.9, 0.4], [0.9, 0.6, 0.95], delay_max_s=0.5, accuracy_min=0.8, mu=2.0, nu=3.0
    )
    # Z: max(0, 0.5 + 2(0.1 − 0.5)) = 0 (clamped), 0 + 2(0.4) = 0.8, 2 + 2(−0.1) = 1.8
    np.testing.assert_allclose(nxt.delay, [0.0, 0.8, 1.8], rtol=1e-15)
    # Y: max(0, 0 + 3(−0.1)) = 0 (clamped), 1 + 3(0.2) = 1.6, max(0, 0.3 − 0.45) = 0
    np.testing.assert_allclose(nxt.accuracy, [0.0, 1.6, 0.0], rtol=1e-15, atol=1e-15)
    # unobserved devices keep their queues
    held = q.step([9.0] * 3, [0.0] * 3, delay_max_s=0.5, accuracy_min=0.8, mu=2.0, nu=3.0,
                  observed=[False, True, False])
    assert held.delay[0] == 0.5 and held.delay[2] == 2.0 and held.accuracy[2] == 0.3
    with pytest.raises(ValueError):
        q.step([np.inf, 0, 0], [0, 0, 0], delay_max_s=0.5, accuracy_min=0.8, mu=1.0, nu=1.0)
    with pytest.raises(ValueError):
        q.delay[0] = 1.0  # read-only


finite = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    z=arrays(float, 5, elements=finite),
    y=arrays(float, 5, elements=finite),
    delay=arrays(float, 5, elements=st.floats(0.0, 1e3)),
    acc=arrays(float, 5, elements=st.floats(0.0, 1.0)),
    mu=st.floats(1e-3, 1e3),
    nu=st.floats(1e-3, 1e3),
)
def test_virtual_queue_update_property(z, y, delay, acc, mu, nu):
    q = VirtualQueues(z, y).step(delay, acc, delay_max_s=0.05, accuracy_min=0.9, mu=mu, nu=nu)
    np.testing.assert_array_equal(q.delay, np.maximum(0.0, z + mu * (delay - 0.05)))
    np.testing.assert_array_equal(q.accuracy, np.maximum(0.0, y + nu * (0.9 - acc)))
    assert np.all(q.delay >= 0) and np.all(q.accuracy >= 0)


def test_controller_decides_and_updates():
    rng = _rng("controller")
    p = _instance(rng, 6, 8, server_freq_hz=4e9)
    # a floor keeps the first slot's predicted delay finite although the queues start empty
    p["server_freq_min_hz"] = 1e6
    static = {k: val for k, val in p.items() if k not in ("v", "delay_queue", "accuracy_queue",
                                                          "gain")}
    ctl = LyapunovController(
        6, v=p["v"], mu=2.0, nu=1.5, delay_max_s=0.05, accuracy_min=0.9, static=static
    )
    queues = ctl.queues
    for _ in range(5):
        gain = p["gain"] * rng.exponential(1.0, 6)
        d = ctl.decide(gain=gain)
        ref = solve_slot(
            v=p["v"], delay_queue=queues.delay, accuracy_queue=queues.accuracy, gain=gain,
            **static,
        )
        np.testing.assert_array_equal(d.option, ref.option)
        realized = np.where(d.feasible, d.delay_s, 0.0)
        new = ctl.update(realized, d.accuracy, observed=d.feasible)
        want = queues.step(realized, d.accuracy, delay_max_s=0.05, accuracy_min=0.9, mu=2.0,
                           nu=1.5, observed=d.feasible)
        np.testing.assert_array_equal(new.delay, want.delay)
        np.testing.assert_array_equal(new.accuracy, want.accuracy)
        queues = new
    assert np.any(ctl.queues.delay > 0) or np.any(ctl.queues.accuracy > 0)


@pytest.mark.parametrize(
    "field, value",
    [("v", -1.0), ("mu", 0.0), ("nu", -2.0), ("delay_max_s", 0.0), ("accuracy_min", 1.5)],
)
def test_controller_rejects_bad_parameters(field, value):
    kwargs = dict(v=1.0, mu=1.0, nu=1.0, delay_max_s=0.1, accuracy_min=0.8)
    kwargs[field] = value
    with pytest.raises(ScenarioError) as err:
        LyapunovController(3, **kwargs)
    assert err.value.path == f"control.{field}"


def test_snr_gap_is_a_gain_scaling():
    rng = _rng("gap")
    p = _instance(rng, 8, 6, server_freq_hz=3e9)
    gap = 10 ** (8.8 / 10)
    with_gap = solve_slot(**p, snr_gap=gap)
    scaled = solve_slot(**{**p, "gain": p["gain"] / gap})
    np.testing.assert_array_equal(with_gap.option, scaled.option)
    np.testing.assert_allclose(with_gap.power_w, scaled.power_w, rtol=1e-12)
    with pytest.raises(ValueError):
        solve_slot(**p, snr_gap=0.5)


def test_per_device_tables_match_shared_tables():
    """(n_devices, n_options) option tables take the ungrouped path; same decisions."""
    rng = _rng("tables")
    for cap in (1e16, 4e9):
        p = _instance(rng, 30, 10, server_freq_hz=np.array([cap, cap / 2]))
        p["server_index"] = rng.integers(0, 2, 30)
        p["rx_cycles"] = np.repeat(p["rx_cycles"][:3], [4, 3, 3])  # groups of equal W_rx
        shared = solve_slot(**p)
        tiled = {k: np.tile(p[k], (30, 1)) for k in ("payload_bits", "tx_cycles", "rx_cycles")}
        per_device = solve_slot(**{**p, **tiled})
        np.testing.assert_array_equal(shared.option, per_device.option)
        np.testing.assert_allclose(shared.objective, per_device.objective, rtol=1e-12)
        np.testing.assert_allclose(shared.server_freq_hz, per_device.server_freq_hz, rtol=1e-12)
