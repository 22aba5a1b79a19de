import math

import pytest
import torch

from simulator.channel import ber, transmit_payload
from simulator.channel.quantize import quantize, step_size
from simulator.rng import SeedTree


def _payload(n=2000, k=64):
    return torch.rand(n, k, generator=SeedTree(0).child("payload").torch()) * 2 - 1


def test_ideal_float32_is_identity_and_ideal_bits_only_quantize():
    x = _payload()
    assert torch.equal(transmit_payload(x, "ideal", 32, -1, 1), x)
    y = transmit_payload(x, "ideal", 5, -1, 1)
    assert (y - x).abs().max() <= step_size(5, -1, 1) / 2 + 1e-6


def test_digital_bit_error_rate_matches_the_modulation():
    x = _payload()
    gamma = 1.0  # 0 dB: QPSK per-bit error Q(1) ≈ 0.159
    gen = SeedTree(1).child("digital").torch()
    sent = quantize(x, 8, -1, 1)
    got = quantize(transmit_payload(x, "digital", 8, -1, 1, gamma, "qpsk", gen), 8, -1, 1)
    flips = torch.bitwise_xor(sent, got)
    n_bits = sent.numel() * 8
    errors = sum(int(((flips >> j) & 1).sum()) for j in range(8))
    p = float(ber(gamma, "qpsk"))
    sigma = math.sqrt(p * (1 - p) / n_bits)
    assert abs(errors / n_bits - p) < 5 * sigma


def test_digital_at_high_snr_equals_ideal_quantization():
    x = _payload()
    gen = SeedTree(2).child("digital").torch()
    assert torch.equal(transmit_payload(x, "digital", 8, -1, 1, 1e6, "bpsk", gen), transmit_payload(x, "ideal", 8, -1, 1))


def test_analog_noise_power_follows_the_snr():
    x = _payload(4000, 128)
    gamma = 10.0
    y = transmit_payload(x, "analog", 32, -1, 1, gamma, "qpsk", SeedTree(3).child("analog").torch())
    noise = (y - x) / (x.pow(2).mean(1, keepdim=True) / gamma).sqrt()
    var, n = float(noise.var()), noise.numel()
    assert abs(var - 1.0) < 5 * math.sqrt(2.0 / n)  # sample variance of N(0,1): sd √(2/n)


def test_noisy_modes_need_snr_and_generator():
    with pytest.raises(ValueError, match="needs snr_linear"):
        transmit_payload(_payload(), "digital", 8, -1, 1)
    with pytest.raises(ValueError, match="unknown transmission mode"):
        transmit_payload(_payload(), "carrier-pigeon", 8, -1, 1)
