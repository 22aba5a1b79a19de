"""Stitching matrix (accuracy of tx encoder → rx encoder per alignment method and anchor count) and Ĝ."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from simulator.latent.relative import RelativeProjector
from simulator.latent.translation import Affine, InverseRelative, Procrustes, match_width
from simulator.latent.zoo import Zoo

COLUMNS = ("tx_encoder", "rx_encoder", "method", "similarity", "anchors", "bits", "mode", "snr_db", "accuracy",
           "rx_native_accuracy", "split")

Channel = Callable[[torch.Tensor], torch.Tensor]
"""What happens to a relative representation between the two agents (identity when ideal)."""

STACK_ELEMENTS = {"cpu": 1 << 25}
"""Floats one stacked head call may hold (its input and hidden layer) per device type; 1 << 28
(1 GiB) on an accelerator. Heads act row by row, so stacking changes no prediction."""


@dataclass(frozen=True)
class Condition:
    """A link condition for the relative method: transmission mode, bits per entry, SNR (dB)."""

    mode: str = "ideal"
    bits: int = 32
    snr_db: float | None = None


ChannelFactory = Callable[[Condition, str, str, int, list], Channel]
"""Builds the channel of a condition for (tx, rx, K, value ranges of the tx relative blocks).

A condition of mode ``ideal`` draws nothing: its channel must be the same for every receiver
(it is applied once per transmitter and K and shared)."""


@dataclass(frozen=True)
class StitchRow:
    """One cell of the stitching matrix (columns of ``stitching.csv``, DESIGN §4)."""

    tx_encoder: str
    rx_encoder: str
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


@dataclass
class Workspace:
    """What the matrix, the curves and retrieval share, made once on the zoo's device.

    Latents of each (encoder, split), projectors of each (encoder, K), the anchor-fitted maps of
    each (tx, rx, method, K) and labels, all on ``zoo.device``: the maps are fit on the CPU from
    the anchors (small and in float64) and moved once; the splits' latents move once per
    encoder, instead of once per cell.
    """

    zoo: Zoo
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def device(self) -> torch.device:
        return self.zoo.device

    def _get(self, key: tuple, make: Callable[[], object]):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def latents(self, encoder_id: str, split: str) -> torch.Tensor:
        return self._get(("latents", encoder_id, split), lambda: self.zoo.latents(encoder_id, split).to(self.device))

    def labels(self, split: str) -> torch.Tensor:
        return self._get(("labels", split), lambda: self.zoo.labels(split).to(self.device))

    def projector(self, encoder_id: str, k: int) -> RelativeProjector:
        return self._get(("projector", encoder_id, k), lambda: self.zoo.projector(encoder_id, k).to(self.device))

    def relative(self, encoder_id: str, k: int, split: str) -> torch.Tensor:
        """The encoder's relative representation of a split (computed once per encoder, K and split)."""
        return self._get(("relative", encoder_id, k, split),
                         lambda: self.projector(encoder_id, k)(self.latents(encoder_id, split)))

    def anchor_map(self, tx: str, rx: str, method: str, k: int) -> Procrustes | Affine:
        return self._get(("map", tx, rx, method, k), lambda: anchor_map(self.zoo, tx, rx, method, k).to(self.device))

    def inverse_relative(self, rx: str, k: int) -> InverseRelative:
        return self._get(("inverse", rx, k), lambda: inverse_relative(self.zoo, rx, k).to(self.device))

    def forget(self, kind: str) -> None:
        """Drop the memoised entries of one kind (``relative`` tensors are large: one split at a time)."""
        for key in [key for key in self._memo if key[0] == kind]:
            del self._memo[key]


def stack_limit(device: torch.device) -> int:
    """Floats one stacked head call may hold on ``device`` (:data:`STACK_ELEMENTS`)."""
    return STACK_ELEMENTS.get(device.type, 1 << 28)


