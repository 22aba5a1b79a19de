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
    assert not torch.equal(x, torch.rand(5, generator=SeedTree(3).child("u").torch()))


def test_integer_is_deterministic_distinct_and_uses_all_63_bits_evenly():
    n = 4000
    ints = np.array([SeedTree(3).child("i", j).integer() for j in range(n)], dtype=np.uint64)
    assert [SeedTree(3).child("i", j).integer() for j in range(5)] == ints[:5].tolist()
    assert SeedTree(4).child("i", 0).integer() != ints[0]
    assert len(set(ints.tolist())) == n
    # Each of the 63 bits is set with probability 1/2 (bit 63 never: torch wants a signed int64);
    # the binomial standard error is sqrt(1/4n). Z is Bonferroni-corrected for the 63 bits.
    bits = (ints[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    freq = bits.mean(0)
    z = 4.5  # two-sided 6.8e-6 per bit, 4.3e-4 for all 63
    assert np.all(np.abs(freq[:63] - 0.5) <= z * np.sqrt(0.25 / n)), freq
    assert freq[63] == 0.0


def test_negative_seed_rejected():
    import pytest

    with pytest.raises(ValueError):
        SeedTree(-1)
