"""Invariance properties each similarity promises, and agreement with the naive formulas."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.latent.relative import RelativeProjector, relative_projection
from simulator.rng import SeedTree


def _data(seed: int, n: int, k: int, d: int):
    g = SeedTree(seed).child("rel").torch()
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(k, d, generator=g, dtype=torch.float64)


def _orthogonal(seed: int, d: int) -> torch.Tensor:
    g = SeedTree(seed).child("q").torch()
    q, r = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # Haar: fix the signs of the QR factor


dims = st.integers(min_value=2, max_value=40)
seeds = st.integers(min_value=0, max_value=10_000)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, d=dims, k=st.integers(1, 30), scale=st.floats(1e-3, 1e3), center=st.booleans())
def test_cosine_invariant_to_orthogonal_maps_and_rescaling(seed, d, k, scale, center):
    x, a = _data(seed, 17, k, d)
    q = _orthogonal(seed, d)
    r0 = relative_projection(x, a, ["cosine"], center)
    r1 = relative_projection(scale * x @ q, scale * a @ q, ["cosine"], center)
    assert torch.allclose(r0, r1, atol=2e-5)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, d=dims, k=st.integers(1, 30), shift=st.floats(-50, 50))
def test_centered_cosine_invariant_to_translation(seed, d, k, shift):
    x, a = _data(seed, 9, k, d)
    r0 = relative_projection(x, a, ["cosine"], center=True)
    r1 = relative_projection(x + shift, a + shift, ["cosine"], center=True)
    assert torch.allclose(r0, r1, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, d=dims, k=st.integers(1, 30))
def test_euclidean_invariant_to_isometries(seed, d, k):
    x, a = _data(seed, 13, k, d)
    q = _orthogonal(seed + 1, d)
    t = torch.randn(d, generator=SeedTree(seed).child("t").torch(), dtype=torch.float64) * 3
    r0 = relative_projection(x, a, ["euclidean"])
    r1 = relative_projection(x @ q + t, a @ q + t, ["euclidean"])
    assert torch.allclose(r0, r1, atol=1e-3)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, d=dims, k=st.integers(1, 20))
def test_l1_linf_invariant_to_translation_and_signed_permutation(seed, d, k):
    x, a = _data(seed, 11, k, d)
    g = SeedTree(seed).child("perm").torch()
    perm = torch.randperm(d, generator=g)
    signs = torch.randint(0, 2, (d,), generator=g, dtype=torch.float64) * 2 - 1
    t = torch.randn(d, generator=g, dtype=torch.float64)
    for sim in ("l1", "linf"):
        r0 = relative_projection(x, a, [sim])
        r1 = relative_projection(x[:, perm] * signs + t, a[:, perm] * signs + t, [sim])
        assert torch.allclose(r0, r1, atol=1e-4)


@pytest.mark.parametrize("offset", [100.0, 1e4])
def test_euclidean_is_accurate_far_from_the_origin(offset):
    x, a = _data(11, 40, 12, 16)
    a32 = (a + offset).float()
    x32 = torch.cat([a32, (x + offset).float()])  # the anchors themselves first: 0 from themselves
    r = relative_projection(x32, a32, ["euclidean"])
    ref = -torch.cdist(x32.double(), a32.double())  # the same float32 inputs, float64 arithmetic
    # Distances do not change under a shift, so their error may grow with the spread of the
    # points, not with their offset. The float32 expansion ‖x'‖² + ‖a'‖² − 2x'·a' about the
    # anchor mean errs by at most γ(‖x'‖² + ‖a'‖²) in the squared distance, γ = (d + 3)ε for a
    # length-d dot product and three more roundings; |√p − √q| ≤ √|p − q| carries it over.
    mean = a32.double().mean(0)
    spread_sq = ((x32.double() - mean) ** 2).sum(1, keepdim=True) + ((a32.double() - mean) ** 2).sum(1)
    tol = ((x.shape[1] + 3) * torch.finfo(torch.float32).eps * spread_sq).sqrt()
    assert torch.all((r.double() - ref).abs() <= tol), (r.double() - ref).abs().max()
    k = len(a32)
    assert torch.all(r[:k].diagonal().double().abs() <= tol[:k].diagonal()), r[:k].diagonal()


def test_matches_naive_formulas_and_product_space_concatenates():
    x, a = _data(3, 50, 7, 12)
    x, a = x.float(), a.float()
    mu = a.mean(0)
    naive_cos = torch.nn.functional.cosine_similarity((x - mu)[:, None], (a - mu)[None], dim=-1)
    r = relative_projection(x, a, ["cosine", "euclidean", "l1", "linf"], center=True)
    assert r.shape == (50, 28)
    assert torch.allclose(r[:, :7], naive_cos, atol=1e-5)
    assert torch.allclose(r[:, 7:14], -torch.cdist(x, a), atol=1e-4)
    assert torch.allclose(r[:, 14:21], -(x[:, None] - a[None]).abs().sum(-1), atol=1e-4)
    assert torch.allclose(r[:, 21:], -(x[:, None] - a[None]).abs().amax(-1), atol=1e-5)


def test_value_ranges_bound_points_inside_the_anchor_hull():
    x, a = _data(4, 1, 20, 5)
    proj = RelativeProjector.fit(a.float(), ["cosine", "euclidean", "l1", "linf"])
    g = SeedTree(4).child("w").torch()
    w = torch.rand(200, 20, generator=g)
    inside = (w / w.sum(1, keepdim=True)) @ a.float()  # convex combinations of anchors
    r = proj(inside)
    for j, (lo, hi) in enumerate(proj.value_ranges()):
        block = r[:, 20 * j : 20 * (j + 1)]
        assert block.min() >= lo - 1e-4 and block.max() <= hi + 1e-4


@settings(max_examples=40, deadline=None)
@given(seed=seeds, d=dims, k=st.integers(3, 30), sims=st.sampled_from([["cosine"], ["euclidean"], ["cosine", "l1"]]))
def test_standardized_invariant_to_per_dimension_affine_maps(seed, d, k, sims):
    """z-scores of the anchors undo any per-dimension scale (either sign) and shift of the latent space."""
    x, a = _data(seed, 15, k, d)
    g = SeedTree(seed).child("diag").torch()
    scale = torch.exp(torch.randn(d, generator=g, dtype=torch.float64) * 2) * torch.sign(torch.randn(d, generator=g,
                                                                                                     dtype=torch.float64))
    # shifts of a few spreads: the projector computes in float32, where a shift of 10 on a spread of
    # 1e-4 would leave only three digits of the signal
    shift = torch.randn(d, generator=g, dtype=torch.float64) * 3 * scale.abs()
    r0 = relative_projection(x, a, sims, standardize=True)
    r1 = relative_projection(x * scale + shift, a * scale + shift, sims, standardize=True)
    assert torch.allclose(r0, r1, atol=1e-3), (r0 - r1).abs().max()


def test_standardized_cosine_is_the_cosine_of_anchor_z_scores_and_ignores_constant_dimensions():
    x, a = _data(5, 40, 9, 6)
    x, a = x.float(), a.float()
    a[:, 2] = 3.0  # the anchors do not vary along dimension 2: it carries no similarity
    mu, sd = a.mean(0), a.std(0, unbiased=False)
    keep = torch.arange(6) != 2
    zx, za = ((x - mu) / sd)[:, keep], ((a - mu) / sd)[:, keep]
    naive = torch.nn.functional.cosine_similarity(zx[:, None], za[None], dim=-1)
    r = relative_projection(x, a, ["cosine"], standardize=True)
    assert torch.allclose(r, naive, atol=1e-5)
    moved = x.clone()
    moved[:, 2] += 100.0  # a sample that differs only there is just as similar to every anchor
    assert torch.allclose(relative_projection(moved, a, ["cosine"], standardize=True), r, atol=1e-5)


def _naive_cosine(x: torch.Tensor, a: torch.Tensor, center: bool, standardize: bool) -> torch.Tensor:
    """The definition, in float64, without any of the projector's rearrangements."""
    x, a = x.double(), a.double()
    if standardize:
        mu, sd = a.mean(0), a.std(0, unbiased=False)
        w = torch.where(sd > 1e-12, 1.0 / sd.clamp_min(1e-12), torch.zeros_like(sd))
        x, a = (x - mu) * w, (a - mu) * w
    if center or standardize:
        mu = a.mean(0)
        x, a = x - mu, a - mu
    return torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(a, dim=1).T


