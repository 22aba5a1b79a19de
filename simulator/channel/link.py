"""Link budget per slot: SNR, Shannon rate, power for a rate, outage, finite-blocklength PER, ARQ.

Conventions
-----------
A link of bandwidth ``B`` Hz carries ``B`` complex symbols per second (Nyquist signalling),
so an airtime of ``T`` s is ``n = B T`` complex channel uses. The SNR is per complex symbol,
``γ = p g / (N0 B)``, with ``p`` the transmit power (W), ``g`` the linear channel gain
(path loss × shadowing × ``|h|²``, ``E|h|² = 1``) and ``N0`` the one-sided noise PSD (W/Hz).
Rates are in bit/s; capacities per channel use in bit per complex channel use.

All functions broadcast their array arguments (NumPy rules), so one call serves a whole
``(n_slots, n_links)`` trace or a batch of packets.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .modulation import q_function

__all__ = [
    "snr",
    "capacity_bps",
    "power_for_rate_w",
    "max_rate_bps",
    "rayleigh_outage_probability",
    "empirical_outage_probability",
    "channel_uses",
    "fbl_error_probability",
    "ArqOutcome",
    "arq",
]

_LN2 = np.log(2.0)


def _array(name: str, value: ArrayLike, *, positive: bool = False) -> np.ndarray:
    """``value`` as float64, checked ``> 0`` (positive) or ``>= 0``; NaN is rejected."""
    x = np.asarray(value, dtype=np.float64)
    bad = ~(x > 0) if positive else ~(x >= 0)
    if np.any(bad):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {x[bad].flat[0]}")
    return x


def _gap(gap: float) -> float:
    if not (gap >= 1.0 and np.isfinite(gap)):
        raise ValueError(f"SNR gap must be a finite linear factor >= 1, got {gap}")
    return float(gap)


def snr(
    power_w: ArrayLike, gain: ArrayLike, noise_psd_w_hz: ArrayLike, bandwidth_hz: ArrayLike
) -> np.ndarray:
    """Received SNR per complex symbol: ``γ = p g / (N0 B)``.

    Parameters
    ----------
    power_w : array_like of float
        Transmit power ``p`` in W, ``>= 0``.
    gain : array_like of float
        Linear channel power gain ``g``, ``>= 0``.
    noise_psd_w_hz : array_like of float
        One-sided noise PSD ``N0`` in W/Hz, ``> 0``.
    bandwidth_hz : array_like of float
        Bandwidth ``B`` in Hz, ``> 0``.

    Returns
    -------
    numpy.ndarray of float64
        Broadcast shape of the inputs, linear SNR.
    """
    p = _array("power_w", power_w)
    g = _array("gain", gain)
    n0 = _array("noise_psd_w_hz", noise_psd_w_hz, positive=True)
    b = _array("bandwidth_hz", bandwidth_hz, positive=True)
    return p * g / (n0 * b)


def capacity_bps(snr_linear: ArrayLike, bandwidth_hz: ArrayLike, gap: float = 1.0) -> np.ndarray:
    """Shannon rate with an SNR gap: ``C = B log2(1 + γ / Γ)`` in bit/s.

    ``Γ = 1`` is capacity; ``Γ > 1`` (e.g. ``10^(8.8/10)`` for uncoded QAM at BER 1e-6) models a
    practical code's distance from capacity.

    Parameters
    ----------
    snr_linear : array_like of float
        ``γ``, per complex symbol, ``>= 0``.
    bandwidth_hz : array_like of float
        ``B`` in Hz, ``> 0``.
    gap : float, default 1.0
        ``Γ``, linear, ``>= 1``.

    Returns
    -------
    numpy.ndarray of float64
        Broadcast shape, bit/s.
    """
    gamma = _array("snr_linear", snr_linear)
    b = _array("bandwidth_hz", bandwidth_hz, positive=True)
    return b * np.log1p(gamma / _gap(gap)) / _LN2


def power_for_rate_w(
    rate_bps: ArrayLike,
    gain: ArrayLike,
    noise_psd_w_hz: ArrayLike,
    bandwidth_hz: ArrayLike,
    gap: float = 1.0,
) -> np.ndarray:
    """Transmit power that makes the gap-rate equal ``R``: ``p = Γ (2^{R/B} − 1) N0 B / g``.

    The exact inverse of :func:`capacity_bps` of :func:`snr` (computed with ``expm1`` so that
    the round trip holds to rounding error). ``g = 0`` with ``R > 0`` gives ``inf``.

    Parameters
    ----------
    rate_bps : array_like of float
        ``R`` in bit/s, ``>= 0``.
    gain : array_like of float
        ``g``, linear, ``>= 0``.
    noise_psd_w_hz : array_like of float
        ``N0`` in W/Hz, ``> 0``.
    bandwidth_hz : array_like of float
        ``B`` in Hz, ``> 0``.
    gap : float, default 1.0
        ``Γ``, linear, ``>= 1``.

    Returns
    -------
    numpy.ndarray of float64
        Broadcast shape, W.
    """
    r = _array("rate_bps", rate_bps)
    g = _array("gain", gain)
    n0 = _array("noise_psd_w_hz", noise_psd_w_hz, positive=True)
    b = _array("bandwidth_hz", bandwidth_hz, positive=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = _gap(gap) * np.expm1(r * _LN2 / b) * n0 * b / g
    return np.where(r == 0, 0.0, p)


def max_rate_bps(
    max_power_w: ArrayLike,
    gain: ArrayLike,
    noise_psd_w_hz: ArrayLike,
    bandwidth_hz: ArrayLike,
    gap: float = 1.0,
) -> np.ndarray:
    """Largest rate under a power cap: ``R_max = B log2(1 + P_max g / (Γ N0 B))``.

    Parameters
    ----------
    max_power_w : array_like of float
        ``P_max`` in W, ``>= 0``.
    gain, noise_psd_w_hz, bandwidth_hz, gap
        As in :func:`power_for_rate_w`.

    Returns
    -------
    numpy.ndarray of float64
        Broadcast shape, bit/s.
    """
    return capacity_bps(snr(max_power_w, gain, noise_psd_w_hz, bandwidth_hz), bandwidth_hz, gap)


def rayleigh_outage_probability(
    rate_bps: ArrayLike, bandwidth_hz: ArrayLike, mean_snr: ArrayLike, gap: float = 1.0
) -> np.ndarray:
    """Outage probability of a fixed rate over Rayleigh fading.

    Outage is ``B log2(1 + γ/Γ) < R``, i.e. ``γ < Γ (2^{R/B} − 1)``; with ``γ = γ̄ |h|²`` and
    ``|h|² ~ Exp(1)``: ``P_out = 1 − exp(−Γ (2^{R/B} − 1) / γ̄)``.

    Parameters
    ----------
    rate_bps : array_like of float
        ``R`` in bit/s, ``>= 0``.
    bandwidth_hz : array_like of float
        ``B`` in Hz, ``> 0``.
    mean_snr : array_like of float
        ``γ̄ = p E[g] / (N0 B)``, linear, ``> 0``.
    gap : float, default 1.0
        ``Γ``, linear, ``>= 1``.

    Returns
    -------
    numpy.ndarray of float64
        Broadcast shape, probability in ``[0, 1]``.
    """
    r = _array("rate_bps", rate_bps)
    b = _array("bandwidth_hz", bandwidth_hz, positive=True)
    mean = _array("mean_snr", mean_snr, positive=True)
    threshold = _gap(gap) * np.expm1(r * _LN2 / b)
    return -np.expm1(-threshold / mean)


def empirical_outage_probability(
    rate_bps: ArrayLike,
    bandwidth_hz: ArrayLike,
    snr_trace: ArrayLike,
    gap: float = 1.0,
    axis: int | None = 0,
) -> np.ndarray:
    """Fraction of slots whose gap-rate ``B log2(1 + γ_t/Γ)`` falls below ``R``.

    Parameters
    ----------
    rate_bps : array_like of float
        ``R`` in bit/s, broadcastable against ``snr_trace`` (a scalar, or ``(n_links,)``
        for a ``(n_slots, n_links)`` trace).
    bandwidth_hz : array_like of float
        ``B`` in Hz, ``> 0``, broadcastable against ``snr_trace``.
    snr_trace : array_like of float
        ``γ_t``, e.g. shape ``(n_slots, n_links)``.
    gap : float, default 1.0
        ``Γ``.
    axis : int or None, default 0
        Axis to average over (the slot axis); None averages everything.

    Returns
    -------
    numpy.ndarray of float64
        Trace shape without ``axis``, e.g. ``(n_links,)``.
    """
    rate = capacity_bps(snr_trace, bandwidth_hz, gap)
    return np.mean(rate < _array("rate_bps", rate_bps), axis=axis)


def channel_uses(bandwidth_hz: ArrayLike, airtime_s: ArrayLike) -> np.ndarray:
    """Blocklength in complex channel uses: ``n = B T``.

    Parameters
    ----------
    bandwidth_hz : array_like of float
        ``B`` in Hz, ``> 0``.
    airtime_s : array_like of float
        ``T`` in s, ``>= 0``.

    Returns
    -------
    numpy.ndarray of float64
        Broadcast shape; not rounded (the normal approximation accepts real ``n``).
    """
    return _array("bandwidth_hz", bandwidth_hz, positive=True) * _array("airtime_s", airtime_s)


def fbl_error_probability(
    snr_linear: ArrayLike, blocklength: ArrayLike, info_bits: ArrayLike
) -> np.ndarray:
    """Packet error probability at finite blocklength, normal approximation (Polyanskiy).

    For the complex AWGN channel with ``k`` information bits in ``n`` complex channel uses
    (Polyanskiy, Poor, Verdú, 2010, with the ``½ log2 n`` third-order term):

        ``ε ≈ Q((n C(γ) − k + ½ log2 n) / sqrt(n V(γ)))``,
        ``C(γ) = log2(1 + γ)`` bit per channel use,
        ``V(γ) = (1 − 1/(1 + γ)²) (log2 e)²`` bit² per channel use.

    ``γ`` is the SNR per complex symbol, constant over the packet (block fading: use the slot's
    instantaneous SNR). The coding rate is ``k/n`` bit per channel use, i.e. ``R = k B / n``
    bit/s. For rates below ``C`` the error falls as ``n`` grows; above ``C`` it tends to 1. The
    approximation is poor for very short blocks (``n`` below ~100). ``γ = 0`` gives 1.

    Parameters
    ----------
    snr_linear : array_like of float
        ``γ``, linear, ``>= 0``.
    blocklength : array_like of float
        ``n`` complex channel uses (:func:`channel_uses`), ``>= 1``.
    info_bits : array_like of float
        ``k`` payload bits, ``>= 0``.

    Returns
    -------
    numpy.ndarray of float64
        Broadcast shape, probability in ``[0, 1]``.
    """
    gamma = _array("snr_linear", snr_linear)
    n = _array("blocklength", blocklength)
    if np.any(n < 1):
        raise ValueError("blocklength must be >= 1 channel use")
    k = _array("info_bits", info_bits)
    log2e = 1.0 / _LN2
    capacity = np.log1p(gamma) * log2e
    dispersion = -np.expm1(-2.0 * np.log1p(gamma)) * log2e**2
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = (n * capacity - k + 0.5 * np.log2(n)) / np.sqrt(n * dispersion)
    return np.where(gamma == 0, 1.0, q_function(arg))


class ArqOutcome(NamedTuple):
    """Result of :func:`arq`, one entry per packet.

    Attributes
    ----------
    airtime_s : numpy.ndarray of float64
        Total airtime of all attempts, s.
    energy_j : numpy.ndarray of float64
        Total transmit energy, J.
    attempts : numpy.ndarray of int64
        Number of attempts made, in ``1..max_attempts``.
    success : numpy.ndarray of bool
        Whether some attempt was received.
    """

    airtime_s: np.ndarray
    energy_j: np.ndarray
    attempts: np.ndarray
    success: np.ndarray


def arq(
    error_probability: ArrayLike,
    airtime_s: ArrayLike,
    power_w: ArrayLike,
    max_attempts: int,
    generator: np.random.Generator,
) -> ArqOutcome:
    """Stop-and-wait ARQ with a bounded number of attempts, sampled per packet.

    Each attempt fails independently with probability ``ε``; the packet is sent until the
    first success or until ``max_attempts = 1 + max_retries`` attempts. The number of
    attempts until success is geometric, ``P[N > j] = ε^j``, sampled by inversion from one
    uniform per packet (``N = 1 + floor(ln U / ln ε)``, ``U ~ U(0, 1]``). Then
    ``attempts = min(N, max_attempts)``, ``success = N <= max_attempts``,
    ``airtime = attempts · T``, ``energy = attempts · T · p``. Feedback is instantaneous
    and error free; its airtime is not counted.

    Parameters
    ----------
    error_probability : array_like of float
        ``ε`` per attempt in ``[0, 1]``, any shape (e.g. ``(n_packets,)``).
    airtime_s : array_like of float
        ``T``, airtime of one attempt in s, ``>= 0``, broadcastable.
    power_w : array_like of float
        ``p``, transmit power of an attempt in W, ``>= 0``, broadcastable.
    max_attempts : int
        ``>= 1`` (1 means no retransmission).
    generator : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ArqOutcome
        Arrays of the broadcast shape of the three array arguments.
    """
    if int(max_attempts) != max_attempts or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts}")
    eps = _array("error_probability", error_probability)
    if np.any(eps > 1):
        raise ValueError("error_probability must lie in [0, 1]")
    eps, airtime, power = np.broadcast_arrays(
        eps, _array("airtime_s", airtime_s), _array("power_w", power_w)
    )
    u = 1.0 - generator.random(eps.shape)  # (0, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = np.floor(np.log(u) / np.log(eps))  # failures before the first success
    extra = np.where(eps == 0, 0.0, np.where(eps >= 1, np.inf, extra))
    success = extra < max_attempts
    attempts = np.where(success, extra + 1.0, float(max_attempts)).astype(np.int64)
    total_airtime = attempts * airtime
    return ArqOutcome(total_airtime, total_airtime * power, attempts, success)
