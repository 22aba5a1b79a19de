"""What the world tells a controller each slot, what it gets back, and the static controller.

Every slot the world builds an :class:`Observation` (channel state and backlogs of every
agent), asks ``controller.decide(observation)`` for a :class:`Decision` (one entry per
transmitter), applies it for the whole slot, and at the slot's end reports what happened with
``controller.update(feedback)``. Any object with these two methods can drive the world; the
drift-plus-penalty controller of :mod:`simulator.control.lyapunov` plugs in through an adapter
here (the network layer imports the control layer, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulator.config import Scenario


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


def anchor_options(scenario: Scenario) -> tuple[int, ...]:
    """Every K the scenario's controller may choose (the world prepares a head for each)."""
    return (scenario.controller.anchors,)


def build_controller(scenario: Scenario, spec: NetworkSpec) -> Controller:
    """The controller the scenario's ``controller.kind`` names."""
    kind = scenario.controller.kind
    if kind == "static":
        return StaticController(scenario, spec)
    raise ValueError(f"unknown controller kind {kind!r}")


__all__ = ["NetworkSpec", "Observation", "Decision", "Feedback", "Controller", "StaticController",
           "anchor_options", "build_controller"]
