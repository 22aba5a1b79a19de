"""Payload on the air: uniform quantizer, bit layout, bit flips at a BER, and analog AWGN.

Conventions
-----------
A payload is a real tensor ``x`` of shape ``(..., K)`` (e.g. ``(batch, K)`` relative
representations, one row per task). With ``b`` bits per entry, ``b`` in ``1..16``, each entry
becomes an integer code in ``0..2^b − 1`` (int64 tensors); ``b = 32`` means no quantization:
the entry travels as its IEEE-754 float32 word. The bit layout of a payload is its codes in
order, each code most-significant bit first. Randomness comes only from the
``torch.Generator`` passed in.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike

from .modulation import ber

__all__ = [
    "FLOAT_BITS",
    "step_size",
    "quantize",
    "dequantize",
    "payload_bits",
    "codes_to_bits",
    "bits_to_codes",
    "flip_bits",
    "ber",
    "analog_awgn",
]

FLOAT_BITS = 32
"""``bits`` value meaning float32 passthrough."""

# Below this BER, flip positions are drawn as a Bernoulli process with geometric gaps (cost
# proportional to the number of flips) instead of one uniform per bit.
_SPARSE_BER = 0.2


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or int(bits) != bits or not (1 <= bits <= 16 or bits == FLOAT_BITS):
        raise ValueError(f"bits per entry must be an integer in 1..16, or 32 (float32); got {bits}")
    return int(bits)


def _check_range(lo: float, hi: float) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"quantizer range needs finite lo < hi, got [{lo}, {hi}]")


def step_size(bits: int, lo: float, hi: float) -> float:
    """Cell width of the uniform quantizer: ``Δ = (hi − lo) / 2^b``.

    Parameters
    ----------
    bits : int
        ``b`` in ``1..16``.
    lo, hi : float
        Range of the quantizer, ``lo < hi``, in the payload's units.

    Returns
    -------
    float
        ``Δ``; for a uniform input on the range the mean squared error is ``Δ²/12``.
    """
    if _check_bits(bits) == FLOAT_BITS:
        raise ValueError("float32 passthrough (bits=32) has no step size")
    _check_range(lo, hi)
    return (hi - lo) / 2.0**bits


def quantize(x: torch.Tensor, bits: int, lo: float, hi: float) -> torch.Tensor:
    """Uniform mid-rise quantizer: codes ``c = clip(floor((x − lo) / Δ), 0, 2^b − 1)``.

    ``Δ = (hi − lo) / 2^b``. Cells are ``[lo + cΔ, lo + (c+1)Δ)``; values outside ``[lo, hi]``
    are clipped to the end cells (``x = hi`` maps to the top code). With ``bits = 32`` the
    input is returned as float32 (no quantization). Arithmetic is in float64, so cell
    boundaries are exact to float64 rounding.

    Parameters
    ----------
    x : torch.Tensor
        Any shape, real, finite (NaN raises).
    bits : int
        ``b`` in ``1..16``, or 32 for float32 passthrough.
    lo, hi : float
        Quantizer range, ``lo < hi`` (e.g. ``[-1, 1]`` for cosine similarities).

    Returns
    -------
    torch.Tensor
        Same shape as ``x``: int64 codes in ``0..2^b − 1``, or float32 when ``bits = 32``.

    Examples
    --------
    >>> quantize(torch.tensor([-1.0, -0.1, 0.1, 1.0]), 2, -1.0, 1.0)
    tensor([0, 1, 2, 3])
    """
    if _check_bits(bits) == FLOAT_BITS:
        return x.to(torch.float32)
    delta = step_size(bits, lo, hi)
    if torch.isnan(x).any():
        raise ValueError("cannot quantize NaN entries")
    cells = torch.floor((x.to(torch.float64) - lo) / delta)
    return cells.clamp_(0, 2**bits - 1).to(torch.int64)


def dequantize(codes: torch.Tensor, bits: int, lo: float, hi: float) -> torch.Tensor:
    """Reconstruction at cell centres: ``x̂ = lo + (c + ½) Δ``, ``Δ = (hi − lo) / 2^b``.

    Inside ``[lo, hi]`` the error ``|x − x̂|`` is at most ``Δ/2``. With ``bits = 32`` the input
    (float32 words) is returned as float32.

    Parameters
    ----------
    codes : torch.Tensor
        Any shape, integer codes in ``0..2^b − 1`` (or float32 when ``bits = 32``).
    bits : int
        ``b`` in ``1..16``, or 32.
    lo, hi : float
        The range used by :func:`quantize`.

    Returns
    -------
    torch.Tensor of float32
        Same shape as ``codes``.
    """
    if _check_bits(bits) == FLOAT_BITS:
        return codes.to(torch.float32)
    delta = step_size(bits, lo, hi)
    return (lo + (codes.to(torch.float64) + 0.5) * delta).to(torch.float32)


def payload_bits(n_entries: ArrayLike, bits: int, header_bits: ArrayLike = 0) -> ArrayLike:
    """Payload size in bits: ``N = K b + header``.

    Parameters
    ----------
    n_entries : int or array_like of int
        ``K``, entries per payload (e.g. anchors), ``>= 0``.
    bits : int
        ``b`` in ``1..16``, or 32 (float32).
    header_bits : int or array_like of int, default 0
        Fixed overhead per packet, ``>= 0``.

    Returns
    -------
    int or numpy.ndarray
        ``N`` (int for int inputs, broadcast array otherwise).
    """
    b = _check_bits(bits)
    if np.any(np.asarray(n_entries) < 0) or np.any(np.asarray(header_bits) < 0):
        raise ValueError("n_entries and header_bits must be >= 0")
    return n_entries * b + header_bits


def _to_words(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Codes (or float32 entries) as non-negative int64 words of ``bits`` bits."""
    if bits == FLOAT_BITS:
        if codes.dtype != torch.float32:
            raise ValueError(f"bits=32 payloads must be float32 tensors, got {codes.dtype}")
        return codes.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
    words = codes.to(torch.int64)
    if words.numel() and (int(words.min()) < 0 or int(words.max()) >= 2**bits):
        raise ValueError(f"codes must lie in 0..{2**bits - 1} for {bits} bits")
    return words


