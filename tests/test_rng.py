import numpy as np
import torch

from simulator.rng import SeedTree


def test_same_path_same_stream_and_order_independent():
    a = SeedTree(5)
    first = a.child("channel").numpy().random(4)
    a.child("traffic").numpy().random(100)  # another component drawing first changes nothing
    assert np.array_equal(first, SeedTree(5).child("channel").numpy().random(4))


def test_distinct_names_seeds_and_depths_differ():
    draws = {
        "a": SeedTree(1).child("a").numpy().random(),
        "b": SeedTree(1).child("b").numpy().random(),
        "a-seed2": SeedTree(2).child("a").numpy().random(),
        "a/x": SeedTree(1).child("a", "x").numpy().random(),
    }
    assert len(set(draws.values())) == len(draws)


def test_torch_generator_reproducible():
    x = torch.rand(5, generator=SeedTree(3).child("t").torch())
    y = torch.rand(5, generator=SeedTree(3).child("t").torch())
    assert torch.equal(x, y)
    assert 0 <= SeedTree(3).integer() < 2**63


def test_negative_seed_rejected():
    import pytest

    with pytest.raises(ValueError):
        SeedTree(-1)
