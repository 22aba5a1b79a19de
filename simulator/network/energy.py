"""Compute and energy model of the agents: cycles from real FLOPs, κ f² W, p·T, idle power, per-agent ledgers.

Conventions
-----------
A CPU with ``β`` FLOPs per cycle needs ``W = FLOPs / β`` cycles for a piece of work; at clock
``f`` (Hz) it takes ``W / f`` seconds and, with switched capacitance ``κ`` (dynamic power
``κ f³``), costs ``κ f² W`` joules. A radio transmitting at ``p`` watts for ``T`` seconds spends
``p T`` joules. Idle power is drawn whenever the agent is on. Everything is SI.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch

from simulator.latent.encoders.nets import count_flops
from simulator.latent.heads import relative_head

# SubspaceNorm (mean, variance, subtract, divide, and the std's root per block) is elementwise,
# which count_flops does not count; about 5 FLOPs per entry.
_NORM_FLOPS_PER_ENTRY = 5


def cycles(flops: float, flops_per_cycle: float) -> float:
    """CPU cycles of a piece of work: ``W = FLOPs / β``.

    Parameters
    ----------
    flops : float
        Floating-point operations (a multiply-accumulate is 2).
    flops_per_cycle : float
        ``β > 0``, the CPU's FLOPs per cycle.

    Returns
    -------
    float
        ``W`` in cycles.
    """
    return float(flops) / float(flops_per_cycle)


def compute_energy_j(kappa: float, f_hz: float, n_cycles: float) -> float:
    """Dynamic CPU energy of ``W`` cycles at clock ``f``: ``E = κ f² W`` (J).

    Parameters
    ----------
    kappa : float
        ``κ`` (J/Hz³ per cycle·Hz², i.e. W/Hz³), effective switched capacitance.
    f_hz : float
        Clock ``f`` in Hz.
    n_cycles : float
        ``W`` cycles.
    """
    return kappa * f_hz * f_hz * n_cycles


def transmit_energy_j(power_w: float, airtime_s: float) -> float:
    """Radio energy of one transmission: ``E = p T`` (J), ``p`` in W, ``T`` in s."""
    return power_w * airtime_s


def idle_energy_j(idle_power_w: float, on_time_s: float) -> float:
    """Static energy of an agent that is on for ``on_time_s``: ``E = P_idle · t_on`` (J)."""
    return idle_power_w * on_time_s


def projection_flops(latent_dim: int, k: int, similarities: Sequence[str], center: bool,
                     standardize: bool = False) -> int:
    """FLOPs of one relative projection (one sample, K anchors) as :class:`RelativeProjector` runs it.

    Per similarity, with ``d`` the latent size: cosine ``2dK`` (matmul) ``+ 2d`` (squared norm)
    ``+ K`` (row scaling), plus ``2d + K`` when centering; Euclidean ``2dK + 3d + 3K`` (the
    shift by the anchor mean ``d``, squared norm ``2d``, matmul, then add, clamp and square root
    ``3K``); L1 and L∞ ``3dK`` (difference, absolute value, reduction). ``standardize`` adds
    ``2d`` (the z-score map, once) and implies centering.
    """
    d, total = int(latent_dim), 2 * int(latent_dim) if standardize else 0
    center = center or standardize
    for sim in similarities:
        if sim == "cosine":
            total += 2 * d * k + 2 * d + k + ((2 * d + k) if center else 0)
        elif sim == "euclidean":
            total += 2 * d * k + 3 * d + 3 * k
        else:
            total += 3 * d * k
    return total


def head_flops(k: int, n_spaces: int, hidden: int, n_classes: int) -> int:
    """FLOPs of one receiver head decision on a relative vector of width ``K · n_spaces``.

    Counted from the real head module (:func:`simulator.latent.encoders.nets.count_flops`: its
    matrix products), plus about 5 FLOPs per entry for its parameter-free sub-space normalization.
    """
    width = k * n_spaces
    return count_flops(relative_head(k, n_spaces, hidden, n_classes), torch.zeros(1, width)) \
        + _NORM_FLOPS_PER_ENTRY * width


@dataclass
class EnergyLedger:
    """Running energy totals of one agent (J), by kind."""

    tx_j: float = 0.0
    cpu_j: float = 0.0
    server_j: float = 0.0
    idle_j: float = 0.0

    @property
    def total_j(self) -> float:
        return self.tx_j + self.cpu_j + self.server_j + self.idle_j

    def add(self, other: "EnergyLedger") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, float]:
        return {"energy_tx_j": self.tx_j, "energy_cpu_j": self.cpu_j, "energy_server_j": self.server_j,
                "energy_idle_j": self.idle_j, "energy_j": self.total_j}


__all__ = ["cycles", "compute_energy_j", "transmit_energy_j", "idle_energy_j", "projection_flops",
           "head_flops", "EnergyLedger"]
