"""Encoder families: the registry, FLOPs counted by torch against hand counts, seeds, word bag, embeddings files."""

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter
from torch import nn

from simulator.errors import DataError
from simulator.latent.encoders import FAMILIES, DataInfo, EncoderConfig
from simulator.latent.encoders.word_bag import tokenize
from simulator.latent.training import init_weights
from simulator.rng import SeedTree

IMAGES = DataInfo("digits", "image", (1, 8, 8), 10, 20, 5, "f")
TEXT = DataInfo("texts", "text", (), 2, 20, 5, "t")


def spec(**fields):
    return TypeAdapter(EncoderConfig).validate_python(fields)


def test_every_family_is_registered_once_with_its_own_config_model():
    assert {"mlp", "cnn", "word-bag", "embeddings"} <= set(FAMILIES)
    for arch, model in FAMILIES.items():
        assert type(spec(id="e", arch=arch, **({"path": "x.npy", "flops_per_sample": 1.0}
                                                 if arch == "embeddings" else {}))) is model


def test_mlp_flops_match_hand_count():
    enc = spec(id="m", arch="mlp", latent_dim=16, hidden=(32, 8)).build(IMAGES)
    # matrix products only, 2 FLOPs per multiply-accumulate (biases and ReLU are elementwise)
    assert enc.flops(np.zeros((3, 1, 8, 8))).tolist() == [2 * (64 * 32 + 32 * 8 + 8 * 16)] * 3


def test_cnn_flops_match_hand_count():
    enc = spec(id="c", arch="cnn", latent_dim=10, hidden=(4, 6)).build(IMAGES)
    conv1 = 2 * 1 * 9 * 4 * 8 * 8
    conv2 = 2 * 4 * 9 * 6 * 4 * 4
    fc = 2 * (6 * 2 * 2) * 10
    assert enc.flops(np.zeros((1, 1, 8, 8))).tolist() == [conv1 + conv2 + fc]


def test_weights_depend_on_the_seed_only():
    cfg = spec(id="m", arch="mlp", latent_dim=8, hidden=(16,))
    nets = []
    for seed in (1, 1, 2):
        net = cfg.build(IMAGES).module
        init_weights(net, SeedTree(seed).child("init").torch())
        nets.append(torch.cat([p.flatten() for p in net.parameters()]))
    assert torch.equal(nets[0], nets[1]) and not torch.equal(nets[0], nets[2])


def test_latent_size_is_configurable_for_both_image_families():
    for arch in ("mlp", "cnn"):
        for d in (3, 50):
            enc = spec(id="e", arch=arch, latent_dim=d, hidden=(8,)).build(DataInfo("f", "image", (1, 28, 28), 10,
                                                                                       1, 1, ""))
            assert isinstance(enc.module, nn.Module) and enc.module(torch.zeros(2, 1, 28, 28)).shape == (2, d)
            assert enc.latent_dim == d and enc.trained_here


def test_word_bag_tokens_are_deterministic_words_then_pairs():
    ids = tokenize(["Not good, not GOOD", ""], buckets=1000, max_tokens=8)
    assert ids.shape == (2, 8) and ids.dtype == np.int64
    # words: not good not good (4), pairs: "not good" "good not" "not good" (3): 7 tokens
    assert (ids[0] > 0).sum() == 7 and (ids[1] == 0).all()
    assert ids[0, 0] == ids[0, 2] and ids[0, 4] == ids[0, 6] != ids[0, 0]
    assert np.array_equal(ids, tokenize(["not good, not good", ""], buckets=1000, max_tokens=8))


def test_word_bag_flops_grow_with_each_text():
    enc = spec(id="w", arch="word-bag", latent_dim=16, embed_dim=8, hidden=(12,), max_tokens=6).build(TEXT)
    flops = enc.flops(np.array(["a", "a b", "a b c d e f g"], dtype=object))
    mlp = 2 * (8 * 12 + 12 * 16)
    assert flops.tolist() == [mlp + 1 * 8, mlp + 3 * 8, mlp + 6 * 8]  # tokens capped at max_tokens
    out = enc.module(enc.inputs(np.array(["a b", "c"], dtype=object)))
    assert out.shape == (2, 16)


