"""Monte-Carlo checks of the BER formulas over AWGN and Rayleigh fading."""

import math

import numpy as np
import pytest

from simulator.channel.fading import fading_trace
from simulator.channel.modulation import ber, bits_per_symbol, q_function
from simulator.channel.pathloss import db_to_linear
from simulator.rng import SeedTree


def _gen(*names):
    return SeedTree(11).child("modulation", *names).numpy()


def _complex_noise(n, snr_linear, gen):
    """CN(0, 1/γ) noise for unit-energy symbols: Es/N0 = γ."""
    return (gen.standard_normal(n) + 1j * gen.standard_normal(n)) * math.sqrt(0.5 / snr_linear)


def _within_binomial(errors, p, n):
    return abs(errors / n - p) <= 5.0 * math.sqrt(p * (1 - p) / n)


def test_q_function():
    assert q_function(0.0) == 0.5
    assert q_function(10.0) == pytest.approx(7.619853024160527e-24, rel=1e-12)
    assert q_function(-np.inf) == 1.0 and q_function(np.inf) == 0.0


@pytest.mark.parametrize("snr_db", [0.0, 4.0, 7.0])
def test_bpsk_awgn_ber(snr_db):
    n, gamma = 1_000_000, db_to_linear(snr_db)
    gen = _gen("bpsk", snr_db)
    bits = gen.integers(0, 2, n)
    y = (1.0 - 2.0 * bits) + _complex_noise(n, gamma, gen)
    errors = np.count_nonzero((y.real < 0) != (bits == 1))
    assert _within_binomial(errors, float(ber(gamma, "bpsk")), n)
    assert ber(gamma, "bpsk") == pytest.approx(q_function(math.sqrt(2 * gamma)))


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_bpsk_rayleigh_average_ber(snr_db):
    n, mean_snr = 1_000_000, db_to_linear(snr_db)
    gen = _gen("bpsk-rayleigh", snr_db)
    h = fading_trace("rayleigh", n, 1, gen)[:, 0]
    bits = gen.integers(0, 2, n)
    y = h * (1.0 - 2.0 * bits) + _complex_noise(n, mean_snr, gen)
    errors = np.count_nonzero(((np.conj(h) * y).real < 0) != (bits == 1))  # coherent
    theory = 0.5 * (1.0 - math.sqrt(mean_snr / (1.0 + mean_snr)))
    assert _within_binomial(errors, theory, n)
    # Averaging the AWGN formula over the same fading draws gives the same law.
    conditional = ber(mean_snr * np.abs(h) ** 2, "bpsk")
    assert abs(conditional.mean() - theory) <= 5.0 * conditional.std(ddof=1) / math.sqrt(n)


@pytest.mark.parametrize("snr_db", [3.0, 9.0])
def test_qpsk_gray_ber(snr_db):
    n_sym, gamma = 500_000, db_to_linear(snr_db)
    gen = _gen("qpsk", snr_db)
    bits = gen.integers(0, 2, (n_sym, 2))
    s = ((1.0 - 2.0 * bits[:, 0]) + 1j * (1.0 - 2.0 * bits[:, 1])) / math.sqrt(2.0)
    y = s + _complex_noise(n_sym, gamma, gen)
    errors = (y.real < 0) != (bits[:, 0] == 1)
    errors2 = (y.imag < 0) != (bits[:, 1] == 1)
    assert _within_binomial(np.count_nonzero(errors) + np.count_nonzero(errors2),
                            float(ber(gamma, "qpsk")), 2 * n_sym)


def _gray_4pam(bits_hi, bits_lo):
    """Gray map per rail: 00 -> -3, 01 -> -1, 11 -> +1, 10 -> +3."""
    negative = np.where(bits_lo == 0, -3.0, -1.0)
    positive = np.where(bits_lo == 1, 1.0, 3.0)
    return np.where(bits_hi == 0, negative, positive)


def _gray_4pam_detect(r):
    level = np.clip(2 * np.floor(r / 2) + 1, -3, 3)  # nearest of -3, -1, 1, 3
    return (level > 0).astype(int), (np.abs(level) == 1).astype(int)


@pytest.mark.parametrize("snr_db", [12.0, 16.0])
def test_16qam_gray_ber(snr_db):
    n_sym, gamma = 500_000, db_to_linear(snr_db)
    gen = _gen("16qam", snr_db)
    bits = gen.integers(0, 2, (n_sym, 4))
    s = (_gray_4pam(bits[:, 0], bits[:, 1]) + 1j * _gray_4pam(bits[:, 2], bits[:, 3]))
    s /= math.sqrt(10.0)  # E|s|^2 = 10 for levels ±1, ±3 on both rails
    y = (s + _complex_noise(n_sym, gamma, gen)) * math.sqrt(10.0)
    detected = np.stack(_gray_4pam_detect(y.real) + _gray_4pam_detect(y.imag), axis=1)
    errors_per_symbol = np.count_nonzero(detected != bits, axis=1)
    # Bit errors within a symbol are dependent: standard error from the per-symbol counts.
    measured = errors_per_symbol.mean() / 4
    se = errors_per_symbol.std(ddof=1) / 4 / math.sqrt(n_sym)
    x = math.sqrt(gamma / 5.0)
    exact = 0.75 * q_function(x) + 0.5 * q_function(3 * x) - 0.25 * q_function(5 * x)
    assert abs(measured - exact) <= 5.0 * se
    # The documented approximation drops the small terms: below 1e-3 relative at these SNRs.
    assert float(ber(gamma, "16qam")) == pytest.approx(exact, rel=1e-3)


def test_bits_per_symbol_and_validation():
    assert [bits_per_symbol(m) for m in ("bpsk", "qpsk", "16qam")] == [1, 2, 4]
    assert ber([0.0, np.inf], "bpsk").tolist() == [0.5, 0.0]
    with pytest.raises(ValueError):
        ber(1.0, "8psk")
    with pytest.raises(ValueError):
        ber(-1.0, "bpsk")