def _from_words(words: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of :func:`_to_words`: int64 codes, or float32 for 32-bit words."""
    if bits != FLOAT_BITS:
        return words
    signed = words - ((words >> 31) << 32)  # two's complement reinterpretation
    return signed.to(torch.int32).view(torch.float32)


def codes_to_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Bit layout of a payload: each code as ``b`` bits, most significant first.

    Parameters
    ----------
    codes : torch.Tensor
        Shape ``(..., K)``: integer codes in ``0..2^b − 1``, or float32 entries when
        ``bits = 32`` (their IEEE-754 words, sign bit first).
    bits : int
        ``b`` in ``1..16``, or 32.

    Returns
    -------
    torch.Tensor of uint8
        Shape ``(..., K·b)``, values 0/1; bits ``[k·b, (k+1)·b)`` are code ``k``, MSB first.

    Examples
    --------
    >>> codes_to_bits(torch.tensor([5, 2]), 4)
    tensor([0, 1, 0, 1, 0, 0, 1, 0], dtype=torch.uint8)
    """
    b = _check_bits(bits)
    words = _to_words(codes, b)
    shifts = torch.arange(b - 1, -1, -1, device=words.device)
    bit_array = (words.unsqueeze(-1) >> shifts) & 1
    return bit_array.reshape(*words.shape[:-1], -1).to(torch.uint8)


def bits_to_codes(bit_array: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of :func:`codes_to_bits`.

    Parameters
    ----------
    bit_array : torch.Tensor
        Shape ``(..., K·b)``, values 0/1 (any integer or bool dtype).
    bits : int
        ``b`` in ``1..16``, or 32.

    Returns
    -------
    torch.Tensor
        Shape ``(..., K)``: int64 codes, or float32 when ``bits = 32``.
    """
    b = _check_bits(bits)
    if bit_array.shape[-1] % b:
        raise ValueError(f"bit array length {bit_array.shape[-1]} is not a multiple of {b}")
    grouped = bit_array.to(torch.int64).reshape(*bit_array.shape[:-1], -1, b)
    shifts = torch.arange(b - 1, -1, -1, device=grouped.device)
    return _from_words((grouped << shifts).sum(-1), b)


def _flip_mask_dense(shape, bits, ber_t, generator, device) -> torch.Tensor:
    """XOR mask with each bit set independently with probability ``ber_t`` (one uniform per bit)."""
    mask = torch.zeros(shape, dtype=torch.int64, device=device)
    for shift in range(bits - 1, -1, -1):  # MSB first, matching codes_to_bits
        u = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
        mask |= (u < ber_t).to(torch.int64) << shift
    return mask


def _flip_mask_sparse(shape, bits, ber_t, ber_max, generator, device) -> torch.Tensor:
    """Same law as the dense mask, cost proportional to the number of flips.

    Candidate flips form a Bernoulli(``ber_max``) process over the flattened bit positions
    (entry-major, MSB first), drawn as geometric gaps ``G = floor(ln U / ln(1 − ber_max))``;
    a candidate at an entry with BER ``ε`` is kept with probability ``ε / ber_max``
    (thinning), so each bit flips independently with probability ``ε``.
    """
    n_entries = math.prod(shape)
    total = n_entries * bits
    log_keep = math.log1p(-ber_max)
    mean = total * ber_max
    chunk = int(mean + 6.0 * math.sqrt(mean) + 16)
    pieces, last = [], -1
    while last < total - 1:
        u = 1.0 - torch.rand(chunk, generator=generator, dtype=torch.float64, device=device)
        # Clamp before the integer cast: at tiny BER the float gap can exceed the int64 range.
        gaps = torch.floor(torch.log(u) / log_keep).clamp_(max=float(total)).to(torch.int64) + 1
        pos = last + torch.cumsum(gaps, 0)
        pieces.append(pos)
        last = int(pos[-1])
    pos = torch.cat(pieces)
    pos = pos[pos < total]
    entry = torch.div(pos, bits, rounding_mode="floor")
    if ber_t.numel() > 1:
        keep_p = ber_t.expand(shape).reshape(-1)[entry] / ber_max
        keep = torch.rand(pos.shape, generator=generator, dtype=torch.float64, device=device)
        entry, pos = entry[keep < keep_p], pos[keep < keep_p]
    shift = bits - 1 - (pos - entry * bits)
    mask = torch.zeros(n_entries, dtype=torch.int64, device=device)
    # Each (entry, bit) occurs once, so adding the bit values is the same as OR-ing them.
    mask.scatter_add_(0, entry, torch.ones_like(shift) << shift)
    return mask.reshape(shape)


def flip_bits(
    codes: torch.Tensor, bits: int, ber: float | torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Uncoded transmission: every bit of every code flips independently with probability ε.

    The binary symmetric channel acts on the bit layout of :func:`codes_to_bits`, so a flipped
    bit ``j`` (``j = 0`` the LSB) moves the reconstruction by ``2^j Δ``: the MSB costs
    ``4^{b−1}`` times the squared error of the LSB. Take ``ε`` from
    :func:`~simulator.channel.modulation.ber` at the slot's SNR. For ``bits = 32`` the float32
    words are flipped (sign, exponent and mantissa bits alike) and any NaN or ±inf produced is
    replaced by 0.0: a receiver would discard a non-number, and 0 is the neutral value of a
    similarity.

    Parameters
    ----------
    codes : torch.Tensor
        Any shape ``(..., K)``: integer codes in ``0..2^b − 1``, or float32 when ``bits = 32``.
    bits : int
        ``b`` in ``1..16``, or 32.
    ber : float or torch.Tensor
        ``ε`` in ``[0, 1]``: a scalar, or a tensor broadcastable to ``codes.shape`` (e.g.
        ``(batch, 1)`` for one SNR per payload).
    generator : torch.Generator
        Source of randomness, on the device of ``codes``.

    Returns
    -------
    torch.Tensor
        Shape of ``codes``: int64 codes, or float32 when ``bits = 32``.
    """
    b = _check_bits(bits)
    words = _to_words(codes, b)
    ber_t = torch.as_tensor(ber, dtype=torch.float64, device=words.device)
    if ber_t.numel() and not bool(((ber_t >= 0) & (ber_t <= 1)).all()):
        raise ValueError("ber must lie in [0, 1]")
    if ber_t.dim():
        try:
            ber_t = torch.broadcast_to(ber_t, words.shape)
        except RuntimeError:
            raise ValueError(
                f"ber of shape {tuple(ber_t.shape)} does not broadcast to codes "
                f"{tuple(words.shape)}"
            ) from None
    ber_max = float(ber_t.max()) if ber_t.numel() else 0.0
    if ber_max == 0.0 or words.numel() == 0:
        flipped = words.clone()
    elif ber_max < _SPARSE_BER:
        flipped = words ^ _flip_mask_sparse(words.shape, b, ber_t, ber_max, generator, words.device)
    else:
        flipped = words ^ _flip_mask_dense(words.shape, b, ber_t, generator, words.device)
    out = _from_words(flipped, b)
    if b == FLOAT_BITS:
        out = torch.where(torch.isfinite(out), out, torch.zeros((), dtype=out.dtype))
    return out


def analog_awgn(
    x: torch.Tensor, snr_linear: float | ArrayLike | torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Analog transmission: entries sent as real symbols, received with AWGN after equalization.

    Each payload row ``x`` (last axis, ``K`` entries) is normalized to unit average power,
    ``s = x / sqrt(P_x)`` with ``P_x = mean_k x_k²`` (the payload's own mean power), sent one
    real symbol per entry, and received after channel inversion as ``ŝ = s + n``,
    ``n ~ N(0, 1/γ)`` i.i.d.; rescaling gives

        ``x̂ = x + sqrt(P_x / γ) · z``,  ``z ~ N(0, 1)``.

    ``γ`` is the SNR per real symbol. Packing two entries on the I and Q rails of one complex
    symbol makes it equal to the complex-symbol SNR ``p g / (N0 B)`` of the slot (each rail
    has half the symbol energy and half the noise), so the link SNR can be passed directly;
    the payload then takes ``K/2`` channel uses. ``P_x`` is assumed known at the receiver
    (sent as side information; its cost is not modelled).

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., K)``, real floating point.
    snr_linear : float, array_like or torch.Tensor
        ``γ`` per payload, ``> 0`` (``inf`` means noiseless): a scalar or shape
        ``x.shape[:-1]``.
    generator : torch.Generator
        Source of randomness, on the device of ``x``.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``.
    """
    if not x.dtype.is_floating_point:
        raise ValueError(f"analog payloads must be floating point, got {x.dtype}")
    gamma = torch.as_tensor(snr_linear, dtype=x.dtype, device=x.device)
    if gamma.numel() and not bool((gamma > 0).all()):
        raise ValueError("snr_linear must be > 0")
    if gamma.dim() and tuple(gamma.shape) != tuple(x.shape[:-1]):
        raise ValueError(
            f"snr_linear must be a scalar or have shape {tuple(x.shape[:-1])} (one per payload), "
            f"got {tuple(gamma.shape)}"
        )
    power = x.pow(2).mean(dim=-1, keepdim=True)
    sigma = torch.sqrt(power / gamma.unsqueeze(-1))
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + sigma * noise
