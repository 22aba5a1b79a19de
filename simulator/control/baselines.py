"""Baseline per-slot policies (static, max-accuracy, min-energy, greedy) in the controller's shape.

Each policy is a drop-in for :class:`~simulator.control.lyapunov.LyapunovController`:
``decide(**slot)`` takes the per-slot keyword arguments of
:func:`~simulator.control.lyapunov.solve_slot` (without ``v`` and the queues; ``static`` fixes the
slot-invariant ones) and returns a :class:`~simulator.control.lyapunov.SlotDecision`;
``update(realized_delay_s, realized_accuracy, observed=None)`` is accepted and ignored
(baselines keep no state). Solver-only arguments (``max_coupling_rounds``, ``polish_rounds``,
``coupling_rtol``, ``server_price_hint``) are accepted and ignored, so one ``static`` mapping
serves every policy.

The policies, per device and slot (all vectorized over devices and options):

``static``
    A fixed option (index into the option table, one for all devices or one per device) at full
    power (R = R_max of the slot, so p = P_max) and full clock f = f_max.
``max-accuracy``
    The allowed option with the highest calibrated accuracy Ĝ of the slot (ties: the lowest
    index), at R_max and f_max like ``static``. With a calibration table that grows with K and
    b this is "largest K and b"; using Ĝ instead of (K, b) also covers encoder choice and
    SNR-dependent tables, which K and b alone cannot order. Full speed because this baseline
    is the quality-first reference: it spends whatever it takes, and an energy-aware choice of
    R and f would make it a different (greedy-like) policy.
``min-energy``
    The least-energy (option, R, f, x) whose predicted delay fits a cap ``delay_cap_s``
    (typically the slot length: the task must be done within its slot), ignoring the delay
    target and the accuracy target. Without a cap the problem is degenerate: energy per bit
    p(R)/R grows with R, so R → R_min (1 bit/s), f → f_min and x → the server floor, with
    delays of hours. If no option fits the cap, the fastest option at full speed.
``greedy``
    Meets the per-task delay target L_max with the cheapest option: among options whose
    least-energy point with predicted delay ≤ L_max exists and whose Ĝ ≥ A_min, the least
    energy; if none reaches A_min within the deadline, the most accurate option that meets the
    deadline (ties: least energy) — the smallest shortfall of the long-term accuracy target,
    where "cheapest regardless of accuracy" would give it up altogether; if no option meets the
    deadline, the fastest option (least delay at R_max, f_max and the full server share) at
    full speed.

Server. Baselines do not coordinate devices: each device's server frequency is capped at an
equal split of its server, x ≤ F_j / n_j (n_j devices assigned to server j, feasible or not),
so Σ x ≤ F_j always holds. ``static`` and ``max-accuracy`` use x = F_j / n_j; the deadline
policies pick x in [``server_freq_min_hz``, F_j / n_j] with the rate and clock (x = F_j / n_j
when server energy is left out of the objective, since it is then free).

Least energy within a deadline (``min-energy`` and ``greedy``), per device and option:

    min  E(R, f, x) = p(R) N/R + κ f² W_tx + κ_s x² W_rx
    s.t. L(R, f, x) = N/R + W_tx/f + W_rx/x ≤ D,   R ∈ [R_min, R_max], f ∈ [f_min, f_max],
         x ∈ [x_min, F_j/n_j].

E is convex in each variable (see :mod:`simulator.control.closed_form`) and L is convex, so
KKT conditions are sufficient. With a multiplier z ≥ 0 on the deadline, the Lagrangian
E + z (L − D) separates into exactly the drift-plus-penalty problems with V = 1 and Z = z, so
R(z) = :func:`~simulator.control.closed_form.optimal_rate`, f(z) and x(z) =
:func:`~simulator.control.closed_form.optimal_cpu_frequency` (the cube-root rule, for the server
with κ_s and its equal-split cap). Each is continuous and non-decreasing in z, so L(z) is
continuous and non-increasing, from L(0) (R_min, f_min, x_min) down to the full-speed delay
L_fast (reached once every variable is clipped at its top). Hence:

* L_fast > D: the option cannot meet the deadline;
* L(0) ≤ D: z = 0 (the slowest point already fits);
* otherwise z* solves L(z*) = D (complementary slackness), found on u = ln z by regula falsi
  with the Illinois modification on ln L(e^u) − ln D (:func:`_bracketed_root`). The bracket:
  above, z_top, where all three variables reach their upper bounds: f at z = 2κ f_max³, x at
  z = 2κ_s x_max³ and R at z = c((u − 1) e^u + 1), u = R_max ln2 / B, c = N0 B/g (the inverse of
  the rate closed form: a = z/c gives 1 + W0((a − 1)/e) = u), taken × 4 against rounding;
  below, half the least z at which a variable leaves its lower bound (the same formulas at
  f_min, x_min, R_min), under which L(z) = L(0) (and never below z_top·1e-40). The search stops
  when ln z is known to 1e-12 or the delay at the upper end is within a relative 1e-12 of D,
  and keeps the upper end (L ≤ D), so the returned point always meets the deadline; its energy
  is above the optimum by a relative ~1e-12. About 15 evaluations instead of the 56 of a
  bisection, with the same answer to 2e-12.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike

from simulator.channel.link import max_rate_bps, power_for_rate_w
from simulator.control.closed_form import optimal_cpu_frequency, optimal_rate
from simulator.control.lyapunov import SlotDecision, SlotInputs, slot_energy_delay, slot_inputs
from simulator.errors import ScenarioError

__all__ = [
    "static_decision",
    "max_accuracy_decision",
    "min_energy_decision",
    "greedy_decision",
    "least_energy_within_deadline",
    "DeadlineSolution",
    "BaselinePolicy",
    "StaticPolicy",
    "MaxAccuracyPolicy",
    "MinEnergyPolicy",
    "GreedyPolicy",
    "BASELINES",
    "make_baseline",
]

_LN2 = float(np.log(2.0))
# Arguments of solve_slot that only steer its coupling search; baselines accept and ignore them.
_SOLVER_ONLY = ("max_coupling_rounds", "polish_rounds", "coupling_rtol", "server_price_hint")
_SLOT_ARGS = tuple(inspect.signature(slot_inputs).parameters)[1:]  # what slot_inputs takes (after n)
# The root search's bracket never starts below z_top · 1e-40 (module docstring).
_Z_SPAN = 1e-40
_MAX_STEPS = 224  # a cap on the root search (bisection alone would need 56 steps of the bracket)
_U_TOL = 1e-12  # bracket width in ln z at which the search stops (z to a relative 1e-12)


@dataclass(frozen=True)
class _Slot(SlotInputs):
    """:class:`~simulator.control.lyapunov.SlotInputs` as the baselines use them.

    The option tables broadcast to (n, m); ``gain`` 1 where no rate in [R_min, R_max] exists
    (``linked`` false, so 1/g stays finite); and the derived ``r_max``, ``allowed`` (n, m)
    option mask, ``x_cap`` (the equal split F_j / n_j) and ``cap_dev`` (F_j of each device's
    server).
    """

    r_max: np.ndarray = None
    linked: np.ndarray = None
    allowed: np.ndarray = None
    x_cap: np.ndarray = None
    cap_dev: np.ndarray = None
    include_server_energy: bool = True


def _prepare(*, accuracy: ArrayLike, option_mask: ArrayLike | None = None, include_server_energy: bool = True,
             **slot: Any) -> _Slot:
    """The baselines' view of a slot: :func:`~simulator.control.lyapunov.slot_inputs`, broadcast per option."""
    unknown = set(slot) - set(_SLOT_ARGS) - set(_SOLVER_ONLY)
    if unknown:
        raise TypeError(f"unexpected slot arguments: {', '.join(sorted(unknown))}")
    si = slot_inputs(np.asarray(slot["gain"]).size, accuracy=accuracy,
                     **{k: v for k, v in slot.items() if k in _SLOT_ARGS})
    n, m = si.n, si.m
    n_bits, w_tx, w_rx, acc = (np.broadcast_to(t, (n, m)) for t in (si.n_bits, si.w_tx, si.w_rx, si.acc))
    counts = np.bincount(si.idx, minlength=si.n_servers)
    x_cap = si.cap[si.idx] / counts[si.idx]
    if np.any(x_cap < si.x_min):
        raise ScenarioError(
            "server_freq_min_hz times the number of devices exceeds the server capacity",
            path="server_freq_min_hz",
        )
    r_max = max_rate_bps(si.p_max, si.gain, si.n0, si.bw)
    linked = np.isfinite(r_max) & (r_max > 0) & (r_max >= si.r_min)
    allowed = np.ones((n, m), bool)
    if option_mask is not None:
        allowed = np.broadcast_to(np.asarray(option_mask, dtype=bool), (n, m))
    return _Slot(**{**vars(si), "gain": np.where(linked, si.gain, 1.0), "n_bits": n_bits, "w_tx": w_tx,
                    "w_rx": w_rx, "acc": acc}, r_max=np.where(linked, r_max, 0.0), linked=linked,
                 allowed=allowed & linked[:, None], x_cap=x_cap, cap_dev=si.cap[si.idx],
                 include_server_energy=bool(include_server_energy))


