"""Relative projection: similarities of latents to anchors, optional centering, product spaces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

SIMILARITY_RANGE = {"cosine": (-1.0, 1.0)}
"""Known value range of bounded similarities (the distance-based ones are unbounded: ≤ 0)."""


@dataclass(frozen=True)
class RelativeProjector:
    """Relative projection onto a fixed anchor set, fitted once and applied to many batches.

    Model, for latent x ∈ R^d and anchors a_1..a_K in the same space, with μ the anchor mean
    when ``center`` (else 0):

    - ``cosine``:    r_k = ⟨x − μ, a_k − μ⟩ / (‖x − μ‖ ‖a_k − μ‖)       ∈ [−1, 1]
    - ``euclidean``: r_k = −‖x − a_k‖₂                                 ∈ (−∞, 0]
    - ``l1``:        r_k = −‖x − a_k‖₁;   ``linf``: r_k = −‖x − a_k‖_∞

    Distances are negated so that larger always means more similar; centering does not change
    them.

    ``standardize`` first maps every latent to z-scores of the anchors, x ↦ (x − ā) ⊘ σ_a, with
    ā and σ_a the anchors' per-dimension mean and standard deviation in this agent's own space
    (no information crosses agents: each side uses its own anchors). It stops a few
    high-variance dimensions from dominating the similarity, which matters for wide pretrained
    features (EfficientNet's 1,280 pooled activations) set against small trained latents. It
    implies centring, and costs one elementwise pass over the batch (a copy of x). Several similarities give a product space: their K-vectors are concatenated in the
    order given (output width K·len(similarities)).

    The cosine path runs near matmul speed without forming X − μ: with Â the normalised
    centred anchors, (X − μ)Âᵀ = XÂᵀ − (μÂᵀ), and ‖x − μ‖² = ‖x‖² − 2x·μ + ‖μ‖² scales the
    rows of the product in place; the subtraction is fused into the matmul (addmm).

    The Euclidean path uses the same matmul, ‖x − a‖² = ‖x'‖² + ‖a'‖² − 2x'·a', on x' = x − ā and
    a' = a − ā with ā the anchor mean (always, whatever ``center`` says: distances do not change
    under a shift). The expansion cancels terms of size ‖x'‖² + ‖a'‖², so its float32 error is
    about ε(‖x'‖² + ‖a'‖²) in the squared distance; about the origin instead it would be
    ε(‖x‖² + ‖a‖²), and latents offset by 100 would sit tenths of a unit from themselves.

    Parameters
    ----------
    anchors : torch.Tensor
        (K, d) anchor latents in this agent's own space.
    similarities : sequence of str
    center : bool
    standardize : bool

    Examples
    --------
    >>> proj = RelativeProjector.fit(torch.eye(3), ["cosine"])
    >>> proj(torch.tensor([[2.0, 0.0, 0.0]]))
    tensor([[1., 0., 0.]])
    """

    anchors: torch.Tensor
    similarities: tuple[str, ...]
    center: bool
    mean: torch.Tensor
    unit_anchors: torch.Tensor
    mean_dot_unit: torch.Tensor
    anchor_mean: torch.Tensor
    shifted_anchors: torch.Tensor
    shifted_sq_norms: torch.Tensor
    standardize: tuple[torch.Tensor, torch.Tensor] | None = None
    """(ā, 1/σ_a) of the z-score map applied to every input first, when standardizing."""

    @classmethod
    def fit(cls, anchors: torch.Tensor, similarities: Sequence[str] = ("cosine",),
            center: bool = False, standardize: bool = False) -> "RelativeProjector":
        if anchors.dim() != 2 or len(anchors) == 0:
            raise ValueError("anchors must be a non-empty (K, d) tensor")
        unknown = set(similarities) - {"cosine", "euclidean", "l1", "linf"}
        if unknown or not similarities:
            raise ValueError(f"unknown similarity {sorted(unknown)}")
        anchors = anchors.float()
        zscore = None
        if standardize:
            # A dimension on which the anchors do not vary carries no similarity: scale 0, not 1/0.
            std = anchors.std(0, unbiased=False) if len(anchors) > 1 else torch.zeros(anchors.shape[1])
            zscore = (anchors.mean(0), torch.where(std > 1e-12, 1.0 / std.clamp_min(1e-12), torch.zeros_like(std)))
            anchors = (anchors - zscore[0]) * zscore[1]
            center = True
        anchor_mean = anchors.mean(0)
        shifted = (anchors - anchor_mean).contiguous()
        mean = anchor_mean if center else torch.zeros_like(anchor_mean)
        centred = shifted if center else anchors
        unit = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return cls(anchors, tuple(similarities), center, mean, unit.contiguous(), mean @ unit.T,
                   anchor_mean, shifted, (shifted * shifted).sum(1), zscore)

    @property
    def n_anchors(self) -> int:
        return self.anchors.shape[0]

    @property
    def width(self) -> int:
        return self.n_anchors * len(self.similarities)

    def value_ranges(self) -> list[tuple[float, float]]:
        """Known range [lo, hi] of each similarity block, for the quantizer.

        Cosine: [−1, 1]. Distances: [−D, 0], D the largest anchor-to-anchor distance in that
        norm; any x in the convex hull of the anchors is within D of every anchor (a norm is
        convex), so only samples outside the hull can fall below −D (they are clipped).
        """
        out = []
        for sim in self.similarities:
            if sim == "cosine":
                out.append((-1.0, 1.0))
            else:
                d = -float(self._one(self.anchors, sim).min())
                out.append((-max(d, 1e-12), 0.0))
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d) latents → (n, K·len(similarities)) relative representation, float32."""
        x = x.float()
        if self.standardize is not None:
            x = (x - self.standardize[0]) * self.standardize[1]
        parts = [self._one(x, sim) for sim in self.similarities]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _inverse_norms(self, x: torch.Tensor) -> torch.Tensor:
        """1/‖x − μ‖ per row, from ‖x‖², x·μ and ‖μ‖² (no copy of x)."""
        sq = torch.linalg.vector_norm(x, dim=1).square_()
        if self.center:
            full = sq + self.mean @ self.mean
            sq = full - 2.0 * (x @ self.mean)
            # The expansion loses precision when x sits close to μ; recompute those (rare) rows.
            close = sq < 1e-3 * full
            if bool(close.any()):
                sq[close] = torch.linalg.vector_norm(x[close] - self.mean, dim=1).square()
        return sq.clamp_min_(1e-24).rsqrt_()

    def _cosine(self, x: torch.Tensor) -> torch.Tensor:
        inv = self._inverse_norms(x)
        out = x @ self.unit_anchors.T if not self.center else torch.addmm(-self.mean_dot_unit, x, self.unit_anchors.T)
        return out.mul_(inv.unsqueeze(1))

    def _one(self, x: torch.Tensor, similarity: str) -> torch.Tensor:
        if similarity == "cosine":
            return self._cosine(x)
        if similarity == "euclidean":
            xs = x - self.anchor_mean
            sq = (xs * xs).sum(1, keepdim=True) + self.shifted_sq_norms
            return torch.addmm(sq, xs, self.shifted_anchors.T, alpha=-2.0).clamp_min_(0.0).sqrt_().neg_()
        p = 1.0 if similarity == "l1" else float("inf")
        return torch.cdist(x, self.anchors, p=p).neg_()


def relative_projection(x: torch.Tensor, anchors: torch.Tensor, similarities: Sequence[str] = ("cosine",),
                        center: bool = False, standardize: bool = False) -> torch.Tensor:
    """One-shot form of :class:`RelativeProjector`: ``RelativeProjector.fit(anchors, …)(x)``."""
    return RelativeProjector.fit(anchors, similarities, center, standardize)(x)
