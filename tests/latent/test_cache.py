"""The artifact cache: trusted loads, and one stderr line for every entry rebuilt because it is unusable."""

import copy
import hashlib
import io
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from simulator.config import parse_scenario
from simulator.latent.cache import ArtifactCache, cache_key
from simulator.latent.heads import relative_head
from simulator.latent.zoo import Zoo

K = 8
# One small encoder and one head on sklearn digits, so that a cold build is quick.
SMALL = {
    "name": "cache-small",
    "seed": 0,
    "data": {"dataset": "digits", "validation_fraction": 0.15},
    "encoders": [{"id": "mlp-1", "arch": "mlp", "latent_dim": 16, "hidden": [32], "seed": 1,
                  "train": {"epochs": 3, "batch_size": 64, "lr": 0.005}}],
    "anchors": {"strategy": "random", "count": 16, "seed": 0},
    "heads": {"hidden": 32, "train": {"epochs": 3, "batch_size": 64, "lr": 0.005}},
    "stitching": {"anchors": [K], "bits": [32], "snr_db": [20.0]},
}
NOTICE = "relcomm: rebuilding {what}: cache file {path} {reason}; moved aside to {path.name}.corrupt"


def test_round_trip_and_key_stability(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = cache_key({"b": 1, "a": [1, 2]})
    assert key == cache_key({"a": [1, 2], "b": 1}) and key != cache_key({"a": [1, 2], "b": 2})
    cache.save("x", key, {"w": torch.arange(5.0), "meta": "ok"})
    out = cache.load("x", key)
    assert torch.equal(out["w"], torch.arange(5.0)) and out["meta"] == "ok"
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
def test_corrupt_truncated_or_undigested_files_are_not_trusted(tmp_path, mmap):
    notices = []
    cache = ArtifactCache(tmp_path, notice=notices.append)
    for name, damage in {
        "flip": lambda p: p.write_bytes(p.read_bytes()[:-40] + bytes(40)),
        "truncate": lambda p: p.write_bytes(p.read_bytes()[:100]),
        "no-digest": lambda p: p.with_suffix(".sha256").unlink(),
    }.items():
        path = cache.save("x", name, {"w": torch.ones(100)})
        damage(path)
        assert cache.load("x", name, mmap=mmap) is None, name
        assert not path.exists() and path.with_name(f"{name}.pt.corrupt").exists(), name
    assert len(cache.corrupt) == 3 and len(notices) == 3
    assert notices[0] == NOTICE.format(what="x entry flip", path=tmp_path / "x" / "flip.pt",
                                       reason="is corrupt (digest mismatch)")
    assert cache.load("x", "absent") is None and len(cache.corrupt) == 3 and len(notices) == 3


def test_pickled_code_is_refused(tmp_path):
    """weights_only loading: a payload that would run code on load is treated as corrupt."""

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    blob = io.BytesIO()
    torch.save({"x": Evil()}, blob, pickle_module=pickle)
    notices = []
    cache = ArtifactCache(tmp_path, notice=notices.append)
    path = cache.path("x", "evil")
    path.parent.mkdir(parents=True)
    path.write_bytes(blob.getvalue())
    path.with_suffix(".sha256").write_text(hashlib.sha256(blob.getvalue()).hexdigest())
    assert cache.load("x", "evil") is None
    assert len(notices) == 1 and "is in the wrong format (not a weights-only torch file" in notices[0]


# ------------------------------------------------------------ rebuilding a zoo's entries
@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A RELCOMM_HOME whose cache holds one encoder, its latents and its K-anchor head, built cold."""
    home = tmp_path_factory.mktemp("pristine-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELCOMM_HOME", str(home))
        zoo = Zoo.build(parse_scenario(copy.deepcopy(SMALL)), log=lambda m: None)
        zoo.relative_head("mlp-1", K)
    return home, zoo


@pytest.fixture
def home(pristine, tmp_path, monkeypatch):
    """A private copy of the pristine cache, set as RELCOMM_HOME for one test."""
    dst = tmp_path / "home"
    shutil.copytree(pristine[0], dst)
    monkeypatch.setenv("RELCOMM_HOME", str(dst))
    return dst


def _entry(home, kind):
    (path,) = (home / "cache" / kind).glob("*.pt")
    return path


def _rewrite(path, payload):
    """Store ``payload`` at ``path`` as a valid torch file with a matching digest."""
    ArtifactCache(path.parent.parent).save(path.parent.name, path.stem, payload)


def _rewrite_raw(path, blob):
    """Store ``blob`` at ``path`` with a matching digest."""
    path.write_bytes(blob)
    path.with_suffix(".sha256").write_text(hashlib.sha256(blob).hexdigest())


def _build(capsys):
    """Build the zoo and its head from the cache; return them with the lines printed on stderr."""
    capsys.readouterr()
    zoo = Zoo.build(parse_scenario(copy.deepcopy(SMALL)), log=lambda m: None)
    head = zoo.relative_head("mlp-1", K)
    return zoo, head, capsys.readouterr().err.splitlines()


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)


def test_valid_cache_hit_prints_nothing(home, pristine, capsys):
    zoo, head, err = _build(capsys)
    assert err == []
    assert not zoo.encoders["mlp-1"].trained_now
    _assert_same_state(head, pristine[1].relative_head("mlp-1", K))


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc/self/maps")
def test_warm_latents_are_memory_mapped_from_the_cache_file(home, pristine, capsys):
    """A warm build maps the latent table from its cache file instead of reading a copy."""
    path = _entry(home, "latents")
    zoo, _, _ = _build(capsys)
    assert str(path) in Path("/proc/self/maps").read_text()
    assert torch.equal(zoo.encoders["mlp-1"].latents_train, pristine[1].encoders["mlp-1"].latents_train)


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "is corrupt (digest mismatch)"),
    (lambda p: p.write_bytes(bytes(b ^ 0x5A for b in p.read_bytes())), "is corrupt (digest mismatch)"),
    (lambda p: p.with_suffix(".sha256").unlink(), "is corrupt (its digest file is missing or unreadable)"),
    (lambda p: _rewrite_raw(p, b"garbage" * 50), "is in the wrong format (not a weights-only torch file: "),
], ids=["truncated", "garbled", "no-digest", "garbage-with-digest"])
def test_corrupt_head_is_rebuilt_with_one_line_naming_it(home, pristine, capsys, damage, reason):
    path = _entry(home, "heads")
    damage(path)
    zoo, head, err = _build(capsys)
    assert len(err) == 1, err
    assert err[0].startswith(f"relcomm: rebuilding head for encoder mlp-1 (K={K}): cache file {path} {reason}")
    assert err[0].endswith(f"; moved aside to {path.name}.corrupt")
    _assert_same_state(head, pristine[1].relative_head("mlp-1", K))
    assert _build(capsys)[2] == []  # the rebuilt entry was stored and is trusted next time


def _head_state(k=K, dtype=torch.float32):
    return {n: v.to(dtype) for n, v in relative_head(k, 1, 32, 10).state_dict().items()}


@pytest.mark.parametrize("payload, reason", [
    ({"state": _head_state(2 * K)}, f"does not fit the model (1.weight has shape (32, {2 * K}), expected (32, {K}))"),
    ({"state": _head_state(dtype=torch.float64)},
     "does not fit the model (1.weight is torch.float64, expected torch.float32)"),
    ({"state": {n: v for n, v in _head_state().items() if n != "3.bias"}}, "does not fit the model (missing 3.bias)"),
    ({"state": {**_head_state(), "1.weight": torch.full((32, K), float("nan"))}},
     "does not fit the model (1.weight holds NaN or infinite values)"),
    ({"weights": _head_state()}, "is in the wrong format (no 'state' dict)"),
], ids=["wrong-shape", "wrong-dtype", "missing-key", "nan", "no-state"])
def test_head_that_does_not_fit_is_rebuilt_not_raised(home, pristine, capsys, payload, reason):
    path = _entry(home, "heads")
    _rewrite(path, payload)
    zoo, head, err = _build(capsys)
    assert err == [NOTICE.format(what=f"head for encoder mlp-1 (K={K})", path=path, reason=reason)]
    _assert_same_state(head, pristine[1].relative_head("mlp-1", K))


def test_encoder_that_does_not_fit_is_retrained(home, pristine, capsys):
    path = _entry(home, "encoders")
    fresh = pristine[1].encoders["mlp-1"]
    state = torch.nn.Sequential(fresh.encoder.module, fresh.head).state_dict()
    _rewrite(path, {"state": {**state, "0.net.3.weight": state["0.net.3.weight"][:8]}})
    messages = []
    capsys.readouterr()
    zoo = Zoo.build(parse_scenario(copy.deepcopy(SMALL)), log=messages.append)
    err = capsys.readouterr().err.splitlines()
    reason = "does not fit the model (0.net.3.weight has shape (8, 32), expected (16, 32))"
    assert err == [NOTICE.format(what="encoder mlp-1", path=path, reason=reason)]
    enc = zoo.encoders["mlp-1"]
    assert enc.trained_now and any("to replace its corrupt cache entry" in m for m in messages)
    _assert_same_state(enc.encoder.module, fresh.encoder.module)
    assert torch.equal(enc.latents_test, fresh.latents_test)


@pytest.mark.parametrize("change, reason", [
    (lambda t: t[:-1], "does not fit the model (train has shape ({n}, 16), expected ({n1}, 16))"),
    (lambda t: torch.cat([t[:5], torch.full_like(t[5:6], float("nan")), t[6:]]),
     "does not fit the model (train holds NaN or infinite values)"),
], ids=["one-row-short", "nan"])
def test_latents_that_do_not_fit_are_recomputed(home, pristine, capsys, change, reason):
    path = _entry(home, "latents")
    fresh = pristine[1].encoders["mlp-1"]
    n1 = len(fresh.latents_train)
    _rewrite(path, {"train": change(fresh.latents_train), "test": fresh.latents_test})
    zoo, _, err = _build(capsys)
    reason = reason.format(n=n1 - 1, n1=n1)
    assert err == [NOTICE.format(what="latents of encoder mlp-1", path=path, reason=reason)]
    assert torch.equal(zoo.encoders["mlp-1"].latents_train, fresh.latents_train)
    assert not zoo.encoders["mlp-1"].trained_now