def _decision(s: _Slot, option: np.ndarray, rate: np.ndarray, f: np.ndarray,
              x: np.ndarray) -> SlotDecision:
    """A SlotDecision for per-device options (−1: no transmission) and speeds.

    ``objective`` is the energy the decision spends (what the baselines minimize, if anything);
    ``server_price`` and ``coupling_gap`` are 0 (baselines do not price the server).
    """
    feasible = option >= 0
    rows = np.arange(s.n)
    o = np.maximum(option, 0)

    def pick(table: np.ndarray) -> np.ndarray:
        return np.where(feasible, table[rows, o], 0.0)

    rate = np.where(feasible, rate, 0.0)
    f = np.where(feasible, f, 0.0)
    x = np.where(feasible, x, 0.0)
    power = np.where(feasible, power_for_rate_w(rate, s.gain, s.n0, s.bw), 0.0)
    e_tx, e_cpu, e_srv, delay = slot_energy_delay(
        rate, power, f, x, pick(s.n_bits), pick(s.w_tx), pick(s.w_rx), s.kappa, s.k_srv
    )
    e_tx = np.where(feasible, e_tx, 0.0)
    e_cpu = np.where(feasible, e_cpu, 0.0)
    e_srv = np.where(feasible, e_srv, 0.0)
    energy = e_tx + e_cpu + (e_srv if s.include_server_energy else 0.0)
    return SlotDecision(
        option=option.astype(np.int64),
        feasible=feasible,
        rate_bps=rate,
        power_w=power,
        cpu_freq_hz=f,
        server_freq_hz=x,
        server_share=x / s.cap_dev,
        energy_tx_j=e_tx,
        energy_cpu_j=e_cpu,
        energy_server_j=e_srv,
        energy_j=energy,
        delay_s=np.where(feasible, delay, np.inf),
        accuracy=pick(s.acc),
        objective=np.where(feasible, energy, np.inf),
        server_price=np.zeros(s.n_servers),
        coupling_gap=np.zeros(s.n_servers),
    )


