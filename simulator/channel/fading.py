"""Small-scale fading: complex baseband coefficients h with E|h|² = 1, i.i.d. or AR(1) in time.

Conventions
-----------
A trace has shape ``(n_slots, n_links)``: one coefficient per slot (block fading: constant
inside a slot) and per link; links are independent. Every model is normalized so that
``E|h|² = 1``; the average channel gain of a link is therefore set by path loss and
shadowing alone. Traces start in the stationary distribution, so every slot (including the
first) has the model's marginal law.

Models (``model`` argument):

``"none"``
    ``h = 1``.
``"rayleigh"``
    ``h ~ CN(0, 1)``: real and imaginary parts independent ``N(0, 1/2)``; ``|h|²`` is
    ``Exp(1)``.
``"rician"``
    ``h = sqrt(K/(K+1)) + sqrt(1/(K+1)) s`` with ``s ~ CN(0, 1)`` and Rician factor
    ``K >= 0`` (LOS power over scattered power; ``K = 0`` is Rayleigh). The LOS phase is 0
    (only ``|h|`` enters the gain). ``|h|`` is Rice with ``ν = sqrt(K/(K+1))`` and
    ``σ² = 1/(2(K+1))`` per dimension, i.e. ``scipy.stats.rice(b=sqrt(2K),
    scale=sqrt(1/(2(K+1))))``.
``"nakagami"``
    ``|h|² ~ Gamma(shape=m, scale=1/m)``, ``m >= 1/2``, phase uniform on ``[-π, π)``
    (``m = 1`` is Rayleigh).

Time correlation: ``rho = 0`` gives block fading, i.i.d. across slots. Otherwise the
scattered part follows the stationary complex AR(1) (Gauss–Markov) process

    ``s_t = ρ s_{t-1} + sqrt(1 - ρ²) w_t``,  ``w_t ~ CN(0, 1)`` i.i.d.,

so ``E[s_t s*_{t-k}] = ρ^k``; Jakes' model fixes the lag-one value
``ρ = J0(2π f_D τ)`` (see :func:`jakes_rho`). Rician traces keep the LOS term fixed and
correlate only ``s``. Nakagami traces are built from a Rayleigh AR(1) process ``z_t`` by a
marginal transform: ``u_t = 1 - exp(-|z_t|²)`` is Uniform(0, 1), the power is
``|h_t|² = F⁻¹_{Gamma(m, 1/m)}(u_t)`` and the phase is ``arg z_t``. Marginals are exactly
Nakagami-m; the time correlation is an approximation (exact for ``m = 1``, where the process
*is* the Rayleigh AR(1); for ``m ≠ 1`` the power correlation is close to, not equal to, ``ρ²``).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from scipy.special import gammainccinv, j0

__all__ = ["FADING_MODELS", "jakes_rho", "fading_trace", "gain_trace"]

FADING_MODELS = ("none", "rayleigh", "rician", "nakagami")


def jakes_rho(doppler_hz: float, slot_s: float) -> float:
    """Lag-one correlation of Jakes' (Clarke's) fading: ``ρ = J0(2π f_D τ)``.

    ``J0`` is the Bessel function of the first kind, order 0; ``f_D = v f_c / c`` is the
    maximum Doppler shift and ``τ`` the slot length. ``ρ`` lies in ``[-0.403, 1]``; it is 1 for
    a static channel and oscillates around 0 once ``f_D τ`` exceeds about 0.38.

    Parameters
    ----------
    doppler_hz : float
        Maximum Doppler shift ``f_D`` in Hz, ``>= 0``.
    slot_s : float
        Slot length ``τ`` in s, ``> 0``.

    Returns
    -------
    float
        ``ρ``, to pass as ``rho`` to :func:`fading_trace`.

    Raises
    ------
    ValueError
        If ``doppler_hz < 0`` or ``slot_s <= 0``.
    """
    if not doppler_hz >= 0:
        raise ValueError(f"doppler_hz must be >= 0, got {doppler_hz}")
    if not slot_s > 0:
        raise ValueError(f"slot_s must be > 0, got {slot_s}")
    return float(j0(2.0 * np.pi * doppler_hz * slot_s))


def _check(model: str, n_slots: int, n_links: int, k_factor: float, m: float, rho: float) -> None:
    if model not in FADING_MODELS:
        expected = ", ".join(FADING_MODELS)
        raise ValueError(f"unknown fading model {model!r}; expected one of {expected}")
    if int(n_slots) != n_slots or n_slots < 1 or int(n_links) != n_links or n_links < 1:
        raise ValueError(f"n_slots and n_links must be positive integers, got {n_slots}, {n_links}")
    if model == "rician" and not (k_factor >= 0 and np.isfinite(k_factor)):
        raise ValueError(f"Rician K-factor must be a finite number >= 0, got {k_factor}")
    if model == "nakagami" and not (m >= 0.5 and np.isfinite(m)):
        raise ValueError(f"Nakagami m must be a finite number >= 0.5, got {m}")
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"AR(1) coefficient rho must lie in [-1, 1], got {rho}")


def _complex_gaussian_process(
    n_slots: int, n_links: int, rho: float, generator: np.random.Generator
) -> np.ndarray:
    """Stationary CN(0, 1) AR(1) process, shape (n_slots, n_links), complex128."""
    # One real draw per dimension, viewed as complex: real and imaginary parts are separate
    # N(0, 1) variates, scaled to variance 1/2 each.
    w = generator.standard_normal((n_slots, n_links, 2)).view(np.complex128)[..., 0]
    w *= np.sqrt(0.5)
    if rho == 0.0:
        return w
    # s_0 = w_0 (stationary start); s_t = ρ s_{t-1} + sqrt(1-ρ²) w_t, as one IIR filter.
    w[1:] *= np.sqrt(1.0 - rho * rho)
    return lfilter([1.0], [1.0, -rho], w, axis=0)


def fading_trace(
    model: str,
    n_slots: int,
    n_links: int,
    generator: np.random.Generator,
    *,
    k_factor: float = 0.0,
    m: float = 1.0,
    rho: float = 0.0,
) -> np.ndarray:
    """Complex fading coefficients ``h`` per slot and link, normalized to ``E|h|² = 1``.

    The models and the AR(1) time correlation are defined in the module docstring.

    Parameters
    ----------
    model : {"none", "rayleigh", "rician", "nakagami"}
        Fading law.
    n_slots : int
        Number of slots (time axis), ``>= 1``.
    n_links : int
        Number of independent links, ``>= 1``.
    generator : numpy.random.Generator
        Source of randomness; ``"none"`` draws nothing.
    k_factor : float, default 0.0
        Rician ``K`` (linear, not dB), ``>= 0``; used by ``"rician"`` only.
    m : float, default 1.0
        Nakagami shape ``m >= 0.5``; used by ``"nakagami"`` only.
    rho : float, default 0.0
        Lag-one correlation in ``[-1, 1]``: 0 is block fading (i.i.d. per slot),
        :func:`jakes_rho` gives the Jakes value, 1 a static channel.

    Returns
    -------
    numpy.ndarray of complex128
        Shape ``(n_slots, n_links)``.

    Raises
    ------
    ValueError
        On an unknown model or a parameter out of range.

    Examples
    --------
    >>> from simulator.rng import SeedTree
    >>> h = fading_trace("rayleigh", 1000, 4, SeedTree(1).child("fading").numpy(),
    ...                  rho=jakes_rho(doppler_hz=10.0, slot_s=1e-3))
    >>> h.shape, h.dtype
    ((1000, 4), dtype('complex128'))
    """
    _check(model, n_slots, n_links, k_factor, m, rho)
    n_slots, n_links, rho = int(n_slots), int(n_links), float(rho)
    if model == "none":
        return np.ones((n_slots, n_links), dtype=np.complex128)
    s = _complex_gaussian_process(n_slots, n_links, rho, generator)
    if model == "rayleigh":
        return s
    if model == "rician":
        s *= np.sqrt(1.0 / (k_factor + 1.0))
        s += np.sqrt(k_factor / (k_factor + 1.0))
        return s
    # Nakagami-m by marginal transform of the Rayleigh process (module docstring).
    power_exp = s.real**2 + s.imag**2  # Exp(1)
    # Upper-tail inverse on 1 - u = exp(-|z|²): exact in the tail, where u itself rounds to 1.
    power = gammainccinv(m, np.exp(-power_exp)) / m  # Gamma(m, 1/m) quantile of u
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.sqrt(power / power_exp)
    scale[power_exp == 0] = 0.0
    return s * scale


def gain_trace(
    model: str,
    n_slots: int,
    n_links: int,
    generator: np.random.Generator,
    *,
    k_factor: float = 0.0,
    m: float = 1.0,
    rho: float = 0.0,
) -> np.ndarray:
    """Small-scale power gains ``|h_t|²`` per slot and link, ``E|h|² = 1``.

    Same draws as :func:`fading_trace` with the same arguments and generator state; the full
    link gain is ``g_t = PL(d) · S · |h_t|²``.

    Parameters
    ----------
    model, n_slots, n_links, generator, k_factor, m, rho
        As in :func:`fading_trace`.

    Returns
    -------
    numpy.ndarray of float64
        Shape ``(n_slots, n_links)``, ``>= 0``.
    """
    h = fading_trace(model, n_slots, n_links, generator, k_factor=k_factor, m=m, rho=rho)
    return h.real**2 + h.imag**2
