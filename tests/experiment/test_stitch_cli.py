"""`relcomm stitch` end to end on the tiny scenario, and its behaviour on bad input."""

import csv
import json

import pytest
import yaml

from simulator.cli import main
from simulator.latent import retrieval
from simulator.latent.stitching import COLUMNS


@pytest.fixture
def tiny_file(tmp_path, tiny_dict):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_dict))
    return path


def test_stitch_writes_the_contract(tmp_path, tiny_file, tiny_zoo, capsys):
    out = tmp_path / "out"
    assert main(["stitch", str(tiny_file), "--out", str(out), "--quiet"]) == 0
    with open(out / "stitching.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == COLUMNS
    ideal = [r for r in rows if r["split"] == "test" and r["mode"] == "ideal" and r["bits"] == "32"]
    assert len(ideal) == 9 * (1 + 4 * 3)  # 3×3 pairs × (absolute + 4 methods × 3 anchor counts)
    bits = {int(r["bits"]) for r in rows if r["split"] == "test" and r["mode"] == "ideal" and r["method"] == "relative"}
    assert bits == {1, 2, 4, 8, 32}
    noisy = [r for r in rows if r["mode"] in ("digital", "analog")]
    assert noisy and all(r["snr_db"] != "" for r in noisy)
    assert all(r["snr_db"] == "" for r in ideal)
    val = [r for r in rows if r["split"] == "validation"]
    assert {int(r["anchors"]) for r in val} == {8, 32, 64}
    summary = json.loads((out / "stitch_summary.json").read_text())
    assert set(summary["smallest_bits_within_1pt"]) == {f"{a}->{b}" for a in ("mlp-1", "mlp-2", "cnn-1")
                                                        for b in ("mlp-1", "mlp-2", "cnn-1")}
    for png in ("stitching_heatmap", "accuracy_vs_anchors", "accuracy_vs_bits", "accuracy_vs_snr", "retrieval"):
        assert (out / "plots" / f"{png}.png").stat().st_size > 10_000
    assert yaml.safe_load((out / "scenario.yaml").read_text())["seed"] == 0
    # 1 bit per entry loses accuracy, float32 loses none: the quantizer is really in the path.
    acc = {int(r["bits"]): float(r["accuracy"]) for r in rows if r["split"] == "test" and r["mode"] == "ideal"
           and r["method"] == "relative" and r["tx_encoder"] == "mlp-1" and r["rx_encoder"] == "mlp-2" and r["anchors"] == "64"}
    assert acc[1] < acc[32] - 0.05
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_stitch_writes_retrieval(tmp_path, tiny_file, tiny_zoo):
    out = tmp_path / "out"
    assert main(["stitch", str(tiny_file), "--out", str(out), "--quiet", "--set",
                 "stitching.retrieval_candidates=150"]) == 0
    with open(out / "retrieval.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == retrieval.COLUMNS
    # absolute only where widths agree (mlp-1, mlp-2: 16; cnn-1: 24): 4 + 1 pairs; 4 methods × 3 K × 9 pairs
    assert len(rows) == 5 + 9 * 4 * 3
    assert {r["method"] for r in rows} == {"absolute", "relative", "procrustes", "affine", "inverse-relative"}
    assert {r["candidates"] for r in rows} == {"150"} and {r["split"] for r in rows} == {"test"}
    score = {(r["tx_encoder"], r["rx_encoder"], r["method"], int(r["anchors"])): (float(r["top1"]), float(r["mrr"])) for r in rows}
    assert score[("mlp-1", "mlp-1", "relative", 64)][0] > 0.95  # its own space: (near-)duplicate digits aside
    # independently trained encoders: anchors align them far above chance (1/150), raw latents do not
    assert score[("mlp-1", "mlp-2", "relative", 64)][1] > 5 * score[("mlp-1", "mlp-2", "absolute", 0)][1]
    assert score[("mlp-1", "cnn-1", "relative", 64)][0] > 10 / 150
    assert (out / "plots" / "retrieval.png").stat().st_size > 10_000


def test_rerun_is_identical(tmp_path, tiny_file, tiny_zoo):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["stitch", str(tiny_file), "--out", str(a), "--quiet"]) == 0
    assert main(["stitch", str(tiny_file), "--out", str(b), "--quiet"]) == 0
    assert (a / "stitching.csv").read_bytes() == (b / "stitching.csv").read_bytes()
    assert (a / "retrieval.csv").read_bytes() == (b / "retrieval.csv").read_bytes()


@pytest.mark.parametrize("text", [
    "encoders: [{id: a, arch: mlp, latent_dim: 0}]\n",
    "encoders: [{id: a, arch: mlp}]\nbogus: 1\n",
    "encoders: [\n",
])
def test_bad_scenario_exits_2_with_one_line_and_writes_nothing(tmp_path, text, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = tmp_path / "out"
    assert main(["stitch", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_flags_exit_2(capsys):
    assert main(["stitch"]) == 2
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.count("error:") == 2


def test_validate_and_schema(tiny_file, capsys):
    assert main(["validate", str(tiny_file)]) == 0
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert "encoders" in schema["properties"]
