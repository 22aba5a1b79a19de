"""Stitching matrix (accuracy of tx encoder → rx encoder per alignment method and anchor count) and Ĝ."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch

from simulator.latent.translation import Affine, InverseRelative, Procrustes, match_width
from simulator.latent.zoo import Zoo

COLUMNS = ("tx", "rx", "method", "similarity", "anchors", "bits", "mode", "snr_db", "accuracy",
           "rx_native_accuracy", "split")

Channel = Callable[[torch.Tensor], torch.Tensor]
"""What happens to a relative representation between the two agents (identity when ideal)."""


@dataclass(frozen=True)
class Condition:
    """A link condition for the relative method: transmission mode, bits per entry, SNR (dB)."""

    mode: str = "ideal"
    bits: int = 32
    snr_db: float | None = None


ChannelFactory = Callable[[Condition, str, str, int, list], Channel]
"""Builds the channel of a condition for (tx, rx, K, value ranges of the tx relative blocks)."""


@dataclass(frozen=True)
class StitchRow:
    """One cell of the stitching matrix (columns of ``stitching.csv``, DESIGN §4)."""

    tx: str
    rx: str
    method: str
    similarity: str
    anchors: int
    bits: int
    mode: str
    snr_db: float | None
    accuracy: float
    rx_native_accuracy: float
    split: str

    def as_dict(self) -> dict:
        return asdict(self)


def received_relative(zoo: Zoo, tx: str, k: int, split: str, channel: Channel | None = None) -> torch.Tensor:
    """The tx relative representation of a split, after ``channel`` (quantizer, noise) if given."""
    r = zoo.projector(tx, k)(zoo.latents(tx, split))
    return channel(r) if channel is not None else r


def predict(zoo: Zoo, tx: str, rx: str, method: str, k: int, split: str,
            channel: Channel | None = None) -> torch.Tensor:
    """Labels the receiver ``rx`` predicts for the ``split`` samples sent by ``tx`` with ``method``.

    ``absolute`` ignores ``k`` (no anchors are involved); ``channel`` only applies to the
    methods that transmit a relative representation (``relative``, ``inverse-relative``).
    """
    z_tx = zoo.latents(tx, split)
    d_rx = zoo.encoders[rx].latent_dim
    if method == "absolute":
        return zoo.classify_absolute(rx, match_width(z_tx, d_rx))
    if method == "relative":
        return zoo.classify_relative(rx, k, received_relative(zoo, tx, k, split, channel))
    if method in ("procrustes", "affine"):
        return zoo.classify_absolute(rx, anchor_map(zoo, tx, rx, method, k)(z_tx))
    if method == "inverse-relative":
        return zoo.classify_absolute(rx, inverse_relative(zoo, rx, k)(received_relative(zoo, tx, k, split, channel)))
    raise ValueError(f"unknown method {method!r}")


def anchor_map(zoo: Zoo, tx: str, rx: str, method: str, k: int) -> Procrustes | Affine:
    """The map from tx's latent space into rx's that ``procrustes`` or ``affine`` fits on the first k anchors."""
    a_tx, a_rx = zoo.anchor_latents(tx, k), zoo.anchor_latents(rx, k)
    if method == "procrustes":
        return Procrustes.fit(a_tx, a_rx)
    return Affine.fit(a_tx, a_rx, zoo.scenario.stitching.ridge)


def inverse_relative(zoo: Zoo, rx: str, k: int) -> InverseRelative:
    """rx's map from a (cosine) relative representation on k anchors back into its own latent space."""
    if not zoo.scenario.relative.invertible:
        raise ValueError("inverse-relative needs the cosine similarity alone, without standardize")
    proj = zoo.projector(rx, k)
    return InverseRelative.fit(proj.unit_anchors, proj.mean, proj.anchors, zoo.scenario.stitching.ridge)


def stitching_rows(zoo: Zoo, split: str, methods: Iterable[str], anchors: Iterable[int],
                   pairs: Iterable[tuple[str, str]] | None = None) -> list[StitchRow]:
    """Accuracy of every (tx, rx) pair × method × anchor count on ``split`` (ideal link, float32).

    Methods that cannot run for the scenario (inverse-relative with a non-cosine similarity)
    are left out. ``absolute`` gives one row per pair with ``anchors`` = 0.
    """
    ids = list(zoo.encoders)
    pairs = list(pairs) if pairs is not None else [(t, r) for t in ids for r in ids]
    labels = zoo.labels(split)
    native = {rx: zoo.native_accuracy(rx, split) for rx in {r for _, r in pairs}}
    sim = zoo.scenario.relative.label
    methods = [m for m in methods if m != "inverse-relative" or zoo.scenario.relative.invertible]
    rows = []
    for tx, rx in pairs:
        for method in methods:
            for k in ([0] if method == "absolute" else anchors):
                pred = predict(zoo, tx, rx, method, k, split)
                acc = float((pred == labels).float().mean())
                rows.append(StitchRow(tx, rx, method, sim if method != "absolute" else "", k, 32, "ideal",
                                      None, acc, native[rx], split))
    return rows


def relative_condition_rows(zoo: Zoo, split: str, anchors: Iterable[int], conditions: Iterable[Condition],
                            channel_for: ChannelFactory,
                            pairs: Iterable[tuple[str, str]] | None = None) -> list[StitchRow]:
    """Accuracy of the relative method through each link condition, for every pair and K.

    The transmitter's relative representations of the split are computed once per (tx, K) and
    sent through ``channel_for(condition, tx, rx, K, ranges)`` for each receiver and condition:
    this is the calibration table Ĝ(pair, K, b, SNR) when ``split`` is the calibration split
    (``validation`` or ``holdout``).
    """
    ids = list(zoo.encoders)
    pairs = list(pairs) if pairs is not None else [(t, r) for t in ids for r in ids]
    conditions = list(conditions)
    labels = zoo.labels(split)
    native = {rx: zoo.native_accuracy(rx, split) for rx in {r for _, r in pairs}}
    sim = zoo.scenario.relative.label
    rows = []
    for tx in dict.fromkeys(t for t, _ in pairs):
        for k in anchors:
            proj = zoo.projector(tx, k)
            r = proj(zoo.latents(tx, split))
            for rx in (r_ for t_, r_ in pairs if t_ == tx):
                for cond in conditions:
                    pred = zoo.classify_relative(rx, k, channel_for(cond, tx, rx, k, proj.value_ranges())(r))
                    acc = float((pred == labels).float().mean())
                    rows.append(StitchRow(tx, rx, "relative", sim, k, cond.bits, cond.mode, cond.snr_db, acc,
                                          native[rx], split))
    return rows
