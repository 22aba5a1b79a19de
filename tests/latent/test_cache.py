import torch

from simulator.latent.cache import ArtifactCache, cache_key


def test_round_trip_and_key_stability(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = cache_key({"b": 1, "a": [1, 2]})
    assert key == cache_key({"a": [1, 2], "b": 1}) and key != cache_key({"a": [1, 2], "b": 2})
    cache.save("x", key, {"w": torch.arange(5.0), "meta": "ok"})
    out = cache.load("x", key)
    assert torch.equal(out["w"], torch.arange(5.0)) and out["meta"] == "ok"
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temp files


def test_corrupt_truncated_or_undigested_files_are_not_trusted(tmp_path):
    cache = ArtifactCache(tmp_path)
    for name, damage in {
        "flip": lambda p: p.write_bytes(p.read_bytes()[:-40] + bytes(40)),
        "truncate": lambda p: p.write_bytes(p.read_bytes()[:100]),
        "no-digest": lambda p: p.with_suffix(".sha256").unlink(),
    }.items():
        path = cache.save("x", name, {"w": torch.ones(100)})
        damage(path)
        assert cache.load("x", name) is None, name
    assert len(cache.corrupt) == 3
    assert cache.load("x", "absent") is None and len(cache.corrupt) == 3


def test_pickled_code_is_refused(tmp_path):
    """weights_only loading: a payload that would run code on load is treated as corrupt."""
    import hashlib
    import io
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    blob = io.BytesIO()
    torch.save({"x": Evil()}, blob, pickle_module=pickle)
    cache = ArtifactCache(tmp_path)
    path = cache.path("x", "evil")
    path.parent.mkdir(parents=True)
    path.write_bytes(blob.getvalue())
    path.with_suffix(".sha256").write_text(hashlib.sha256(blob.getvalue()).hexdigest())
    assert cache.load("x", "evil") is None
