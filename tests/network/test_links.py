"""Link table: bandwidth split, large-scale gain, fading statistics, R_max, per-link seeds, chunking."""

import math

import numpy as np
import pytest

from simulator.channel import log_distance_gain, max_rate_bps, noise_psd_w_hz
from simulator.config import ChannelConfig, ReceiverConfig, TransmitterConfig
from simulator.network.links import LinkTable, split_bandwidth
from simulator.rng import SeedTree


def tx(name, rx="r", **link):
    return TransmitterConfig.model_validate({"id": name, "receiver": rx, "encoders": ["e"], "link": link})


RX = [ReceiverConfig(id="r", encoder="e"), ReceiverConfig(id="s", encoder="e", bandwidth_hz=3e6)]


def test_bandwidth_split():
    txs = [tx("a"), tx("b"), tx("c", bandwidth_share=0.4), tx("d", rx="s")]
    assert split_bandwidth(txs, RX, 1e6).tolist() == [3e5, 3e5, 4e5, 3e6]


def table(txs, chunk=4096, seed=1):
    return LinkTable(ChannelConfig(), txs, RX, 0.01, SeedTree(seed).child("ch"), [0.2] * len(txs), chunk)


def test_gains_have_the_path_loss_mean_and_rmax_follows():
    txs = [tx("a", distance_m=100.0, fading="rayleigh"), tx("b", distance_m=300.0, fading="none")]
    lt = table(txs)
    n = 20_000
    g = np.array([lt.state(s)[0] for s in range(n)])
    pl = log_distance_gain(np.array([100.0, 300.0]), 30.0, 3.0)
    ratio = g / pl
    assert abs(ratio[:, 0].mean() - 1.0) <= 4 / math.sqrt(n)  # Exp(1) power: sd 1
    assert np.all(ratio[:, 1] == pytest.approx(1.0))
    _, r = lt.state(n)
    gain, _ = lt.state(n)
    assert r == pytest.approx(max_rate_bps(0.2, gain, float(noise_psd_w_hz(-174.0)), lt.bandwidth_hz))


def test_each_link_has_its_own_stream_and_chunks_are_seamless_in_law():
    a1 = table([tx("a", fading="rayleigh")])
    a2 = table([tx("a", fading="rayleigh"), tx("b", fading="rayleigh")])
    ga = [a1.state(s)[0][0] for s in range(5000)]
    gb = [a2.state(s)[0][0] for s in range(5000)]
    assert ga == gb  # adding a device does not change another device's channel
    with pytest.raises(ValueError):
        a1.state(10)  # slots are read in order only


def test_shadowing_is_static_per_link():
    lt = table([tx("a", fading="none", shadowing_sigma_db=8.0)], seed=3)
    g0 = lt.state(0)[0][0]
    assert all(lt.state(s)[0][0] == g0 for s in range(1, 50))
    assert g0 != pytest.approx(float(log_distance_gain(100.0, 30.0, 3.0)))


def test_slot_attempts_follow_the_scalar_link_budget():
    """Power, outage, SNR, energy and packet error of one slot's attempts, against the formulas link by link."""
    from simulator.channel import fbl_error_probability, power_for_rate_w, snr

    txs = [tx(n, distance_m=d, fading="rayleigh") for n, d in (("a", 60.0), ("b", 200.0), ("c", 400.0), ("d", 90.0))]
    lt = table(txs)
    gain, r_max = lt.state(0)
    rate = np.array([r_max[0] / 2, r_max[1] * 1.5, 0.0, r_max[3] / 3])  # sends, outage, held, coded
    airtime = np.array([1e-3, 2e-3, np.inf, 5e-4])
    bits = np.array([600, 600, 600, 300])
    coded = np.array([False, True, True, True])
    power, outage, gamma, energy, eps = lt.attempts(rate, gain, r_max, airtime, bits, coded)
    assert outage.tolist() == [False, True, False, False]
    n0, bw = lt.noise_psd_w_hz, lt.bandwidth_hz
    for i in (0, 3):
        p = float(power_for_rate_w(rate[i], gain[i], n0, bw[i], lt.gap))
        assert power[i] == p and p < 0.2
        assert gamma[i] == float(snr(p, gain[i], n0, bw[i]))
        assert energy[i] == p * airtime[i]
    assert power[1] == 0.2 and energy[1] == 0.2 * airtime[1]  # outage: sent at P_max
    assert power[2] == 0.0 and gamma[2] == 0.0
    assert eps[0] == 1.0 and eps[1] == 1.0 and eps[2] == 1.0  # uncoded, in outage, held
    assert eps[3] == pytest.approx(float(fbl_error_probability(gamma[3], max(1.0, bw[3] * airtime[3]), 300)),
                                   rel=1e-12)
    assert lt.budget(rate, gain, r_max)[1].tolist() == outage.tolist()