def _zscore_error(x: torch.Tensor, a: torch.Tensor, eps: float) -> torch.Tensor:
    """(n, K) bound on what float32 anchor statistics move each standardized cosine by.

    The float32 map (x − ā)w rounds x − ā relative to its operands (ε(|x| + |ā|) per entry,
    the mean ā itself ε|ā| more), and its scales w = 1/σ carry a relative error of about
    2ε max|a|/σ from the two-pass variance; moving a vector by Δz moves its cosine by at most
    2‖Δz‖/‖z‖, and rescaling dimensions by 1 + δ moves it by at most 2 max δ.
    """
    x, a = x.double(), a.double()
    mu, sd = a.mean(0), a.std(0, unbiased=False)
    w = torch.where(sd > 1e-12, 1.0 / sd.clamp_min(1e-12), torch.zeros_like(sd))
    za = (a - mu) * w
    shift = mu + za.mean(0) / torch.where(w != 0, w, torch.ones_like(w))
    zx, za = (x - shift) * w, za - za.mean(0)

    def one(v, z):
        return 2 * (2 * eps * (v.abs() + 2 * mu.abs()) * w).norm(dim=1) / z.norm(dim=1).clamp_min(1e-300)
    scale = 2 * 2 * eps * float((a.abs().amax(0) * w).max())
    return one(x, zx)[:, None] + one(a, za)[None, :] + 2 * scale


