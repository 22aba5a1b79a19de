"""The tiny zoo on digits: caching, corruption recovery, and stitching behaving as the theory says."""

import copy
import dataclasses

import torch

from simulator.config import parse_scenario
from simulator.latent.cache import ArtifactCache
from simulator.latent.stitching import predict, stitching_rows
from simulator.latent.zoo import Zoo
from simulator.rng import SeedTree


def test_second_build_comes_from_the_cache_with_identical_latents(tiny_zoo, tiny_dict):
    again = Zoo.build(parse_scenario(tiny_dict), log=lambda m: None)
    for enc_id, enc in again.encoders.items():
        assert not enc.trained_now
        assert torch.equal(enc.latents_test, tiny_zoo.encoders[enc_id].latents_test)
    assert (again.anchors == tiny_zoo.anchors).all()


def test_corrupt_cache_file_is_retrained_not_trusted(tiny_zoo, tiny_dict):
    enc = tiny_zoo.encoders["mlp-1"]
    path = tiny_zoo.cache.path("encoders", enc.key)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    messages = []
    rebuilt = Zoo.build(parse_scenario(tiny_dict), log=messages.append)
    assert rebuilt.encoders["mlp-1"].trained_now
    assert any("corrupt" in m for m in messages)
    # Retraining from the same seed gives the same weights.
    assert torch.allclose(rebuilt.encoders["mlp-1"].latents_test, enc.latents_test, atol=1e-5)


def test_encoder_id_is_a_name_not_part_of_the_key(tiny_zoo, tiny_dict):
    d = copy.deepcopy(tiny_dict)
    d["encoders"][0]["id"] = "renamed-1"
    zoo = Zoo.build(parse_scenario(d), log=lambda m: None)
    assert zoo.encoders["renamed-1"].key == tiny_zoo.encoders["mlp-1"].key


def test_stitching_matches_theory_on_digits(tiny_zoo):
    rows = {(r.tx_encoder, r.rx_encoder, r.method, r.anchors): r for r in
            stitching_rows(tiny_zoo, "test", ["absolute", "relative", "procrustes"], [64])}
    n = len(tiny_zoo.labels("test"))
    for tx in tiny_zoo.encoders:
        for rx in tiny_zoo.encoders:
            same = rows[(rx, rx, "relative", 64)].accuracy
            rel = rows[(tx, rx, "relative", 64)].accuracy
            absolute = rows[(tx, rx, "absolute", 0)].accuracy
            if tx == rx:
                assert absolute == rows[(tx, rx, "absolute", 0)].rx_native_accuracy
                continue
            # Zero-shot relative stitching keeps most of the receiver's accuracy ...
            assert rel >= 0.85 * same, (tx, rx, rel, same)
            # ... while feeding foreign latents to the absolute head is near chance (0.1).
            assert absolute <= 0.3, (tx, rx, absolute)
            assert rows[(tx, rx, "procrustes", 64)].accuracy >= 0.85 * same
    assert n == 359


def test_predict_is_deterministic_and_anchors_come_from_the_train_split(tiny_zoo):
    a = predict(tiny_zoo, "mlp-1", "cnn-1", "relative", 32, "test")
    b = predict(tiny_zoo, "mlp-1", "cnn-1", "relative", 32, "test")
    assert torch.equal(a, b)
    splits = tiny_zoo.splits
    assert not set(splits.train.tolist()) & set(splits.validation.tolist())
    assert set(tiny_zoo.anchors.tolist()) <= set(splits.train.tolist())


def _head_weights(zoo, root, rx: str, k: int, **changes) -> torch.Tensor:
    """The relative head of ``rx`` trained afresh (empty cache) on ``zoo`` with ``changes`` applied."""
    fresh = dataclasses.replace(zoo, cache=ArtifactCache(root), _projectors={}, _heads={}, **changes)
    return torch.cat([v.flatten() for v in fresh.relative_head(rx, k).state_dict().values()])


def test_relative_heads_use_the_train_split_only(tiny_zoo, tmp_path):
    rx, k = "mlp-2", 8
    splits, data = tiny_zoo.splits, tiny_zoo.dataset
    clean = _head_weights(tiny_zoo, tmp_path / "clean", rx, k)
    # The zoo's own (cached) head is this one.
    assert torch.equal(clean, torch.cat([v.flatten() for v in tiny_zoo.relative_head(rx, k).state_dict().values()]))

    # Garbage latents and wrong labels everywhere outside the train split: the same head, bit for bit.
    enc = tiny_zoo.encoders[rx]
    g = SeedTree(0).child("garbage").torch()
    latents_train = enc.latents_train.clone()
    latents_train[torch.from_numpy(splits.validation)] = torch.randn(len(splits.validation), enc.cfg.latent_dim,
                                                                     generator=g)
    garbage = dataclasses.replace(enc, latents_train=latents_train, latents_test=torch.randn(
        enc.latents_test.shape, generator=g))
    y_train = data.y_train.copy()
    y_train[splits.validation] = (y_train[splits.validation] + 1) % data.n_classes
    relabelled = dataclasses.replace(data, y_train=y_train, y_test=(data.y_test + 1) % data.n_classes)
    elsewhere = _head_weights(tiny_zoo, tmp_path / "elsewhere", rx, k,
                              encoders={**tiny_zoo.encoders, rx: garbage}, dataset=relabelled)
    assert torch.equal(elsewhere, clean)

    # The check can fail: one wrong label inside the train split changes the head.
    y_train = data.y_train.copy()
    y_train[splits.train[0]] = (y_train[splits.train[0]] + 1) % data.n_classes
    inside = _head_weights(tiny_zoo, tmp_path / "inside", rx, k, dataset=dataclasses.replace(data, y_train=y_train))
    assert not torch.equal(inside, clean)
