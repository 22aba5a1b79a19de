"""Closed-form minimizers of the per-slot drift-plus-penalty cost for a fixed discrete option.

For a fixed option (encoder, K anchors, b bits) the per-slot cost of one device

    V·E + Z·L − Y·G,
    E = p(R)·N/R + κ f² W_tx [+ κ_s x² W_rx],      L = W_tx/f + N/R + W_rx/x,

(``x = s·F`` the server frequency given to the device) separates into three one-dimensional
problems, one per continuous variable:

* rate R       : N · (V c (2^{R/B} − 1) + Z) / R            → :func:`optimal_rate`
* device CPU f : W_tx · (V κ f² + Z / f)                     → :func:`optimal_cpu_frequency`
* server CPU x : W_rx · (V κ_s x² + Z / x), Σ x ≤ F_server   → :func:`optimal_server_frequencies`

The payload N and the cycle counts W factor out of their terms, so R* and f* do not depend on
the option; only the server frequency does, and only when a server's capacity binds (its
shared budget couples the devices). All functions are NumPy-vectorized over broadcast shapes
and use no iterative solver from SciPy: the rate uses ``scipy.special.lambertw``; the server
problem uses a few monotone Newton steps whose convergence is argued in the docstrings.

Every quantity is SI: bit/s, W, Hz, J, s, cycles.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import lambertw

__all__ = [
    "optimal_rate",
    "optimal_cpu_frequency",
    "server_frequency_at_price",
    "optimal_server_frequencies",
]

_LN2 = float(np.log(2.0))
_INV_SQRT2 = float(1.0 / np.sqrt(2.0))

# Below this a = Z/(V c) the Lambert-W argument (a − 1)/e is so close to the branch point −1/e
# that rounding it costs digits (relative error ≈ 5e-17 / a); the branch-point series in
# p = sqrt(2a) is used instead. At the switch both are accurate to ~1e-15 (checked with mpmath).
_SERIES_MAX_A = 3e-4
# W0(−1/e + a/e) = −1 + p − p²/3 + 11p³/72 − …, p = sqrt(2a): the branch-point series of
# Corless et al. (1996); coefficients of p¹ … p⁸ of 1 + W0, checked against mpmath in the tests.
_BRANCH_SERIES = (
    1.0,
    -1.0 / 3.0,
    11.0 / 72.0,
    -43.0 / 540.0,
    769.0 / 17280.0,
    -221.0 / 8505.0,
    680863.0 / 43545600.0,
    -1963.0 / 204120.0,
)

# Newton on the server cubic. Started within a factor sqrt(2) above the root, the iteration is
# monotone and quadratic (relative error 0.41, 0.17, 3e-2, 8e-4, 7e-7, 5e-13, <1e-16), and the
# error after a step is about the square of that step; so iterating until the largest relative
# step is ≤ 1e-8 leaves an error ~1e-16 (tests check the residual to 1e-12). Seven steps
# always suffice from the cold start; a warm start (a nearby root) usually needs two or three.
_CUBIC_STEP_RTOL = 1e-8
_CUBIC_MAX_STEPS = 8
# Safeguarded-Newton iterations for a server's multiplier; typical convergence takes 4-8.
_PRICE_MAX_ITER = 100


def _one_plus_w0(a: np.ndarray) -> np.ndarray:
    """``1 + W0((a − 1)/e)`` for ``a ≥ 0``, accurate near the branch point ``a = 0``."""
    small = a < _SERIES_MAX_A
    p = np.sqrt(2.0 * np.where(small, a, 0.0))
    series = np.zeros_like(p)
    for coef in reversed(_BRANCH_SERIES):  # Horner in p, then times p
        series = series * p + coef
    series *= p
    with np.errstate(invalid="ignore"):
        # lambertw is nan at exactly −1/e; those entries take the series value instead.
        w = 1.0 + lambertw(np.where(small, 1.0, (a - 1.0) / np.e), 0).real
    return np.where(small, series, w)


def optimal_rate(
    v: ArrayLike,
    z: ArrayLike,
    noise_psd_w_hz: ArrayLike,
    bandwidth_hz: ArrayLike,
    gain: ArrayLike,
    r_min_bps: ArrayLike,
    r_max_bps: ArrayLike,
) -> np.ndarray:
    """Transmit rate minimizing the rate-dependent part of the drift-plus-penalty cost.

    Problem, for a payload of N bits (N > 0):

        min_{R_min ≤ R ≤ R_max}  V·p(R)·N/R + Z·N/R  =  N·(V c (2^{R/B} − 1) + Z)/R,
        c = N0 B / g   (W),   p(R) = c (2^{R/B} − 1).

    N multiplies the whole cost, so **R\\* does not depend on the payload** (nor on the option).

    Derivation. With ``x = R ln2 / B`` (so 2^{R/B} = e^x) and ``a = Z/(V c)`` the cost is
    ``N V c (ln2/B) ψ(x)`` with ``ψ(x) = (e^x − 1 + a)/x``. Stationarity ψ'(x) = 0 gives

        x e^x − (e^x − 1 + a) = 0   ⇔   (x − 1) e^{x−1} = (a − 1)/e
                                    ⇔   x* = 1 + W0((a − 1)/e),

    and ``R* = (B/ln2)·(1 + W0((a − 1)/e))``. The argument is ≥ −1/e because a ≥ 0, so the
    principal branch W0 is real and x* ≥ 0. Convexity: ``(e^x − 1)/x = Σ_k x^k/(k+1)!`` has
    non-negative coefficients and ``a/x`` is convex for x > 0, so ψ is convex on x > 0; the
    minimizer over an interval is therefore the unconstrained minimizer clipped to it, which
    makes the clipping to [R_min, R_max] exact.

    Limits. Z = 0 (a = 0): ψ(x) = (e^x − 1)/x is increasing — energy per bit grows with the
    rate and delay costs nothing — so x* = 0 and R* is clipped up to R_min (the energy per bit
    tends to N0 B ln2/g as R → 0, the Shannon limit). That is why R_min must be a small
    positive number: with R_min = 0 the predicted airtime is infinite. For large a,
    W0(y) ≈ ln y − ln ln y, so R* grows only like (B/ln2) ln a and usually clips to R_max.
    V = 0 (pure constraint tracking) with Z > 0 gives a = ∞, R* = R_max; V = 0 and Z = 0 make
    the cost identically zero and R_min is returned.

    Numerics: ``scipy.special.lambertw`` (branch 0, real part, vectorized; ~0.2 µs/element)
    except for a < 3e-4, where the argument's rounding near −1/e would cost digits and the
    branch-point series ``1 + W0 = p − p²/3 + 11p³/72 − …``, p = sqrt(2a), is used
    (8 terms; both agree with 50-digit mpmath to ≤ 1e-13 relative).

    Parameters
    ----------
    v : array_like of float
        Energy weight V ≥ 0 (objective units per J).
    z : array_like of float
        Delay queue Z ≥ 0 (objective units per s).
    noise_psd_w_hz, bandwidth_hz, gain : array_like of float
        N0 (W/Hz), B (Hz > 0), g (linear > 0).
    r_min_bps, r_max_bps : array_like of float
        Rate bounds (bit/s); usually
        ``r_max_bps = simulator.channel.link.max_rate_bps(P_max, g, N0, B)``.

    Returns
    -------
    numpy.ndarray of float64
        R* in bit/s, the broadcast shape of the inputs; NaN where ``r_max_bps < r_min_bps``
        (no feasible rate).

    Examples
    --------
    >>> float(optimal_rate(1.0, 0.0, 1e-20, 1e6, 1e-10, 1.0, 1e7))  # Z = 0 -> R_min
    1.0
    """
    v = np.asarray(v, dtype=float)
    z = np.asarray(z, dtype=float)
    b = np.asarray(bandwidth_hz, dtype=float)
    c = np.asarray(noise_psd_w_hz, dtype=float) * b / np.asarray(gain, dtype=float)
    vc = v * c
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(z > 0, z / vc, 0.0)  # V c = 0 with Z > 0 → a = ∞ → R_max
    rate = (b / _LN2) * _one_plus_w0(a)
    r_lo = np.asarray(r_min_bps, dtype=float)
    r_hi = np.asarray(r_max_bps, dtype=float)
    rate = np.minimum(np.maximum(rate, r_lo), r_hi)
    return np.where(r_hi >= r_lo, rate, np.nan)


def optimal_cpu_frequency(
    v: ArrayLike, z: ArrayLike, kappa: ArrayLike, f_min_hz: ArrayLike, f_max_hz: ArrayLike
) -> np.ndarray:
    """CPU frequency minimizing the compute part of the drift-plus-penalty cost.

    Problem, for W cycles (W > 0): ``min_{f_min ≤ f ≤ f_max} W·(V κ f² + Z/f)`` — energy
    κ f² W (J, κ in J/(cycle·Hz²)) weighted by V plus time W/f weighted by Z. W factors out, so
    f* does not depend on the option.

    Derivation. d/df (V κ f² + Z/f) = 2Vκ f − Z/f² = 0 gives ``f* = (Z / (2 V κ))^{1/3}``; the
    second derivative 2Vκ + 2Z/f³ > 0 for f > 0, so the cost is convex and clipping f* to
    [f_min, f_max] is the exact constrained minimizer. Z = 0 → f* = 0 → f_min (idle speed);
    Vκ = 0 with Z > 0 → f_max. Serves the device CPU and, with the server's κ, a server CPU
    whose capacity does not bind (see :func:`optimal_server_frequencies` when it does).

    Parameters
    ----------
    v : array_like of float
        Energy weight V ≥ 0.
    z : array_like of float
        Delay queue Z ≥ 0.
    kappa : array_like of float
        Effective switched capacitance κ ≥ 0 (J/(cycle·Hz²)).
    f_min_hz, f_max_hz : array_like of float
        Frequency bounds (Hz), 0 < f_min ≤ f_max.

    Returns
    -------
    numpy.ndarray of float64
        f* in Hz, broadcast shape.
    """
    z = np.asarray(z, dtype=float)
    two_vk = 2.0 * np.asarray(v, dtype=float) * np.asarray(kappa, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(z > 0, np.cbrt(z / two_vk), 0.0)
    return np.minimum(np.maximum(f, np.asarray(f_min_hz, dtype=float)), f_max_hz)


def server_frequency_at_price(
    v: ArrayLike,
    z: ArrayLike,
    kappa_server: ArrayLike,
    rx_cycles: ArrayLike,
    price: ArrayLike,
    f_min_hz: ArrayLike = 0.0,
) -> np.ndarray:
    """Server frequency a device takes when server capacity costs ``price`` per Hz.

    Problem (the per-device Lagrangian term of the shared-server problem, see
    :func:`optimal_server_frequencies`):

        min_{x ≥ x_min}  V κ_s x² W + Z W / x + λ x,

    with W = W_rx cycles, λ ≥ 0 the multiplier of Σ x ≤ F. Writing α = 2 V κ_s W and β = Z W,
    stationarity α x − β/x² + λ = 0 is the cubic

        q(x) = α x³ + λ x² − β = 0.

    For β > 0, q(0) = −β < 0 and q'(x) = 3αx² + 2λx > 0 on x > 0, so there is exactly one
    positive root; the cost is convex (second derivative α + 2β/x³ > 0), so the answer is
    ``max(x_min, root)``. λ = 0 gives the unconstrained ``(Z/(2Vκ_s))^{1/3}``; α = 0 (server
    energy not counted) gives ``sqrt(β/λ)``.

    Root finding: both ``x_u = (β/α)^{1/3}`` and ``sqrt(β/λ)`` bound the root from above
    (each drops a non-negative term of q), and their minimum is within a factor sqrt(2) of it
    (if αx ≥ λ at the root then β ≤ 2αx³, else β < 2λx²). q is increasing and convex on
    x > 0, so Newton started above the root decreases monotonically to it, quadratically;
    seven steps reach machine precision from a sqrt(2) start.

    Conventions: β = 0 (Z = 0 or W = 0) → root 0, so x = x_min; α = 0 and λ = 0 with β > 0 →
    x = ∞ (free, unlimited capacity).

    Parameters
    ----------
    v, z : array_like of float
        Energy weight V ≥ 0 and delay queue Z ≥ 0.
    kappa_server : array_like of float
        Server κ_s ≥ 0 (J/(cycle·Hz²)); 0 when server energy is left out of the objective.
    rx_cycles : array_like of float
        W_rx ≥ 0 (cycles).
    price : array_like of float
        λ ≥ 0 (objective units per Hz).
    f_min_hz : array_like of float, optional
        Floor x_min ≥ 0 on the device's server frequency (Hz).

    Returns
    -------
    numpy.ndarray of float64
        x in Hz, broadcast shape.
    """
    w = np.asarray(rx_cycles, dtype=float)
    alpha = 2.0 * np.asarray(v, dtype=float) * np.asarray(kappa_server, dtype=float) * w
    beta = np.asarray(z, dtype=float) * w
    lam = np.asarray(price, dtype=float)
    return np.maximum(_cubic_root(alpha, beta, lam), f_min_hz)


def _cubic_root(
    alpha: np.ndarray, beta: np.ndarray, lam: np.ndarray, x_start: np.ndarray | None = None
) -> np.ndarray:
    """Positive root of ``α x³ + λ x² = β`` (0 if β = 0; ∞ if α = λ = 0 < β); see above.

    ``x_start``: optional guess (e.g. the root at a nearby λ), clipped into
    [x_hi/sqrt(2), x_hi] around the upper bound x_hi = min((β/α)^{1/3}, sqrt(β/λ)), which
    brackets the root; from below it, the first Newton step lands above the root (q is convex),
    after which the iteration is monotone again.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.minimum(np.cbrt(beta / alpha), np.sqrt(beta / lam))  # ∞ when α = 0 or λ = 0
        ok = (x > 0) & (x < np.inf)  # False for β = 0 (0 or NaN) and for α = λ = 0
        all_ok = bool(ok.all())
        if all_ok:  # the common case: no masking needed
            a, b, lm, x0 = alpha, beta, lam, x
        else:
            x = np.where(beta > 0, x, 0.0)
            x0 = np.where(ok, x, 1.0)
            a = np.where(ok, alpha, 0.0)
            b = np.where(ok, beta, 0.0)
            lm = np.where(ok, lam, 1.0)
        if x_start is not None:
            x0 = np.where(ok, np.clip(x_start, x0 * _INV_SQRT2, x0), x0)
        lm2 = 2.0 * lm
        for k in range(_CUBIC_MAX_STEPS):
            ax = a * x0
            step = ((ax + lm) * x0 * x0 - b) / ((3.0 * ax + lm2) * x0)
            x0 = x0 - step
            # x0 > 0 throughout; a step of relative size ≤ 1e-8 leaves an error ~1e-16
            if k >= 1 and (np.abs(step) <= _CUBIC_STEP_RTOL * x0).all():
                break
    return x0 if all_ok else np.where(ok, x0, x)


