"""Large-scale propagation: dB conversions, noise PSD, path gain and log-normal shadowing.

Conventions
-----------
Every quantity inside the simulator is linear and SI (W, W/Hz, m). Decibels appear only at the
edges (scenario files, plots) and are converted once with the functions below. A *gain* is a
linear power ratio ``g = P_rx / P_tx`` (``g <= 1`` for a passive channel); a *loss* in dB is
``-10 log10(g)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "db_to_linear",
    "linear_to_db",
    "dbm_to_w",
    "w_to_dbm",
    "noise_psd_w_hz",
    "log_distance_gain",
    "fixed_loss_gain",
    "shadowing_gain",
]


def db_to_linear(value_db: ArrayLike) -> np.ndarray:
    """Power ratio from decibels: ``x = 10^(x_dB / 10)``.

    Parameters
    ----------
    value_db : array_like of float
        Any shape, dB.

    Returns
    -------
    numpy.ndarray of float64
        Same shape, linear power ratio (a 0-d array for scalar input).
    """
    return np.power(10.0, np.asarray(value_db, dtype=np.float64) / 10.0)


def linear_to_db(value: ArrayLike) -> np.ndarray:
    """Decibels from a power ratio: ``x_dB = 10 log10(x)``.

    Parameters
    ----------
    value : array_like of float
        Any shape, linear power ratio, ``> 0`` (0 maps to ``-inf``).

    Returns
    -------
    numpy.ndarray of float64
        Same shape, dB.

    Raises
    ------
    ValueError
        If any value is negative or NaN.
    """
    x = np.asarray(value, dtype=np.float64)
    if np.any(~(x >= 0)):
        raise ValueError("linear_to_db needs non-negative power ratios")
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(x)


def dbm_to_w(power_dbm: ArrayLike) -> np.ndarray:
    """Watts from dBm: ``P_W = 10^((P_dBm - 30) / 10)``.

    Parameters
    ----------
    power_dbm : array_like of float
        Any shape, dBm (dB relative to 1 mW).

    Returns
    -------
    numpy.ndarray of float64
        Same shape, W.
    """
    return db_to_linear(np.asarray(power_dbm, dtype=np.float64) - 30.0)


def w_to_dbm(power_w: ArrayLike) -> np.ndarray:
    """dBm from watts: ``P_dBm = 10 log10(P_W) + 30``.

    Parameters
    ----------
    power_w : array_like of float
        Any shape, W, ``>= 0``.

    Returns
    -------
    numpy.ndarray of float64
        Same shape, dBm.
    """
    return linear_to_db(power_w) + 30.0


def noise_psd_w_hz(noise_psd_dbm_hz: ArrayLike) -> np.ndarray:
    """Noise power spectral density N0 in W/Hz from dBm/Hz.

    ``N0 = 10^((N0_dBm/Hz - 30) / 10)``; thermal noise at 290 K is about -174 dBm/Hz,
    i.e. ``3.98e-21`` W/Hz. The noise power in a band of ``B`` Hz is ``N0 · B`` W.

    Parameters
    ----------
    noise_psd_dbm_hz : array_like of float
        Any shape, dBm/Hz.

    Returns
    -------
    numpy.ndarray of float64
        Same shape, W/Hz.
    """
    return dbm_to_w(noise_psd_dbm_hz)


def log_distance_gain(
    distance_m: ArrayLike,
    reference_loss_db: float,
    exponent: float,
    reference_distance_m: float = 1.0,
) -> np.ndarray:
    """Linear path gain of the log-distance model.

    ``PL_dB(d) = PL_0 + 10 n log10(max(d, d_0) / d_0)`` and ``g = 10^(-PL_dB / 10)``, with
    ``PL_0`` the loss at the reference distance ``d_0`` and ``n`` the path-loss exponent
    (2 in free space, about 3–4 in urban cells). Distances closer than ``d_0`` are treated as
    ``d_0``: the far-field model does not hold there, and clamping keeps ``g`` bounded.

    Parameters
    ----------
    distance_m : array_like of float
        Any shape, transmitter–receiver distance in m, ``> 0``.
    reference_loss_db : float
        ``PL_0``, loss at ``d_0`` in dB (e.g. free space at 1 m and 2.4 GHz: about 40 dB).
    exponent : float
        ``n``, path-loss exponent, ``> 0``.
    reference_distance_m : float, default 1.0
        ``d_0`` in m, ``> 0``.

    Returns
    -------
    numpy.ndarray of float64
        Same shape as ``distance_m``, linear power gain.

    Raises
    ------
    ValueError
        On non-positive distance, exponent or reference distance.

    Examples
    --------
    >>> float(linear_to_db(log_distance_gain(100.0, reference_loss_db=40.0, exponent=3.0)))
    -100.0
    """
    d = np.asarray(distance_m, dtype=np.float64)
    if np.any(~(d > 0)):
        raise ValueError("distance_m must be > 0")
    if not reference_distance_m > 0:
        raise ValueError(f"reference_distance_m must be > 0, got {reference_distance_m}")
    if not exponent > 0:
        raise ValueError(f"path-loss exponent must be > 0, got {exponent}")
    ratio = np.maximum(d, reference_distance_m) / reference_distance_m
    loss_db = reference_loss_db + 10.0 * exponent * np.log10(ratio)
    return db_to_linear(-loss_db)


def fixed_loss_gain(loss_db: ArrayLike) -> np.ndarray:
    """Linear gain of a fixed loss: ``g = 10^(-L_dB / 10)``.

    Parameters
    ----------
    loss_db : array_like of float
        Any shape, loss in dB (positive means attenuation).

    Returns
    -------
    numpy.ndarray of float64
        Same shape, linear power gain.
    """
    return db_to_linear(-np.asarray(loss_db, dtype=np.float64))


def shadowing_gain(
    sigma_db: float, size: int | tuple[int, ...], generator: np.random.Generator
) -> np.ndarray:
    """Log-normal shadowing factors ``S = 10^(σ X / 10)``, ``X ~ N(0, 1)``.

    ``S`` in dB is ``N(0, σ²)``: its median is 1 (0 dB); its mean is
    ``exp((σ ln10 / 10)² / 2) > 1``, the usual convention for shadowing around the path-loss
    line. Draw once per link for static shadowing, or per slot for time-varying shadowing.

    Parameters
    ----------
    sigma_db : float
        Standard deviation of the shadowing in dB, ``>= 0`` (0 gives all ones).
    size : int or tuple of int
        Output shape (e.g. ``(n_links,)``).
    generator : numpy.random.Generator
        Source of randomness (from ``SeedTree.child(...).numpy()``).

    Returns
    -------
    numpy.ndarray of float64
        Shape ``size``, linear shadowing gains.

    Raises
    ------
    ValueError
        If ``sigma_db < 0``.
    """
    if not sigma_db >= 0:
        raise ValueError(f"shadowing sigma_db must be >= 0, got {sigma_db}")
    return db_to_linear(sigma_db * generator.standard_normal(size))
