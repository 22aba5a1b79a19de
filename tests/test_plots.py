"""Plots from result files: the run time series (streamed, binned), and ``relcomm plot`` on a run and a stitch."""

from __future__ import annotations

import csv
import json
import tracemalloc

import numpy as np
import pytest
import yaml

from simulator import plots
from simulator.cli import main
from simulator.config import parse_scenario
from simulator.experiment.runner import run_scenario
from simulator.experiment.stitch import run_stitch
from simulator.network.metrics import SLOT_COLUMNS
from tests.network.conftest import NETWORK, merge

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _synthetic_run(folder, n_slots, tx_ids, extra=(), seed=0, blank_every=0):
    """A run folder with ``summary.json`` and a random ``slots.csv`` (every column of a run, ``extra`` too)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(SLOT_COLUMNS) + list(extra)
    values = rng.random((n_slots, len(tx_ids), len(columns)))
    with open(folder / "slots.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for s in range(n_slots):
            for i, tx in enumerate(tx_ids):
                row = [f"{v:.6g}" for v in values[s, i]]
                row[columns.index("slot")], row[columns.index("transmitter")] = str(s), tx
                if blank_every and s % blank_every == 0:
                    row[columns.index("queue_len")] = ""
                w.writerow(row)
    summary = {"name": "synthetic", "controller": "static", "slots": n_slots, "slot_s": 0.01,
               "per_agent": {tx: {"kind": "transmitter"} for tx in tx_ids}}
    (folder / "summary.json").write_text(json.dumps(summary))
    return values, columns


def test_bins_are_exact_means_minima_and_maxima(tmp_path):
    values, columns = _synthetic_run(tmp_path / "run", 1000, ["a", "b"], extra=["delay_queue"], blank_every=7)
    binned = plots.BinnedSlots(tmp_path / "run" / "slots.csv", 1000, {"a": 0, "b": 1},
                               ["queue_len", "rate_bps", "not_a_column"], max_points=100)
    assert binned.slots_per_bin == 10 and binned.n_bins == 100
    assert binned.columns == ["queue_len", "rate_bps", "delay_queue"]  # virtual queues found, absent columns skipped
    for name in ("rate_bps", "delay_queue"):
        v = np.round(values[:, :, columns.index(name)], 6).T.reshape(2, 100, 10)  # 6 significant digits, as written
        np.testing.assert_allclose(binned.mean[name], v.mean(axis=2), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(binned.lo[name], v.min(axis=2), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(binned.hi[name], v.max(axis=2), rtol=1e-5, atol=1e-6)
    q = values[:, :, columns.index("queue_len")].copy()
    q[::7] = np.nan  # blank cells are left out of their bin, not counted as zeros
    np.testing.assert_allclose(binned.mean["queue_len"], np.nanmean(q.T.reshape(2, 100, 10), axis=2), rtol=1e-4)
    np.testing.assert_allclose(binned.time_s(0.01)[:3], [0.0, 0.1, 0.2])


def test_a_long_file_is_streamed_in_bounded_memory(tmp_path):
    _synthetic_run(tmp_path / "run", 20_000, ["a", "b"])  # 40 000 rows, about 7.5 MB of CSV
    size = (tmp_path / "run" / "slots.csv").stat().st_size
    tracemalloc.start()
    binned = plots.BinnedSlots(tmp_path / "run" / "slots.csv", 20_000, {"a": 0, "b": 1}, ["queue_len", "rate_bps"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert binned.n_bins <= plots.MAX_POINTS and binned.slots_per_bin == 34
    assert peak < size / 2, (peak, size)  # read as a whole, the rows would take several times the file


def test_many_devices_are_pooled_and_virtual_queues_drawn(tmp_path):
    ids = [f"dev-{i}" for i in range(plots.MAX_LINES + 2)]
    _synthetic_run(tmp_path / "run", 300, ids, extra=["delay_queue", "accuracy_queue"])
    png = plots.run_timeseries(tmp_path / "run")
    assert png == tmp_path / "run" / "plots" / "timeseries.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


@pytest.fixture
def run_dir(tmp_path, tiny_dict, tiny_zoo):
    """A tiny run with two devices, a fault and deadlines (drops), written by the runner."""
    update = {**NETWORK, "simulation": {"slots": 400, "slot_s": 0.01, "task_timeout_s": 0.05},
              "channel": {"mode": "digital", "link": {"distance_m": 150.0, "fading": "rayleigh"}},
              "faults": {"link_outages": [{"transmitter": "dev", "start_s": 1.0, "end_s": 1.5}]},
              "controller": {"kind": "static", "anchors": 32, "bits": 8}}
    sc = merge(tiny_dict, update)
    sc["transmitters"].append({"id": "cam", "receiver": "srv", "encoders": ["cnn-1"], "traffic": {"rate_per_slot": 1.0}})
    out = tmp_path / "run"
    run_scenario(parse_scenario(sc), out, zoo=tiny_zoo)
    return out


def test_the_runner_draws_the_run_plots_and_plot_redraws_them(run_dir, capsys):
    png = run_dir / "plots" / "timeseries.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 50_000
    png.unlink()
    png.with_suffix(".pdf").unlink()
    assert main(["plot", str(run_dir)]) == 0
    assert "timeseries" in capsys.readouterr().out
    assert png.read_bytes()[:8] == PNG_MAGIC and png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    assert main(["plot", str(run_dir), "--out", str(run_dir / "elsewhere")]) == 0
    assert (run_dir / "elsewhere" / "timeseries.pdf").is_file()


def test_the_snr_panel_reads_what_the_world_wrote(run_dir):
    """``slots.csv`` carries the received SNR ``γ = p g / (N0 B)``: the plots need no scenario and no channel."""
    with open(run_dir / "slots.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    summary = json.loads((run_dir / "summary.json").read_text())
    n0_b = {tx: 10.0 ** ((-174.0 - 30.0) / 10.0) * summary["per_agent"][tx]["bandwidth_hz"] for tx in ("dev", "cam")}
    sent = [r for r in rows if float(r["power_w"]) > 0]
    assert sent and all(r["snr_db"] == "" for r in rows if float(r["power_w"]) == 0)
    expected = [10.0 * np.log10(float(r["power_w"]) * 10.0 ** (float(r["gain_db"]) / 10.0) / n0_b[r["transmitter"]])
                for r in sent]
    np.testing.assert_allclose([float(r["snr_db"]) for r in sent], expected, atol=1e-9)
    binned = plots.BinnedSlots(run_dir / "slots.csv", 400, {"dev": 0, "cam": 1}, plots._RUN_COLUMNS)
    assert "snr_db" in binned.columns and np.isfinite(binned.mean["snr_db"]).any()


def test_a_failed_plot_does_not_fail_the_run(tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr(plots, "run_timeseries", lambda *a, **k: 1 / 0)
    _synthetic_run(tmp_path / "run", 10, ["a"])
    assert plots.draw_run_plots(tmp_path / "run", messages.append) == []
    assert "ZeroDivisionError" in messages[0] and "relcomm plot" in messages[0]


def test_plot_redraws_a_stitch_folder(tmp_path, tiny_dict, tiny_zoo, capsys):
    # Two of the cached encoders and quickly trained heads: the plots need the shape of the file, not accuracy.
    tiny_dict["encoders"] = tiny_dict["encoders"][1:]
    tiny_dict["heads"] = {"hidden": 32, "train": {"epochs": 2, "batch_size": 128}}
    tiny_dict["stitching"] = {"anchors": [8, 32], "methods": ["absolute", "relative", "procrustes"],
                              "bits": [2, 8, 32], "snr_db": [0.0, 20.0], "noisy_bits": [8], "calibrate": False}
    out = tmp_path / "stitch"
    run_stitch(parse_scenario(tiny_dict), out, lambda _m: None)
    names = ["accuracy_vs_anchors", "accuracy_vs_bits", "accuracy_vs_snr", "retrieval", "stitching_heatmap"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(f"{n}.{e}" for n in names for e in ("pdf", "png"))
    for p in (out / "plots").iterdir():
        p.unlink()
    assert main(["plot", str(out)]) == 0
    assert "wrote 5 plots" in capsys.readouterr().out
    for n in names:
        assert (out / "plots" / f"{n}.png").read_bytes()[:8] == PNG_MAGIC
        assert (out / "plots" / f"{n}.pdf").read_bytes()[:5] == b"%PDF-"
    assert yaml.safe_load((out / "scenario.yaml").read_text())["stitching"]["anchors"] == [8, 32]
    # a folder written before the pair columns were renamed (tx, rx) is redrawn the same way
    for name in ("stitching.csv", "retrieval.csv"):
        head, rest = (out / name).read_text().split("\n", 1)
        assert head.startswith("tx_encoder,rx_encoder,")
        (out / name).write_text(head.replace("tx_encoder,rx_encoder,", "tx,rx,", 1) + "\n" + rest)
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0
    assert "wrote 5 plots" in capsys.readouterr().out