def test_a_text_family_refuses_images_and_an_image_family_text():
    assert spec(id="w", arch="word-bag").modalities == ("text",)
    assert spec(id="m", arch="mlp").modalities == ("image",)


# ----------------------------------------------------------------------------- embeddings files

def _emb(tmp_path, name, **arrays):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, arrays["a"])
    else:
        np.savez(path, **arrays)
    return spec(id="x", arch="embeddings", path=str(path), flops_per_sample=1234.4)


def test_embeddings_layouts_agree(tmp_path):
    rng = SeedTree(0).numpy()
    train, test = rng.normal(size=(20, 4)), rng.normal(size=(5, 4))
    order = rng.permutation(25)
    ids = np.array([f"train/{i}" for i in range(20)] + [f"test/{i}" for i in range(5)])
    variants = [_emb(tmp_path, "a.npy", a=np.vstack([train, test]).astype(np.float16)),
                _emb(tmp_path, "b.npz", train=train, test=test),
                _emb(tmp_path, "c.npz", latents=np.vstack([train, test])[order], ids=ids[order])]
    got = []
    for cfg in variants:
        enc = cfg.build(IMAGES)
        got.append([enc.embed_indexed(s, None, None, print).numpy() for s in ("train", "test")])
        assert enc.latent_dim == 4 and not enc.trained_here
        assert enc.flops(np.zeros(3)).tolist() == [1234] * 3
    np.testing.assert_allclose(got[1][0], train.astype(np.float32))
    np.testing.assert_array_equal(got[1][0], got[2][0])
    np.testing.assert_allclose(got[0][1], got[1][1], atol=1e-2)  # float16 file
    assert variants[1].build(IMAGES).digest() != variants[2].build(IMAGES).digest()  # the file's content


@pytest.mark.parametrize("arrays, expect", [
    ({"train": np.zeros((19, 4)), "test": np.zeros((5, 4))}, "has 19 rows; the dataset 'digits' needs 20"),
    ({"train": np.zeros((20, 4), dtype=np.int32), "test": np.zeros((5, 4))}, "floating-point"),
    ({"train": np.zeros((20,)), "test": np.zeros((5, 4))}, "must be 2-D"),
    ({"train": np.full((20, 4), np.nan), "test": np.zeros((5, 4))}, "NaN or infinite values in 20 rows"),
    ({"train": np.zeros((20, 4)), "test": np.zeros((5, 3))}, "differ in width"),
    ({"latents": np.zeros((25, 4)), "ids": np.array(["train/0"] * 25)}, "appears twice"),
    ({"latents": np.zeros((25, 4)), "ids": np.array(["val/0"] * 25)}, "is not train/<index>"),
    ({"vectors": np.zeros((25, 4))}, "needs arrays 'train' and 'test'"),
])
def test_a_bad_embeddings_file_is_one_clear_line(tmp_path, arrays, expect):
    cfg = _emb(tmp_path, "bad.npz", **arrays)
    with pytest.raises(DataError, match=expect) as info:
        cfg.build(IMAGES)
    assert "encoder x: " in info.value.one_line() and "\n" not in info.value.one_line()


def test_a_missing_or_foreign_embeddings_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        spec(id="x", arch="embeddings", path=str(tmp_path / "none.npy"), flops_per_sample=0).build(IMAGES)
    (tmp_path / "t.npy").write_text("not numpy")
    with pytest.raises(DataError, match="not a .npy or .npz"):
        spec(id="x", arch="embeddings", path=str(tmp_path / "t.npy"), flops_per_sample=0).build(IMAGES)