variants = st.sampled_from([(False, False), (True, False), (False, True)])  # (center, standardize)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, d=st.integers(2, 64), k=st.integers(1, 40), offset=st.floats(-5, 5), variant=variants)
def test_float32_cosine_matches_the_definition(seed, d, k, offset, variant):
    """The matmul-then-scale form (rank-1 centring, norms from the expansion) equals the definition.

    A float32 dot product of unit vectors errs by at most γ_d = dε (Cauchy–Schwarz bounds
    Σ|x̂_i||â_i| by 1); norms, the bias and the row scaling add a few ε. The centred expansion
    ‖x‖² − 2x·μ + ‖μ‖² errs by ~4ε(‖x‖² + ‖μ‖²), at most 4·10³ε relative to ‖x − μ‖² (closer rows
    are recomputed directly), half of that after the square root.
    """
    center, standardize = variant
    x, a = _data(seed, 23, k, d)
    x, a = (x + offset).float(), (a + offset).float()
    r = relative_projection(x, a, ["cosine"], center, standardize)
    eps = torch.finfo(torch.float32).eps
    tol = (d + 10) * eps + (2e3 * eps if center else 0.0) + (_zscore_error(x, a, eps) if standardize else 0.0)
    assert r.dtype == torch.float32
    assert torch.all((r.double() - _naive_cosine(x, a, center, standardize)).abs() <= tol)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, d=st.integers(2, 256), k=st.integers(1, 64), offset=st.floats(-3, 3), variant=variants)
def test_bfloat16_cosine_stays_within_the_rounding_bound(seed, d, k, offset, variant):
    """A bfloat16 input keeps bfloat16 through the matmul: each cosine within 6u + 2dε₃₂ of the exact one.

    u = 2⁻⁸ is bfloat16's unit roundoff (8-bit significand). Rounding the unit anchors moves a
    cosine by at most 2u, rounding x − μ (centred or z-scored inputs) by 2u more; the GEMM's
    bfloat16 output and the scaled result are each rounded once more (|r| ≤ 1: u each); the
    float32 accumulation over d terms adds dε₃₂, the float32 norms as much again.
    """
    center, standardize = variant
    x, a = _data(seed, 19, k, d)
    xb = (x + offset).to(torch.bfloat16)
    a = (a + offset).float()
    r = relative_projection(xb, a, ["cosine"], center, standardize)
    assert r.dtype == torch.bfloat16
    u, eps = 2.0 ** -8, torch.finfo(torch.float32).eps
    exact = _naive_cosine(xb.double(), a, center, standardize)  # the same bfloat16 inputs, exactly
    tol = 6 * u + 2 * d * eps + (_zscore_error(xb, a, eps) if standardize else 0.0)
    assert torch.all((r.double() - exact).abs() <= tol)
    assert relative_projection(xb, a, ["cosine"], center, standardize, dtype=torch.float32).dtype == torch.float32


def test_low_precision_product_space_keeps_the_requested_dtype():
    x, a = _data(8, 30, 5, 16)
    r = relative_projection(x.to(torch.bfloat16), a.float(), ["cosine", "euclidean"], center=True)
    ref = relative_projection(x.to(torch.bfloat16).float(), a.float(), ["cosine", "euclidean"], center=True)
    assert r.dtype == torch.bfloat16 and r.shape == (30, 10)
    # distances compute in float32 and are rounded once at the end: relative error u
    assert torch.allclose(r[:, 5:].float(), ref[:, 5:], rtol=2.0 ** -8, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", [(False, False), (True, False), (False, True)])
def test_cuda_projector_matches_the_cpu_one(variant):
    """On a GPU the centred path takes x·μ from an augmented GEMM; the values are the CPU's to float32 rounding."""
    center, standardize = variant
    x, a = _data(9, 500, 48, 32)
    x, a = (x + 1).float(), (a + 1).float()
    proj = RelativeProjector.fit(a, ["cosine", "euclidean"], center, standardize)
    on_gpu = proj.to("cuda")
    assert torch.allclose(on_gpu(x.cuda()).cpu(), proj(x), atol=2e-5)
    exact = _naive_cosine(x.to(torch.bfloat16).double(), a, center, standardize)
    low = on_gpu(x.cuda().to(torch.bfloat16))[:, :48].cpu().double()
    assert (low - exact).abs().max() <= 6 * 2.0 ** -8 + 2 * 32 * torch.finfo(torch.float32).eps
