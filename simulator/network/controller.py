"""What the world tells a controller each slot, what it gets back, and the static controller.

Every slot the world builds an :class:`Observation` (channel state and backlogs of every
agent), asks ``controller.decide(observation)`` for a :class:`Decision` (one entry per
transmitter), applies it for the whole slot, and at the slot's end reports what happened with
``controller.update(feedback)``. Any object with these two methods can drive the world; the
drift-plus-penalty controller of :mod:`simulator.control.lyapunov` plugs in through an adapter
here (the network layer imports the control layer, never the reverse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from simulator.channel import max_rate_bps
from simulator.config import Scenario, StaticControllerConfig
from simulator.control.baselines import make_baseline
from simulator.control.closed_form import optimal_rate
from simulator.control.lyapunov import LyapunovController, SlotDecision, VirtualQueues, solve_slot
from simulator.control.oracle import offline_lower_bound, optimality_gap
from simulator.errors import ScenarioError


@dataclass(frozen=True)
class NetworkSpec:
    """The fixed facts a controller may plan with (arrays over transmitters unless noted).

    Attributes
    ----------
    transmitter_ids, receiver_ids, encoder_ids : tuple of str
        Agent and encoder names; decisions refer to encoders by index into ``encoder_ids``.
    receiver_of : int64 (n_tx,)
        Index of each transmitter's receiver.
    pools : tuple of int64 arrays
        Encoder indices each transmitter may use.
    f_min_hz, f_max_hz, kappa, max_power_w, bandwidth_hz : float64 (n_tx,)
    noise_psd_w_hz, gap : float
        ``N0`` (W/Hz) and the SNR gap ``Γ`` (linear).
    server_cpu_hz : float64 (n_rx,)
    anchor_count : int
        Length of the shared anchor list (K options are prefixes of it).
    receiver_encoders : tuple of str
        Encoder id of each receiver (whose heads decode).
    tx_cycles : callable ``(transmitter index, encoder id, K) → W_tx``, optional
        Device cycles of one task (encoder + projection FLOPs / β), as the world charges them.
    rx_cycles : callable ``(receiver index, K) → W_rx``, optional
        Server cycles of one head decision, as the world charges them.
    payload_bits : callable ``(K, b) → N``, optional
        Payload bits ``N = K · spaces · b + header`` of the world.

    The last three are the world's own tables: a controller that plans with them predicts
    exactly the cycles and bits the world then charges.
    """

    transmitter_ids: tuple[str, ...]
    receiver_ids: tuple[str, ...]
    encoder_ids: tuple[str, ...]
    receiver_of: np.ndarray
    pools: tuple[np.ndarray, ...]
    f_min_hz: np.ndarray
    f_max_hz: np.ndarray
    kappa: np.ndarray
    max_power_w: np.ndarray
    bandwidth_hz: np.ndarray
    noise_psd_w_hz: float
    gap: float
    server_cpu_hz: np.ndarray
    anchor_count: int
    receiver_encoders: tuple[str, ...] = ()
    tx_cycles: Callable[[int, str, int], float] | None = None
    rx_cycles: Callable[[int, int], float] | None = None
    payload_bits: Callable[[int, int], int] | None = None

    @property
    def n_tx(self) -> int:
        return len(self.transmitter_ids)


@dataclass(frozen=True)
class Observation:
    """What a controller sees at the start of slot ``slot`` (arrays over transmitters unless noted).

    Attributes
    ----------
    slot : int
    time_s : float
        Start of the slot (s).
    gain : float64 (n_tx,)
        Link gain ``g_t`` (linear) of the unblocked channel; ``link_up`` tells whether a blockage
        fault holds at the slot start (nothing can be sent until it ends).
    r_max_bps : float64 (n_tx,)
        Largest rate at ``P_max`` (bit/s).
    queue_len : int64 (n_tx,)
        Tasks at each device (waiting + in service).
    server_jobs : int64 (n_rx,)
        Jobs in each receiver's CPU (waiting + in service).
    link_up, device_on : bool (n_tx,)
        Fault state at the slot start.
    """

    slot: int
    time_s: float
    gain: np.ndarray
    r_max_bps: np.ndarray
    queue_len: np.ndarray
    server_jobs: np.ndarray
    link_up: np.ndarray
    device_on: np.ndarray


@dataclass(frozen=True)
class Decision:
    """A controller's choice for one slot, one entry per transmitter.

    Attributes
    ----------
    encoder : int64 (n_tx,)
        Index into ``NetworkSpec.encoder_ids`` (must be in the device's pool).
    anchors : int64 (n_tx,)
        K.
    bits : int64 (n_tx,)
        b per entry (32 = float32).
    rate_bps : float64 (n_tx,)
        Transmit rate R; 0 holds transmissions until the next slot. The world derives the power
        ``p = Γ (2^{R/B} − 1) N0 B / g``; when that exceeds ``P_max`` the attempt is in outage.
    cpu_hz : float64 (n_tx,)
        Device clock f.
    server_share : float64 (n_tx,)
        Share of its receiver's CPU (used by the ``partitioned`` policy; Σ per receiver ≤ 1).
    """

    encoder: np.ndarray
    anchors: np.ndarray
    bits: np.ndarray
    rate_bps: np.ndarray
    cpu_hz: np.ndarray
    server_share: np.ndarray


@dataclass(frozen=True)
class Feedback:
    """What happened in the slot just ended (arrays over transmitters).

    Attributes
    ----------
    slot : int
    delivered : int64
        Tasks completed in the slot.
    mean_delay_s : float64
        Mean delay of those tasks (NaN when none).
    dropped : int64
    energy_j : float64
        Device energy spent in the slot (transmit + compute).
    """

    slot: int
    delivered: np.ndarray
    mean_delay_s: np.ndarray
    dropped: np.ndarray
    energy_j: np.ndarray


class Controller(Protocol):
    """Anything that can drive the world slot by slot."""

    def decide(self, observation: Observation) -> Decision: ...

    def update(self, feedback: Feedback) -> None: ...


class StaticController:
    """Fixed options every slot (``controller.kind: static``).

    Encoder: ``controller.encoder`` or the first of each pool; K and b as given; rate: the fixed
    ``rate_bps`` (outage when the slot cannot carry it) or, when empty, the slot's ``R_max``
    (full power; a link with ``R_max = 0`` holds); device clock ``cpu_hz`` clipped to
    ``[f_min, f_max]`` or ``f_max``; server shares equal among each receiver's devices.
    """

    def __init__(self, scenario: Scenario, spec: NetworkSpec):
        cfg = scenario.controller
        n = spec.n_tx
        enc = [spec.encoder_ids.index(cfg.encoder) if cfg.encoder is not None else int(pool[0])
               for pool in spec.pools]
        counts = np.bincount(spec.receiver_of, minlength=len(spec.receiver_ids))
        cpu = spec.f_max_hz if cfg.cpu_hz is None else np.clip(cfg.cpu_hz, spec.f_min_hz, spec.f_max_hz)
        self._fixed_rate = cfg.rate_bps
        self._decision = Decision(np.asarray(enc, dtype=np.int64), np.full(n, cfg.anchors, dtype=np.int64),
                                  np.full(n, cfg.bits, dtype=np.int64),
                                  np.full(n, cfg.rate_bps or 0.0), np.asarray(cpu, dtype=np.float64),
                                  1.0 / counts[spec.receiver_of])

    def decide(self, observation: Observation) -> Decision:
        if self._fixed_rate is not None:
            return self._decision
        d = self._decision
        return Decision(d.encoder, d.anchors, d.bits, observation.r_max_bps.copy(), d.cpu_hz, d.server_share)

    def update(self, feedback: Feedback) -> None:
        """The static controller learns nothing."""


# --------------------------------------------------------------------------- the per-slot optimizers


class AccuracyTable:
    """Ĝ(tx encoder, rx encoder, K, b [, SNR]) from the calibration rows (relative method).

    The rows (:func:`simulator.experiment.calibration.calibration_rows`) hold the relative
    stitching accuracy on the *validation* split, measured through the real pipeline: ``ideal``
    rows through quantization alone, ``digital`` rows also through bit flips at the uncoded BER
    of each SNR of ``stitching.snr_db``.

    SNR lookup (:func:`interpolate_db`): linear interpolation in dB between the calibrated grid
    points, clamped to the end values outside the grid (no extrapolation: below the grid the
    lowest point's accuracy, above it the highest's).

    Parameters
    ----------
    rows : sequence of StitchRow
    """

    def __init__(self, rows: Sequence[Any]):
        self._ideal: dict[tuple, float] = {}
        curves: dict[tuple, list[tuple[float, float]]] = {}
        for r in rows:
            if r.method != "relative":
                continue
            key = (r.tx, r.rx, int(r.anchors), int(r.bits))
            if r.mode == "ideal":
                self._ideal[key] = float(r.accuracy)
            elif r.mode == "digital" and r.snr_db is not None:
                curves.setdefault(key, []).append((float(r.snr_db), float(r.accuracy)))
        self._digital = {k: (np.array([s for s, _ in sorted(v)]), np.array([a for _, a in sorted(v)]))
                         for k, v in curves.items()}

    def ideal(self, tx: str, rx: str, k: int, bits: int) -> float:
        """Ĝ through quantization alone (an error-free link)."""
        try:
            return self._ideal[(tx, rx, k, bits)]
        except KeyError:
            raise ScenarioError(f"the calibration table has no error-free cell {tx} → {rx}, K = {k}, b = {bits}",
                                path="controller") from None

    def digital(self, tx: str, rx: str, k: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """(SNR grid in dB, Ĝ at each) through the digital channel (uncoded bits at the BER of the SNR)."""
        try:
            return self._digital[(tx, rx, k, bits)]
        except KeyError:
            raise ScenarioError(f"the calibration table has no digital curve {tx} → {rx}, K = {k}, b = {bits}",
                                path="controller") from None


def interpolate_db(grid_db: np.ndarray, table: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """Ĝ of every (device, option) at each device's SNR: linear in dB, clamped at the grid's ends.

    Parameters
    ----------
    grid_db : float64 (S,)
        Increasing SNR grid (dB).
    table : float64 (n, m, S)
        Ĝ at the grid points.
    snr : float64 (n,)
        Linear SNR per device (0 → the lowest grid point).

    Returns
    -------
    float64 (n, m)
    """
    if grid_db.shape[0] == 1:
        return table[:, :, 0]
    with np.errstate(divide="ignore"):
        x = np.clip(10.0 * np.log10(np.asarray(snr, dtype=float)), grid_db[0], grid_db[-1])
    j = np.clip(np.searchsorted(grid_db, x, side="right") - 1, 0, grid_db.shape[0] - 2)
    w = ((x - grid_db[j]) / (grid_db[j + 1] - grid_db[j]))[:, None]
    rows = np.arange(table.shape[0])
    return (1.0 - w) * table[rows, :, j] + w * table[rows, :, j + 1]


@dataclass(frozen=True)
class OptionTable:
    """Every transmitter's discrete options ``(encoder in its pool) × K × b``, and what each costs.

    Options are numbered pool slot-major, then K, then b (``m = max pool size × |K| × |b|``);
    slots beyond a smaller pool are padding, masked out by ``allowed``.

    Attributes
    ----------
    encoder : int64 (n, m)
        Index into ``NetworkSpec.encoder_ids``.
    anchors, bits : int64 (m,)
    allowed : bool (n, m)
    payload_bits : float64 (m,)
        ``N`` (the world's table).
    tx_cycles, rx_cycles : float64 (n, m)
        ``W_tx`` of the device and ``W_rx`` of its receiver (the world's tables).
    accuracy : float64 (n, m, S)
        Ĝ; S = 1 (error-free: ideal links or coded packets) or the calibrated SNR grid.
    snr_grid_db : float64 (S,)
        The grid (``[nan]`` when S = 1).
    """

    encoder: np.ndarray
    anchors: np.ndarray
    bits: np.ndarray
    allowed: np.ndarray
    payload_bits: np.ndarray
    tx_cycles: np.ndarray
    rx_cycles: np.ndarray
    accuracy: np.ndarray
    snr_grid_db: np.ndarray

    @property
    def noisy(self) -> bool:
        """Ĝ depends on the SNR (some device sends uncoded bits over a digital link)."""
        return self.snr_grid_db.shape[0] > 1

    def best_accuracy(self) -> tuple[np.ndarray, np.ndarray]:
        """Per device, the highest Ĝ of any allowed option at any SNR, and that option."""
        acc = np.where(self.allowed, self.accuracy.max(axis=2), -np.inf)
        best = np.argmax(acc, axis=1)
        return acc[np.arange(acc.shape[0]), best], best


def option_table(scenario: Scenario, spec: NetworkSpec, accuracy: AccuracyTable) -> OptionTable:
    """The :class:`OptionTable` of a scenario with a dynamic ``controller`` (see its docstring)."""
    cfg = scenario.controller
    ks, bs = np.asarray(cfg.anchors, dtype=np.int64), np.asarray(cfg.bits, dtype=np.int64)
    n, n_pool = spec.n_tx, max(len(p) for p in spec.pools)
    slot, k_opt, b_opt = (a.ravel() for a in np.meshgrid(np.arange(n_pool), ks, bs, indexing="ij"))
    m = slot.shape[0]
    coded = [tx.radio.packet_errors == "fbl" for tx in scenario.transmitters]
    noisy = scenario.channel.mode == "digital" and not all(coded)
    grid = np.asarray(sorted(scenario.stitching.snr_db), dtype=float) if noisy else np.array([np.nan])
    encoder = np.zeros((n, m), np.int64)
    allowed = np.zeros((n, m), bool)
    w_tx, w_rx, acc = np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m, grid.shape[0]))
    cache: dict[tuple, np.ndarray] = {}
    for i, pool in enumerate(spec.pools):
        j = int(spec.receiver_of[i])
        rx = spec.receiver_encoders[j]
        for o in range(m):
            in_pool = slot[o] < len(pool)
            e = int(pool[slot[o]] if in_pool else pool[0])
            enc, k, b = spec.encoder_ids[e], int(k_opt[o]), int(b_opt[o])
            encoder[i, o], allowed[i, o] = e, in_pool
            w_tx[i, o] = spec.tx_cycles(i, enc, k)
            w_rx[i, o] = spec.rx_cycles(j, k)
            key = (enc, rx, k, b, noisy and not coded[i])
            if key not in cache:
                if key[-1]:
                    snr_db, curve = accuracy.digital(enc, rx, k, b)
                    if snr_db.shape != grid.shape or not np.allclose(snr_db, grid):
                        raise ScenarioError(f"the digital calibration of {enc} → {rx}, K = {k}, b = {b} is not on "
                                            "the stitching.snr_db grid", path="stitching.snr_db")
                    cache[key] = curve
                else:
                    cache[key] = np.full(grid.shape[0], accuracy.ideal(enc, rx, k, b))
            acc[i, o] = cache[key]
    payload = np.array([spec.payload_bits(int(k), int(b)) for k, b in zip(k_opt, b_opt)], dtype=float)
    return OptionTable(encoder, k_opt, b_opt, allowed, payload, w_tx, w_rx, acc, grid)


def check_accuracy_target(scenario: Scenario, spec: NetworkSpec, table: OptionTable) -> None:
    """Raise a :class:`ScenarioError` when some device cannot reach ``simulation.accuracy_target``.

    Reachable means: the highest calibrated Ĝ among the device's options (at the best SNR of
    the grid for digital links). Above it (with ``controller.accuracy_margin`` added), no
    policy can meet the long-term accuracy target.
    """
    target = scenario.simulation.accuracy_target
    if target is None:
        return
    margin = scenario.controller.accuracy_margin
    best, option = table.best_accuracy()
    i = int(np.argmin(best))
    if target + margin > best[i]:
        o = int(option[i])
        plus = f" + accuracy_margin {margin}" if margin else ""
        raise ScenarioError(
            f"{target}{plus} is above the best calibrated accuracy {best[i]:.4f} that transmitter "
            f"{spec.transmitter_ids[i]!r} can reach (encoder {spec.encoder_ids[table.encoder[i, o]]}, "
            f"K = {table.anchors[o]}, b = {table.bits[o]}): no controller can meet it",
            path="simulation.accuracy_target")


class PolicyController:
    """Drives the world with a per-slot policy of :mod:`simulator.control` (adapter).

    ``kind`` ``lyapunov`` wraps :class:`~simulator.control.lyapunov.LyapunovController`; the
    baselines ``max-accuracy``, ``min-energy`` and ``greedy`` wrap
    :func:`~simulator.control.baselines.make_baseline`. Every slot:

    1. **Options** (:class:`OptionTable`, built once): pool encoder × K × b with the world's own
       payload ``N = K·b + header``, ``W_tx`` (encoder + projection FLOPs / β) and ``W_rx`` (head
       FLOPs / β of the receiver), and Ĝ from the calibration table. Options are masked for a
       device whose link is blocked or that is off at the slot start (it holds until the next
       slot).
    2. **Ĝ at the slot's SNR** (digital links with uncoded bits only; ideal links and coded
       packets use the error-free Ĝ). The world sends at ``p = Γ (2^{R/B} − 1) N0 B / g`` and the
       bits cross a binary symmetric channel at the BER of ``γ = p g / (N0 B) = Γ (2^{R/B} − 1)``:
       the SNR is set by the chosen rate, and a faster rate buys accuracy. The drift-plus-penalty
       controller therefore searches a few candidate rates (:meth:`_decide_noisy`): ``R*`` of
       the closed form and the rates that reach each calibrated SNR, each with Ĝ read at its
       SNR (interpolated in dB, :func:`interpolate_db`), and keeps the best (option, rate).
       Baselines send at ``R_max`` (static, max-accuracy) or at a per-option deadline rate; they
       read Ĝ at the full-power SNR ``P_max g / (N0 B)`` (optimistic for the deadline policies).
    3. **Decision → world**: encoder, K, b, rate R, device clock f and each device's server share
       ``x / F`` (receivers are ``partitioned``). The default rate floor of a slot is
       ``min(R_min, R_max)`` (a deep fade sends slowly rather than holding the task for a slot);
       a configured ``min_rate_bps`` is a hard floor: a slot with ``R_max`` below it holds. A
       device with no feasible decision (that, ``R_max = 0``, or blocked) gets rate 0 (holds)
       and keeps its previous encoder, K, b and clock; the server capacity the feasible devices
       leave is split among the others.
    4. **Queues** (``lyapunov``; baselines ignore it): ``Z`` advances with the mean *realized*
       delay of the tasks the world completed in the slot (:class:`Feedback`), or with the
       decision's predicted delay ``W_tx/f + N/R + W_rx/x`` when none completed; ``Y`` with the
       Ĝ of the decision in force (labels are never seen), against ``accuracy_target +
       accuracy_margin`` (the margin covers the calibration's bias on unseen data). A device
       with neither a completion nor a feasible decision keeps its queues. The enforced average
       is thus over slots (the per-slot means), which is the per-task average when every slot
       carries one task.

    Accounting, over the slots from ``settle_slots`` on (``stats``): the decisions' predicted
    per-task energy ``E = p N/R + κ f² W_tx [+ κ_s x² W_rx]`` summed over devices and averaged
    over slots (0 in a slot without a feasible decision), their predicted delay and Ĝ, and the
    queues. :meth:`offline_bound` bounds the same energy figure from below.
    """

    def __init__(self, scenario: Scenario, spec: NetworkSpec, calibration: Sequence[Any]):
        if spec.tx_cycles is None or spec.rx_cycles is None or spec.payload_bits is None:
            raise ValueError("the NetworkSpec lacks the world's cycle and payload tables")
        cfg, sim = scenario.controller, scenario.simulation
        self.kind = cfg.kind
        self.spec = spec
        self.table = option_table(scenario, spec, AccuracyTable(calibration))
        check_accuracy_target(scenario, spec, self.table)
        n = spec.n_tx
        self.n = n
        self.delay_max_s = sim.delay_target_s
        # what the decisions (and the bound) aim at: the target plus the calibration margin
        self.accuracy_min = (None if sim.accuracy_target is None
                             else sim.accuracy_target + cfg.accuracy_margin)
        t = self.table
        # floors (config docs): by default the slowest transmission and decoding each fit in one
        # slot, and R_min is lowered to R_max in a slot that cannot carry it (a deep fade sends
        # slowly, never holds); a configured min_rate_bps is a hard floor (below it the slot holds)
        self.lowered_floor = cfg.min_rate_bps is None
        r_min = cfg.min_rate_bps if cfg.min_rate_bps is not None else float(t.payload_bits.max()) / sim.slot_s
        x_min = cfg.server_freq_min_hz if cfg.server_freq_min_hz is not None else float(t.rx_cycles.max()) / sim.slot_s
        per_server = np.bincount(spec.receiver_of, minlength=len(spec.receiver_ids))
        if np.any(per_server * x_min > spec.server_cpu_hz):
            raise ScenarioError(f"the server clock floor {x_min:.4g} Hz times the devices of a receiver exceeds its "
                                "clock", path="controller.server_freq_min_hz")
        self.params: dict[str, Any] = dict(
            noise_psd_w_hz=spec.noise_psd_w_hz, bandwidth_hz=spec.bandwidth_hz, max_power_w=spec.max_power_w,
            payload_bits=t.payload_bits, tx_cycles=t.tx_cycles, rx_cycles=t.rx_cycles, kappa_device=spec.kappa,
            f_min_hz=spec.f_min_hz, f_max_hz=spec.f_max_hz,
            kappa_server=np.array([r.kappa for r in scenario.receivers]), server_freq_hz=spec.server_cpu_hz,
            server_index=spec.receiver_of, server_freq_min_hz=x_min, r_min_bps=r_min,
            snr_gap=spec.gap, include_server_energy=cfg.include_server_energy)
        self.r_min = r_min
        if cfg.kind == "lyapunov":
            queues = VirtualQueues(np.full(n, cfg.initial_delay_queue + cfg.v * cfg.delay_queue_per_v),
                                   np.full(n, cfg.initial_accuracy_queue + cfg.v * cfg.accuracy_queue_per_v))
            self.policy: Any = LyapunovController(n, v=cfg.v, mu=cfg.mu, nu=cfg.nu, delay_max_s=sim.delay_target_s,
                                                  accuracy_min=self.accuracy_min, static=self.params,
                                                  queues=queues)
        elif cfg.kind == "min-energy":
            cap = cfg.delay_cap_s if cfg.delay_cap_s is not None else sim.slot_s
            self.policy = make_baseline("min-energy", n, delay_cap_s=cap, static=self.params)
        elif cfg.kind == "greedy":
            self.policy = make_baseline("greedy", n, delay_max_s=sim.delay_target_s,
                                        accuracy_min=self.accuracy_min, static=self.params)
        else:
            self.policy = make_baseline(cfg.kind, n, static=self.params)
        self.n_slots, self.settle = sim.slots, cfg.settle_slots
        # the realized channel trace and fault masks, for the offline bound (n_slots × n_tx)
        self._gain = np.zeros((self.n_slots, n))
        self._active = np.ones((self.n_slots, n), bool)
        first = np.argmax(t.allowed, axis=1)
        self._enc, self._k, self._b = t.encoder[np.arange(n), first], t.anchors[first], t.bits[first]
        self._cpu = spec.f_max_hz.copy()
        self._acc_last = np.zeros(n)
        self._decision: SlotDecision | None = None
        self._slot = -1
        self.last_update: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._sums = {k: np.zeros(n) for k in ("energy", "delay", "accuracy", "active", "z", "y")}
        self._z_max = np.zeros(n)
        self._window = 0

    @property
    def queues(self) -> VirtualQueues | None:
        """The virtual queues (``lyapunov``), else None."""
        return getattr(self.policy, "queues", None)

    def _rate_floor(self, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(R_min of the slot, R_max) per device; the default floor is lowered to R_max where the slot cannot carry it.

        ``R_max`` exactly as :func:`~simulator.control.lyapunov.solve_slot` computes it (the gap
        folded into the gain), so that the lowered floor never exceeds the solver's own ``R_max``.
        """
        p = self.params
        r_max = max_rate_bps(p["max_power_w"], gain / p["snr_gap"], p["noise_psd_w_hz"], p["bandwidth_hz"])
        if not self.lowered_floor:
            return np.full_like(r_max, self.r_min), r_max
        return np.where(r_max > 0, np.minimum(self.r_min, r_max), self.r_min), r_max

    def _accuracy_at_rate(self, rate: np.ndarray) -> np.ndarray:
        """Ĝ (n, m) of each device's options sent at ``rate``: read at the SNR ``Γ (2^{R/B} − 1)``."""
        p = self.params
        snr = p["snr_gap"] * np.expm1(np.nan_to_num(rate) * math.log(2.0) / p["bandwidth_hz"])
        return interpolate_db(self.table.snr_grid_db, self.table.accuracy, snr)

    def _decide_noisy(self, gain: np.ndarray, r_min: np.ndarray, r_max: np.ndarray,
                      mask: np.ndarray) -> SlotDecision:
        """Drift-plus-penalty on a digital link, where the rate also buys accuracy (class docstring, step 2).

        Candidate rates per device: ``R*`` (the closed form, best for the energy and delay terms),
        the rates whose SNR ``Γ (2^{R/B} − 1)`` is a calibrated grid point, and ``R_max``, all
        clipped to ``[max(R*, R_min), R_max]`` (a rate below ``R*`` costs more and buys less
        accuracy). All (device, candidate) pairs are evaluated in one
        :func:`~simulator.control.lyapunov.solve_slot` call, each pair a pseudo-device with the
        rate pinned (``R_min`` = candidate), Ĝ read at its SNR and a server of its own (so the
        ranking ignores the server coupling); each device keeps the candidate of least
        objective, and a last call with the chosen rates makes the joint decision (server shares)
        through the controller. Ĝ is linear in dB between grid points, so an optimum inside a
        segment is approximated by the segment's better end.
        """
        t, p, pol = self.table, self.params, self.policy
        g = gain / p["snr_gap"]
        bw = np.broadcast_to(np.asarray(p["bandwidth_hz"], dtype=float), gain.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            r_star = optimal_rate(pol.v, pol.queues.delay, p["noise_psd_w_hz"], bw, np.where(g > 0, g, 1.0),
                                  r_min, r_max)
        grid_rates = bw[:, None] / math.log(2.0) * np.log1p(10.0 ** (t.snr_grid_db / 10.0) / p["snr_gap"])
        lo = np.maximum(r_star, r_min)[:, None]
        candidates = np.clip(np.concatenate([r_star[:, None], grid_rates, r_max[:, None]], axis=1),
                             lo, r_max[:, None])
        feasible = np.isfinite(r_star)
        rate = np.where(feasible[:, None], candidates, r_min[:, None])  # (n, C)
        n, n_c = rate.shape

        def tile(a):  # per device → per (candidate, device) pseudo-device, candidate-major
            a = np.asarray(a)
            return np.tile(np.broadcast_to(a, (n,) + a.shape[1:]) if a.ndim else np.full(n, a),
                           (n_c,) + (1,) * max(a.ndim - 1, 0))

        idx = p["server_index"]
        kappa_srv = np.broadcast_to(p["kappa_server"], p["server_freq_hz"].shape)
        pseudo = {k: tile(p[k]) for k in ("bandwidth_hz", "max_power_w", "tx_cycles", "rx_cycles", "kappa_device",
                                          "f_min_hz", "f_max_hz")}
        d = solve_slot(v=pol.v, delay_queue=tile(pol.queues.delay), accuracy_queue=tile(pol.queues.accuracy),
                       **{**p, **pseudo, "gain": tile(gain), "r_min_bps": rate.T.reshape(-1),
                          "accuracy": np.concatenate([self._accuracy_at_rate(rate[:, c]) for c in range(n_c)]),
                          "option_mask": tile(mask), "server_index": np.arange(n * n_c),
                          "server_freq_hz": tile(p["server_freq_hz"][idx]), "kappa_server": tile(kappa_srv[idx])})
        best = np.argmin(d.objective.reshape(n_c, n), axis=0)
        best_rate = rate[np.arange(n), best]
        return pol.decide(gain=gain, accuracy=self._accuracy_at_rate(best_rate), r_min_bps=best_rate,
                          option_mask=mask)

    def _slot_accuracy(self, gain: np.ndarray) -> np.ndarray:
        """Ĝ (n, m) for this slot when the rate does not depend on it (class docstring, step 2)."""
        t, p = self.table, self.params
        if not t.noisy:
            return t.accuracy[:, :, 0]
        snr = p["max_power_w"] * gain / (p["noise_psd_w_hz"] * p["bandwidth_hz"])
        return interpolate_db(t.snr_grid_db, t.accuracy, snr)

    def decide(self, observation: Observation) -> Decision:
        s, n, t = observation.slot, self.n, self.table
        gain = np.asarray(observation.gain, dtype=float)
        active = np.asarray(observation.link_up, bool) & np.asarray(observation.device_on, bool)
        self._gain[s], self._active[s] = gain, active
        r_min, r_max = self._rate_floor(gain)
        mask = t.allowed & active[:, None]
        if t.noisy and self.kind == "lyapunov":
            d = self._decide_noisy(gain, r_min, r_max, mask)
        else:
            d = self.policy.decide(gain=gain, accuracy=self._slot_accuracy(gain), r_min_bps=r_min, option_mask=mask)
        self._decision, self._slot = d, s
        feas = d.feasible
        o = np.maximum(d.option, 0)
        self._enc = np.where(feas, t.encoder[np.arange(n), o], self._enc)
        self._k = np.where(feas, t.anchors[o], self._k)
        self._b = np.where(feas, t.bits[o], self._b)
        self._cpu = np.where(feas, d.cpu_freq_hz, self._cpu)
        if s >= self.settle:
            sums = self._sums
            sums["energy"] += d.energy_j
            sums["delay"] += np.where(feas, d.delay_s, 0.0)
            sums["accuracy"] += np.where(feas, d.accuracy, 0.0)
            sums["active"] += feas
            if self.queues is not None:
                sums["z"] += self.queues.delay
                sums["y"] += self.queues.accuracy
                self._z_max = np.maximum(self._z_max, self.queues.delay)
            self._window += 1
        return Decision(self._enc.copy(), self._k.copy(), self._b.copy(), np.where(feas, d.rate_bps, 0.0),
                        self._cpu.copy(), self._shares(d))

    def _shares(self, d: SlotDecision) -> np.ndarray:
        """Decided shares; the capacity left by feasible devices goes equally to the others."""
        idx, n_rx = self.spec.receiver_of, len(self.spec.receiver_ids)
        used = np.bincount(idx, weights=np.where(d.feasible, d.server_share, 0.0), minlength=n_rx)
        idle = np.bincount(idx, weights=~d.feasible, minlength=n_rx)
        spare = np.maximum(0.0, 1.0 - used) / np.maximum(idle, 1.0)
        return np.where(d.feasible, d.server_share, spare[idx])

    def update(self, feedback: Feedback) -> None:
        """Advance the virtual queues (class docstring, step 4); ``last_update`` keeps (L_t, Ĝ_t, observed)."""
        d = self._decision
        done = np.asarray(feedback.delivered) > 0
        observed = done | d.feasible
        delay = np.where(done, feedback.mean_delay_s, np.where(d.feasible, d.delay_s, 0.0))
        acc = np.where(d.feasible, d.accuracy, self._acc_last)
        self._acc_last = acc
        self.last_update = (delay, acc, observed)
        self.policy.update(delay, acc, observed)

    # ----------------------------------------------------------------------- reporting
    def stats(self) -> dict[str, Any]:
        """Averages over the settled window (slots ``settle_slots`` … end); see the class docstring.

        ``decision_energy_j`` is J per slot summed over transmitters (the bound's units);
        delays (s), Ĝ and queues are averaged over devices and the slots where they apply.
        """
        s, w = self._sums, max(self._window, 1)
        n_act = s["active"].sum()
        out = {"window_slots": [self.settle, self._slot + 1],
               "decision_energy_j": float(s["energy"].sum() / w),
               "decision_delay_s": float(s["delay"].sum() / n_act) if n_act else None,
               "decision_accuracy": float(s["accuracy"].sum() / n_act) if n_act else None,
               "delay_queue_mean": None, "delay_queue_max": None, "accuracy_queue_mean": None}
        if self.queues is not None:
            out.update(delay_queue_mean=float(s["z"].sum() / (w * self.n)), delay_queue_max=float(self._z_max.max()),
                       accuracy_queue_mean=float(s["y"].sum() / (w * self.n)))
        return out

    def offline_bound(self):
        """:func:`~simulator.control.oracle.offline_lower_bound` on the realized trace of the settled window.

        Same options, Ĝ, targets and physical parameters as the decisions; the gains and the
        fault masks recorded slot by slot. For digital links Ĝ of a slot is its running maximum
        over the SNR grid read at the full-power SNR ``P_max g / (N0 B)``: no rate can give a
        higher calibrated accuracy, so the bound stays a lower bound. With the default (lowered)
        rate floor the bound's floor is relaxed to 1 bit/s (every slot's interval
        ``[min(R_min, R_max), R_max]`` lies inside ``[1, R_max]``), for the same reason; with a
        configured hard floor it is that floor, and the slots that hold are left out, as
        the decisions leave them out. Returns None without
        targets. What it bounds: the time average over the window of the per-slot predicted
        per-task energy of any decision sequence (from the same per-slot sets) whose predicted
        delay and Ĝ meet the targets on average over the window — the figure ``decision_energy_j``
        of :meth:`stats` reports for this controller. Queueing and spill-over delays are not
        part of it.
        """
        if self.delay_max_s is None or self.accuracy_min is None:
            return None
        t, p = self.table, self.params
        start, end = self.settle, self._slot + 1
        gain = self._gain[start:end]
        active = self._active[start:end]
        if t.noisy:
            envelope = np.maximum.accumulate(t.accuracy, axis=2)
            snr = p["max_power_w"] * gain / (p["noise_psd_w_hz"] * p["bandwidth_hz"])
            acc = np.stack([interpolate_db(t.snr_grid_db, envelope, row) for row in snr])
        else:
            acc = t.accuracy[:, :, 0]
        mask = t.allowed if active.all() else t.allowed[None, :, :] & active[:, :, None]
        if mask.ndim == 3 and acc.ndim == 2:
            acc = np.broadcast_to(acc, mask.shape)
        return offline_lower_bound(gain=gain, accuracy=acc, delay_max_s=self.delay_max_s,
                                   accuracy_min=self.accuracy_min, option_mask=mask,
                                   **{**p, "r_min_bps": 1.0 if self.lowered_floor else self.r_min})

    def report(self) -> dict[str, Any]:
        """Summary entries: ``energy_lower_bound_j``, ``optimality_gap``, ``offline_bound``, ``controller_stats``."""
        stats = self.stats()
        out: dict[str, Any] = {"controller_stats": stats, "energy_lower_bound_j": None, "optimality_gap": None,
                               "offline_bound": None}
        bound = self.offline_bound()
        if bound is None:
            return out
        out["energy_lower_bound_j"] = float(bound.bound_j)
        if bound.bound_j > 0:
            out["optimality_gap"] = float(optimality_gap(stats["decision_energy_j"], bound.bound_j))
        out["offline_bound"] = {
            "status": bound.status, "dual_gap_j": float(bound.dual_gap_j), "evaluations": bound.evaluations,
            "slots": bound.slots, "delay_multiplier": bound.delay_multiplier.tolist(),
            "accuracy_multiplier": bound.accuracy_multiplier.tolist(),
            "relaxed_delay_s": bound.relaxed_delay_s.tolist(), "relaxed_accuracy": bound.relaxed_accuracy.tolist()}
        return out


def anchor_options(scenario: Scenario) -> tuple[int, ...]:
    """Every K the scenario's controller may choose (the world prepares a head for each)."""
    ctl = scenario.controller
    return (ctl.anchors,) if isinstance(ctl, StaticControllerConfig) else tuple(ctl.anchors)


def build_controller(scenario: Scenario, spec: NetworkSpec, calibration: Sequence[Any] | None = None) -> Controller:
    """The controller the scenario's ``controller.kind`` names.

    ``calibration``: the Ĝ rows (:func:`simulator.experiment.calibration.calibration_rows`),
    needed by every kind but ``static``.
    """
    kind = scenario.controller.kind
    if kind == "static":
        return StaticController(scenario, spec)
    if calibration is None:
        raise ValueError(f"controller.kind {kind} needs the calibration table (calibration rows)")
    return PolicyController(scenario, spec, calibration)


__all__ = ["NetworkSpec", "Observation", "Decision", "Feedback", "Controller", "StaticController",
           "AccuracyTable", "OptionTable", "PolicyController", "interpolate_db", "option_table",
           "check_accuracy_target", "anchor_options", "build_controller"]