def _cubic_root_slope(alpha: np.ndarray, lam: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx/dλ of the cubic's root by implicit differentiation: ``−x / (3αx + 2λ)`` (≤ 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -x / (3.0 * alpha * x + 2.0 * lam)
    return np.where(np.isfinite(s), s, 0.0)


def optimal_server_frequencies(
    v: ArrayLike,
    z: ArrayLike,
    kappa_server: ArrayLike,
    rx_cycles: ArrayLike,
    capacity_hz: ArrayLike,
    server_index: ArrayLike | None = None,
    f_min_hz: float = 0.0,
    active: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split each server's CPU among its devices for fixed options (exact, by KKT).

    Problem, for each server j with capacity F_j (Hz) and its devices i (shares s_i = x_i/F_j):

        min_x  Σ_i  V κ_s x_i² W_i + Z_i W_i / x_i    s.t.  Σ_i x_i ≤ F_j,  x_i ≥ x_min.

    Derivation. The cost is a sum of convex one-dimensional terms under one linear constraint,
    so KKT is necessary and sufficient. With multiplier λ_j ≥ 0 each device takes its
    price response x_i(λ_j) = :func:`server_frequency_at_price` (root of
    ``2Vκ_s W_i x³ + λ x² − Z_i W_i = 0``, floored at x_min), and complementary slackness says:

    * if the unconstrained choice fits, Σ_i x_i(0) ≤ F_j, then λ_j = 0 and
      x_i = max(x_min, (Z_i/(2Vκ_s))^{1/3}) — independent of W_i and of the other devices;
    * otherwise λ_j > 0 solves U_j(λ) = Σ_i x_i(λ) = F_j. U_j is continuous and strictly
      decreasing where any device is above its floor (dx/dλ = −x/(3αx + 2λ) < 0), so the root
      is unique. With server energy left out (κ_s = 0) it is explicit:
      x_i = F_j sqrt(Z_i W_i) / Σ_k sqrt(Z_k W_k) (square-root rule).

    Root finding for λ_j, vectorized over servers: Newton on t = λ^{−1/2}, in which the
    κ_s = 0 case is linear (U = t Σ sqrt(Z W)), started at that case's solution and kept
    inside a bracket [t_lo, t_hi] that every iterate tightens (bisection, or doubling while
    t_hi = ∞, when a Newton step leaves it); it stops at |U − F| ≤ 1e-13 F.

    Parameters
    ----------
    v, z, kappa_server, rx_cycles : array_like of float, shape (n_devices,) or broadcastable
        V, Z_i, κ_s (per device, i.e. its server's), W_rx,i of the chosen options (cycles).
    capacity_hz : array_like of float, shape (n_servers,)
        F_j (Hz, > 0).
    server_index : array_like of int, shape (n_devices,), optional
        Server of each device, in [0, n_servers); default all on server 0.
    f_min_hz : float, optional
        Floor x_min ≥ 0 (Hz); needs n_j · x_min ≤ F_j.
    active : array_like of bool, shape (n_devices,), optional
        Devices that need the server this slot; the others get 0 Hz and no capacity.

    Returns
    -------
    freq_hz : numpy.ndarray of float64, shape (n_devices,)
        x_i = s_i F_j (Hz); the share is ``freq_hz / capacity_hz[server_index]``.
    price : numpy.ndarray of float64, shape (n_servers,)
        λ_j ≥ 0 (objective units per Hz); 0 where the capacity does not bind.
    """
    v_, z_, k_, w_ = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(a, dtype=float)) for a in (v, z, kappa_server, rx_cycles))
    )
    if v_.ndim != 1:
        raise ValueError("optimal_server_frequencies takes 1-D per-device arrays")
    n = v_.shape[0]
    alpha = 2.0 * v_ * k_ * w_
    beta = z_ * w_
    cap = np.atleast_1d(np.asarray(capacity_hz, dtype=float))
    idx = np.zeros(n, dtype=np.intp) if server_index is None else np.asarray(server_index, np.intp)
    act = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    floors = np.bincount(idx, weights=act * float(f_min_hz), minlength=cap.shape[0])
    if np.any(floors > cap):
        raise ValueError("f_min_hz times the number of active devices exceeds a server capacity")
    return _share_kkt(alpha, beta, cap, idx, act, float(f_min_hz))


def _share_kkt(
    alpha: np.ndarray,
    beta: np.ndarray,
    cap: np.ndarray,
    idx: np.ndarray,
    act: np.ndarray,
    x_min: float,
    price_start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Core of :func:`optimal_server_frequencies` on validated 1-D arrays.

    ``price_start`` (n_servers,): optional first guess of λ per server (entries ≤ 0 ignored),
    e.g. a nearby price from the coupling search; the bracket makes any guess safe.
    """
    n_servers = cap.shape[0]

    def usage(lam_dev, root_start=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        root = _cubic_root(alpha, beta, lam_dev, root_start)
        x = np.where(act, np.maximum(root, x_min), 0.0)
        return x, root, np.bincount(idx, weights=x, minlength=n_servers)

    # λ = 0: the root is x_u = (β/α)^{1/3} in closed form (∞ for α = 0, 0 for β = 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_u = np.where(beta > 0, np.cbrt(beta / alpha), 0.0)
    x = np.where(act, np.maximum(x_u, x_min), 0.0)
    used = np.bincount(idx, weights=x, minlength=n_servers)
    price = np.zeros(n_servers)
    binding = used > cap  # also catches ∞ (κ_s = 0)
    if not np.any(binding):
        return x, price

    # t = λ^{-1/2}; start from the κ_s = 0 solution t = F / Σ sqrt(β) (see docstring).
    sqrt_beta = np.bincount(idx, weights=np.where(act, np.sqrt(beta), 0.0), minlength=n_servers)
    with np.errstate(divide="ignore"):
        t = np.where(binding, cap / sqrt_beta, 0.0)
        if price_start is not None:
            t = np.where(binding & (price_start > 0), 1.0 / np.sqrt(price_start), t)
    t_lo = np.zeros(n_servers)
    t_hi = np.full(n_servers, np.inf)
    todo = binding.copy()
    root = None
    for _ in range(_PRICE_MAX_ITER):
        t_safe = np.where(todo, t, 1.0)  # servers already done keep their values
        lam = np.where(todo, 1.0 / (t_safe * t_safe), 0.0)
        lam_dev = lam[idx]
        x_t, root, used = usage(lam_dev, root)  # warm start: the roots at the last price
        resid = used - cap
        # dU/dt = Σ dx/dλ · dλ/dt, dλ/dt = −2 t^{-3}; floored devices contribute 0.
        free = act & (root > x_min)
        dxdl = np.where(free, _cubic_root_slope(alpha, lam_dev, root), 0.0)
        slope = np.bincount(idx, weights=dxdl, minlength=n_servers) * (-2.0 / t_safe**3)
        done = todo & (np.abs(resid) <= 1e-13 * cap)
        price = np.where(todo, lam, price)
        x = np.where(todo[idx], x_t, x)
        todo &= ~done
        if not np.any(todo):
            break
        t_lo = np.where(todo & (resid < 0), t, t_lo)
        t_hi = np.where(todo & (resid > 0), t, t_hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_new = t - resid / slope
        inside = (t_new > t_lo) & (t_new < t_hi) & np.isfinite(t_new)
        fallback = np.where(np.isinf(t_hi), 2.0 * t, 0.5 * (t_lo + t_hi))
        t_new = np.where(inside, t_new, fallback)
        stalled = todo & np.isfinite(t_hi) & (t_hi - t_lo <= 4e-16 * t_hi)
        todo &= ~stalled
        t = np.where(todo, t_new, t)
    # The stopping tolerance lets Σx exceed F by ~1e-13 F; scale the devices above their floor
    # down so that Σx ≤ F holds exactly (a relative change of the same size).
    used = np.bincount(idx, weights=x, minlength=n_servers)
    above = act & (x > x_min)
    floor_sum = np.bincount(idx, weights=np.where(above, x_min, x), minlength=n_servers)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(used > cap, (cap - floor_sum) / (used - floor_sum), 1.0)
    x = np.where(above, x_min + (x - x_min) * scale[idx], x)
    return x, price
