"""Offline lower bound: weak duality against real policies, strong duality against an LP."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

import simulator.control.oracle as oracle_module
from simulator.channel.link import max_rate_bps
from simulator.control.baselines import make_baseline
from simulator.control.lyapunov import LyapunovController, VirtualQueues, solve_slot
from simulator.control.oracle import dual_function, offline_lower_bound, optimality_gap, slot_minimizers
from simulator.rng import SeedTree

LN2 = np.log(2.0)


def _rng(name: str) -> np.random.Generator:
    return SeedTree(2024).child("tests", "control", "oracle", name).numpy()


def _params(rng, m, *, server_freq_hz=1e13, servers=1, n=1):
    """Slot-invariant solve_slot arguments; option o trades payload and cycles for accuracy."""
    return dict(
        noise_psd_w_hz=4e-21,
        bandwidth_hz=1e6,
        max_power_w=0.2,
        payload_bits=np.sort(rng.integers(200, 4096, m).astype(float))[::-1].copy(),
        tx_cycles=np.sort(10.0 ** rng.uniform(5, 6.5, m))[::-1].copy(),
        rx_cycles=np.sort(10.0 ** rng.uniform(5, 6, m))[::-1].copy(),
        kappa_device=1e-28,
        f_min_hz=1e8,
        f_max_hz=2e9,
        kappa_server=1e-28,
        server_freq_hz=np.full(servers, server_freq_hz),
        server_index=np.arange(n) % servers,
        server_freq_min_hz=1e6,
        r_min_bps=100.0,
    )


def _trace(rng, t_slots, n, m):
    """Rayleigh gains around a per-device mean and per-slot accuracy tables (as from the SNR)."""
    mean = 10.0 ** rng.uniform(-11.5, -10.5, n)
    gain = mean * rng.exponential(1.0, (t_slots, n)) + 1e-13
    acc = np.sort(rng.uniform(0.55, 0.95, (t_slots, n, m)), axis=-1)[..., ::-1].copy()
    return gain, acc


def _run(policy, gain, acc):
    """Drive a policy through the trace with predicted delay and accuracy as feedback.

    Returns per-device time-average energy (J per slot), and delay and accuracy averaged over
    the slots the device transmitted: the targets this run meets exactly.
    """
    t_slots, n = gain.shape
    e = np.zeros(n)
    l_sum = np.zeros(n)
    g_sum = np.zeros(n)
    count = np.zeros(n)
    for t in range(t_slots):
        d = policy.decide(gain=gain[t], accuracy=acc[t])
        ok = d.feasible
        e += d.energy_j
        l_sum += np.where(ok, d.delay_s, 0.0)
        g_sum += np.where(ok, d.accuracy, 0.0)
        count += ok
        policy.update(np.where(ok, d.delay_s, 0.0), d.accuracy, observed=ok)
    return e / t_slots, l_sum / count, g_sum / count


def test_batched_dual_function_equals_slot_by_slot_sum(monkeypatch):
    """One batched solve_slot over (slot, device) pairs, in chunks, is the per-slot sum."""
    rng = _rng("batched")
    t_slots, n, m = 7, 4, 3
    gain, acc = _trace(rng, t_slots, n, m)
    gain[2, 1] = 0.0  # an outage: device 1 sits out slot 2
    p = _params(rng, m, server_freq_hz=6e8, servers=2, n=n)  # capacities bind
    p["bandwidth_hz"] = 10.0 ** rng.uniform(5.5, 6, n)
    p["payload_bits"] = np.tile(p["payload_bits"], (n, 1)) * rng.uniform(0.8, 1.2, (n, m))
    mask = rng.uniform(size=(t_slots, n, m)) < 0.8
    mask[..., 0] = True
    lam = 10.0 ** rng.uniform(-2, 0, n)
    eta = 10.0 ** rng.uniform(-6, -4, n)
    l_max, a_min = np.full(n, 2e-3), np.full(n, 0.7)
    monkeypatch.setattr(oracle_module, "_CHUNK_ENTRIES", 2 * n * m)  # chunks of 2 slots
    point = dual_function(lam, eta, gain=gain, accuracy=acc, option_mask=mask,
                          delay_max_s=l_max, accuracy_min=a_min, **p)
    value = 0.0
    energy = np.zeros(n)
    count = np.zeros(n)
    binding = 0
    for t in range(t_slots):
        d = solve_slot(v=1.0, delay_queue=lam, accuracy_queue=eta, gain=gain[t], accuracy=acc[t],
                       option_mask=mask[t], **p)
        value += np.where(d.feasible, d.objective, 0.0).sum() - d.coupling_gap.sum()
        value -= np.sum(d.feasible * (lam * l_max - eta * a_min))
        energy += d.energy_j
        count += d.feasible
        binding += int(np.sum(d.server_price > 0))
    assert binding >= t_slots
    np.testing.assert_allclose(point.value_j, value / t_slots, rtol=1e-9)
    np.testing.assert_allclose(point.energy_j, energy / t_slots, rtol=1e-9)
    np.testing.assert_array_equal(point.active_slots, count)
    assert count[1] == t_slots - 1


@pytest.mark.parametrize("servers", [1, 2])
def test_slot_minimizers_are_the_slot_by_slot_choices_and_give_the_dual_points_averages(monkeypatch, servers):
    """The batched minimizers (chunks of 2 slots) are solve_slot's choices slot by slot, and their averages
    are those of the dual point at the same multipliers (uncoupled, and with binding server capacity)."""
    rng = _rng(f"minimizers-{servers}")
    t_slots, n, m = 7, 4, 3
    gain, acc = _trace(rng, t_slots, n, m)
    gain[2, 1] = 0.0  # an outage: device 1 sits out slot 2
    p = _params(rng, m, server_freq_hz=6e8 if servers == 2 else 1e13, servers=servers, n=n)
    mask = rng.uniform(size=(t_slots, n, m)) < 0.8
    mask[..., 0] = True
    lam = 10.0 ** rng.uniform(-2, 0, n)
    eta = 10.0 ** rng.uniform(-6, -4, n)
    monkeypatch.setattr(oracle_module, "_CHUNK_ENTRIES", 2 * n * m)
    best = slot_minimizers(lam, eta, gain=gain, accuracy=acc, option_mask=mask, **p)
    assert best.option.shape == best.feasible.shape == (t_slots, n)
    binding = 0
    for t in range(t_slots):
        d = solve_slot(v=1.0, delay_queue=lam, accuracy_queue=eta, gain=gain[t], accuracy=acc[t],
                       option_mask=mask[t], **p)
        np.testing.assert_array_equal(best.option[t], d.option)
        np.testing.assert_array_equal(best.feasible[t], d.feasible)
        binding += int(np.sum(d.server_price > 0))
    assert (binding > 0) == (servers == 2)
    assert not best.feasible[2, 1] and best.option[2, 1] == -1
    point = dual_function(lam, eta, gain=gain, accuracy=acc, option_mask=mask, delay_max_s=2e-3,
                          accuracy_min=0.7, **p)
    chosen = np.take_along_axis(acc, np.maximum(best.option, 0)[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(best.feasible.sum(axis=0), point.active_slots)
    np.testing.assert_allclose(np.sum(chosen * best.feasible, axis=0) / point.active_slots, point.accuracy,
                               rtol=1e-12)
    with pytest.raises(ValueError, match="multipliers"):
        slot_minimizers(-1.0, eta, gain=gain, accuracy=acc, **p)


@pytest.mark.parametrize("coupled", [False, True])
def test_bound_is_below_every_policy_that_meets_its_targets(coupled):
    """Weak duality: D(λ, η) ≤ the energy of any policy meeting the targets on the trace.

    Each policy (the Lyapunov controller at two step sizes and the four baselines) is run through
    the trace; its own per-device averages are taken as the targets, which it then meets
    exactly, and the bound for those targets must not exceed its energy.
    """
    rng = _rng(f"weak-{coupled}")
    t_slots, n, m = 24, 3, 4
    gain, acc = _trace(rng, t_slots, n, m)
    p = _params(rng, m, server_freq_hz=1.5e9 if coupled else 1e10, n=n)
    # queues started near their working point (Z ~ 0.2 J/s, Y ~ 5 mJ at V = 1), since empty
    # queues make the first slot crawl at R_min; two step sizes give two different policies
    policies = {
        f"lyapunov-mu{mu:g}": LyapunovController(
            n, v=1.0, mu=mu, nu=0.01, delay_max_s=2e-3, accuracy_min=0.75, static=p,
            queues=VirtualQueues(np.full(n, 0.2), np.full(n, 5e-3)))
        for mu in (10.0, 40.0)
    }
    policies["static"] = make_baseline("static", n, option=1, static=p)
    policies["max-accuracy"] = make_baseline("max-accuracy", n, static=p)
    policies["min-energy"] = make_baseline("min-energy", n, delay_cap_s=5e-3, static=p)
    policies["greedy"] = make_baseline("greedy", n, delay_max_s=2e-3, accuracy_min=0.75,
                                       static=p)
    binding = 0
    statuses = set()
    for name, policy in policies.items():
        energy, delay, accuracy = _run(policy, gain, acc)
        res = offline_lower_bound(gain=gain, accuracy=acc, delay_max_s=delay,
                                  accuracy_min=accuracy, **p)
        assert res.status != "infeasible", name
        statuses.add(res.status)
        # rounding: a target met exactly (max-accuracy sits on the boundary of what is
        # reachable, so its multipliers are huge) is met only to ~1e-16 of each multiplied term
        rounding = 1e-12 * np.sum(res.delay_multiplier * delay + res.accuracy_multiplier * accuracy)
        assert res.bound_j <= energy.sum() * (1 + 1e-9) + rounding, (name, res.bound_j, energy)
        assert optimality_gap(energy.sum(), res.bound_j) >= -1e-9 - rounding / res.bound_j
        assert res.point.coupling_gap_j >= 0
        binding += res.point.binding_servers
    # the coupled trace does couple the devices where the bound is attained, and says so
    assert binding > 0 or not coupled
    assert "coupled" in statuses or not coupled


def _component_lp(gain, acc, l_max, a_min, p, rates, freqs, servers):
    """Time-sharing relaxation over finite candidate sets, as an LP (one device).

    Per slot t: option weights w_to (Σ_o w_to = 1) and, for each option, mixtures over the
    candidate rates, device clocks and server frequencies (each summing to w_to). E and L are
    sums of a rate, a clock and a server term, so this is exactly time sharing among all
    (option, R, f, x) combinations of the candidates — a subset of the decisions of the real
    problem's relaxation, so its optimum is ≥ the relaxed optimum ≥ any D(λ, η).
    """
    t_slots, m = acc.shape
    n_bits, w_tx, w_rx = p["payload_bits"], p["tx_cycles"], p["rx_cycles"]
    cost, delay, accuracy, rows, cols, vals = [], [], [], [], [], []
    n_eq = t_slots + 3 * t_slots * m

    def add(c, d, a, entries):
        j = len(cost)
        cost.append(c)
        delay.append(d)
        accuracy.append(a)
        for r, v in entries:
            rows.append(r)
            cols.append(j)
            vals.append(v)

    for t in range(t_slots):
        c = p["noise_psd_w_hz"] * p["bandwidth_hz"] / gain[t]
        for o in range(m):
            base = t_slots + 3 * (t * m + o)
            add(0.0, 0.0, acc[t, o], [(t, 1.0)] + [(base + q, -1.0) for q in range(3)])
            for r in rates[t]:
                power = c * np.expm1(r * LN2 / p["bandwidth_hz"])
                add(power * n_bits[o] / r, n_bits[o] / r, 0.0, [(base, 1.0)])
            for f in freqs:
                add(p["kappa_device"] * f * f * w_tx[o], w_tx[o] / f, 0.0, [(base + 1, 1.0)])
            for x in servers:
                add(p["kappa_server"] * x * x * w_rx[o], w_rx[o] / x, 0.0, [(base + 2, 1.0)])
    a_eq = coo_matrix((vals, (rows, cols)), shape=(n_eq, len(cost))).tocsr()
    b_eq = np.zeros(n_eq)
    b_eq[:t_slots] = 1.0
    res = linprog(np.asarray(cost) / t_slots, A_ub=np.vstack([delay, -np.asarray(accuracy)]),
                  b_ub=[t_slots * l_max, -t_slots * a_min], A_eq=a_eq, b_eq=b_eq,
                  bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return res.fun


def test_bound_equals_the_time_sharing_optimum():
    """Strong duality for the relaxation: max D equals the LP optimum over time sharing.

    Candidates: log grids of R, f and x (which by weak duality cannot take the LP below the
    bound) plus the per-slot minimizers around the returned multipliers (which let the LP
    reach the dual optimum if it is one). Both constraints are active.
    """
    rng = _rng("strong")
    t_slots, m = 8, 3
    gain, acc = _trace(rng, t_slots, 1, m)
    p = _params(rng, m)
    p.pop("server_index")
    p["server_freq_hz"] = 1e13
    kw = dict(gain=gain, accuracy=acc, **p)
    # targets between the extremes: the cheapest point is too slow and too inaccurate
    free = dual_function(0.0, 0.0, delay_max_s=1.0, accuracy_min=0.0, **kw)
    l_max, a_min = 3e-3, float(np.mean(acc[..., 0]) - 0.06)
    res = offline_lower_bound(delay_max_s=l_max, accuracy_min=a_min, **kw)
    assert res.status == "optimal"
    lam, eta = res.delay_multiplier[0], res.accuracy_multiplier[0]
    assert lam > 0 and eta > 0
    assert free.delay_s[0] > l_max and free.accuracy[0] < a_min
    r_max = max_rate_bps(p["max_power_w"], gain[:, 0], p["noise_psd_w_hz"], p["bandwidth_hz"])
    rates = [list(np.geomspace(p["r_min_bps"], r_max[t], 40)) for t in range(t_slots)]
    freqs = list(np.geomspace(p["f_min_hz"], p["f_max_hz"], 30))
    servers = list(np.geomspace(p["server_freq_min_hz"], 1e11, 40))
    for a in (1 - 1e-3, 1.0, 1 + 1e-3):
        for b in (1 - 1e-3, 1.0, 1 + 1e-3):
            for t in range(t_slots):
                d = solve_slot(v=1.0, delay_queue=[lam * a], accuracy_queue=[eta * b],
                               gain=gain[t], accuracy=acc[t], **p)
                rates[t].append(d.rate_bps[0])
                freqs.append(d.cpu_freq_hz[0])
                servers.append(d.server_freq_hz[0])
    lp = _component_lp(gain[:, 0], acc[:, 0], l_max, a_min, p, rates, freqs, servers)
    assert res.bound_j <= lp * (1 + 1e-9)
    assert lp <= res.bound_j * (1 + 1e-5), (lp, res.bound_j)
    # the time-sharing solution the dual certifies: tight targets, energy = bound
    np.testing.assert_allclose(res.relaxed_delay_s, l_max, rtol=1e-6)
    np.testing.assert_allclose(res.relaxed_accuracy, a_min, rtol=1e-6)
    np.testing.assert_allclose(res.relaxed_energy_j.sum(), res.bound_j, rtol=1e-7)
    # the dual's slopes change sign at the maximizer in each multiplier
    for axis, slope in ((0, "delay_slope_s"), (1, "accuracy_slope")):
        sides = []
        for a in (1 - 1e-3, 1 + 1e-3):
            mult = np.array([lam, eta])
            mult[axis] *= a
            pt = dual_function(mult[0], mult[1], delay_max_s=l_max, accuracy_min=a_min, **kw)
            sides.append(getattr(pt, slope)[0])
        assert sides[0] >= 0 >= sides[1], (slope, sides)


def test_dual_is_concave_and_maximized():
    """Supergradient inequality D(q) ≤ D(p) + ∇D(p)·(q − p) on random multiplier pairs, and
    no sampled multiplier beats the bound; with per-device targets, one active, one not."""
    rng = _rng("concave")
    t_slots, n, m = 30, 2, 4
    gain, acc = _trace(rng, t_slots, n, m)
    p = _params(rng, m, n=n)
    kw = dict(gain=gain, accuracy=acc, delay_max_s=np.array([2e-3, 3e-3]),
              accuracy_min=np.array([0.0, float(np.mean(acc[:, 1, 1]))]), **p)
    res = offline_lower_bound(**kw)
    assert res.status == "optimal"
    assert res.accuracy_multiplier[0] == 0.0 and res.accuracy_multiplier[1] > 0
    assert np.all(res.delay_multiplier > 0)
    np.testing.assert_allclose(res.relaxed_delay_s, kw["delay_max_s"], rtol=1e-6)
    assert res.relaxed_accuracy[0] >= 0.0
    np.testing.assert_allclose(res.relaxed_accuracy[1], kw["accuracy_min"][1], rtol=1e-6)
    points = []
    for _ in range(10):
        lam = res.delay_multiplier * 10.0 ** rng.uniform(-1, 1, n)
        eta = np.array([0.0, res.accuracy_multiplier[1] * 10.0 ** rng.uniform(-1, 1)])
        pt = dual_function(lam, eta, **kw)
        assert pt.value_j <= res.bound_j * (1 + 1e-9)
        points.append(pt)
    for a in points:
        for b in points:
            step = (np.sum(a.delay_slope_s * (b.delay_multiplier - a.delay_multiplier))
                    + np.sum(a.accuracy_slope * (b.accuracy_multiplier - a.accuracy_multiplier)))
            assert b.value_j <= a.value_j + step + 1e-12 * abs(a.value_j)


def test_inactive_targets_give_the_unconstrained_minimum():
    rng = _rng("inactive")
    t_slots, n, m = 12, 2, 3
    gain, acc = _trace(rng, t_slots, n, m)
    p = _params(rng, m, n=n)
    free = dual_function(0.0, 0.0, gain=gain, accuracy=acc, delay_max_s=1.0, accuracy_min=0.0,
                         **p)
    res = offline_lower_bound(gain=gain, accuracy=acc, delay_max_s=2 * free.delay_s,
                              accuracy_min=0.5, **p)
    assert res.status == "optimal"
    assert np.all(res.delay_multiplier == 0) and np.all(res.accuracy_multiplier == 0)
    assert res.bound_j == free.value_j == pytest.approx(free.energy_j.sum(), rel=1e-12)


def test_unreachable_target_is_reported():
    rng = _rng("unreachable")
    gain, acc = _trace(rng, 6, 1, 3)
    p = _params(rng, 3)
    res = offline_lower_bound(gain=gain, accuracy=acc, delay_max_s=1e-7, accuracy_min=0.5,
                              max_outer=5, max_inner=5, **p)
    assert res.status == "infeasible" and not res.converged
    res = offline_lower_bound(gain=gain, accuracy=acc, delay_max_s=1.0, accuracy_min=0.99,
                              max_outer=5, max_inner=5, **p)
    assert res.status == "infeasible"


def test_optimality_gap():
    assert optimality_gap(1.1, 1.0) == pytest.approx(0.1)
    np.testing.assert_allclose(optimality_gap(np.array([2.0, 3.0]), 2.0), [0.0, 0.5])