@torch.no_grad()
def accuracies(head: nn.Module, inputs: Sequence[Callable[[], torch.Tensor]], labels: torch.Tensor,
               hidden: int = 0) -> list[float]:
    """Accuracy of ``head`` on each of several input batches of the same samples, as few stacked calls.

    Parameters
    ----------
    head : nn.Module
        Maps (m, width) inputs to (m, classes) logits, row by row (on ``labels.device``).
    inputs : sequence of callables
        Each returns one (n, width) batch (made when its group is evaluated, so that only one
        group is held at a time).
    labels : torch.Tensor
        (n,) int64 labels on the head's device.
    hidden : int
        Width of the head's hidden layer, to size the groups (:func:`stack_limit`).

    Returns
    -------
    list of float
        Per input, the float32 mean of ``argmax == label`` (the same value as one call per input).
    """
    n, out, pending, group = len(labels), [], [], 0
    for make in inputs:
        x = make()
        group = group or max(1, stack_limit(labels.device) // max(1, n * (x.shape[1] + hidden)))
        pending.append(x)
        if len(pending) == group:
            out += _group_accuracy(head, pending, labels)
            pending = []
    if pending:
        out += _group_accuracy(head, pending, labels)
    return out


def _group_accuracy(head: nn.Module, batches: list[torch.Tensor], labels: torch.Tensor) -> list[float]:
    x = batches[0] if len(batches) == 1 else torch.cat(batches)
    pred = head(x).argmax(1).view(len(batches), len(labels))
    return (pred == labels).float().mean(1).tolist()


def received_relative(zoo: Zoo, tx: str, k: int, split: str, channel: Channel | None = None) -> torch.Tensor:
    """The tx relative representation of a split, after ``channel`` (quantizer, noise) if given."""
    r = zoo.projector(tx, k)(zoo.latents(tx, split))
    return channel(r) if channel is not None else r


def predict(zoo: Zoo, tx: str, rx: str, method: str, k: int, split: str,
            channel: Channel | None = None) -> torch.Tensor:
    """Labels the receiver ``rx`` predicts for the ``split`` samples sent by ``tx`` with ``method`` (on the CPU).

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


def encoder_pairs(zoo: Zoo, pairs: Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """``pairs`` as a list, or every (tx, rx) pair of the zoo's encoders when None."""
    ids = list(zoo.encoders)
    return list(pairs) if pairs is not None else [(t, r) for t in ids for r in ids]


def stitching_rows(zoo: Zoo, split: str, methods: Iterable[str], anchors: Iterable[int],
                   pairs: Iterable[tuple[str, str]] | None = None,
                   workspace: Workspace | None = None) -> list[StitchRow]:
    """Accuracy of every (tx, rx) pair × method × anchor count on ``split`` (ideal link, float32).

    Methods that cannot run for the scenario (inverse-relative with a non-cosine similarity)
    are left out. ``absolute`` gives one row per pair with ``anchors`` = 0. Per pair, every
    input of the receiver's absolute head (absolute, the anchor maps and inverse-relative at
    every K) goes through it as one stacked batch; each relative head gets the transmitter's
    representation at its K, computed once per (tx, K).
    """
    ws = workspace or Workspace(zoo)
    pairs = encoder_pairs(zoo, pairs)
    labels = ws.labels(split)
    native = {rx: zoo.native_accuracy(rx, split) for rx in {r for _, r in pairs}}
    sim = zoo.scenario.relative.label
    methods = [m for m in methods if m != "inverse-relative" or zoo.scenario.relative.invertible]
    anchors = list(anchors)
    cells = [(m, k) for m in methods for k in ([0] if m == "absolute" else anchors)]
    rows, last_tx = [], None
    for tx, rx in pairs:
        if tx != last_tx:
            ws.forget("relative")  # one transmitter's representations at a time
            last_tx = tx
        z_tx, d_rx = ws.latents(tx, split), zoo.encoders[rx].latent_dim
        absolute_inputs = {
            "absolute": lambda k: match_width(z_tx, d_rx),
            "procrustes": lambda k: ws.anchor_map(tx, rx, "procrustes", k)(z_tx),
            "affine": lambda k: ws.anchor_map(tx, rx, "affine", k)(z_tx),
            "inverse-relative": lambda k: ws.inverse_relative(rx, k)(ws.relative(tx, k, split)),
        }
        through_absolute = [(m, k) for m, k in cells if m != "relative"]
        acc = dict(zip(through_absolute, accuracies(
            zoo.encoders[rx].head, [lambda m=m, k=k: absolute_inputs[m](k) for m, k in through_absolute], labels)))
        for m, k in cells:
            if m == "relative":
                acc[(m, k)] = accuracies(zoo.relative_head(rx, k), [lambda k=k: ws.relative(tx, k, split)], labels)[0]
        for m, k in cells:
            rows.append(StitchRow(tx, rx, m, sim if m != "absolute" else "", k, 32, "ideal", None, acc[(m, k)],
                                  native[rx], split))
    ws.forget("relative")
    return rows


def relative_condition_rows(zoo: Zoo, split: str, anchors: Iterable[int], conditions: Iterable[Condition],
                            channel_for: ChannelFactory,
                            pairs: Iterable[tuple[str, str]] | None = None,
                            workspace: Workspace | None = None) -> list[StitchRow]:
    """Accuracy of the relative method through each link condition, for every pair and K.

    The transmitter's relative representations of the split are computed once per (tx, K) on
    the zoo's device; each ``ideal`` condition (a quantizer, no draws) is applied once per
    (tx, K) and shared by the receivers; the noisy ones are drawn per receiver, in the same
    order and from the same generators as one cell at a time would; and each receiver's head
    takes all conditions of a (tx, K) as stacked batches (:func:`accuracies`). This is the
    calibration table Ĝ(pair, K, b, SNR) when ``split`` is the calibration split
    (``validation`` or ``holdout``).
    """
    ws = workspace or Workspace(zoo)
    pairs = encoder_pairs(zoo, pairs)
    conditions = list(conditions)
    labels = ws.labels(split)
    native = {rx: zoo.native_accuracy(rx, split) for rx in {r for _, r in pairs}}
    sim = zoo.scenario.relative.label
    hidden = zoo.scenario.heads.hidden
    rows = []
    for tx in dict.fromkeys(t for t, _ in pairs):
        for k in anchors:
            ranges = zoo.projector(tx, k).value_ranges()
            r = ws.relative(tx, k, split)
            shared: dict[Condition, torch.Tensor] = {}

            def received(cond: Condition, rx: str) -> torch.Tensor:
                if cond.mode != "ideal":
                    return channel_for(cond, tx, rx, k, ranges)(r)
                if cond not in shared:
                    shared[cond] = channel_for(cond, tx, rx, k, ranges)(r)
                return shared[cond]

            for rx in (r_ for t_, r_ in pairs if t_ == tx):
                accs = accuracies(zoo.relative_head(rx, k), [lambda c=c, rx=rx: received(c, rx) for c in conditions],
                                  labels, hidden)
                rows += [StitchRow(tx, rx, "relative", sim, k, c.bits, c.mode, c.snr_db, a, native[rx], split)
                         for c, a in zip(conditions, accs)]
        ws.forget("relative")
    return rows
