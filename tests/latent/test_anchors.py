import numpy as np
import pytest

from simulator.data import load_dataset, make_splits
from simulator.latent.anchors import STRATEGIES, select_anchors
from simulator.rng import SeedTree


@pytest.fixture(scope="module")
def digits():
    d = load_dataset("digits")
    return d, make_splits(d, 0.2, SeedTree(0).child("data"))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_distinct_training_indices_and_deterministic(digits, strategy):
    d, s = digits
    a = select_anchors(strategy, 40, s.train, d.x_train, d.y_train, SeedTree(3))
    b = select_anchors(strategy, 40, s.train, d.x_train, d.y_train, SeedTree(3))
    assert len(a) == 40 and len(set(a.tolist())) == 40
    assert set(a.tolist()) <= set(s.train.tolist())
    assert np.array_equal(a, b)


def test_random_and_stratified_lists_extend_their_prefixes(digits):
    d, s = digits
    for strategy in ("random", "stratified", "farthest"):
        short = select_anchors(strategy, 20, s.train, d.x_train, d.y_train, SeedTree(1))
        long = select_anchors(strategy, 60, s.train, d.x_train, d.y_train, SeedTree(1))
        assert np.array_equal(long[:20], short), strategy


def test_stratified_prefixes_are_class_balanced(digits):
    d, s = digits
    a = select_anchors("stratified", 100, s.train, d.x_train, d.y_train, SeedTree(2))
    for k in (10, 25, 50, 100):
        counts = np.bincount(d.y_train[a[:k]], minlength=10)
        assert counts.max() - counts.min() <= 1, (k, counts)


def test_farthest_point_order_is_greedy(digits):
    d, s = digits
    a = select_anchors("farthest", 15, s.train, d.x_train, d.y_train, SeedTree(4))
    x = d.x_train.reshape(len(d.x_train), -1).astype(np.float64)
    pool = s.train  # digits' train split is smaller than the pool, so the pool is all of it
    for i in range(1, 15):
        dist = np.min(((x[pool][:, None] - x[a[:i]][None]) ** 2).sum(-1), axis=1)
        assert dist.max() == pytest.approx(((x[a[i]] - x[a[:i]]) ** 2).sum(-1).min(), rel=1e-4)


def test_too_many_anchors_is_an_error(digits):
    d, s = digits
    with pytest.raises(ValueError, match="anchors requested"):
        select_anchors("random", len(s.train) + 1, s.train, d.x_train, d.y_train, SeedTree(0))