def _full_speed(s: _Slot, option: np.ndarray) -> SlotDecision:
    return _decision(s, option, s.r_max, s.f_hi, s.x_cap)


def static_decision(option: ArrayLike, **slot: Any) -> SlotDecision:
    """``static``: a fixed option at R = R_max (p = P_max), f = f_max and x = F_j / n_j.

    Parameters
    ----------
    option : int or array_like of int, shape (n_devices,)
        Index into the option table. A device whose option is masked out (``option_mask``) or
        whose link carries no rate this slot does not transmit (``option = -1``).
    **slot
        The per-slot keyword arguments of :func:`~simulator.control.lyapunov.solve_slot`
        without ``v``, ``delay_queue`` and ``accuracy_queue``.

    Returns
    -------
    SlotDecision
        ``objective`` holds the energy.
    """
    s = _prepare(**slot)
    o = np.broadcast_to(np.asarray(option, dtype=np.intp), (s.n,))
    if np.any((o < 0) | (o >= s.m)):
        raise ScenarioError(f"option index out of range 0..{s.m - 1}: {option!r}",
                            path="controller.option")
    ok = s.allowed[np.arange(s.n), o]
    return _full_speed(s, np.where(ok, o, -1))


def max_accuracy_decision(**slot: Any) -> SlotDecision:
    """``max-accuracy``: the allowed option of highest Ĝ (ties: lowest index) at full speed.

    Full speed as in :func:`static_decision`. See the module docstring for why Ĝ, not (K, b).
    """
    s = _prepare(**slot)
    acc = np.where(s.allowed, s.acc, -np.inf)
    any_ok = s.allowed.any(axis=1)
    return _full_speed(s, np.where(any_ok, np.argmax(acc, axis=1), -1))


