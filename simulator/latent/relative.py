"""Relative projection: similarities of latents to anchors, optional centering, product spaces."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

SIMILARITY_RANGE = {"cosine": (-1.0, 1.0)}
"""Known value range of bounded similarities (the distance-based ones are unbounded: ≤ 0)."""

LOW_PRECISION = (torch.bfloat16, torch.float16)
"""Input dtypes that the cosine path keeps through the matmul (accumulation is in float32)."""

_AUGMENTED_ALIGN = 8
"""Columns of the augmented anchor matrix are padded to a multiple of this (16-byte rows for GEMM kernels)."""


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
    implies centring, and costs one elementwise pass over the batch (a copy of x), into which
    the centring is folded. Several similarities give a product space: their K-vectors are
    concatenated in the order given (output width K·len(similarities)).

    The cosine path is one matmul plus a row scaling, without forming X − μ: the anchors are
    centred and normalised once at fit (Â, K × d), and

        (X − μ)Âᵀ = XÂᵀ − 1(μÂᵀ)                     (rank-1 correction, a precomputed row)
        ‖x − μ‖² = ‖x‖² − 2x·μ + ‖μ‖²                (x·μ from the same GEMM)

    the first is one GEMM with a bias row (cuBLASLt fuses it), and on a GPU the same GEMM, against
    the augmented matrix [Âᵀ | μ] with the bias [−μÂᵀ | 0], also gives x·μ (on a CPU that is a
    GEMV beside it); the row norms 1/‖x − μ‖ then scale the product once.
    The expansion loses digits when x sits close to μ (‖x − μ‖² < 10⁻³(‖x‖² + ‖μ‖²)); those
    rare rows are recomputed directly. Without centring the product is XÂᵀ and the scaling
    1/‖x‖ (one reduction over X).

    Low precision: a bfloat16 (or float16) input stays in that dtype through the matmul
    (float32 accumulation, as cuBLAS and oneDNN do), with the norms accumulated in float32 and
    Â rounded once at fit; centring, on that path, is one pass x − μ in float32 rounded back to
    the input dtype (the float32 column x·μ would otherwise be rounded to 8 bits before the
    cancellation in ‖x − μ‖²). With u = 2⁻⁸ (bfloat16's unit roundoff), each cosine is within
    about 6u + 2dε₃₂ of the exact one: 2u for rounding Â, 2u for rounding x − μ, u for the
    GEMM's output and u for the scaled result (|r| ≤ 1). The other similarities compute in
    float32. The result has the requested ``dtype``: by default the input's when it is
    low-precision, else float32.

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
    augmented: torch.Tensor
    """(d, K) Âᵀ; on a GPU, when centring plainly, (d, K') [Âᵀ | μ | 0…] (K' = K + 1 padded to a multiple of 8)."""
    bias: torch.Tensor
    """−μÂᵀ (K,), or [−μÂᵀ | 0…] (K',) beside the augmented matrix, when centring plainly; else empty."""
    anchor_mean: torch.Tensor
    shifted_anchors: torch.Tensor
    shifted_sq_norms: torch.Tensor
    standardize: tuple[torch.Tensor, torch.Tensor] | None = None
    """(shift, 1/σ_a): every input becomes (x − shift) ⊙ (1/σ_a), already centred, when standardizing."""
    _cast: dict = field(default_factory=dict, compare=False, repr=False)
    """Â in each low-precision dtype, rounded once at first use."""

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
            std = anchors.std(0, unbiased=False) if len(anchors) > 1 else torch.zeros_like(anchors[0])
            inv_std = torch.where(std > 1e-12, 1.0 / std.clamp_min(1e-12), torch.zeros_like(std))
            mu = anchors.mean(0)
            z = (anchors - mu) * inv_std
            z_mean = z.mean(0)  # 0 up to rounding
            # The centring in z-space folds into the input map: (x − ā)w − μ_z = (x − ā − μ_z/w)w
            # where w ≠ 0; where w = 0 both sides are 0 (μ_z is exactly 0 there).
            safe = torch.where(inv_std != 0, inv_std, torch.ones_like(inv_std))
            zscore = (mu + torch.where(inv_std != 0, z_mean / safe, torch.zeros_like(mu)), inv_std)
            anchors = z - z_mean
            center = True
        anchor_mean = anchors.mean(0)
        shifted = (anchors - anchor_mean).contiguous()
        mean = anchor_mean if center else torch.zeros_like(anchor_mean)
        centred = shifted if center else anchors
        unit = (centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)).contiguous()
        augmented = unit.T  # a transposed view: the GEMM reads it as Âᵀ without a copy
        bias = -(mean @ unit.T) if center and not standardize else torch.zeros(0)
        return cls(anchors, tuple(similarities), center, mean, unit, augmented, bias,
                   anchor_mean, shifted, (shifted * shifted).sum(1), zscore)

    @property
    def n_anchors(self) -> int:
        return self.anchors.shape[0]

    @property
    def width(self) -> int:
        return self.n_anchors * len(self.similarities)

    @property
    def device(self) -> torch.device:
        return self.anchors.device

    def to(self, device: torch.device | str) -> "RelativeProjector":
        """The same projector with every tensor on ``device`` (itself when already there)."""
        device = torch.device(device)
        if self.anchors.device == device:
            return self
        move = {name: getattr(self, name).to(device) for name in
                ("anchors", "mean", "unit_anchors", "augmented", "bias", "anchor_mean", "shifted_anchors",
                 "shifted_sq_norms")}
        zscore = None if self.standardize is None else tuple(t.to(device) for t in self.standardize)
        if device.type != "cpu" and self.center and self.standardize is None:
            # One GEMM gives x·μ beside (x − μ)Âᵀ: one kernel fewer per call where launches cost
            # (on a CPU the extra column is just a GEMV more, so it stays a separate one there).
            k, d = self.unit_anchors.shape
            width = -(-(k + 1) // _AUGMENTED_ALIGN) * _AUGMENTED_ALIGN
            augmented = torch.zeros(d, width, device=device)
            augmented[:, :k] = move["unit_anchors"].T
            augmented[:, k] = move["mean"]
            bias = torch.zeros(width, device=device)
            bias[:k] = move["bias"]
            move.update(augmented=augmented, bias=bias)
        return replace(self, **move, standardize=zscore, _cast={})

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
                d = -float(self._distance(self.anchors, sim).min())
                out.append((-max(d, 1e-12), 0.0))
        return out

    def __call__(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """(n, d) latents → (n, K·len(similarities)) relative representation.

        ``dtype``: of the result; default the input's when it is bfloat16 or float16 (which the
        cosine path keeps through the matmul), else float32.
        """
        low = x.dtype in LOW_PRECISION
        dtype = dtype or (x.dtype if low else torch.float32)
        if not low:
            x = x.float()
        if self.standardize is not None:
            shift, inv_std = self.standardize
            z = (x.float() - shift).mul_(inv_std)
            x = z.to(x.dtype) if low else z
        parts = []
        for sim in self.similarities:
            if sim == "cosine":
                parts.append(self._cosine(x).to(dtype))
            else:
                parts.append(self._distance(x.float(), sim).to(dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _unit_t(self, dtype: torch.dtype) -> torch.Tensor:
        """Âᵀ (d, K) in ``dtype`` (rounded once, then kept)."""
        if dtype == torch.float32:
            return self.unit_anchors.T
        if dtype not in self._cast:
            self._cast[dtype] = self.unit_anchors.T.contiguous().to(dtype)
        return self._cast[dtype]

    def _cosine(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine block of an input already z-scored if standardizing; x's dtype (float32 or low)."""
        plain_centre = self.center and self.standardize is None
        if plain_centre and x.dtype in LOW_PRECISION:
            x = (x.float() - self.mean).to(x.dtype)
            plain_centre = False
        if not plain_centre:
            sq = torch.linalg.vector_norm(x, dim=1, dtype=torch.float32).square_()
            out = x @ self._unit_t(x.dtype)
            return out.mul_(sq.clamp_min_(1e-24).rsqrt_().unsqueeze(1).to(out.dtype))
        k = self.n_anchors
        both = torch.addmm(self.bias, x, self.augmented)  # (x − μ)Âᵀ, or [(x − μ)Âᵀ | x·μ | 0…]
        x_mean = both[:, k] if both.shape[1] > k else x @ self.mean
        full = torch.linalg.vector_norm(x, dim=1).square_() + self.mean @ self.mean
        sq = full - 2.0 * x_mean
        close = sq < 1e-3 * full
        if bool(close.any()):
            sq[close] = torch.linalg.vector_norm(x[close] - self.mean, dim=1).square()
        inv = sq.clamp_min_(1e-24).rsqrt_().unsqueeze(1)
        return both.mul_(inv) if both.shape[1] == k else both[:, :k] * inv

    def _distance(self, x: torch.Tensor, similarity: str) -> torch.Tensor:
        if similarity == "euclidean":
            xs = x - self.anchor_mean
            sq = (xs * xs).sum(1, keepdim=True) + self.shifted_sq_norms
            return torch.addmm(sq, xs, self.shifted_anchors.T, alpha=-2.0).clamp_min_(0.0).sqrt_().neg_()
        p = 1.0 if similarity == "l1" else float("inf")
        return torch.cdist(x, self.anchors, p=p).neg_()


def relative_projection(x: torch.Tensor, anchors: torch.Tensor, similarities: Sequence[str] = ("cosine",),
                        center: bool = False, standardize: bool = False,
                        dtype: torch.dtype | None = None) -> torch.Tensor:
    """One-shot form of :class:`RelativeProjector`: ``RelativeProjector.fit(anchors, …)(x, dtype)``."""
    return RelativeProjector.fit(anchors, similarities, center, standardize)(x, dtype)
