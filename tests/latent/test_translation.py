"""Translation methods recover known maps exactly when the anchors determine them."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.latent.relative import RelativeProjector
from simulator.latent.translation import Affine, InverseRelative, Procrustes, match_width
from simulator.rng import SeedTree


def _orthogonal(g: torch.Generator, d: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(2, 24), extra=st.integers(0, 40),
       scale=st.floats(0.01, 100.0), shift=st.floats(-10, 10))
def test_procrustes_recovers_scaled_rotation_with_offset(seed, d, extra, scale, shift):
    g = SeedTree(seed).child("proc").torch()
    q = _orthogonal(g, d)
    # d + 1 anchors in general position fix a rotation and an offset
    anchors = torch.randn(d + 1 + extra, d, generator=g, dtype=torch.float64)
    x = torch.randn(25, d, generator=g, dtype=torch.float64)
    target = lambda z: scale * z @ q + shift  # noqa: E731
    mapping = Procrustes.fit(anchors, target(anchors))
    assert torch.allclose(mapping(x).double(), target(x).float().double(), rtol=1e-4, atol=1e-4 * scale)


def test_procrustes_between_different_widths_pads_with_zeros():
    g = SeedTree(1).child("pad").torch()
    a = torch.randn(60, 6, generator=g, dtype=torch.float64)
    b = match_width(a, 9)  # the same space embedded in 9 dimensions
    assert torch.allclose(Procrustes.fit(a, b)(a).double(), b, atol=1e-5)
    assert torch.allclose(Procrustes.fit(b, a)(b).double(), a, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), d_in=st.integers(1, 16), d_out=st.integers(1, 16), extra=st.integers(1, 30))
def test_affine_recovers_any_affine_map(seed, d_in, d_out, extra):
    g = SeedTree(seed).child("aff").torch()
    w = torch.randn(d_in, d_out, generator=g, dtype=torch.float64)
    c = torch.randn(d_out, generator=g, dtype=torch.float64)
    anchors = torch.randn(d_in + extra, d_in, generator=g, dtype=torch.float64)
    x = torch.randn(10, d_in, generator=g, dtype=torch.float64)
    mapping = Affine.fit(anchors, anchors @ w + c, ridge=0.0)
    expected = (x @ w + c).float().double()
    assert torch.allclose(mapping(x).double(), expected, atol=1e-4 * (1 + expected.abs().max()))


def test_ridge_shrinks_but_stays_close_when_well_determined():
    g = SeedTree(2).child("ridge").torch()
    anchors = torch.randn(500, 8, generator=g, dtype=torch.float64)
    w = torch.randn(8, 8, generator=g, dtype=torch.float64)
    x = torch.randn(20, 8, generator=g, dtype=torch.float64)
    exact = x @ w
    ridge = Affine.fit(anchors, anchors @ w, ridge=0.1)(x).double()
    assert not torch.allclose(ridge, exact, atol=1e-6)
    assert (ridge - exact).norm() / exact.norm() < 0.15


def test_inverse_relative_recovers_direction_when_anchors_span_the_space():
    g = SeedTree(3).child("inv").torch()
    anchors = torch.randn(40, 10, generator=g)
    x = torch.randn(30, 10, generator=g)
    proj = RelativeProjector.fit(anchors, ["cosine"])
    x_hat = InverseRelative.fit(proj.unit_anchors, proj.mean, proj.anchors, ridge=0.0)(proj(x))
    cos = torch.nn.functional.cosine_similarity(x_hat, x, dim=1)
    assert torch.all(cos > 1 - 1e-4)
