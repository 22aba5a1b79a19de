"""What a controller sees, decides and is told each slot, and the shape of its settings.

Every slot the world builds an :class:`Observation` (channel state and backlogs of every
agent), asks ``controller.decide(observation)`` for a :class:`Decision` (one entry per
transmitter), applies it for the whole slot, and at the slot's end reports what happened with
``controller.update(feedback)``. Any object with these two methods (:class:`Controller`) can
drive the world; the fixed facts it may plan with are in the :class:`NetworkSpec`. Which
controller runs is the scenario's ``controller.kind``, looked up in
:mod:`simulator.control.registry`; each kind's settings subclass :class:`ControllerSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Protocol

import numpy as np

from simulator.schema import Strict

if TYPE_CHECKING:
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


class ControllerSettings(Strict):
    """Base of every kind's ``controller:`` section (a pydantic model with a ``kind: Literal[...]`` field).

    Class attributes
    ----------------
    needs_calibration : bool
        The controller plans with the calibration table Ĝ (the runner measures it first).
    """

    needs_calibration: ClassVar[bool] = True

    def anchor_options(self) -> tuple[int, ...]:
        """Every K the controller may choose (the world prepares a head for each)."""
        raise NotImplementedError

    def check_scenario(self, scenario: Scenario) -> None:
        """Cross-field rules against the rest of the scenario; raise :class:`~simulator.schema.Located`."""


__all__ = ["NetworkSpec", "Observation", "Decision", "Feedback", "Controller", "ControllerSettings"]
