"""The dynamic controllers' common part: option-set settings and the adapter to a per-slot policy.

Every dynamic kind (``lyapunov``, the baselines, …) chooses from the same option set (encoder
pool × K × b, :class:`OptionSetConfig`) and drives the world through :class:`PolicyController`,
which turns observations into the keyword arguments of a per-slot policy of
:mod:`simulator.control` and its :class:`~simulator.control.lyapunov.SlotDecision` into a
:class:`~simulator.control.interface.Decision`, and keeps the statistics and the realized trace
that the offline bound (:mod:`simulator.control.oracle`) is computed on. A kind is a subclass
that builds its policy (:meth:`PolicyController.make_policy`) and a settings model that
subclasses :class:`OptionSetConfig`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field, field_validator

from simulator.channel import max_rate_bps
from simulator.control.closed_form import optimal_rate
from simulator.control.interface import (
    ControllerSettings,
    Decision,
    Feedback,
    NetworkSpec,
    Observation,
)
from simulator.control.lyapunov import SlotDecision, VirtualQueues, solve_slot
from simulator.control.oracle import offline_lower_bound, optimality_gap
from simulator.control.tables import (
    AccuracyTable,
    accuracy_margin,
    check_accuracy_target,
    interpolate_db,
    option_table,
)
from simulator.errors import ScenarioError, quoted
from simulator.schema import Located, PositiveInt, bits_value

if TYPE_CHECKING:
    from simulator.config import Scenario


class OptionSetConfig(ControllerSettings):
    """What the per-slot controllers choose from, and the model they plan with.

    Each transmitter's options are its encoder pool × ``anchors`` × ``bits``; the accuracy Ĝ of
    every option comes from the calibration table (validation or holdout split), so every K must
    be one of ``stitching.anchors`` and every b one of ``stitching.bits`` (ideal links, coded packets) or
    ``stitching.noisy_bits`` (digital links). The targets are ``simulation.delay_target_s`` and
    ``simulation.accuracy_target`` (one place only). Receivers must use
    ``scheduling: partitioned``: the controller sets each device's server CPU share.
    """

    requires_targets: ClassVar[bool] = False
    """Both simulation targets must be set (the kind plans with them)."""

    anchors: tuple[PositiveInt, ...] = Field((16, 32, 64, 128, 256, 512), min_length=1,
                                             description="K options (prefixes of the anchor list)")
    bits: tuple[int, ...] = Field((2, 4, 8, 16), min_length=1, description="b options (1..16 or 32 = float32)")
    include_server_energy: bool = Field(True, description="count the server's decoding energy κ_s x² W_rx in "
                                        "the energy minimized and bounded")
    server_freq_min_hz: float | None = Field(
        None, gt=0.0, le=1e13, description="floor x_min on the server clock given to a device (Hz); empty = "
        "the largest W_rx per slot (the slowest decoding fits in one slot)")
    min_rate_bps: float | None = Field(
        None, gt=0.0, le=1e12, description="R_min: lowest rate (bit/s), chosen when the delay queue is empty. "
        "A value is a hard floor: a slot whose R_max is below it holds (the task waits), which caps what a deep "
        "fade can cost. Empty = the largest payload per slot (N_max / slot_s: the slowest transmission fits in "
        "one slot), lowered to R_max in a slot that cannot carry it (never holds)")
    settle_slots: int = Field(0, ge=0, description="slots at the start left out of the offline-bound "
                              "comparison and of the settled statistics in summary.json (queue transient)")
    accuracy_margin: Annotated[float, Field(ge=0.0, le=0.5)] | Literal["auto"] = Field(
        0.0, description="plan for Ĝ ≥ accuracy_target + margin: a safety margin for the calibration table's "
        "error on the test split; 'auto': z·sqrt(G(1−G)(1/n_cal + 1/n_test + 1/n_window)) with G the target, "
        "the calibration and test splits' sizes, the settled window's expected tasks and z = 1.96 (covers "
        "sampling error only: pair it with data.calibration holdout)")

    @field_validator("bits")
    @classmethod
    def _bits_ok(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for b in value:
            bits_value(b)
        return tuple(sorted(set(value)))

    @field_validator("anchors")
    @classmethod
    def _anchors_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(set(value)))

    def anchor_options(self) -> tuple[int, ...]:
        return tuple(self.anchors)

    def check_scenario(self, scenario: Scenario) -> None:
        """Cross-field rules of the dynamic controllers (checked once the scenario has transmitters)."""
        sc, kind = scenario, self.kind
        if not sc.transmitters:
            return
        st, sim = sc.stitching, sc.simulation
        if sc.channel.mode == "analog":
            raise Located(f"controller.kind {kind} plans digital payloads (N = K·b + header bits at rate R); "
                          "channel.mode analog is not supported", ("controller", "kind"))
        for i, k in enumerate(self.anchors):
            if k > sc.anchors.count:
                raise Located(f"K = {k} exceeds the anchor list length anchors.count = {sc.anchors.count}",
                              ("controller", "anchors", i))
            if k not in st.anchors:
                raise Located(f"K = {k} has no calibrated accuracy: add it to stitching.anchors",
                              ("controller", "anchors", i))
        coded = {tx.radio.packet_errors == "fbl" for tx in sc.transmitters}
        error_free = sc.channel.mode == "ideal" or True in coded
        noisy = sc.channel.mode == "digital" and False in coded
        for i, b in enumerate(self.bits):
            if error_free and b not in st.bits:
                raise Located(f"b = {b} has no calibrated accuracy on an error-free link: add it to stitching.bits",
                              ("controller", "bits", i))
            if noisy and b not in st.noisy_bits:
                raise Located(f"b = {b} has no calibrated accuracy through the digital channel: add it to "
                              "stitching.noisy_bits", ("controller", "bits", i))
        devices: dict[str, int] = {}
        for tx in sc.transmitters:
            devices[tx.receiver] = devices.get(tx.receiver, 0) + 1
        for j, rx in enumerate(sc.receivers):
            if rx.id in devices and rx.scheduling != "partitioned":
                raise Located(f"controller.kind {kind} sets each device's server CPU share: receiver {quoted(rx.id)} "
                              "needs scheduling: partitioned", ("receivers", j, "scheduling"))
            if self.server_freq_min_hz is not None and devices.get(rx.id, 0) * self.server_freq_min_hz > rx.cpu_hz:
                raise Located(f"{devices[rx.id]} devices × {self.server_freq_min_hz} Hz exceed the clock of receiver "
                              f"{quoted(rx.id)} ({rx.cpu_hz} Hz)", ("controller", "server_freq_min_hz"))
        if self.settle_slots >= sim.slots:
            raise Located(f"must be below simulation.slots = {sim.slots}", ("controller", "settle_slots"))
        if (sim.accuracy_target is not None and self.accuracy_margin != "auto"
                and sim.accuracy_target + self.accuracy_margin > 1.0):
            raise Located("accuracy_target + accuracy_margin exceeds 1", ("controller", "accuracy_margin"))
        if self.requires_targets:
            for name in ("delay_target_s", "accuracy_target"):
                if getattr(sim, name) is None:
                    raise Located(f"required by controller.kind {kind}", ("simulation", name))


class PolicyController:
    """Drives the world with a per-slot policy of :mod:`simulator.control` (base of the dynamic kinds).

    A kind subclasses it and builds its per-slot policy in :meth:`make_policy`: ``lyapunov``
    (:class:`~simulator.control.lyapunov.LyapunovController`), the baselines of
    :mod:`simulator.control.baselines`, … Every slot:

    1. **Options** (:class:`OptionTable`, built once): pool encoder × K × b with the world's own
       payload ``N = K·b + header``, ``W_tx`` (encoder + projection FLOPs / β) and ``W_rx`` (head
       FLOPs / β of the receiver), and Ĝ from the calibration table. Options are masked for a
       device whose link is blocked or that is off at the slot start (it holds until the next
       slot).
    2. **Ĝ at the slot's SNR** (digital links with uncoded bits only; ideal links and coded
       packets use the error-free Ĝ). The world sends at ``p = Γ (2^{R/B} − 1) N0 B / g`` and the
       bits cross a binary symmetric channel at the BER of ``γ = p g / (N0 B) = Γ (2^{R/B} − 1)``:
       the SNR is set by the chosen rate, and a faster rate buys accuracy. The drift-plus-penalty
       controller (and every policy that solves its per-slot problem, ``rate_search``) therefore
       searches a few candidate rates (:meth:`_decide_noisy`): ``R*`` of
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
    4. **Queues** (``lyapunov``; baselines ignore it): ``Z`` advances with the decision's
       predicted delay ``W_tx/f + N/R + W_rx/x`` — the delay the offline bound constrains, so
       that the controller and the bound enforce the same average (a slot that holds, and the
       queueing a held task then sees, are outside both; with one task per slot the realized
       mean delay exceeds the decisions' by the holds' share); ``Y`` with the Ĝ of the
       decision (labels are never seen), against ``accuracy_target + accuracy_margin`` (the
       margin covers the calibration's error on unseen data). A device without a feasible
       decision keeps its queues. The enforced average is thus over the slots with a decision.

    Accounting, over the slots from ``settle_slots`` on (``stats``): the decisions' predicted
    per-task energy ``E = p N/R + κ f² W_tx [+ κ_s x² W_rx]`` summed over devices and averaged
    over slots (0 in a slot without a feasible decision), their predicted delay and Ĝ, and the
    queues. :meth:`offline_bound` bounds the same energy figure from below.
    """

    rate_search: ClassVar[bool] = False
    """The policy solves the drift-plus-penalty slot problem (it has ``v`` and ``queues``): on a digital
    link it searches the rates that buy accuracy (class docstring, step 2)."""

    def __init__(self, scenario: Scenario, spec: NetworkSpec, calibration: Sequence[Any] | None):
        if spec.tx_cycles is None or spec.rx_cycles is None or spec.payload_bits is None:
            raise ValueError("the NetworkSpec lacks the world's cycle and payload tables")
        cfg, sim = scenario.controller, scenario.simulation
        self.spec = spec
        self.table = option_table(scenario, spec, AccuracyTable(calibration))
        self.accuracy_margin = accuracy_margin(scenario, calibration)  # a number; 'auto' resolved
        check_accuracy_target(scenario, spec, self.table, self.accuracy_margin)
        n = spec.n_tx
        self.n = n
        self.delay_max_s = sim.delay_target_s
        # what the decisions (and the bound) aim at: the target plus the calibration margin
        self.accuracy_min = (None if sim.accuracy_target is None
                             else sim.accuracy_target + self.accuracy_margin)
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
        self.policy: Any = self.make_policy(scenario)
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
        self._queues_at_settle: tuple[np.ndarray, np.ndarray] | None = None

    def make_policy(self, scenario: Scenario) -> Any:
        """The kind's per-slot policy: ``decide(**slot) → SlotDecision`` and ``update(delay, accuracy, observed)``.

        Called at the end of set-up, when :attr:`params` (the slot-invariant arguments of
        :func:`~simulator.control.lyapunov.solve_slot`), :attr:`accuracy_min` and :attr:`table`
        are in place.
        """
        raise NotImplementedError

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
        if t.noisy and self.rate_search:
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
        if s == self.settle and self.queues is not None:
            self._queues_at_settle = (self.queues.delay.copy(), self.queues.accuracy.copy())
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
        observed = d.feasible
        delay = np.where(observed, d.delay_s, 0.0)
        acc = np.where(observed, d.accuracy, self._acc_last)
        self._acc_last = acc
        self.last_update = (delay, acc, observed)
        self.policy.update(delay, acc, observed)

    # ----------------------------------------------------------------------- reporting
    def stats(self) -> dict[str, Any]:
        """Averages over the settled window (slots ``settle_slots`` … end); see the class docstring.

        ``decision_energy_per_slot_j`` is J per slot summed over transmitters (the bound's
        units), ``decision_energy_per_task_j`` the same energy per decision (per transmitter and
        slot with a feasible decision: per task when each such slot carries one); delays (s), Ĝ
        and queues are averaged over devices and the slots where they apply.
        """
        s, w = self._sums, max(self._window, 1)
        n_act = s["active"].sum()
        out = {"window_slots": [self.settle, self._slot + 1],
               "decision_energy_per_slot_j": float(s["energy"].sum() / w),
               "decision_energy_per_task_j": float(s["energy"].sum() / n_act) if n_act else None,
               "decision_delay_s": float(s["delay"].sum() / n_act) if n_act else None,
               "decision_accuracy": float(s["accuracy"].sum() / n_act) if n_act else None,
               "delay_queue_mean": None, "delay_queue_max": None, "accuracy_queue_mean": None}
        if self.queues is not None:
            out.update(delay_queue_mean=float(s["z"].sum() / (w * self.n)), delay_queue_max=float(self._z_max.max()),
                       accuracy_queue_mean=float(s["y"].sum() / (w * self.n)))
        return out

    def _own_averages(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-device mean predicted delay (s) and Ĝ of the decisions over the window (NaN where none)."""
        s = self._sums
        with np.errstate(invalid="ignore", divide="ignore"):
            return s["delay"] / s["active"], s["accuracy"] / s["active"]

    def offline_bound(self, delay_max_s: Any = None, accuracy_min: Any = None,
                      slots: tuple[int, int] | None = None, **solver: Any):
        """:func:`~simulator.control.oracle.offline_lower_bound` on the realized trace of the settled window.

        ``delay_max_s`` and ``accuracy_min`` replace the targets (per device; e.g. the decisions'
        own averages, for the inefficiency gap of :meth:`report`); by default the scenario's.
        ``slots`` = (start, end) replaces the window (e.g. the slots observed so far); ``solver``:
        keyword arguments of the search (``rtol``, ``start``).

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
        delay and Ĝ meet the targets on average over the window — the figure ``decision_energy_per_slot_j``
        of :meth:`stats` reports for this controller. Queueing and spill-over delays are not
        part of it.
        """
        if self.delay_max_s is None or self.accuracy_min is None:
            return None
        start, end = slots or (self.settle, self._slot + 1)
        gain = self._gain[start:end]
        acc, mask, params = self.bound_inputs(gain, self._active[start:end])
        return offline_lower_bound(gain=gain, accuracy=acc,
                                   delay_max_s=self.delay_max_s if delay_max_s is None else delay_max_s,
                                   accuracy_min=self.accuracy_min if accuracy_min is None else accuracy_min,
                                   option_mask=mask, **solver, **params)

    def bound_inputs(self, gain: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """(Ĝ, option mask, slot-invariant parameters) of the offline bound on a trace of gains (T, n)
        and fault masks (T, n), as :meth:`offline_bound` uses them (its docstring says why)."""
        t, p = self.table, self.params
        if t.noisy:
            envelope = np.maximum.accumulate(t.accuracy, axis=2)
            snr = p["max_power_w"] * gain / (p["noise_psd_w_hz"] * p["bandwidth_hz"])
            acc = np.stack([interpolate_db(t.snr_grid_db, envelope, row) for row in snr])
        else:
            acc = t.accuracy[:, :, 0]
        mask = t.allowed if active.all() else t.allowed[None, :, :] & active[:, :, None]
        if mask.ndim == 3 and acc.ndim == 2:
            acc = np.broadcast_to(acc, mask.shape)
        return acc, mask, {**p, "r_min_bps": 1.0 if self.lowered_floor else self.r_min}

    DELAY_SLACK = 1e-3
    """Relative excess of the decisions' mean delay over the target still counted as meeting it."""
    ACCURACY_SLACK = 1e-4
    """Shortfall of the decisions' mean Ĝ below ``accuracy_min`` still counted as meeting it."""
    SETTLED_TOLERANCE = 0.05
    """Settling: |Z̄/V − λ*| and |Ȳ/V − η*| within this fraction of the multiplier's scale (:meth:`settling`)."""

    def report(self) -> dict[str, Any]:
        """Summary entries: the bound, the honest gaps, settling, ``offline_bound`` and ``controller_stats``.

        * ``energy_bound_per_slot_j`` — the offline bound (J per slot, summed over transmitters);
          ``energy_bound_per_task_j`` — the same per decision (the unit of
          ``decision_energy_per_task_j``; per task when each slot with a decision carries one).
        * ``optimality_gap`` — decisions / bound − 1, only when the decisions meet the bound's
          constraints on average over the window, per device (mean predicted delay ≤
          ``delay_target_s`` · (1 + :attr:`DELAY_SLACK`), mean Ĝ ≥ target + margin −
          :attr:`ACCURACY_SLACK`); otherwise null, and ``optimality_gap_reason`` says which
          constraint the decisions break and by how much (a policy that breaks them may sit
          below the bound). Where a device's average is past its target but within the slack
          (``optimality_gap_within_slack``: true), the gap is taken against the bound re-solved
          with that target moved to the decisions' average: a deterministic policy hugging a
          constraint lands a slot's option switch to either side of it, and the bound at the
          target would then compare it with a stricter problem than the one it solved (a gap
          slightly below 0).
        * ``inefficiency_gap`` — decisions / bound at the decisions' *own* averages − 1: the
          bound re-solved with each device's mean delay and Ĝ as its targets, which the
          decisions meet by construction, so the gap is ≥ 0 (up to the dual's tolerance) for
          every policy; for drift-plus-penalty it falls as O(1/V).
        * ``settling`` (controllers with queues) — :meth:`settling`.
        """
        stats = self.stats()
        out: dict[str, Any] = {"accuracy_margin": self.accuracy_margin,  # resolved ('auto': a number)
                               "controller_stats": stats, "energy_bound_per_slot_j": None,
                               "energy_bound_per_task_j": None, "optimality_gap": None,
                               "optimality_gap_reason": None, "inefficiency_gap": None, "offline_bound": None}
        bound = self.offline_bound()
        if bound is None:
            out["optimality_gap_reason"] = "no bound: the scenario sets no delay or accuracy target"
            return out
        n_act = float(self._sums["active"].sum())
        per_task = bound.bound_j * max(self._window, 1) / n_act if n_act else None
        out.update(energy_bound_per_slot_j=float(bound.bound_j), energy_bound_per_task_j=per_task)
        decided = stats["decision_energy_per_slot_j"]
        delay, acc = self._own_averages()
        has = self._sums["active"] > 0
        if bound.status == "infeasible":
            out["optimality_gap_reason"] = "the targets cannot be met on this trace by any policy"
        elif bound.bound_j <= 0:
            out["optimality_gap_reason"] = "the bound is 0"
        else:
            broken = self._broken_constraints(delay, acc)
            if broken:
                out["optimality_gap_reason"] = "the decisions break the bound's constraints: " + "; ".join(broken)
            else:
                # within the slack but past a target: against the bound at that (looser) average, so that
                # the gap compares like with like and stays >= 0 (weak duality)
                loose_l = np.where(has, np.fmax(delay, self.delay_max_s), self.delay_max_s)
                loose_a = np.where(has, np.fmin(acc, self.accuracy_min), self.accuracy_min)
                past = bool(np.any(loose_l > self.delay_max_s) or np.any(loose_a < self.accuracy_min))
                ref = self.offline_bound(loose_l, loose_a) if past else bound
                out["optimality_gap"] = float(optimality_gap(decided, ref.bound_j))
                out["optimality_gap_within_slack"] = past
        if has.any():
            own = self.offline_bound(np.where(has, delay, self.delay_max_s), np.where(has, acc, 0.0))
            if own is not None and own.status != "infeasible" and own.bound_j > 0:
                out["inefficiency_gap"] = float(optimality_gap(decided, own.bound_j))
        out["offline_bound"] = {
            "status": bound.status, "dual_gap_j": float(bound.dual_gap_j), "evaluations": bound.evaluations,
            "slots": bound.slots, "delay_multiplier": bound.delay_multiplier.tolist(),
            "accuracy_multiplier": bound.accuracy_multiplier.tolist(),
            "relaxed_delay_s": bound.relaxed_delay_s.tolist(), "relaxed_accuracy": bound.relaxed_accuracy.tolist(),
            "relaxed_energy_j": bound.relaxed_energy_j.tolist()}
        settling = self.settling(bound)
        if settling is not None:
            out["settling"] = settling
        return out

    def _broken_constraints(self, delay: np.ndarray, acc: np.ndarray) -> list[str]:
        """One phrase per device and constraint that the decisions' window averages break (see :meth:`report`)."""
        ids, out = self.spec.transmitter_ids, []
        has = self._sums["active"] > 0
        for i in np.flatnonzero(has):
            if delay[i] > self.delay_max_s * (1.0 + self.DELAY_SLACK):
                out.append(f"{ids[i]} mean delay {delay[i] * 1e3:.4g} ms > target {self.delay_max_s * 1e3:.4g} ms "
                           f"(+{delay[i] / self.delay_max_s - 1:.2%})")
            if acc[i] < self.accuracy_min - self.ACCURACY_SLACK:
                out.append(f"{ids[i]} mean Ĝ {acc[i]:.4f} < {self.accuracy_min:.4f}")
        return out

    def settling(self, bound: Any) -> dict[str, Any] | None:
        """Whether the queues settled where theory puts them: ``Z̄ ≈ V λ*`` and ``Ȳ ≈ V η*``.

        Per device, Z̄/V and Ȳ/V (window means) against the bound's multipliers λ* (J/s) and η*
        (J): settled when |Z̄/V − λ*| ≤ :attr:`SETTLED_TOLERANCE` · max(λ*, E_i / L_max) and
        |Ȳ/V − η*| ≤ the same fraction of max(η*, E_i / A_min), with E_i the device's share of
        the bound's energy (J per slot) — a multiplier of 0 (a slack constraint) then asks the
        queue's price of that constraint to stay under 5 % of the energy. ``drift_*`` is the
        queues' change over the window divided by V (≈ 0 once settled). None for controllers
        without queues or V.
        """
        v = getattr(self.policy, "v", None)
        if self.queues is None or not v or self._window == 0:
            return None
        w = self._window
        z_v, y_v = self._sums["z"] / w / v, self._sums["y"] / w / v
        lam, eta = bound.delay_multiplier, bound.accuracy_multiplier
        energy = np.maximum(bound.relaxed_energy_j, 1e-300)
        tol = self.SETTLED_TOLERANCE
        ok = (np.abs(z_v - lam) <= tol * np.maximum(lam, energy / self.delay_max_s)) & \
             (np.abs(y_v - eta) <= tol * np.maximum(eta, energy / max(self.accuracy_min, 1e-12)))
        start = self._queues_at_settle or (self.queues.delay, self.queues.accuracy)
        return {"settled": bool(ok.all()), "devices_settled": int(ok.sum()),
                "delay_queue_per_v": z_v.tolist(), "delay_multiplier": lam.tolist(),
                "accuracy_queue_per_v": y_v.tolist(), "accuracy_multiplier": eta.tolist(),
                "drift_delay_queue_per_v": ((self.queues.delay - start[0]) / v).tolist(),
                "drift_accuracy_queue_per_v": ((self.queues.accuracy - start[1]) / v).tolist(),
                "tolerance": tol}


__all__ = ["OptionSetConfig", "PolicyController"]
