import gzip
import struct

import numpy as np
import pytest

from simulator.data import load_dataset, make_splits
from simulator.data import datasets as ds
from simulator.data.idx import read_idx
from simulator.errors import DataError
from simulator.rng import SeedTree


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_idx_round_trip_gz_and_raw(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    (tmp_path / "a").write_bytes(_idx_bytes(arr))
    assert np.array_equal(read_idx(tmp_path / "a.gz", "x"), arr)
    assert np.array_equal(read_idx(tmp_path / "a", "x"), arr)


@pytest.mark.parametrize("damage, words", [
    (lambda b: b"\x01\x02" + b[2:], "bad magic"),
    (lambda b: b[:-5], "truncated"),
])
def test_idx_corruption_is_named(tmp_path, damage, words):
    arr = np.zeros((4, 5), dtype=np.uint8)
    (tmp_path / "a").write_bytes(damage(_idx_bytes(arr)))
    with pytest.raises(DataError, match=words):
        read_idx(tmp_path / "a", "fashion-mnist")


def test_truncated_gzip_is_named(tmp_path):
    blob = gzip.compress(_idx_bytes(np.zeros((50, 50), dtype=np.uint8)))
    (tmp_path / "a.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="fashion-mnist.*corrupt or truncated"):
        read_idx(tmp_path / "a.gz", "fashion-mnist")


def test_missing_fashion_mnist_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("RELCOMM_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist")
    msg = str(err.value)
    assert "fashion-mnist" in msg and str(tmp_path / "nowhere") in msg and "apt-get install dataset-fashion-mnist" in msg


def test_fashion_mnist_from_relcomm_data(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("RELCOMM_DATA", str(tmp_path))
    rng = SeedTree(0).child("test-data").numpy()
    for stem, shape in [("train-images-idx3-ubyte", (12, 28, 28)), ("t10k-images-idx3-ubyte", (6, 28, 28)),
                        ("train-labels-idx1-ubyte", (12,)), ("t10k-labels-idx1-ubyte", (6,))]:
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(_idx_bytes(rng.integers(0, 10, shape))))
    d = load_dataset("fashion-mnist")
    assert d.x_train.shape == (12, 1, 28, 28) and d.x_test.shape == (6, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and d.x_train.max() <= 1.0 and d.fingerprint


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")


def test_splits_deterministic_disjoint_complete():
    d = load_dataset("digits")
    a = make_splits(d, 0.2, SeedTree(0).child("data"))
    b = make_splits(d, 0.2, SeedTree(0).child("data"))
    c = make_splits(d, 0.2, SeedTree(1).child("data"))
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    assert not set(a.train) & set(a.validation)
    assert len(a.train) + len(a.validation) == len(d.x_train)
    assert abs(len(a.validation) - 0.2 * len(d.x_train)) <= 1
    assert np.array_equal(a.test, np.arange(len(d.x_test)))


def test_holdout_split_is_deterministic_disjoint_and_covers_the_test_set():
    d = load_dataset("digits")
    a = make_splits(d, 0.2, SeedTree(0).child("data"), holdout_fraction=0.3)
    b = make_splits(d, 0.2, SeedTree(0).child("data"), holdout_fraction=0.3)
    c = make_splits(d, 0.2, SeedTree(1).child("data"), holdout_fraction=0.3)
    plain = make_splits(d, 0.2, SeedTree(0).child("data"))
    assert np.array_equal(a.holdout, b.holdout) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.holdout, c.holdout)
    assert not set(a.holdout) & set(a.test)
    assert np.array_equal(np.sort(np.concatenate([a.holdout, a.test])), np.arange(len(d.x_test)))
    assert len(a.holdout) == round(0.3 * len(d.x_test))
    assert (np.diff(a.test) > 0).all() and (np.diff(a.holdout) > 0).all()  # sorted: dataset order
    # the training-set cut does not move, so the encoders and heads (train split) are shared
    assert np.array_equal(a.train, plain.train) and np.array_equal(a.validation, plain.validation)
    assert plain.test_is_whole and not a.test_is_whole and len(plain.holdout) == 0
    with pytest.raises(ValueError, match="holdout_fraction"):
        make_splits(d, 0.2, SeedTree(0).child("data"), holdout_fraction=1.0)


def test_a_dataset_can_be_cut_to_its_first_samples():
    from simulator.data import load_dataset

    full, cut = load_dataset("digits"), load_dataset("digits", max_train=100, max_test=30)
    assert (len(cut.x_train), len(cut.y_train), len(cut.x_test), len(cut.y_test)) == (100, 100, 30, 30)
    assert (cut.x_train == full.x_train[:100]).all() and (cut.y_test == full.y_test[:30]).all()
    assert cut.fingerprint != full.fingerprint  # what is kept decides the cache keys
    assert load_dataset("digits", max_train=10**9).fingerprint == full.fingerprint
