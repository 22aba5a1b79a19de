"""Alignment baselines fit on anchors alone: absolute, Procrustes, affine, inverse relative projection."""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace

import torch


def _moved(obj, device: torch.device | str):
    """A copy of a frozen dataclass of tensors (and nested such dataclasses) with every tensor on ``device``.

    Maps are fit on the CPU from a few anchors and then applied to whole splits where the
    latents live.
    """
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value.to(device) if isinstance(value, torch.Tensor) or is_dataclass(value) else value
    return replace(obj, **out)


def match_width(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero-pad or truncate the last axis of ``x`` to ``dim`` (how spaces of unequal size meet)."""
    if x.shape[-1] == dim:
        return x
    if x.shape[-1] > dim:
        return x[..., :dim]
    return torch.nn.functional.pad(x, (0, dim - x.shape[-1]))


@dataclass(frozen=True)
class Scaler:
    """Isotropic standard scaling: z = (x − mean) / scale, scale = RMS norm of the centred anchors.

    A single scale (not one per dimension) keeps an orthogonal relation between two spaces
    orthogonal after scaling, so Procrustes can recover it exactly.
    """

    mean: torch.Tensor
    scale: torch.Tensor

    def to(self, device: torch.device | str) -> "Scaler":
        """The same map with its tensors on ``device``."""
        return _moved(self, device)

    @classmethod
    def fit(cls, anchors: torch.Tensor) -> "Scaler":
        mean = anchors.mean(0)
        scale = (anchors - mean).pow(2).sum(1).mean().sqrt().clamp_min(1e-12)
        return cls(mean, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale + self.mean


@dataclass(frozen=True)
class Procrustes:
    """Orthogonal map from the transmitter's space to the receiver's, fit on paired anchors.

    Both anchor sets are standard-scaled (:class:`Scaler`) and zero-padded to a common width
    d = max(d_tx, d_rx); R = argmin_{RᵀR=I} ‖A_tx R − A_rx‖_F = U Vᵀ with U Σ Vᵀ = A_txᵀ A_rx.
    ``transform`` maps tx latents through R and back to the receiver's scale, truncated to d_rx.
    """

    src: Scaler
    dst: Scaler
    rotation: torch.Tensor
    dst_dim: int

    def to(self, device: torch.device | str) -> "Procrustes":
        """The same map with its tensors on ``device``."""
        return _moved(self, device)

    @classmethod
    def fit(cls, src_anchors: torch.Tensor, dst_anchors: torch.Tensor) -> "Procrustes":
        src, dst = Scaler.fit(src_anchors.double()), Scaler.fit(dst_anchors.double())
        width = max(src_anchors.shape[1], dst_anchors.shape[1])
        a = match_width(src.forward(src_anchors.double()), width)
        b = match_width(dst.forward(dst_anchors.double()), width)
        u, _, vh = torch.linalg.svd(a.T @ b)
        return cls(src, dst, u @ vh, dst_anchors.shape[1])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = match_width(self.src.forward(x.double()), self.rotation.shape[0]) @ self.rotation
        return self.dst.inverse(match_width(z, self.dst_dim)).float()


def ridge_pinv(a: torch.Tensor, alpha: float) -> torch.Tensor:
    """Regularised pseudo-inverse (aᵀa + λI)⁻¹aᵀ of a (m, n) matrix, λ = α·tr(aᵀa)/n; α = 0 gives a⁺.

    Plain least squares fit on m anchors in n dimensions interpolates noise when m ≈ n (the
    error spikes there); a ridge scaled to the mean eigenvalue of the Gram matrix removes the
    spike and leaves well-determined fits (m ≫ n) almost unchanged.
    """
    a = a.double()
    if alpha == 0.0:
        return torch.linalg.pinv(a)
    gram = a.T @ a
    lam = alpha * torch.trace(gram) / gram.shape[0]
    return torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), a.T)


@dataclass(frozen=True)
class Affine:
    """Least-squares affine map x ↦ (x − m_tx) W + m_rx fit on paired anchors (m = anchor means).

    W = ridge_pinv(A_tx − m_tx, α)(A_rx − m_rx); centring first keeps the offset out of the ridge.
    """

    src_mean: torch.Tensor
    dst_mean: torch.Tensor
    weight: torch.Tensor

    def to(self, device: torch.device | str) -> "Affine":
        """The same map with its tensors on ``device``."""
        return _moved(self, device)

    @classmethod
    def fit(cls, src_anchors: torch.Tensor, dst_anchors: torch.Tensor, ridge: float = 0.0) -> "Affine":
        src, dst = src_anchors.double(), dst_anchors.double()
        ms, md = src.mean(0), dst.mean(0)
        return cls(ms, md, ridge_pinv(src - ms, ridge) @ (dst - md))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.double() - self.src_mean) @ self.weight + self.dst_mean).float()


@dataclass(frozen=True)
class InverseRelative:
    """Receiver-side map of a cosine relative vector back into the receiver's own latent space.

    With Â (K, d) the receiver's unit-norm (centred) anchors, r = x̂ Âᵀ for a unit x̂; the
    (ridge) least-squares solution is x̂ = r ridge_pinv(Â, α)ᵀ, which is r (Âᵀ)⁺ for α = 0. Cosine similarities carry no norm, so x̂ is rescaled
    to the mean norm of the centred anchors and the anchor mean is added back (when centred).
    The receiver then applies its absolute head.
    """

    pinv: torch.Tensor
    mean: torch.Tensor
    norm: torch.Tensor

    def to(self, device: torch.device | str) -> "InverseRelative":
        """The same map with its tensors on ``device``."""
        return _moved(self, device)

    @classmethod
    def fit(cls, unit_anchors: torch.Tensor, mean: torch.Tensor, anchors: torch.Tensor,
            ridge: float = 0.0) -> "InverseRelative":
        norm = (anchors - mean).norm(dim=1).mean()
        return cls(ridge_pinv(unit_anchors, ridge).T.float(), mean, norm)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        x = r.float() @ self.pinv
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12) * self.norm + self.mean
