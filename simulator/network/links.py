"""The links of a network: bandwidth split, gains and R_max by chunks of slots, and each slot's link budget.

Model (DESIGN §2): the gain of link i in slot t is ``g_t = PL(d_i) · S_i · |h_t|²`` with
``E|h|² = 1`` (:mod:`simulator.channel.fading`), ``S_i`` a static log-normal shadowing draw
per link, and ``R_max,t = B_i log2(1 + P_max g_t / (Γ N0 B_i))``. A receiver's bandwidth is
split among its transmitters: each gets its ``bandwidth_share`` when set, and the rest is
split equally among those without one (FDMA).

Memory: gains are generated ``block_slots`` slots at a time (1024 by default: 16 KiB per link
for the gains and ``R_max``), whatever the run's length. A link with i.i.d. fading draws each
block from its own generator, so the block size does not change its trace. A correlated
(Jakes, AR(1)) trace is generated ``chunk_slots`` slots at a time and starts each chunk from the
stationary law, so the time correlation restarts once per chunk (every 65 536 slots by
default; marginals are exact); such a link holds its chunk, cut at the run's last slot (8 bytes
per slot, at most 512 KiB).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from simulator.channel import (db_to_linear, fbl_error_probability, fixed_loss_gain, gain_trace, jakes_rho,
                               log_distance_gain, max_rate_bps, noise_psd_w_hz, power_for_rate_w, shadowing_gain, snr)
from simulator.config import ChannelConfig, ReceiverConfig, TransmitterConfig
from simulator.rng import SeedTree

CHUNK_SLOTS = 1 << 16
BLOCK_SLOTS = 1 << 10


def split_bandwidth(transmitters: Sequence[TransmitterConfig], receivers: Sequence[ReceiverConfig],
                    default_bandwidth_hz: float) -> np.ndarray:
    """Bandwidth of each transmitter's link (Hz), shape (n_tx,): explicit shares, equal split of the rest."""
    total = {rx.id: rx.bandwidth_hz or default_bandwidth_hz for rx in receivers}
    fixed: dict[str, float] = {}
    free: dict[str, int] = {}
    for tx in transmitters:
        if tx.link.bandwidth_share is None:
            free[tx.receiver] = free.get(tx.receiver, 0) + 1
        else:
            fixed[tx.receiver] = fixed.get(tx.receiver, 0.0) + tx.link.bandwidth_share
    out = []
    for tx in transmitters:
        share = tx.link.bandwidth_share
        if share is None:
            share = max(0.0, 1.0 - fixed.get(tx.receiver, 0.0)) / free[tx.receiver]
        out.append(share * total[tx.receiver])
    return np.asarray(out, dtype=np.float64)


