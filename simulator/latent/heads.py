"""Receiver task heads: classifiers on the receiver's own relative representations."""

from __future__ import annotations

import torch
from torch import nn


class SubspaceNorm(nn.Module):
    """Standardise each similarity sub-space of a relative vector per sample (no parameters).

    A relative vector of a product space is ``n_spaces`` blocks of K similarities; each block is
    shifted to zero mean and unit variance across its K entries. This removes the per-space
    offset and spread of the similarities, which differ between independently trained encoders,
    while keeping the pattern over anchors that carries the meaning.
    """

    def __init__(self, n_spaces: int):
        super().__init__()
        self.n_spaces = n_spaces

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        blocks = r.reshape(r.shape[0], self.n_spaces, -1)
        mean = blocks.mean(-1, keepdim=True)
        std = blocks.std(-1, keepdim=True, unbiased=False)
        return ((blocks - mean) / (std + 1e-6)).reshape(r.shape)


def relative_head(n_anchors: int, n_spaces: int, hidden: int, n_classes: int) -> nn.Module:
    """SubspaceNorm → Linear(K·n_spaces, hidden) → ReLU → Linear(hidden, n_classes).

    One head per anchor count K: each is trained on the receiver's own relative representations
    of the training split, with the first K anchors of the shared list.
    """
    width = n_anchors * n_spaces
    return nn.Sequential(SubspaceNorm(n_spaces), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
