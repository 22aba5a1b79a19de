"""Tests of the payload quantizer, bit layout, bit flips and analog AWGN."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from simulator.channel.quantize import (
    analog_awgn,
    bits_to_codes,
    codes_to_bits,
    dequantize,
    flip_bits,
    payload_bits,
    quantize,
    step_size,
)
from simulator.rng import SeedTree

BITS = st.integers(1, 16)
FLOAT32_EPS = 2.0**-24  # unit roundoff of float32


def _binomial_ok(count, n, p):
    """``count`` successes in ``n`` Bernoulli(p) trials lie inside the two-sided 5-sigma
    region (tail mass 2.9e-7 per side), using exact binomial tails so small counts work."""
    tail = stats.norm.sf(5.0)
    return stats.binom.cdf(count, n, p) > tail and stats.binom.sf(count - 1, n, p) > tail


def _tgen(*names):
    return SeedTree(7).child("quantize", *names).torch()


@st.composite
def ranges(draw):
    lo = draw(st.floats(-100.0, 100.0))
    width = draw(st.floats(1e-3, 200.0))
    return lo, lo + width


@st.composite
def codes_and_bits(draw, max_len=64):
    bits = draw(BITS)
    values = draw(st.lists(st.integers(0, 2**bits - 1), min_size=1, max_size=max_len))
    return torch.tensor(values, dtype=torch.int64), bits


def test_examples():
    x = torch.tensor([-1.5, -1.0, -0.51, -0.49, 0.0, 0.49, 0.99, 1.0, 7.0])
    np.testing.assert_array_equal(quantize(x, 2, -1.0, 1.0), [0, 0, 0, 1, 2, 2, 3, 3, 3])
    centres = dequantize(torch.arange(4), 2, -1.0, 1.0)
    np.testing.assert_allclose(centres, [-0.75, -0.25, 0.25, 0.75])
    assert quantize(x, 2, -1.0, 1.0).dtype == torch.int64
    assert step_size(3, 0.0, 1.0) == 0.125


def test_float32_passthrough():
    x = torch.randn(5, 3, generator=_tgen("pass"), dtype=torch.float64)
    q = quantize(x, 32, -1.0, 1.0)
    assert q.dtype == torch.float32 and torch.equal(q, x.float())
    assert torch.equal(dequantize(q, 32, -1.0, 1.0), q)


@pytest.mark.parametrize("bits", [1, 3, 8, 12])
def test_mse_is_delta_squared_over_12(bits):
    n, lo, hi = 1_000_000, -1.0, 1.0
    x = lo + (hi - lo) * torch.rand(n, generator=_tgen("mse", bits), dtype=torch.float64)
    err2 = (dequantize(quantize(x, bits, lo, hi), bits, lo, hi).double() - x) ** 2
    delta = step_size(bits, lo, hi)
    # e ~ U(-Δ/2, Δ/2): E e² = Δ²/12, Var e² = Δ⁴/80 − Δ⁴/144 = Δ⁴/180.
    tol = 5.0 * delta**2 / math.sqrt(180.0) / math.sqrt(n)
    assert abs(err2.mean().item() - delta**2 / 12.0) <= tol


@settings(max_examples=60, deadline=None)
@given(bits=BITS, rng=ranges(), fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_round_trip_error_at_most_half_step(bits, rng, fractions):
    lo, hi = rng
    x = torch.tensor([lo + f * (hi - lo) for f in fractions], dtype=torch.float64).clamp(lo, hi)
    x_hat = dequantize(quantize(x, bits, lo, hi), bits, lo, hi).double()
    # Δ/2 plus float32 rounding of the reconstruction.
    tol = step_size(bits, lo, hi) / 2 + FLOAT32_EPS * max(abs(lo), abs(hi))
    assert torch.all((x_hat - x).abs() <= tol)


@settings(max_examples=40, deadline=None)
@given(bits=BITS, rng=ranges(), outside=st.floats(1e-6, 1e6))
def test_clipping_outside_range(bits, rng, outside):
    lo, hi = rng
    x = torch.tensor([lo - outside, hi + outside], dtype=torch.float64)
    assert quantize(x, bits, lo, hi).tolist() == [0, 2**bits - 1]


def test_codes_to_bits_is_msb_first():
    assert codes_to_bits(torch.tensor([5, 2]), 4).tolist() == [0, 1, 0, 1, 0, 0, 1, 0]
    assert codes_to_bits(torch.tensor([[1], [0]]), 1).tolist() == [[1], [0]]
    sign = codes_to_bits(torch.tensor([-1.0]), 32)
    assert sign.shape == (32,) and sign[0] == 1 and sign.dtype == torch.uint8


@settings(max_examples=60, deadline=None)
@given(data=codes_and_bits(), batch=st.integers(1, 3))
def test_pack_unpack_round_trip(data, batch):
    codes, bits = data
    codes = codes.repeat(batch, 1)
    bit_array = codes_to_bits(codes, bits)
    assert bit_array.shape == (batch, codes.shape[1] * bits)
    assert set(bit_array.unique().tolist()) <= {0, 1}
    assert torch.equal(bits_to_codes(bit_array, bits), codes)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=32))
def test_pack_unpack_round_trip_float32(values):
    x = torch.tensor(values, dtype=torch.float32)
    assert torch.equal(bits_to_codes(codes_to_bits(x, 32), 32), x)


def test_payload_bits():
    assert payload_bits(64, 8, header_bits=16) == 528
    assert payload_bits(64, 32) == 2048
    np.testing.assert_array_equal(payload_bits(np.array([8, 16]), 4, 10), [42, 74])


@settings(max_examples=60, deadline=None)
@given(data=codes_and_bits())
def test_flip_bits_extremes(data):
    codes, bits = data
    gen = _tgen("extremes")
    assert torch.equal(flip_bits(codes, bits, 0.0, gen), codes)
    assert torch.equal(flip_bits(codes, bits, 1.0, gen), codes ^ (2**bits - 1))


def test_flip_bits_float32_extremes():
    x = torch.tensor([0.5, -2.0, 1e-3, 0.0])
    gen = _tgen("float-extremes")
    assert torch.equal(flip_bits(x, 32, 0.0, gen), x)
    words = x.view(torch.int32).numpy()
    expected = torch.from_numpy(~words).view(torch.float32)
    expected = torch.where(torch.isfinite(expected), expected, torch.zeros(()))
    assert torch.equal(flip_bits(x, 32, 1.0, gen), expected)
    noisy = flip_bits(torch.randn(10_000, generator=gen), 32, 0.5, gen)
    assert noisy.dtype == torch.float32 and torch.isfinite(noisy).all()


@pytest.mark.parametrize("ber", [1e-3, 0.05, 0.3])  # sparse and dense samplers
def test_flip_rate_per_bit_position(ber):
    bits, shape = 8, (2000, 100)
    gen = _tgen("rate", ber)
    codes = torch.randint(0, 2**bits, shape, generator=gen)
    flipped = codes_to_bits(codes, bits) != codes_to_bits(flip_bits(codes, bits, ber, gen), bits)
    per_bit = flipped.reshape(-1, bits)
    n = per_bit.shape[0]
    for count in per_bit.sum(0).tolist():
        assert _binomial_ok(count, n, ber)
    # Independence across bits of one code: MSB and LSB both flipped with probability ber².
    assert _binomial_ok(int((per_bit[:, 0] & per_bit[:, -1]).sum()), n, ber**2)


@pytest.mark.parametrize("row_ber", [(0.0, 1e-3, 0.02), (0.0, 0.1, 0.5)])
def test_flip_bits_per_row_ber(row_ber):
    bits, n_cols = 6, 50_000
    gen = _tgen("rows", row_ber[-1])
    codes = torch.randint(0, 2**bits, (len(row_ber), n_cols), generator=gen)
    out = flip_bits(codes, bits, torch.tensor(row_ber).unsqueeze(1), gen)
    flipped = (codes_to_bits(codes, bits) != codes_to_bits(out, bits)).sum(1)
    for count, p in zip(flipped.tolist(), row_ber):
        assert _binomial_ok(count, n_cols * bits, p)


def test_msb_flips_cost_more_than_lsb_flips():
    bits, lo, hi = 8, -1.0, 1.0
    gen = _tgen("msb")
    codes = torch.randint(0, 2**bits, (200_000,), generator=gen)
    out = flip_bits(codes, bits, 0.01, gen)
    diff = codes ^ out
    err2 = (dequantize(out, bits, lo, hi) - dequantize(codes, bits, lo, hi)).double() ** 2
    delta = step_size(bits, lo, hi)
    mse = []
    for j in range(bits):  # entries where exactly bit j flipped
        hit = diff == (1 << j)
        assert hit.any()
        mse.append(err2[hit].mean().item())
        assert mse[-1] == pytest.approx((2**j * delta) ** 2, rel=1e-5)
    assert all(a < b for a, b in zip(mse, mse[1:]))


@settings(max_examples=60, deadline=None)
@given(data=codes_and_bits(), rng=ranges())
def test_msb_flip_error_exceeds_lsb_flip_error(data, rng):
    codes, bits = data
    lo, hi = rng
    x = dequantize(codes, bits, lo, hi).double()
    msb = (dequantize(codes ^ (1 << (bits - 1)), bits, lo, hi).double() - x) ** 2
    lsb = (dequantize(codes ^ 1, bits, lo, hi).double() - x) ** 2
    delta = step_size(bits, lo, hi)
    tol = 4 * FLOAT32_EPS * max(abs(lo), abs(hi)) * (hi - lo)
    assert torch.allclose(msb, torch.full_like(msb, (2 ** (bits - 1) * delta) ** 2), atol=tol)
    assert torch.allclose(lsb, torch.full_like(lsb, delta**2), atol=tol)
    if bits > 1:
        assert msb.mean() > lsb.mean()


def test_flip_bits_is_reproducible():
    codes = torch.randint(0, 16, (100, 32), generator=_tgen("repro-codes"))
    a = flip_bits(codes, 4, 0.05, _tgen("repro"))
    b = flip_bits(codes, 4, 0.05, _tgen("repro"))
    assert torch.equal(a, b)


def test_analog_awgn_noise_variance():
    n = 200_000
    gen = _tgen("analog")
    scale = torch.tensor([[0.1], [1.0], [5.0], [1.0]])
    x = scale * (torch.rand(4, n, generator=gen) - 0.3)
    snr = torch.tensor([1.0, 10.0, 100.0, 0.5])
    noise = (analog_awgn(x, snr, gen) - x).double()
    expected_var = x.double().pow(2).mean(1) / snr.double()
    ratio = noise.var(1) / expected_var
    assert torch.all((ratio - 1).abs() <= 5.0 * math.sqrt(2.0 / (n - 1)))
    assert torch.all(noise.mean(1).abs() <= 5.0 * expected_var.sqrt() / math.sqrt(n))


def test_analog_awgn_edge_cases():
    gen = _tgen("analog-edge")
    x = torch.randn(3, 8, generator=gen)
    assert torch.equal(analog_awgn(x, math.inf, gen), x)
    assert analog_awgn(x, np.array([1.0, 2.0, 3.0]), gen).shape == x.shape
    assert analog_awgn(x.double(), 10.0, gen).dtype == torch.float64
    with pytest.raises(ValueError):
        analog_awgn(x, 0.0, gen)
    with pytest.raises(ValueError):
        analog_awgn(torch.ones(3, dtype=torch.int64), 1.0, gen)
    with pytest.raises(ValueError):  # (batch, 1) would silently broadcast to (batch, batch, K)
        analog_awgn(x, torch.ones(3, 1), gen)


@pytest.mark.parametrize(
    "call",
    [
        lambda: quantize(torch.zeros(3), 0, -1.0, 1.0),
        lambda: quantize(torch.zeros(3), 17, -1.0, 1.0),
        lambda: quantize(torch.zeros(3), 31, -1.0, 1.0),
        lambda: quantize(torch.zeros(3), 2.5, -1.0, 1.0),
        lambda: quantize(torch.zeros(3), 4, 1.0, 1.0),
        lambda: quantize(torch.tensor([math.nan]), 4, -1.0, 1.0),
        lambda: payload_bits(10, 20),
        lambda: flip_bits(torch.tensor([16]), 4, 0.1, torch.Generator()),
        lambda: flip_bits(torch.tensor([1.0]), 4, 0.1, torch.Generator()),
        lambda: flip_bits(torch.tensor([1]), 4, 1.5, torch.Generator()),
        lambda: flip_bits(torch.zeros(2, 3, dtype=torch.int64), 4, torch.ones(3, 1),
                          torch.Generator()),
        lambda: bits_to_codes(torch.zeros(7, dtype=torch.uint8), 4),
    ],
)
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def test_flip_bits_tiny_ber_flips_nothing_and_does_not_overflow():
    """At BER 1e-300 the geometric gaps overflow int64 unless clamped; no bit may flip."""
    gen = torch.Generator().manual_seed(0)
    codes = torch.arange(4096, dtype=torch.int64).reshape(64, 64) % 256
    assert torch.equal(flip_bits(codes, 8, 1e-300, gen), codes)