class LinkTable:
    """Per-slot channel state of every transmitter's link.

    Parameters
    ----------
    channel : ChannelConfig
        Noise PSD, SNR gap and path-loss model (shared by every link).
    transmitters, receivers : sequence of configs
        Each transmitter's ``link`` already holds its effective settings.
    slot_s : float
        Slot length (for the Jakes correlation ``ρ = J0(2π f_D slot_s)``).
    seeds : SeedTree
        Parent node; link i draws fading from ``fading/<tx id>`` and shadowing from
        ``shadowing/<tx id>``, so adding a device does not change the others' channels.
    max_power_w : array_like
        ``P_max`` per transmitter (W), for ``R_max``.
    chunk_slots : int
        Slots after which a correlated trace restarts from the stationary law.
    horizon_slots : int, optional
        Slots the run lasts: no correlated chunk is generated past it (None: no limit).
    block_slots : int
        Slots whose gains are generated at once (any value gives the same gains).

    Attributes
    ----------
    bandwidth_hz : numpy.ndarray, shape (n_tx,)
    large_scale_gain : numpy.ndarray, shape (n_tx,)
        ``PL(d) · S``, linear.
    noise_psd_w_hz : float
    gap : float
        ``Γ``, linear.
    analog : bool
        The channel carries analog symbols (no outage: a weaker link gives a noisier copy).
    """

    def __init__(self, channel: ChannelConfig, transmitters: Sequence[TransmitterConfig],
                 receivers: Sequence[ReceiverConfig], slot_s: float, seeds: SeedTree,
                 max_power_w: Sequence[float], chunk_slots: int = CHUNK_SLOTS, horizon_slots: int | None = None,
                 block_slots: int = BLOCK_SLOTS):
        self.links = [tx.link for tx in transmitters]
        self.bandwidth_hz = split_bandwidth(transmitters, receivers, channel.bandwidth_hz)
        pl = channel.path_loss
        distance = np.array([link.distance_m for link in self.links])
        if pl.model == "fixed":
            path = np.broadcast_to(fixed_loss_gain(pl.loss_db), distance.shape).copy()
        else:
            path = log_distance_gain(distance, pl.reference_loss_db, pl.exponent, pl.reference_distance_m)
        shadow = np.array([float(shadowing_gain(link.shadowing_sigma_db, 1, seeds.child("shadowing", tx.id).numpy())[0])
                           for link, tx in zip(self.links, transmitters)])
        self.large_scale_gain = path * shadow
        self.noise_psd_w_hz = float(noise_psd_w_hz(channel.noise_psd_dbm_hz))
        self.gap = float(db_to_linear(channel.snr_gap_db))
        self.max_power_w = np.asarray(max_power_w, dtype=np.float64)
        self.analog = channel.mode == "analog"
        self.rho = [jakes_rho(link.doppler_hz, slot_s) if link.doppler_hz > 0 else 0.0 for link in self.links]
        self._gens = [seeds.child("fading", tx.id).numpy() for tx in transmitters]
        self.chunk_slots = int(chunk_slots)
        self.horizon_slots = None if horizon_slots is None else int(horizon_slots)
        self.block_slots = int(block_slots)
        self._correlated = {i for i, rho in enumerate(self.rho) if rho != 0.0}
        self._chunks: dict[int, np.ndarray] = {}  # correlated link → |h|² of its current chunk
        self._start = 0
        self._gain = np.empty((0, len(self.links)))
        self._r_max = self._gain

    def _fading(self, i: int, n: int) -> np.ndarray:
        """|h|² of link ``i`` over ``n`` slots from its generator's current state, shape (n,)."""
        link = self.links[i]
        return gain_trace(link.fading, n, 1, self._gens[i], k_factor=link.k_factor, m=link.nakagami_m,
                          rho=self.rho[i])[:, 0]

    def _span(self, slot: int, n: int) -> int:
        """``n`` slots from ``slot``, cut at the run's end."""
        return n if self.horizon_slots is None else min(n, self.horizon_slots - slot)

    def _fill(self, slot: int) -> None:
        offset = slot % self.chunk_slots
        if offset == 0 and self._correlated:
            # An AR(1) trace is causal: cut at the run's end, its slots are those of the full chunk.
            size = self._span(slot, self.chunk_slots)
            self._chunks = {i: self._fading(i, size) for i in sorted(self._correlated)}
        # A block never straddles a chunk boundary, where correlated traces restart.
        n = min(self._span(slot, self.block_slots), self.chunk_slots - offset)
        fading = np.empty((n, len(self.links)))
        for i in range(len(self.links)):
            # i.i.d. links draw slot by slot from their own generator: any block size gives the same trace
            fading[:, i] = self._chunks[i][offset:offset + n] if i in self._correlated else self._fading(i, n)
        self._gain = fading * self.large_scale_gain
        self._r_max = max_rate_bps(self.max_power_w, self._gain, self.noise_psd_w_hz, self.bandwidth_hz, self.gap)
        self._start = slot

    def state(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """Gains ``g_t`` and ``R_max,t`` (bit/s) of every link in ``slot``: two (n_tx,) read-only views.

        Slots must be asked for in increasing order (blocks are generated forward only).
        """
        row = slot - self._start
        if row >= len(self._gain) or row < 0:
            if slot != self._start + len(self._gain):
                raise ValueError("link states must be read slot by slot, in order")
            if self.horizon_slots is not None and slot >= self.horizon_slots:
                raise ValueError(f"slot {slot} is past the run's {self.horizon_slots} slots")
            self._fill(slot)
            row = 0
        return self._gain[row], self._r_max[row]

    def budget(self, rate_bps: np.ndarray, gain: np.ndarray, r_max_bps: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Power (W), outage flag and SNR of sending at ``rate_bps``; arrays broadcasting against (n_tx,).

        ``p = min(Γ (2^{R/B} − 1) N0 B / g, P_max)`` (:func:`~simulator.channel.power_for_rate_w`);
        a rate above ``R_max`` (beyond a relative 1e-9) is in outage, and the attempt goes out at
        ``P_max`` (the caller charges it); analog mode has no outage. SNR ``γ = p g / (N0 B)``
        (:func:`~simulator.channel.snr`, per complex symbol) at the capped power; 0 when ``R = 0``.
        """
        power = np.minimum(power_for_rate_w(rate_bps, gain, self.noise_psd_w_hz, self.bandwidth_hz, self.gap),
                           self.max_power_w)
        if self.analog:
            outage = np.zeros(np.shape(power), dtype=bool)
        else:
            outage = (rate_bps > 0) & (rate_bps > r_max_bps * (1.0 + 1e-9))
        return power, outage, snr(power, gain, self.noise_psd_w_hz, self.bandwidth_hz)

    def attempts(self, rate_bps: np.ndarray, gain: np.ndarray, r_max_bps: np.ndarray, airtime_s: np.ndarray,
                 payload_bits: np.ndarray, coded: np.ndarray) -> tuple[np.ndarray, ...]:
        """One slot's attempt of every link, vectorized: :meth:`budget`, its energy and its packet error probability.

        Parameters
        ----------
        rate_bps, gain, r_max_bps : numpy.ndarray, shape (n_tx,)
            The slot's chosen rates (bit/s; 0 sends nothing), gains (linear) and ``R_max`` (bit/s).
        airtime_s : numpy.ndarray, shape (n_tx,)
            Airtime ``T`` of the slot's packet (s).
        payload_bits : numpy.ndarray of int, shape (n_tx,)
            Its size ``N`` (bits).
        coded : numpy.ndarray of bool, shape (n_tx,)
            Devices whose packets are coded at finite blocklength.

        Returns
        -------
        power_w, outage, snr, energy_j, error_probability : numpy.ndarray, shape (n_tx,)
            ``energy_j = p T`` at the power used (``P_max`` in outage; NaN where nothing is sent);
            ``error_probability`` is ``ε`` of :func:`~simulator.channel.fbl_error_probability`
            with ``n = max(1, B T)`` channel uses for a coded device that sends and is not in
            outage, else 1.
        """
        power, outage, gamma = self.budget(rate_bps, gain, r_max_bps)
        with np.errstate(invalid="ignore"):
            energy = np.where(outage, self.max_power_w, power) * airtime_s
        eps = np.ones(len(power))
        c = coded & (rate_bps > 0) & ~outage
        if c.any():
            n = np.maximum(1.0, self.bandwidth_hz[c] * airtime_s[c])
            eps[c] = fbl_error_probability(gamma[c], n, payload_bits[c])
        return power, outage, gamma, energy, eps


__all__ = ["LinkTable", "split_bandwidth", "CHUNK_SLOTS", "BLOCK_SLOTS"]
