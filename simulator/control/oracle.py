"""Offline lower bound on the optimal time-average energy: the Lagrangian dual over a known trace.

Problem. Over a realized trace of T slots (channel gains, per-slot accuracy tables and option
masks known in advance), per-slot decisions d_t = (o_ti, R_ti, f_ti, x_ti) for every device i,
each from the same per-slot set X_t as the controller's (allowed options, R_min ≤ R ≤ R_max,t,
f_min ≤ f ≤ f_max, server floor and Σ_{i on j} x_i ≤ F_j), minimize

    Ē = (1/T) Σ_t Σ_i E_ti
    s.t. for every device i:  (1/T) Σ_{t∈F_i} (L_ti − L_max,i) ≤ 0,
                              (1/T) Σ_{t∈F_i} (A_min,i − Ĝ_ti) ≤ 0,

with E, L, Ĝ the per-task model of :func:`~simulator.control.lyapunov.slot_energy_delay`
(L is the *predicted* delay W_tx/f + N/R + W_rx/x, not queueing or spill-over delay) and F_i
the slots in which device i has a link and an allowed option (in the others no policy can
send; they count 0 energy and are left out of the averages, as the controller's queues leave
them out via ``observed``). Constraints are per device, as the controller's per-device queues
enforce them.

Weak duality. For multipliers λ_i (J/s, on delay) and η_i (J, on accuracy), λ, η ≥ 0,

    D(λ, η) = min_d  Ē + Σ_i λ_i (1/T) Σ_{F_i} (L_ti − L_max,i)
                       + Σ_i η_i (1/T) Σ_{F_i} (A_min,i − Ĝ_ti)
            = (1/T) Σ_t [ min_{d_t ∈ X_t} Σ_i (E_ti + λ_i L_ti − η_i Ĝ_ti) ]
              − Σ_i (|F_i|/T) (λ_i L_max,i − η_i A_min,i).

The minimization separates by slot because both the objective and the constraints are time
averages and X_t does not depend on the other slots' decisions; the bracket is the
drift-plus-penalty problem with V = 1, Z = λ, Y = η, i.e.
:func:`~simulator.control.lyapunov.solve_slot` (this module's one scaling: V = 1, multipliers in
J/s and J). For any decision sequence meeting the constraints the multiplier terms are ≤ 0,
so D(λ, η) ≤ its energy: **every D(λ, η) is a lower bound on the energy of every policy that
meets the time-average targets on this trace** — causal or not, the Lyapunov controller
included. It needs the per-slot minimum to be exact: solve_slot's is when no server capacity
binds; when one binds it returns a feasible point at most ``coupling_gap`` (certified) above
the minimum, and D subtracts that gap, so the bound stays valid.

Tightness. max D equals the optimum of the relaxation in which each slot may time-share
(randomize) among decisions (strong duality: the set of achievable averages is then convex;
Slater holds when the targets are strictly achievable), so the bound is exact for that
relaxation. A basic optimal solution of that relaxation time-shares in at most 2n
(slot, device) pairs (one per constraint), so a deterministic policy is within one slot's
option switch per constraint of it: the deterministic optimum approaches the bound as T grows.

Maximization. D is concave (a minimum of affine functions of (λ, η)), with supergradients
∂D/∂λ_i = (1/T) Σ_{F_i} (L_ti − L_max,i) and ∂D/∂η_i = (1/T) Σ_{F_i} (A_min,i − Ĝ_ti)
at the per-slot minimizers. It is maximized by nested one-dimensional searches, outer over
η, inner over λ given η; each runs for all devices at once (a vector of independent
brackets). h(η) = max_λ D(λ, η) is concave; its supergradient at η is the η-slope of the
combination θ·(side below λ*) + (1 − θ)·(side above λ*) whose λ-slopes cancel — with
discrete options the λ-maximum usually sits at a kink, and either side's η-slope alone can
point the wrong way. A 1-D search over x ≥ 0 with a supergradient s:

1. Bracket. Cold: s(0) ≤ 0 ⇒ x* = 0 (a supergradient ≤ 0 at the boundary proves optimality
   for concave D); otherwise x = scale, 10·scale, … until s ≤ 0. Warm (the inner search after
   the first, started at the previous λ*): from there up or down by factors of 2, x = 0 tried
   after two steps down. If s > 0 over 40 expansions the target cannot be met on this trace:
   the dual is unbounded, status ``"infeasible"``.
2. Refine [lo, hi] (s(lo) > 0 ≥ s(hi)), alternating a false-position step on s in ln x
   (Illinois rule; exact where D is quadratic) and the point where the tangent lines at lo and
   hi meet (exact at a kink of a piecewise-linear D, where false position only creeps up on
   the jump of s). The tangents certify the search: max D ≤ U, their intersection value, so it
   stops once U − best ≤ rtol·|best| (``dual_gap_j`` reports the remaining U − best).
3. The time-sharing solution: the minimizers at lo and hi weighted by θ with
   θ s(lo) + (1 − θ) s(hi) = 0; nested over both searches this gives the relaxed primal
   averages (``OfflineBound.relaxed_*``), which meet active targets with equality.

Slopes within 1e-12 of the summed terms are read as 0 (rounding of a target met exactly).

Everything is deterministic. The slots are batched: one solve_slot call evaluates D on all
T·n (slot, device) pairs (each slot's servers are separate pseudo-servers), in chunks of slots.
When the devices are uncoupled (no shared server capacity binds) D separates by device and the
per-device searches are exact; when a shared server binds, the per-device searches are a
Jacobi-type approximation (each device's search sees the others' current multipliers): the
result is still a valid bound (the largest D evaluated), possibly below max D, and the status
says ``"coupled"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike

from simulator.control.lyapunov import SlotDecision, solve_slot
from simulator.errors import ScenarioError

__all__ = ["DualPoint", "OfflineBound", "SlotMinimizers", "dual_function", "offline_lower_bound", "optimality_gap",
           "slot_minimizers"]

# Per-device keyword arguments of solve_slot (scalar or (n_devices,)).
_PER_DEVICE = ("noise_psd_w_hz", "bandwidth_hz", "max_power_w", "kappa_device", "f_min_hz",
               "f_max_hz", "r_min_bps")
_PER_OPTION = ("payload_bits", "tx_cycles", "rx_cycles")
_NOT_PARAMS = ("v", "delay_queue", "accuracy_queue", "server_price_hint")
# One solve_slot call handles at most this many (slot, device, option) entries.
_CHUNK_ENTRIES = 1 << 20
_GROW = 10.0  # bracket expansion factor of a cold search
_WARM_GROW = 2.0  # ... and of an inner search started at the previous inner maximizer
_MAX_EXPAND = 40
# Supergradients within this fraction of the summed terms are rounding noise, read as 0.
_SLOPE_RTOL = 1e-12


@dataclass(frozen=True)
class DualPoint:
    """The dual function and the per-slot minimizers' averages at fixed multipliers.

    Arrays are per device, shape (n_devices,).

    Attributes
    ----------
    delay_multiplier, accuracy_multiplier : float64
        λ (J/s) and η (J).
    value_j : float
        D(λ, η), J per slot summed over devices: a lower bound on the time-average energy of
        any policy meeting the targets on the trace.
    device_value_j : float64
        Each device's part of D (before subtracting ``coupling_gap_j``).
    delay_slope_s : float64
        ∂D/∂λ_i = (1/T) Σ_{F_i} (L − L_max) (s).
    accuracy_slope : float64
        ∂D/∂η_i = (1/T) Σ_{F_i} (A_min − Ĝ).
    energy_j : float64
        Time-average energy of the minimizers, J per slot ((1/T) Σ_t, 0 in slots without a
        link).
    delay_s, accuracy : float64
        Average predicted delay (s) and Ĝ over the device's active slots F_i (NaN if none).
    active_slots : int64
        |F_i|.
    coupling_gap_j : float
        (1/T) Σ_t of solve_slot's certified coupling gaps (0 when no server binds).
    binding_servers : int
        (slot, server) pairs whose capacity binds (a positive price); 0 means D separates by
        device.
    """

    delay_multiplier: np.ndarray
    accuracy_multiplier: np.ndarray
    value_j: float
    device_value_j: np.ndarray
    delay_slope_s: np.ndarray
    accuracy_slope: np.ndarray
    energy_j: np.ndarray
    delay_s: np.ndarray
    accuracy: np.ndarray
    active_slots: np.ndarray
    coupling_gap_j: float
    binding_servers: int


@dataclass(frozen=True)
class OfflineBound:
    """Result of :func:`offline_lower_bound`.

    Attributes
    ----------
    bound_j : float
        max over the searched multipliers of D(λ, η): a lower bound on the optimal time-average
        energy, J per slot summed over devices (multiply by ``slots`` for the run's total).
    delay_multiplier, accuracy_multiplier : numpy.ndarray of float64, shape (n_devices,)
        The maximizing λ (J/s) and η (J).
    point : DualPoint
        D and the primal averages of the per-slot minimizers at those multipliers.
    status : str
        ``"optimal"`` (every search stopped on its certificate or on a zero supergradient, and
        D separates by device at the result), ``"coupled"`` (the searches stopped, but a
        binding server shared by several devices couples them at the result, so the
        per-device searches do not certify the joint maximum: a valid bound, possibly below
        max D), ``"iteration_limit"``, or ``"infeasible"`` (some target cannot be met on this
        trace by any policy; D is unbounded and ``bound_j`` is only the largest value
        evaluated).
    converged : bool
        ``status == "optimal"``.
    dual_gap_j : float
        Estimated room left above ``bound_j`` for max D (sum of the outer searches' tangent
        certificates and the inner ones at the result); inf where a search did not bracket
        and when ``status`` is ``"coupled"`` (not certified).
    evaluations : int
        Evaluations of D (each one a batched solve_slot over the whole trace).
    slots : int
        T.
    relaxed_energy_j, relaxed_delay_s, relaxed_accuracy : numpy.ndarray of float64, shape (n,)
        Averages of the time-sharing solution the dual certifies: per device, the per-slot
        minimizers on the two sides of the maximum in λ and in η, weighted so that the
        supergradients cancel (the relaxed primal optimum, up to the search's tolerance).
        They meet the targets — with equality where a multiplier is > 0 — and, summed over
        devices, their energy equals ``bound_j`` (complementary slackness); the deterministic
        per-slot minimizers at the multipliers (``point``) may miss a target by one slot's
        option switch.
    """

    bound_j: float
    delay_multiplier: np.ndarray
    accuracy_multiplier: np.ndarray
    point: DualPoint
    status: str
    converged: bool
    dual_gap_j: float
    evaluations: int
    slots: int
    relaxed_energy_j: np.ndarray
    relaxed_delay_s: np.ndarray
    relaxed_accuracy: np.ndarray

    @property
    def total_energy_j(self) -> float:
        """The bound on the run's total energy: ``bound_j · slots`` (J)."""
        return self.bound_j * self.slots


@dataclass(frozen=True)
class SlotMinimizers:
    """The per-slot minimizers of the Lagrangian at fixed multipliers (:func:`slot_minimizers`).

    Attributes
    ----------
    option : numpy.ndarray of int64, shape (n_slots, n_devices)
        The minimizing option of every (slot, device) pair, −1 where it has no feasible decision.
    feasible : numpy.ndarray of bool, shape (n_slots, n_devices)
        Whether the pair has one (a link, an allowed option and a rate in [R_min, R_max,t]): the
        pairs F_i the constraints average over.
    """

    option: np.ndarray
    feasible: np.ndarray


def optimality_gap(energy_j: ArrayLike, bound_j: ArrayLike) -> np.ndarray | float:
    """Relative gap of a policy's energy to the lower bound: ``energy / bound − 1``.

    Both in the same units (per-slot averages or run totals). ≥ 0 for any policy meeting the
    targets on the trace the bound was computed on.
    """
    gap = np.asarray(energy_j, dtype=float) / np.asarray(bound_j, dtype=float) - 1.0
    return float(gap) if np.ndim(gap) == 0 else gap


class _Trace:
    """The trace batched for solve_slot: T·n pseudo-devices, T·S pseudo-servers, in chunks.

    ``delay_max_s`` and ``accuracy_min`` None: no targets (the minimizers, not D).
    """

    def __init__(self, gain, accuracy, option_mask, delay_max_s, accuracy_min, params):
        bad = [k for k in _NOT_PARAMS if k in params]
        if bad:
            raise TypeError(f"the oracle sets these itself: {', '.join(bad)}")
        g = np.asarray(gain, dtype=float)
        if g.ndim != 2:
            raise ValueError(f"gain must have shape (n_slots, n_devices), got {g.shape}")
        t_slots, n = g.shape
        if t_slots < 1 or n < 1:
            raise ValueError("the trace needs at least one slot and one device")
        self.t_slots, self.n = t_slots, n
        self.l_max = self.a_min = None
        if delay_max_s is not None or accuracy_min is not None:
            self.l_max = np.broadcast_to(np.asarray(delay_max_s, dtype=float), (n,)).copy()
            self.a_min = np.broadcast_to(np.asarray(accuracy_min, dtype=float), (n,)).copy()
            if np.any(~(self.l_max > 0)) or np.any(~np.isfinite(self.l_max)):
                raise ScenarioError(f"must be > 0 (got {delay_max_s!r})", path="controller.delay_max_s")
            if np.any(~((self.a_min >= 0) & (self.a_min <= 1))):
                raise ScenarioError(f"must be in [0, 1] (got {accuracy_min!r})",
                                    path="controller.accuracy_min")
        acc = np.asarray(accuracy, dtype=float)
        m = acc.shape[-1]
        for k in _PER_OPTION:
            if k in params and np.asarray(params[k]).shape[-1] != m:
                raise ValueError(
                    f"{k}: {np.asarray(params[k]).shape[-1]} options, accuracy has {m}")
        self.m = m
        self.gain = g
        self.accuracy = self._per_slot_table(acc, "accuracy", float)
        self.mask = None if option_mask is None else self._per_slot_table(
            np.asarray(option_mask), "option_mask", bool)
        if "server_freq_hz" not in params:
            raise TypeError("missing keyword argument: server_freq_hz")
        cap = np.atleast_1d(np.asarray(params["server_freq_hz"], dtype=float))
        self.n_servers = cap.shape[0]
        idx = params.get("server_index")
        self.idx = np.zeros(n, np.intp) if idx is None else np.asarray(idx, np.intp).reshape(n)
        self.params = dict(params)
        chunk = max(1, _CHUNK_ENTRIES // (n * m))
        self.chunks = [(t0, min(t0 + chunk, t_slots)) for t0 in range(0, t_slots, chunk)]
        self.static = [self._chunk_params(t0, t1) for t0, t1 in self.chunks]
        self.hints: list[np.ndarray | None] = [None] * len(self.chunks)
        self.evaluations = 0
        self.best: DualPoint | None = None

    def _per_slot_table(self, a: np.ndarray, name: str, dtype) -> np.ndarray:
        """(m,), (n, m) or (T, n, m) → (m,) or (T, n, m)."""
        t, n, m = self.t_slots, self.n, self.m
        a = a.astype(dtype)
        if a.ndim == 1 and a.shape == (m,):
            return a
        if a.ndim == 2 and a.shape == (n, m):
            return np.broadcast_to(a, (t, n, m))
        if a.ndim == 3 and a.shape == (t, n, m):
            return a
        raise ValueError(f"{name}: expected shape ({m},), ({n}, {m}) or ({t}, {n}, {m}), "
                         f"got {a.shape}")

    def _chunk_params(self, t0: int, t1: int) -> dict[str, Any]:
        tc, n, s = t1 - t0, self.n, self.n_servers
        out = dict(self.params)
        for k in _PER_DEVICE:
            if k in out and np.ndim(out[k]) > 0:
                out[k] = np.tile(np.broadcast_to(np.asarray(out[k], dtype=float), (n,)), tc)
        for k in _PER_OPTION:
            if k in out and np.ndim(out[k]) == 2:
                out[k] = np.tile(np.asarray(out[k], dtype=float), (tc, 1))
        # each slot's servers are separate pseudo-servers: capacities repeat per slot
        out["server_freq_hz"] = np.tile(np.broadcast_to(
            np.asarray(out["server_freq_hz"], dtype=float), (s,)), tc)
        if "kappa_server" in out and np.ndim(out["kappa_server"]) > 0:
            out["kappa_server"] = np.tile(np.broadcast_to(
                np.asarray(out["kappa_server"], dtype=float), (s,)), tc)
        out["server_index"] = (self.idx[None, :] + s * np.arange(tc)[:, None]).reshape(-1)
        out["gain"] = self.gain[t0:t1].reshape(-1)
        for k, table in (("accuracy", self.accuracy), ("option_mask", self.mask)):
            if table is not None:
                out[k] = table if table.ndim == 1 else table[t0:t1].reshape(-1, self.m)
        return out

    def multipliers(self, delay_multiplier: ArrayLike,
                    accuracy_multiplier: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(λ, η) of a caller (scalars or per device), checked (≥ 0) and shaped (n,)."""
        lam = np.broadcast_to(np.asarray(delay_multiplier, dtype=float), (self.n,))
        eta = np.broadcast_to(np.asarray(accuracy_multiplier, dtype=float), (self.n,))
        if np.any(~(lam >= 0)) or np.any(~(eta >= 0)):
            raise ValueError("multipliers must be >= 0")
        return lam, eta

    def decisions(self, lam: np.ndarray, eta: np.ndarray) -> Iterator[tuple[int, int, SlotDecision]]:
        """solve_slot (V = 1, Z = λ, Y = η) chunk by chunk: (t0, t1, the decision of slots t0 … t1 − 1).

        The decision's arrays are (t1 − t0)·n long, slot-major (slot t, device i at
        (t − t0)·n + i). Each chunk's server prices warm-start its next solve.
        """
        for k, ((t0, t1), static) in enumerate(zip(self.chunks, self.static)):
            tc = t1 - t0
            d = solve_slot(v=1.0, delay_queue=np.tile(lam, tc), accuracy_queue=np.tile(eta, tc),
                           server_price_hint=self.hints[k], **static)
            self.hints[k] = d.server_price if np.any(d.server_price > 0) else None
            yield t0, t1, d

    def minimizers(self, lam: np.ndarray, eta: np.ndarray) -> SlotMinimizers:
        """The per-slot minimizers at (λ, η), shape (T, n) (:func:`slot_minimizers`)."""
        n = self.n
        option = np.empty((self.t_slots, n), np.int64)
        feasible = np.empty((self.t_slots, n), bool)
        for t0, t1, d in self.decisions(lam, eta):
            option[t0:t1] = d.option.reshape(t1 - t0, n)
            feasible[t0:t1] = d.feasible.reshape(t1 - t0, n)
        return SlotMinimizers(option, feasible)

    def evaluate(self, lam: np.ndarray, eta: np.ndarray) -> DualPoint:
        if self.l_max is None:
            raise ValueError("D needs the targets (delay_max_s, accuracy_min)")
        n, t_slots = self.n, self.t_slots
        lam = np.asarray(lam, dtype=float).reshape(n)
        eta = np.asarray(eta, dtype=float).reshape(n)
        s_e = np.zeros(n)
        s_l = np.zeros(n)
        s_g = np.zeros(n)
        s_dl = np.zeros(n)  # Σ (L − L_max) and Σ (A_min − Ĝ) over active slots
        s_dg = np.zeros(n)
        count = np.zeros(n, np.int64)
        gap = 0.0
        binding = 0
        for t0, t1, d in self.decisions(lam, eta):
            tc = t1 - t0
            feas = d.feasible.reshape(tc, n)
            delay = np.where(feas, d.delay_s.reshape(tc, n), 0.0)
            acc = np.where(feas, d.accuracy.reshape(tc, n), 0.0)
            s_e += d.energy_j.reshape(tc, n).sum(axis=0)
            s_l += delay.sum(axis=0)
            s_g += acc.sum(axis=0)
            s_dl += np.where(feas, delay - self.l_max, 0.0).sum(axis=0)
            s_dg += np.where(feas, self.a_min - acc, 0.0).sum(axis=0)
            count += feas.sum(axis=0)
            gap += float(d.coupling_gap.sum())
            binding += int(np.count_nonzero(d.server_price > 0))
        self.evaluations += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            # D from its parts E + λ(L − L_max) + η(A_min − Ĝ) rather than from solve_slot's
            # objective E + λL − ηĜ: with large multipliers the latter's terms dwarf E and
            # their cancellation would cost digits. λ = 0 with no server floor: infinite
            # predicted delay, λ·L read as 0 (as in solve_slot).
            dev = (s_e + np.where(lam > 0, lam * s_dl, 0.0) + eta * s_dg) / t_slots
            # a slope within rounding of 0 is 0: a target that a policy meets exactly (e.g. its
            # own averages) must not look unreachable because of the summation order
            s_dl = np.where(np.abs(s_dl) <= _SLOPE_RTOL * (s_l + self.l_max * count), 0.0, s_dl)
            s_dg = np.where(np.abs(s_dg) <= _SLOPE_RTOL * (s_g + self.a_min * count), 0.0, s_dg)
            point = DualPoint(
                delay_multiplier=lam,
                accuracy_multiplier=eta,
                value_j=float(dev.sum() - gap / t_slots),
                device_value_j=dev,
                delay_slope_s=s_dl / t_slots,
                accuracy_slope=s_dg / t_slots,
                energy_j=s_e / t_slots,
                delay_s=np.where(count > 0, s_l / np.maximum(count, 1), np.nan),
                accuracy=np.where(count > 0, s_g / np.maximum(count, 1), np.nan),
                active_slots=count,
                coupling_gap_j=gap / t_slots,
                binding_servers=binding,
            )
        if self.best is None or point.value_j > self.best.value_j:
            self.best = point
        return point


@dataclass
class _Search:
    """Result of :func:`_maximize_concave`, per device.

    ``theta`` weighs the bracket ends so that the supergradients cancel,
    θ s(lo) + (1 − θ) s(hi) = 0: the weights of the time-sharing between the per-slot
    minimizers on the two sides of the maximum (1: the lower end alone, e.g. x* = 0).
    """

    x: np.ndarray
    value: np.ndarray
    aux: dict[str, np.ndarray]
    gap: np.ndarray
    status: np.ndarray  # 0 certified, 1 iteration limit, 2 unbounded
    theta: np.ndarray
    aux_lo: dict[str, np.ndarray]
    aux_hi: dict[str, np.ndarray]

    def mixed(self, key: str) -> np.ndarray:
        """θ·aux_lo + (1 − θ)·aux_hi, without 0·∞ where one end is unused."""
        lo, hi, th = self.aux_lo[key], self.aux_hi[key], self.theta
        with np.errstate(invalid="ignore"):
            mix = th * lo + (1.0 - th) * hi
        return np.where(th >= 1.0, lo, np.where(th <= 0.0, hi, mix))


def _maximize_concave(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
    scale: np.ndarray,
    rtol: float,
    max_iter: int,
    xtol: float = 1e-13,
    grow: float = _GROW,
    warm: bool = False,
) -> _Search:
    """Maximize n independent concave functions φ_i(x_i) over x_i ≥ 0 (module docstring).

    ``evaluate(x)`` returns the values φ_i(x_i), a supergradient of each, and per-device
    auxiliary arrays, which are kept for the best point and for both bracket ends.

    Bracketing: cold (``warm=False``), x = 0 first (s(0) ≤ 0 ends the search), then ``scale``,
    ``grow·scale``, … up to the first s ≤ 0. Warm (``scale`` near the answer, e.g. the last
    inner maximizer), ``scale`` first and from there up or down by ``grow``; x = 0 is tried
    after two steps down without s > 0.
    """
    shape = np.shape(scale)
    status = np.ones(shape, np.int64)
    gap = np.full(shape, np.inf)
    best = {}

    def keep(mask, x, v, aux):
        if not best:
            best.update(x=x.copy(), v=v.copy(), aux=dict(aux))
            return
        better = mask & (v > best["v"])
        best["x"] = np.where(better, x, best["x"])
        best["v"] = np.where(better, v, best["v"])
        best["aux"] = {k: np.where(better, aux[k], best["aux"][k]) for k in best["aux"]}

    def move(mask, end, x, v, s, aux):
        """Replace the bracket end ``end`` = (x, v, s, aux) by the trial where ``mask``."""
        ex, ev, es, ea = end
        return (np.where(mask, x, ex), np.where(mask, v, ev), np.where(mask, s, es),
                {k: np.where(mask, aux[k], ea[k]) for k in ea})

    x = np.where(warm, np.asarray(scale, dtype=float), 0.0)
    done = np.zeros(shape, bool)
    has_lo = np.zeros(shape, bool)
    has_hi = np.zeros(shape, bool)
    zero_tried = np.zeros(shape, bool)
    steps_down = np.zeros(shape, np.int64)
    steps_up = np.zeros(shape, np.int64)
    lo = hi = None
    pending = np.ones(shape, bool)
    while pending.any():
        trial = np.where(pending, x, best["x"]) if best else x
        v, s, aux = evaluate(trial)
        keep(pending, trial, v, aux)
        if lo is None:
            nan = np.full(shape, np.nan)
            lo = (nan, nan, nan, {k: nan for k in aux})
            hi = lo
        at_zero = pending & (trial == 0)
        zero_tried |= at_zero
        done |= at_zero & (s <= 0)  # a supergradient ≤ 0 at the boundary: x* = 0
        up = pending & (s > 0)
        down = pending & (s <= 0) & ~at_zero
        lo = move(up | (at_zero & (s <= 0)), lo, trial, v, s, aux)
        hi = move(down, hi, trial, v, s, aux)
        has_lo |= up
        has_hi |= down
        steps_up += up & ~has_hi
        steps_down += down & ~has_lo
        x = np.where(up & ~has_hi, np.where(trial > 0, trial * grow, scale), x)
        x = np.where(down & ~has_lo,
                     np.where((steps_down >= 2) & ~zero_tried, 0.0, trial / grow), x)
        pending = ~done & ~(has_lo & has_hi) & (steps_up < _MAX_EXPAND) & (
            steps_down < _MAX_EXPAND)
    best_x, best_v = best["x"], best["v"]
    expanding = ~done & ~(has_lo & has_hi)  # s > 0 all the way up: unbounded
    status[expanding] = 2
    status[done] = 0
    gap[done] = 0.0
    active = ~done & ~expanding

    def keep_best(mask, x, v, aux):
        nonlocal best_x, best_v
        keep(mask, x, v, aux)
        best_x, best_v = best["x"], best["v"]
    # Illinois false position on the supergradient: f_lo, f_hi start as s(lo), s(hi); an end
    # that survives twice in a row has its f halved, so both ends keep moving
    f_lo, f_hi = lo[2].copy(), hi[2].copy()
    side = np.zeros(scale.shape)
    tiny = np.finfo(float).tiny
    for it in range(max_iter + 1):
        (x_lo, v_lo, s_lo, _), (x_hi, v_hi, s_hi, _) = lo, hi
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            xc = (v_hi - v_lo + s_lo * x_lo - s_hi * x_hi) / (s_lo - s_hi)
            upper = v_lo + s_lo * (xc - x_lo)
            cert = np.where(np.isfinite(upper), upper - np.maximum(v_lo, v_hi), np.inf)
        gap = np.where(active, np.maximum(cert, 0.0), gap)
        conv = active & ((cert <= rtol * np.maximum(np.abs(best_v), tiny))
                         | (x_hi - x_lo <= xtol * x_hi) | (s_hi == 0))
        status[conv] = 0
        active &= ~conv
        if not active.any() or it == max_iter:
            break
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            # in ln x once the bracket is off 0 (the multipliers span decades)
            log = x_lo > 0
            u_lo = np.where(log, np.log(np.where(log, x_lo, 1.0)), x_lo)
            u_hi = np.where(log, np.log(x_hi), x_hi)
            u = u_lo + f_lo * (u_hi - u_lo) / (f_lo - f_hi)
            margin = 1e-3 * (u_hi - u_lo)
            u = np.clip(u, u_lo + margin, u_hi - margin)
            secant = np.where(log, np.exp(u), u)
            # s(0) = ∞ (no delay cost: infinite delay) gives no secant: step down by decades
            trial = np.where(np.isfinite(u), secant, x_hi / _GROW)
            # every other step: where the tangents meet (exact at a kink, where false position
            # only creeps up on the jump of s)
            tangent = np.clip(xc, x_lo + 1e-3 * (x_hi - x_lo), x_hi - 1e-3 * (x_hi - x_lo))
            if it % 2 == 1:
                trial = np.where(np.isfinite(xc), tangent, trial)
        trial = np.where(active, trial, best_x)
        v, s, aux = evaluate(trial)
        keep_best(active, trial, v, aux)
        exact = active & (s == 0)
        up = active & (s > 0)
        down = active & (s < 0)
        lo = move(up | exact, lo, trial, v, s, aux)
        hi = move(down | exact, hi, trial, v, s, aux)
        f_hi = np.where(up & (side > 0), 0.5 * f_hi, f_hi)
        f_lo = np.where(down & (side < 0), 0.5 * f_lo, f_lo)
        f_lo = np.where(up, s, f_lo)
        f_hi = np.where(down, s, f_hi)
        side = np.where(up, 1.0, np.where(down, -1.0, side)) if it % 2 == 0 else 0.0 * side
    s_lo, s_hi = lo[2], hi[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.where(np.isfinite(hi[0]) & (s_lo > s_hi), -s_hi / (s_lo - s_hi), 1.0)
    theta = np.where(np.isnan(theta), 0.0, np.clip(theta, 0.0, 1.0))  # s_lo = ∞: θ = 0
    return _Search(best_x, best_v, best["aux"], gap, status, theta, lo[3], hi[3])


def dual_function(
    delay_multiplier: ArrayLike,
    accuracy_multiplier: ArrayLike,
    *,
    gain: ArrayLike,
    accuracy: ArrayLike,
    delay_max_s: ArrayLike,
    accuracy_min: ArrayLike,
    option_mask: ArrayLike | None = None,
    **params: Any,
) -> DualPoint:
    """D(λ, η) over a trace, with the per-slot minimizers' averages (module docstring).

    Parameters are those of :func:`offline_lower_bound`, plus the multipliers λ (J/s) and
    η (J), scalars or shape (n_devices,), ≥ 0.
    """
    trace = _Trace(gain, accuracy, option_mask, delay_max_s, accuracy_min, params)
    return trace.evaluate(*trace.multipliers(delay_multiplier, accuracy_multiplier))


def slot_minimizers(
    delay_multiplier: ArrayLike,
    accuracy_multiplier: ArrayLike,
    *,
    gain: ArrayLike,
    accuracy: ArrayLike,
    option_mask: ArrayLike | None = None,
    **params: Any,
) -> SlotMinimizers:
    """The per-slot minimizers of the Lagrangian at (λ, η): what the dual's optimum chooses.

    Each slot's ``min Σ_i E_ti + λ_i L_ti − η_i Ĝ_ti`` over its decision set X_t (module
    docstring), batched over the trace as D is. At an :class:`OfflineBound`'s multipliers they
    are the optimum's choices: the relaxed optimum time-shares between them and their
    neighbours in at most one (slot, device) pair per constraint.

    Parameters
    ----------
    delay_multiplier, accuracy_multiplier : float or array_like of float, shape (n_devices,)
        λ (J/s) and η (J), ≥ 0.
    gain, accuracy, option_mask, **params
        As for :func:`offline_lower_bound` (no targets: they do not change the minimizers).

    Returns
    -------
    SlotMinimizers
    """
    trace = _Trace(gain, accuracy, option_mask, None, None, params)
    return trace.minimizers(*trace.multipliers(delay_multiplier, accuracy_multiplier))


def offline_lower_bound(
    *,
    gain: ArrayLike,
    accuracy: ArrayLike,
    delay_max_s: ArrayLike,
    accuracy_min: ArrayLike,
    option_mask: ArrayLike | None = None,
    rtol: float = 1e-8,
    max_outer: int = 60,
    max_inner: int = 60,
    start: tuple[ArrayLike, ArrayLike] | None = None,
    **params: Any,
) -> OfflineBound:
    """Lower bound on the optimal time-average energy over a known trace (module docstring).

    Parameters
    ----------
    gain : array_like of float, shape (n_slots, n_devices)
        Realized channel gain g_t of every device (linear).
    accuracy : array_like of float, shape (n_options,), (n_devices, n_options) or
        (n_slots, n_devices, n_options)
        Calibrated Ĝ (per slot e.g. from the slot's SNR).
    delay_max_s, accuracy_min : float or array_like of float, shape (n_devices,)
        The long-term targets L_max (s) and A_min.
    option_mask : array_like of bool, optional
        Allowed options, shaped like ``accuracy``.
    rtol : float, optional
        Relative tolerance of the outer search's certificate (inner: rtol / 10).
    max_outer, max_inner : int, optional
        Refinement steps of the η and λ searches (after bracketing).
    start : (λ, η), optional
        Multipliers near the answer (e.g. a previous solve's on a shorter trace): both searches
        bracket from there (warm, steps of 2) instead of from the energy scale (steps of 10).
    **params
        The slot-invariant keyword arguments of :func:`~simulator.control.lyapunov.solve_slot`
        (``noise_psd_w_hz``, ``bandwidth_hz``, ``max_power_w``, ``payload_bits``,
        ``tx_cycles``, ``rx_cycles``, ``kappa_device``, ``f_min_hz``, ``f_max_hz``,
        ``kappa_server``, ``server_freq_hz``, ``server_index``, ``server_freq_min_hz``,
        ``r_min_bps``, ``snr_gap``, ``include_server_energy``, coupling settings) — the same
        physical parameters the controller used.

    Returns
    -------
    OfflineBound

    Notes
    -----
    Cost: each evaluation of D is one batched solve_slot over T·n (slot, device) pairs; a
    search typically takes 5-15 outer × 5-15 inner evaluations.
    """
    trace = _Trace(gain, accuracy, option_mask, delay_max_s, accuracy_min, params)
    n = trace.n
    zero = np.zeros(n)
    e0 = trace.evaluate(zero, zero).energy_j
    lam_scale = np.where(e0 > 0, e0 / trace.l_max, 1.0)
    eta_scale = np.where(e0 > 0, e0, 1.0)
    inner_rtol = rtol / 10.0
    grow = [_GROW]
    if start is not None:
        lam0, eta0 = (np.broadcast_to(np.asarray(a, dtype=float), (n,)) for a in start)
        lam_scale = np.where(lam0 > 0, lam0, lam_scale)
        eta_scale = np.where(eta0 > 0, eta0, eta_scale)
        grow[0] = _WARM_GROW

    averages = ("energy", "delay", "accuracy")

    def outer(eta: np.ndarray):
        def inner(lam: np.ndarray):
            p = trace.evaluate(lam, eta)
            return p.device_value_j, p.delay_slope_s, {
                "acc_slope": p.accuracy_slope, "energy": p.energy_j, "delay": p.delay_s,
                "accuracy": p.accuracy}

        r = _maximize_concave(inner, lam_scale, inner_rtol, max_inner, grow=grow[0],
                              warm=grow[0] == _WARM_GROW)
        # the next inner search starts at this one's answer, with a finer expansion
        if np.all(r.x > 0):
            np.copyto(lam_scale, r.x)
            grow[0] = _WARM_GROW
        # h(η) = max_λ D(λ, η): its supergradient is the η-slope of the combination of the two
        # sides of the λ-maximum whose λ-slopes cancel (a kink in λ is the rule, not the
        # exception, with discrete options); one side's η-slope alone can point the wrong way
        aux = {"lam": r.x, "inner_gap": r.gap, "inner_status": r.status.astype(float)}
        aux.update({k: r.mixed(k) for k in averages})
        return r.value, r.mixed("acc_slope"), aux

    res = _maximize_concave(outer, eta_scale, rtol, max_outer, grow=grow[0], warm=start is not None)
    lam, eta = res.aux["lam"], res.x
    final = trace.evaluate(lam, eta)
    best = trace.best
    if best is not None and best.value_j > final.value_j:
        final = best  # possible only when a binding server couples the devices
    inner_status = res.aux["inner_status"]
    if np.any(res.status == 2) or np.any(inner_status == 2):
        status = "infeasible"
    elif np.all(res.status == 0) and np.all(inner_status == 0):
        shared = np.bincount(trace.idx, minlength=trace.n_servers).max() > 1
        status = "coupled" if shared and final.binding_servers > 0 else "optimal"
    else:
        status = "iteration_limit"
    relaxed = {k: res.mixed(k) for k in averages}
    return OfflineBound(
        bound_j=final.value_j,
        delay_multiplier=final.delay_multiplier,
        accuracy_multiplier=final.accuracy_multiplier,
        point=final,
        status=status,
        converged=status == "optimal",
        dual_gap_j=(np.inf if status == "coupled"
                    else float(np.sum(res.gap) + np.sum(res.aux["inner_gap"]))),
        evaluations=trace.evaluations,
        slots=trace.t_slots,
        relaxed_energy_j=relaxed["energy"],
        relaxed_delay_s=relaxed["delay"],
        relaxed_accuracy=relaxed["accuracy"],
    )
