"""The offline-multiplier policy: at the offline bound's own multipliers it is the optimum's policy.

On a synthetic two-device trace where both targets bind for both devices, the bound is computed
once; the policy then runs on the same trace with the bound's λ*, η*. Its decisions are the
per-slot minimizers of the bound's Lagrangian (the bound's own point, to rounding), and they are
within one option switch per constraint and device of the optimum. The relaxed optimum the bound
certifies time-shares between the minimizers on the two sides of a tie, in at most that many
(slot, device) pairs (2 per device), and meets the targets of a positive multiplier with
equality; elsewhere the deterministic minimizers agree with it. So each device's average delay
and Ĝ are within 2·ΔL_i / T and 2·ΔG_i / T of its targets, where ΔL_i and ΔG_i are the largest
differences between two allowed options of the device in one slot (at that slot's speeds, which
do not depend on the option), and the energy within Σ_i 2·(λ_i ΔL_i + η_i ΔG_i) / T of the bound
(plus the bound's own dual gap): at a tie E_a + λL_a − ηĜ_a = E_b + λL_b − ηĜ_b, so the two
tied options' energies differ by at most λ|L_a − L_b| + η|Ĝ_a − Ĝ_b|.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.channel import power_for_rate_w
from simulator.control.lyapunov import slot_energy_delay
from simulator.errors import ScenarioError

from .conftest import build, controller_scenario, drive, gain_trace

FLOOR = {"min_rate_bps": 1.0}
"""A hard rate floor of 1 bit/s: the decisions' per-slot sets are then exactly the bound's (whose floor is 1 bit/s)."""


@pytest.fixture(scope="module")
def trace(calibration):
    """(gains, offline bound): any controller records the same trace; the max-accuracy baseline does here."""
    sc = controller_scenario({"kind": "max-accuracy", **FLOOR})
    ctl, spec = build(sc, calibration)
    gains = gain_trace(sc.simulation.slots)
    drive(ctl, spec, gains)
    return gains, ctl.offline_bound()


def _policy(bound, calibration, **settings):
    sc = controller_scenario({"kind": "offline-multipliers", **FLOOR,
                              "delay_multiplier": bound.delay_multiplier.tolist(),
                              "accuracy_multiplier": bound.accuracy_multiplier.tolist(), **settings})
    return sc, *build(sc, calibration)


def _option_spreads(ctl, spec, gain, d):
    """Per device: the largest difference in predicted delay and in Ĝ between two allowed options at the slot's speeds.

    At fixed multipliers and with the server not binding, R, f and the server clock x do not
    depend on the option (:func:`~simulator.control.lyapunov.solve_slot`, steps 1–2).
    """
    t, p = ctl.table, ctl.params
    col = lambda a: np.asarray(a, dtype=float)[:, None]  # noqa: E731
    x = d.server_share * spec.server_cpu_hz[spec.receiver_of]
    power = power_for_rate_w(col(d.rate_bps), col(gain), spec.noise_psd_w_hz, col(spec.bandwidth_hz))
    *_, delay = slot_energy_delay(col(d.rate_bps), power, col(d.cpu_hz), col(x), t.payload_bits,
                                                  t.tx_cycles, t.rx_cycles, col(spec.kappa),
                                                  col(p["kappa_server"][spec.receiver_of]))

    def spread(a):
        a = np.broadcast_to(a, t.allowed.shape)
        return np.where(t.allowed, a, -np.inf).max(axis=1) - np.where(t.allowed, a, np.inf).min(axis=1)
    return spread(delay), spread(t.accuracy[:, :, 0])


def test_the_trace_makes_both_targets_bind_for_both_devices(trace):
    _, bound = trace
    assert bound.status == "optimal" and bound.point.binding_servers == 0
    assert np.all(bound.delay_multiplier > 0) and np.all(bound.accuracy_multiplier > 0)
    assert bound.delay_multiplier[0] != bound.delay_multiplier[1]  # per-device multipliers matter


def test_at_the_bounds_multipliers_its_decisions_are_the_optimums_own(trace, calibration):
    gains, bound = trace
    sc, ctl, spec = _policy(bound, calibration)
    n, t_slots = spec.n_tx, gains.shape[0]
    delay, acc = np.zeros((t_slots, n)), np.zeros((t_slots, n))
    spreads = np.zeros((2, n))

    def record(s, d):
        delay[s], acc[s], observed = ctl.last_update
        assert observed.all()
        spreads[:] = np.maximum(spreads, _option_spreads(ctl, spec, gains[s], d))

    drive(ctl, spec, gains, record)
    stats = ctl.stats()
    # the per-slot minimizers of the bound's Lagrangian at its own multipliers
    assert stats["decision_energy_per_slot_j"] == pytest.approx(bound.point.energy_j.sum(), rel=1e-9)
    np.testing.assert_allclose(delay.mean(axis=0), bound.point.delay_s, rtol=1e-9)
    np.testing.assert_allclose(acc.mean(axis=0), bound.point.accuracy, rtol=1e-9)
    # within one option switch per constraint and device of the optimum (module docstring)
    spread_l, spread_g = spreads
    lam, eta = bound.delay_multiplier, bound.accuracy_multiplier
    tolerance_j = 2.0 * np.sum(lam * spread_l + eta * spread_g) / t_slots + bound.dual_gap_j
    assert abs(stats["decision_energy_per_slot_j"] - bound.bound_j) <= tolerance_j
    a_min = sc.simulation.accuracy_target + sc.controller.accuracy_margin
    assert np.all(delay.mean(axis=0) <= sc.simulation.delay_target_s + 2.0 * spread_l / t_slots)
    assert np.all(acc.mean(axis=0) >= a_min - 2.0 * spread_g / t_slots)
    # the queues it reports are the multipliers, and its own bound is the same (the trace is the same)
    np.testing.assert_array_equal(ctl.queues.delay, bound.delay_multiplier)
    assert ctl.offline_bound().bound_j == pytest.approx(bound.bound_j, rel=1e-12)


def test_it_is_the_lyapunov_slot_problem_with_the_queues_held(trace, calibration):
    gains, bound = trace
    lam, eta = float(bound.delay_multiplier.mean()), float(bound.accuracy_multiplier.mean())
    _, held, spec = _policy(bound, calibration, delay_multiplier=lam, accuracy_multiplier=eta)
    v = 1e3
    dpp, _ = build(controller_scenario({"kind": "lyapunov", **FLOOR, "v": v, "delay_queue_per_v": lam,
                                        "accuracy_queue_per_v": eta}), calibration)
    first = []
    drive(held, spec, gains[:1], lambda s, d: first.append(d))
    drive(dpp, spec, gains[:1], lambda s, d: first.append(d))
    a, b = first
    for name in ("encoder", "anchors", "bits"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("rate_bps", "cpu_hz", "server_share"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9)
    # then the Lyapunov queues move and the held ones do not
    np.testing.assert_allclose(dpp.queues.delay, v * lam + 1.0 * (dpp.last_update[0] - 0.004))
    assert held.queues.delay.tolist() == [lam, lam]


@pytest.mark.parametrize("settings, update, where, what", [
    ({"delay_multiplier": [0.1, 0.2, 0.3]}, {}, "controller.delay_multiplier", "one per transmitter (2), got 3"),
    ({"accuracy_multiplier": -1.0}, {}, "controller.accuracy_multiplier[0]", "greater than or equal to 0"),
    ({"delay_multiplier": None}, {}, "controller.delay_multiplier", ""),
    ({}, {"simulation": {"delay_target_s": None}}, "simulation.delay_target_s",
     "required by controller.kind offline-multipliers"),
])
def test_settings_errors_name_the_field(settings, update, where, what):
    controller = {"kind": "offline-multipliers", "delay_multiplier": 0.01, "accuracy_multiplier": 1e-6, **settings}
    with pytest.raises(ScenarioError) as info:
        controller_scenario(controller, **update)
    assert info.value.path == where and what in str(info.value), info.value.one_line()


def test_one_value_serves_every_transmitter():
    sc = controller_scenario({"kind": "offline-multipliers", "delay_multiplier": 0.01, "accuracy_multiplier": 2})
    assert sc.controller.delay_multiplier == (0.01,) and sc.controller.accuracy_multiplier == (2.0,)