@dataclass(frozen=True)
class DeadlineSolution:
    """Least energy within a deadline for every (device, option); arrays shape (n, m).

    Attributes
    ----------
    meets : bool
        The option can finish within the deadline (full-speed delay ≤ D) and is allowed.
    delay_price : float64
        The deadline's multiplier z* (J/s); 0 when the slowest point already fits, +inf where
        the option cannot meet the deadline.
    rate_bps, cpu_freq_hz, server_freq_hz : float64
        The least-energy point (where ``meets``; the full-speed point elsewhere).
    energy_j : float64
        Its energy (server part included when it is in the objective); +inf where not ``meets``.
    delay_s : float64
        Its predicted delay (≤ D where ``meets``).
    fastest_delay_s : float64
        L_fast, the delay at R_max, f_max and the full server share; +inf for options that
        are not allowed.
    """

    meets: np.ndarray
    delay_price: np.ndarray
    rate_bps: np.ndarray
    cpu_freq_hz: np.ndarray
    server_freq_hz: np.ndarray
    energy_j: np.ndarray
    delay_s: np.ndarray
    fastest_delay_s: np.ndarray


def _deadline_solution(s: _Slot, deadline_s: np.ndarray) -> DeadlineSolution:
    """Core of :func:`least_energy_within_deadline` on validated inputs (see the module doc)."""
    d = np.broadcast_to(np.asarray(deadline_s, dtype=float), (s.n,))[:, None]

    def col(a: np.ndarray) -> np.ndarray:
        return a[:, None]

    g, n0, bw, kappa, k_srv = col(s.gain), col(s.n0), col(s.bw), col(s.kappa), col(s.k_srv)
    r_lo, r_hi, f_lo, f_hi, x_cap = (col(s.r_min), col(s.r_max), col(s.f_lo), col(s.f_hi),
                                     col(s.x_cap))
    r_hi = np.where(col(s.linked), r_hi, r_lo)  # unlinked rows: any finite stand-in

    def point(z: np.ndarray):
        rate = optimal_rate(1.0, z, n0, bw, g, r_lo, r_hi)
        f = optimal_cpu_frequency(1.0, z, kappa, f_lo, f_hi)
        if s.include_server_energy:
            x = optimal_cpu_frequency(1.0, z, k_srv, s.x_min, x_cap)
        else:
            x = np.broadcast_to(x_cap, z.shape)
        return rate, f, x, _energy_delay(rate, f, x)

    def _energy_delay(rate, f, x):
        power = power_for_rate_w(rate, g, n0, bw)
        e_tx, e_cpu, e_srv, delay = slot_energy_delay(
            rate, power, f, x, s.n_bits, s.w_tx, s.w_rx, kappa, k_srv
        )
        return e_tx + e_cpu + (e_srv if s.include_server_energy else 0.0), delay

    shape = (s.n, s.m)
    _, fastest = _energy_delay(r_hi, f_hi, x_cap)
    fastest = np.where(s.allowed, np.broadcast_to(fastest, shape), np.inf)
    meets = fastest <= d

    # z where every variable sits at its upper bound (see the module docstring)
    u = r_hi * _LN2 / bw
    c = n0 * bw / g
    z_top = np.maximum.reduce([
        c * ((u - 1.0) * np.exp(u) + 1.0),
        2.0 * kappa * f_hi**3,
        (2.0 * k_srv * x_cap**3) if s.include_server_energy else np.zeros_like(c),
    ])
    z_hi = np.broadcast_to(4.0 * np.maximum(z_top, np.finfo(float).tiny), shape).copy()
    # below the least z where a variable leaves its lower bound, L(z) = L(0): the root is above it
    u_min = r_lo * _LN2 / bw
    z_bottom = np.minimum.reduce([
        c * np.expm1(u_min) * u_min - c * (np.expm1(u_min) - u_min),  # c((u − 1)e^u + 1), cancellation-free
        2.0 * kappa * f_lo**3,
        (2.0 * k_srv * s.x_min**3) if s.include_server_energy else np.full_like(c, np.inf),
    ])
    z_lo = np.maximum(z_hi * _Z_SPAN, np.broadcast_to(0.5 * z_bottom, shape))
    fits_at_zero = point(np.zeros(shape))[3][1] <= d
    d_lo = point(z_lo)[3][1]
    fits_at_lo = d_lo <= d
    z_hi = _bracketed_root(lambda z: point(z)[3][1], d, z_lo, z_hi, d_lo,
                           done=~meets | fits_at_zero | fits_at_lo)
    z = np.where(fits_at_zero, 0.0, np.where(fits_at_lo, z_lo, z_hi))
    z = np.where(meets, z, np.inf)
    rate, f, x, (energy, delay) = point(np.where(meets, z, z_hi))
    rate = np.where(meets, rate, r_hi)
    f = np.where(meets, f, f_hi)
    x = np.where(meets, x, x_cap)
    return DeadlineSolution(
        meets=meets,
        delay_price=z,
        rate_bps=np.broadcast_to(rate, shape),
        cpu_freq_hz=np.broadcast_to(f, shape),
        server_freq_hz=np.broadcast_to(x, shape),
        energy_j=np.where(meets, energy, np.inf),
        delay_s=np.where(meets, delay, fastest),
        fastest_delay_s=fastest,
    )


