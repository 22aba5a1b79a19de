"""Anchor selection: an ordered list of training-split indices whose prefixes are the anchor sets."""

from __future__ import annotations

import numpy as np

from simulator.rng import SeedTree

STRATEGIES = ("random", "stratified", "kmeans", "farthest")

# Farthest-point and k-means run on a random pool of the training split to bound their cost.
_POOL = 10_000


def select_anchors(strategy: str, count: int, train_idx: np.ndarray, x: np.ndarray, y: np.ndarray,
                   seeds: SeedTree) -> np.ndarray:
    """Choose ``count`` anchors, ordered so that the first K form the anchor set for K.

    Anchors are data samples all agents hold, so every geometric strategy works in the one
    space they share, the input (pixel) space, never in an agent's latent space.

    Parameters
    ----------
    strategy : {"random", "stratified", "kmeans", "farthest"}
        ``random``: a seeded permutation. ``stratified``: classes taken round-robin (in a seeded
        class order, each class in a seeded order), so every prefix is class-balanced to within
        one sample. ``kmeans``: k-means (k = count) on a pool of the training split; each centre
        is represented by its nearest sample; centres are ordered by farthest-point traversal
        starting from the largest cluster, so short prefixes spread over the data. ``farthest``:
        greedy farthest-point traversal from a seeded start.
    count : int
        Length of the list (the largest anchor count in use).
    train_idx : numpy.ndarray
        Indices (into ``x``/``y``) of the training split; anchors are drawn from it only.
    x : numpy.ndarray
        (n, ...) inputs, float32.
    y : numpy.ndarray
        (n,) labels.
    seeds : SeedTree
        Node of the seed tree owned by anchor selection.

    Returns
    -------
    numpy.ndarray
        (count,) int64 distinct indices into ``x``.
    """
    if count > len(train_idx):
        raise ValueError(f"{count} anchors requested but the training split has {len(train_idx)} samples")
    rng = seeds.child(strategy).numpy()
    if strategy == "random":
        return train_idx[rng.permutation(len(train_idx))[:count]].astype(np.int64)
    if strategy == "stratified":
        return _stratified(train_idx, y, count, rng)
    pool = train_idx[rng.permutation(len(train_idx))[: max(_POOL, count)]]
    feats = x[pool].reshape(len(pool), -1).astype(np.float32)
    if strategy == "farthest":
        order = _farthest_order(feats, count, start=int(rng.integers(len(pool))))
        return pool[order].astype(np.int64)
    if strategy == "kmeans":
        return pool[_kmeans_order(feats, count, rng)].astype(np.int64)
    raise ValueError(f"unknown anchor strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


def _stratified(train_idx: np.ndarray, y: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    classes = rng.permutation(np.unique(y[train_idx]))
    queues = [train_idx[y[train_idx] == c] for c in classes]
    queues = [q[rng.permutation(len(q))] for q in queues]
    depth = max(len(q) for q in queues)
    # Row r holds the r-th sample of each class; reading row by row interleaves the classes.
    table = np.full((depth, len(queues)), -1, dtype=np.int64)
    for j, q in enumerate(queues):
        table[: len(q), j] = q
    flat = table.ravel()
    return flat[flat >= 0][:count]


def _farthest_order(feats: np.ndarray, count: int, start: int) -> np.ndarray:
    sq = (feats * feats).sum(1)
    order = np.empty(count, dtype=np.int64)
    order[0] = start
    dist = sq + sq[start] - 2.0 * feats @ feats[start]
    for i in range(1, count):
        nxt = int(np.argmax(dist))
        order[i] = nxt
        dist = np.minimum(dist, sq + sq[nxt] - 2.0 * feats @ feats[nxt])
    return order


def _kmeans_order(feats: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=count, random_state=int(rng.integers(2**31 - 1)), n_init=1,
                         batch_size=max(1024, 3 * count), max_iter=50)
    labels = km.fit_predict(feats)
    centres = km.cluster_centers_
    sq = (feats * feats).sum(1)
    nearest = np.empty(count, dtype=np.int64)
    for c in range(count):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:  # empty cluster: take the sample closest to its centre overall
            members = np.arange(len(feats))
        d = sq[members] - 2.0 * feats[members] @ centres[c]
        nearest[c] = members[np.argmin(d)]
    # Duplicates (two centres sharing a nearest sample) are replaced by the farthest free samples.
    uniq = list(dict.fromkeys(nearest.tolist()))
    sizes = np.bincount(labels, minlength=count)
    start_cluster = int(np.argmax(sizes))
    reps = np.array(uniq, dtype=np.int64)
    if len(reps) < count:
        extra = _farthest_order(feats, count, start=int(reps[0]))
        reps = np.array(list(dict.fromkeys(reps.tolist() + extra.tolist()))[:count], dtype=np.int64)
    first = int(np.flatnonzero(reps == nearest[start_cluster])[0]) if nearest[start_cluster] in reps else 0
    return reps[_farthest_order(feats[reps], count, start=first)]
