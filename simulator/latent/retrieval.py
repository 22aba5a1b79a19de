"""Latent-similarity retrieval: does a transmitted vector pick out its own sample among the receiver's candidates?

The measure of Moschella et al. (ICLR 2023, relative representations) that needs no task head.
Sample i is sent by the transmitter as a vector q_i (its latent, its relative representation,
or its latent mapped into the receiver's space); the receiver holds the vectors c_1..c_N of N
candidate samples in its own space, among them sample i's own c_i. The candidates are ranked by
cosine similarity s_ij = ⟨q_i, c_j⟩ / (‖q_i‖ ‖c_j‖), and the rank of the right one is

    rank_i = #{j : s_ij ≥ s_ii}    (1 = best; ties counted pessimistically: a candidate as
                                    similar as the right one is ranked ahead of it)

Scores over the N queries: top-1 = mean[rank = 1], top-5 = mean[rank ≤ 5], MRR = mean[1/rank].
Chance level (ranks uniform on 1..N): top-1 = 1/N, top-5 = 5/N, MRR = H_N/N (H_N the N-th
harmonic number, ≈ (ln N + 0.577)/N).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch.nn import functional as F

from simulator.latent.stitching import Workspace, encoder_pairs
from simulator.latent.zoo import Zoo

COLUMNS = ("tx_encoder", "rx_encoder", "method", "anchors", "candidates", "top1", "top5", "mrr", "split")
"""Columns of ``retrieval.csv``."""

CHUNK_ROWS = 1024
"""Queries per similarity block: N×N floats are formed 1,024 rows at a time (4 MB per 1,000 candidates)."""


def ranks_from_similarity(sim: torch.Tensor, true_index: torch.Tensor | None = None) -> torch.Tensor:
    """Rank of the right candidate in each row of a similarity matrix (module docstring: 1 = best, ties pessimistic).

    Parameters
    ----------
    sim : torch.Tensor
        (n, N) similarities of n queries to N candidates; larger is more similar.
    true_index : torch.Tensor, optional
        (n,) int64, the column of each row's right candidate; default ``arange(n)`` (the diagonal).

    Returns
    -------
    torch.Tensor
        (n,) int64 ranks in 1..N.
    """
    if true_index is None:
        true_index = torch.arange(sim.shape[0], device=sim.device)
    right = sim.gather(1, true_index[:, None])
    return (sim >= right).sum(1)


def cosine_ranks(queries: torch.Tensor, candidates: torch.Tensor, chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """Ranks of candidate i for query i by cosine similarity, for (N, d) queries and (N, d) candidates.

    The similarity matrix is a matmul of the row-normalised inputs, formed ``chunk_rows`` queries
    at a time. A zero vector has cosine 0 to everything.
    """
    if queries.shape != candidates.shape or queries.dim() != 2:
        raise ValueError(f"queries {tuple(queries.shape)} and candidates {tuple(candidates.shape)} must be the "
                         "same (N, d) shape")
    q = F.normalize(queries.float(), dim=1)
    c = F.normalize(candidates.float(), dim=1)
    out = []
    for start in range(0, len(q), chunk_rows):
        block = q[start:start + chunk_rows] @ c.T
        out.append(ranks_from_similarity(block, torch.arange(start, start + len(block), device=block.device)))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def scores(ranks: torch.Tensor) -> dict[str, float]:
    """Top-1, top-5 and mean reciprocal rank of a vector of ranks (1 = best)."""
    r = ranks.double()
    return {"top1": float((r <= 1).double().mean()), "top5": float((r <= 5).double().mean()),
            "mrr": float((1.0 / r).mean())}


def chance(n: int) -> dict[str, float]:
    """The scores of ranks drawn uniformly from 1..n (a receiver that learned nothing)."""
    return {"top1": 1.0 / n, "top5": min(5, n) / n, "mrr": sum(1.0 / k for k in range(1, n + 1)) / n}


@dataclass(frozen=True)
class RetrievalRow:
    """One row of ``retrieval.csv`` (:data:`COLUMNS`)."""

    tx_encoder: str
    rx_encoder: str
    method: str
    anchors: int
    candidates: int
    top1: float
    top5: float
    mrr: float
    split: str

    def as_dict(self) -> dict:
        return asdict(self)


def _pair_vectors(ws: Workspace, tx: str, rx: str, method: str, k: int, z: dict[str, torch.Tensor]) -> tuple | None:
    """(queries, candidates) of one pair and method: what tx sends, and rx's vectors to compare it with.

    ``None`` when the method cannot run for the pair (``absolute`` across latent widths).
    """
    if method == "absolute":
        return (z[tx], z[rx]) if z[tx].shape[1] == z[rx].shape[1] else None
    if method == "relative":
        return ws.projector(tx, k)(z[tx]), ws.projector(rx, k)(z[rx])
    if method in ("procrustes", "affine"):
        return ws.anchor_map(tx, rx, method, k)(z[tx]), z[rx]
    if method == "inverse-relative":
        return ws.inverse_relative(rx, k)(ws.projector(tx, k)(z[tx])), z[rx]
    raise ValueError(f"unknown method {method!r}")


def retrieval_rows(zoo: Zoo, methods: Iterable[str], anchors: Iterable[int], candidates: int,
                   pairs: Iterable[tuple[str, str]] | None = None,
                   workspace: Workspace | None = None) -> list[RetrievalRow]:
    """Retrieval scores of every (tx, rx) pair × method × anchor count on the test split.

    Candidates are the first ``min(candidates, test-split size)`` test-split samples in dataset order (the
    same for every row), each also a query. Methods are those of the stitching matrix:
    ``absolute`` compares raw latents and runs only where the two widths agree (one row,
    ``anchors`` = 0); ``relative`` compares the two agents' relative representations (the
    zoo's projectors, the scenario's similarity); ``procrustes``, ``affine`` and
    ``inverse-relative`` map what tx sends into rx's latent space with the translators of
    :mod:`simulator.latent.translation` fit on the first K anchors (``inverse-relative`` only
    with the cosine similarity alone, as in the stitching matrix). Everything runs on the zoo's
    device; ``workspace`` shares the projectors and fitted maps with the stitching matrix.
    """
    ids = list(zoo.encoders)
    pairs = encoder_pairs(zoo, pairs)
    n = min(candidates, len(zoo.splits.test))
    ws = workspace or Workspace(zoo)
    z = {e: ws.latents(e, "test")[:n] for e in ids}
    methods = [m for m in methods if m != "inverse-relative" or zoo.scenario.relative.invertible]
    anchors = list(anchors)
    rows = []
    for tx, rx in pairs:
        for method in methods:
            for k in ([0] if method == "absolute" else anchors):
                vectors = _pair_vectors(ws, tx, rx, method, k, z)
                if vectors is not None:
                    rows.append(RetrievalRow(tx, rx, method, k, n, **scores(cosine_ranks(*vectors)), split="test"))
    return rows


__all__ = ["COLUMNS", "RetrievalRow", "chance", "cosine_ranks", "ranks_from_similarity", "retrieval_rows", "scores"]