def _bracketed_root(delay, deadline, z_lo, z_hi, delay_lo, done):
    """The least z in ``[z_lo, z_hi]`` with ``delay(z) ≤ deadline``, to a relative 1e-12 (module docstring).

    ``f(u) = ln delay(e^u) − ln deadline`` is continuous and non-increasing in u = ln z, positive
    at ``z_lo`` (``delay_lo`` is the delay there) and ≤ 0 at ``z_hi``; the logarithms tame the
    range of the delay (from the slowest point, seconds, to the deadline, milliseconds), which a
    secant on the delay itself crosses only slowly. Regula falsi with the Illinois modification
    (the stale end's f is halved when the same end is kept twice), a bisection step when the
    secant point falls outside the bracket. Elements stop when the bracket is narrower than
    ``_U_TOL`` or the delay at the upper end is within a relative 1e-12 of the deadline; the
    upper end, which always meets the deadline, is returned. ``done`` marks elements to leave
    as they are.
    """
    log_d = np.log(deadline)

    def f_of(u, mask):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(mask, np.log(delay(np.exp(u))) - log_d, 0.0)

    u_lo, u_hi = np.log(z_lo), np.log(z_hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        f_lo = np.where(done, 1.0, np.log(delay_lo) - log_d)
    f_hi = f_of(u_hi, ~done)
    kept = np.zeros(u_lo.shape, dtype=np.int8)  # +1: the upper end moved last, −1: the lower end
    active = ~done & (u_hi - u_lo > _U_TOL) & (f_hi < -1e-12)
    for _ in range(_MAX_STEPS):
        if not active.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = u_hi - f_hi * (u_hi - u_lo) / (f_hi - f_lo)
        inside = np.isfinite(secant) & (secant > u_lo) & (secant < u_hi)
        u = np.where(inside, secant, 0.5 * (u_lo + u_hi))
        f = f_of(u, active)
        upper = active & (f <= 0)  # u meets the deadline: the new upper end
        lower = active & ~upper
        f_lo = np.where(upper & (kept == 1), 0.5 * f_lo, f_lo)   # Illinois: the lower end went stale
        f_hi = np.where(lower & (kept == -1), 0.5 * f_hi, f_hi)  # the upper end went stale
        u_hi, f_hi = np.where(upper, u, u_hi), np.where(upper, f, f_hi)
        u_lo, f_lo = np.where(lower, u, u_lo), np.where(lower, f, f_lo)
        kept = np.where(upper, 1, np.where(lower, -1, kept)).astype(np.int8)
        active &= (u_hi - u_lo > _U_TOL) & ~(upper & (f > -1e-12))
    return np.exp(u_hi)


def least_energy_within_deadline(deadline_s: ArrayLike, **slot: Any) -> DeadlineSolution:
    """Least-energy (R, f, x) of every (device, option) whose predicted delay is ≤ D.

    Solves the convex problem of the module docstring by its multiplier: the closed forms at
    V = 1, Z = z, with z* found by bisection on ln z.

    Parameters
    ----------
    deadline_s : float or array_like of float, shape (n_devices,)
        D (s, > 0).
    **slot
        Per-slot keyword arguments of :func:`~simulator.control.lyapunov.solve_slot` without
        ``v`` and the queues.

    Returns
    -------
    DeadlineSolution
    """
    if np.any(np.asarray(deadline_s, dtype=float) <= 0):
        raise ValueError("deadline_s must be > 0")
    return _deadline_solution(_prepare(**slot), np.asarray(deadline_s, dtype=float))


def _cheapest_within(s: _Slot, deadline_s: ArrayLike, accuracy_min: ArrayLike | None):
    """The deadline policies' choice; ``accuracy_min=None`` ignores accuracy (min-energy)."""
    sol = _deadline_solution(s, np.asarray(deadline_s, dtype=float))
    rows = np.arange(s.n)
    meets = sol.meets
    if accuracy_min is None:
        candidates = meets
    else:
        a_min = np.broadcast_to(np.asarray(accuracy_min, dtype=float), (s.n,))[:, None]
        good = meets & (s.acc >= a_min)
        # no accurate option within the deadline: the most accurate one that meets it
        best_acc = np.max(np.where(meets, s.acc, -np.inf), axis=1, keepdims=True)
        closest = meets & (s.acc == best_acc)
        candidates = np.where(good.any(axis=1, keepdims=True), good, closest)
    option = np.argmin(np.where(candidates, sol.energy_j, np.inf), axis=1)
    any_meets = meets.any(axis=1)
    fastest = np.argmin(sol.fastest_delay_s, axis=1)
    any_allowed = s.allowed.any(axis=1)
    option = np.where(any_meets, option, np.where(any_allowed, fastest, -1))
    o = np.maximum(option, 0)
    return _decision(s, option, sol.rate_bps[rows, o], sol.cpu_freq_hz[rows, o],
                     sol.server_freq_hz[rows, o])


def min_energy_decision(delay_cap_s: ArrayLike, **slot: Any) -> SlotDecision:
    """``min-energy``: least energy with predicted delay ≤ ``delay_cap_s``, accuracy ignored.

    Parameters
    ----------
    delay_cap_s : float or array_like of float, shape (n_devices,)
        The cap that keeps the problem from degenerating to R_min, f_min (module docstring),
        e.g. the slot length ``slot_s``. Options that cannot meet it are skipped; if none
        can, the fastest option at full speed.
    **slot
        As in :func:`static_decision`.
    """
    if np.any(np.asarray(delay_cap_s, dtype=float) <= 0):
        raise ScenarioError(f"must be > 0 (got {delay_cap_s!r})", path="controller.delay_cap_s")
    return _cheapest_within(_prepare(**slot), delay_cap_s, None)


def greedy_decision(delay_max_s: ArrayLike, accuracy_min: ArrayLike, **slot: Any) -> SlotDecision:
    """``greedy``: the cheapest option that meets the delay target L_max in this slot.

    Order of preference (module docstring): meets L_max and Ĝ ≥ A_min, least energy; else
    meets L_max, highest Ĝ then least energy; else the fastest option at full speed.

    Parameters
    ----------
    delay_max_s : float or array_like of float, shape (n_devices,)
        L_max (s, > 0), applied to each task's predicted delay.
    accuracy_min : float or array_like of float, shape (n_devices,)
        A_min.
    **slot
        As in :func:`static_decision`.
    """
    if np.any(np.asarray(delay_max_s, dtype=float) <= 0):
        raise ScenarioError(f"must be > 0 (got {delay_max_s!r})", path="controller.delay_max_s")
    return _cheapest_within(_prepare(**slot), delay_max_s, accuracy_min)


class BaselinePolicy:
    """Common shape of the baselines: ``decide(**slot)`` and a no-op ``update``.

    Parameters
    ----------
    n_devices : int
    static : mapping, optional
        Slot-invariant keyword arguments (option tables, CPU and server parameters, ...);
        ``decide`` merges the per-slot ones over them, as
        :meth:`~simulator.control.lyapunov.LyapunovController.decide` does.
    """

    kind = ""

    def __init__(self, n_devices: int, *, static: Mapping[str, Any] | None = None):
        self.n_devices = int(n_devices)
        self.static = dict(static or {})

    def decide(self, **slot: Any) -> SlotDecision:
        """The slot's decision for every device."""
        decision = self._decide(**{**self.static, **slot})
        if decision.option.shape[0] != self.n_devices:
            raise ValueError(f"got {decision.option.shape[0]} devices, expected {self.n_devices}")
        return decision

    def _decide(self, **slot: Any) -> SlotDecision:
        raise NotImplementedError

    def update(self, realized_delay_s: ArrayLike, realized_accuracy: ArrayLike,
               observed: ArrayLike | None = None) -> None:
        """Baselines learn nothing; accepted so that the slot clock can treat all alike."""


class StaticPolicy(BaselinePolicy):
    """``static``: :func:`static_decision` with a fixed ``option`` (scalar or per device)."""

    kind = "static"

    def __init__(self, n_devices: int, *, option: ArrayLike,
                 static: Mapping[str, Any] | None = None):
        super().__init__(n_devices, static=static)
        self.option = np.asarray(option, dtype=np.intp)

    def _decide(self, **slot: Any) -> SlotDecision:
        return static_decision(self.option, **slot)


class MaxAccuracyPolicy(BaselinePolicy):
    """``max-accuracy``: :func:`max_accuracy_decision`."""

    kind = "max-accuracy"

    def _decide(self, **slot: Any) -> SlotDecision:
        return max_accuracy_decision(**slot)


class MinEnergyPolicy(BaselinePolicy):
    """``min-energy``: :func:`min_energy_decision` with a fixed ``delay_cap_s``."""

    kind = "min-energy"

    def __init__(self, n_devices: int, *, delay_cap_s: ArrayLike,
                 static: Mapping[str, Any] | None = None):
        super().__init__(n_devices, static=static)
        if np.any(~(np.asarray(delay_cap_s, dtype=float) > 0)):
            raise ScenarioError(f"must be > 0 (got {delay_cap_s!r})",
                                path="controller.delay_cap_s")
        self.delay_cap_s = np.asarray(delay_cap_s, dtype=float)

    def _decide(self, **slot: Any) -> SlotDecision:
        return min_energy_decision(self.delay_cap_s, **slot)


class GreedyPolicy(BaselinePolicy):
    """``greedy``: :func:`greedy_decision` with fixed targets L_max and A_min."""

    kind = "greedy"

    def __init__(self, n_devices: int, *, delay_max_s: ArrayLike, accuracy_min: ArrayLike,
                 static: Mapping[str, Any] | None = None):
        super().__init__(n_devices, static=static)
        if np.any(~(np.asarray(delay_max_s, dtype=float) > 0)):
            raise ScenarioError(f"must be > 0 (got {delay_max_s!r})",
                                path="controller.delay_max_s")
        a = np.asarray(accuracy_min, dtype=float)
        if np.any(~((a >= 0) & (a <= 1))):
            raise ScenarioError(f"must be in [0, 1] (got {accuracy_min!r})",
                                path="controller.accuracy_min")
        self.delay_max_s = np.asarray(delay_max_s, dtype=float)
        self.accuracy_min = a

    def _decide(self, **slot: Any) -> SlotDecision:
        return greedy_decision(self.delay_max_s, self.accuracy_min, **slot)


BASELINES: dict[str, type[BaselinePolicy]] = {
    cls.kind: cls for cls in (StaticPolicy, MaxAccuracyPolicy, MinEnergyPolicy, GreedyPolicy)
}


def make_baseline(kind: str, n_devices: int, **kwargs: Any) -> BaselinePolicy:
    """The baseline named ``kind`` (``static``, ``max-accuracy``, ``min-energy``, ``greedy``).

    ``kwargs`` go to its constructor (``option``; ``delay_cap_s``; ``delay_max_s`` and
    ``accuracy_min``; ``static`` for all).
    """
    try:
        cls = BASELINES[kind]
    except KeyError:
        raise ScenarioError(f"unknown baseline {kind!r} (known: {', '.join(BASELINES)})",
                            path="controller.kind") from None
    return cls(n_devices, **kwargs)
