"""Retrieval ranks and scores on constructed cases, and the rows of the tiny zoo."""

import math

import pytest
import torch

from simulator.latent.retrieval import chance, cosine_ranks, ranks_from_similarity, retrieval_rows, scores


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_identity_retrieves_every_sample_first():
    x = torch.randn(300, 12, generator=_gen(0))
    ranks = cosine_ranks(x, x)
    assert ranks.tolist() == [1] * 300
    assert scores(ranks) == {"top1": 1.0, "top5": 1.0, "mrr": 1.0}


def test_scaling_and_rotation_do_not_change_cosine_retrieval():
    x = torch.randn(200, 8, generator=_gen(1))
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=_gen(2)))
    scale = torch.rand(200, 1, generator=_gen(3)) + 0.1
    assert torch.equal(cosine_ranks(x @ q * scale, x @ q), torch.ones(200, dtype=torch.int64))


def test_a_known_rank():
    sim = torch.tensor([[0.2, 0.9, 0.5, 0.1],   # right one (0.2) has 0.9 and 0.5 ahead: rank 3
                        [0.0, 0.7, 0.9, 0.7],   # 0.9 ahead, 0.7 tied: pessimistic rank 3
                        [0.1, 0.2, 0.3, 0.0],   # best: rank 1
                        [0.5, 0.6, 0.7, 0.0]])  # worst: rank 4
    ranks = ranks_from_similarity(sim)
    assert ranks.tolist() == [3, 3, 1, 4]
    s = scores(ranks)
    assert s["top1"] == 0.25 and s["top5"] == 1.0
    assert s["mrr"] == pytest.approx((1 / 3 + 1 / 3 + 1 + 1 / 4) / 4)


def test_chunked_similarity_equals_one_block():
    x, y = torch.randn(130, 6, generator=_gen(4)), torch.randn(130, 6, generator=_gen(5))
    assert torch.equal(cosine_ranks(x, y, chunk_rows=17), cosine_ranks(x, y, chunk_rows=1000))


def test_a_permuted_candidate_set_scores_at_chance():
    # Queries match a random permutation of the candidates: the right candidate's rank is uniform
    # on 1..n, so top-1 = 1/n, top-5 = 5/n, MRR = H_n/n in expectation. Averaged over `reps`
    # independent permutations of n candidates; tolerances are 4 standard errors of the mean.
    n, reps = 200, 20
    x = torch.randn(n, 16, generator=_gen(6))
    got = {"top1": 0.0, "top5": 0.0, "mrr": 0.0}
    for rep in range(reps):
        perm = torch.randperm(n, generator=_gen(100 + rep))
        for key, value in scores(cosine_ranks(x[perm], x)).items():
            got[key] += value / reps
    expect = chance(n)
    assert expect["mrr"] == pytest.approx(sum(1 / k for k in range(1, n + 1)) / n)
    # variance of one indicator/score over uniform ranks, divided by the n·reps draws
    var = {"top1": expect["top1"] * (1 - expect["top1"]), "top5": expect["top5"] * (1 - expect["top5"]),
           "mrr": sum(1 / k**2 for k in range(1, n + 1)) / n - expect["mrr"] ** 2}
    for key in got:
        assert abs(got[key] - expect[key]) < 4 * math.sqrt(var[key] / (n * reps)), key
    assert got["top1"] < 0.05  # and nowhere near the identity's 1.0


def test_zero_vectors_and_shape_errors():
    x = torch.zeros(3, 4)
    assert cosine_ranks(x, x).tolist() == [3, 3, 3]  # all similarities 0: every tie counted against
    with pytest.raises(ValueError, match="same"):
        cosine_ranks(torch.zeros(3, 4), torch.zeros(3, 5))


def test_rows_of_the_tiny_zoo(tiny_zoo):
    rows = retrieval_rows(tiny_zoo, ["absolute", "relative", "procrustes", "affine"], [8, 64], 100)
    by = {(r.tx_encoder, r.rx_encoder, r.method, r.anchors): r for r in rows}
    # absolute only between equal widths: mlp-1 and mlp-2 (16), cnn-1 (24) with itself
    assert {(t, r) for t, r, m, _ in by if m == "absolute"} == {
        (a, b) for a in ("mlp-1", "mlp-2") for b in ("mlp-1", "mlp-2")} | {("cnn-1", "cnn-1")}
    assert len(rows) == 5 + 9 * 3 * 2
    assert all(r.candidates == 100 and r.split == "test" for r in rows)
    for (t, r, m, _), row in by.items():
        if t == r and m in ("absolute", "relative"):
            assert row.top1 == 1.0  # a space compared with itself (barely duplicate digits aside)
        assert 0.0 <= row.top1 <= row.top5 <= 1.0 and row.top1 <= row.mrr <= 1.0
    # independently trained encoders align far above chance (1 %) through anchors, not without them
    cross = by[("mlp-1", "mlp-2", "relative", 64)]
    assert cross.top1 > 0.2 and cross.mrr > by[("mlp-1", "mlp-2", "absolute", 0)].mrr
    assert retrieval_rows(tiny_zoo, ["relative"], [8], 10_000)[0].candidates == len(tiny_zoo.dataset.x_test)
