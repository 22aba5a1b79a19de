"""Sweeps: grid × zip × seeds expansion, spec validation, aggregation, failed runs, and resume after kill -9."""

from __future__ import annotations

import copy
import json
import math
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from simulator.cli import main
from simulator.config import parse_scenario
from simulator.errors import ScenarioError
from simulator.experiment.sweep import aggregate, expand, load_sweep, mean_ci95, run_key, run_row, run_sweep
from simulator.plots import plot_folder, tradeoff_curves
from simulator.results import read_csv, write_csv
from simulator.rng import SeedTree

ROOT = Path(__file__).resolve().parents[2]

# scenarios/quickstart.yaml's network on the tiny digits encoders (mlp-1 → mlp-2, as in the runner
# tests, so the receiver head for K = 32 is shared with them through the cache), and few slots.
NETWORK = {
    "channel": {"noise_psd_dbm_hz": -174, "bandwidth_hz": 1.0e6, "snr_gap_db": 6, "mode": "digital",
                "modulation": "16qam", "header_bits": 64, "link": {"distance_m": 400.0, "fading": "rayleigh"}},
    "simulation": {"slots": 100, "slot_s": 0.01, "task_timeout_s": 0.5, "delay_target_s": 0.005,
                   "accuracy_target": 0.8},
    "receivers": [{"id": "server", "encoder": "mlp-2", "cpu_hz": 2.0e9, "flops_per_cycle": 8}],
    "transmitters": [{"id": "camera", "receiver": "server", "encoders": ["mlp-1"],
                      "traffic": {"kind": "poisson", "rate_per_slot": 2.0},
                      "queue": {"capacity": 32}, "cpu": {"f_min_hz": 2.0e8, "f_max_hz": 1.0e9},
                      "radio": {"max_power_w": 0.2, "max_attempts": 4}}],
    "controller": {"kind": "static", "anchors": 32, "bits": 8, "rate_bps": 4.0e6},
}
SUMMARY_KEYS = {"slots", "tasks_arrived", "tasks_delivered", "tasks_dropped", "tasks_pending", "accuracy",
                "mean_delay_s", "p95_delay_s", "avg_power_w", "energy_j", "delay_target_s", "accuracy_target",
                "delay_met", "accuracy_met", "seed", "wall_s", "per_agent"}


@pytest.fixture
def sweep_dict(tiny_dict):
    return {**tiny_dict, **copy.deepcopy(NETWORK)}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------- expansion


def test_grid_zip_and_seeds_multiply_and_expand_deterministically(sweep_dict):
    sweep_dict["sweep"] = {"grid": {"controller.bits": [4, 8], "transmitters[0].traffic.rate_per_slot": [1.0, 2.0]},
                           "zip": [{"controller.anchors": [8, 32], "channel.link.distance_m": [300, 400]}],
                           "seeds": 3}
    runs = expand(sweep_dict)
    assert len(runs) == 2 * 2 * 2 * 3
    assert [r.index for r in runs] == list(range(len(runs)))
    again = expand(copy.deepcopy(sweep_dict))
    assert [(r.key, r.seed, r.scenario) for r in runs] == [(r.key, r.seed, r.scenario) for r in again]
    assert len({r.key for r in runs}) == len(runs)
    # zipped paths advance together; grid axes combine with every zip row
    assert {(r.values["controller.anchors"], r.values["channel.link.distance_m"]) for r in runs} == {(8, 300), (32, 400)}
    assert len({tuple(r.values.values()) for r in runs}) == 8
    for r in runs:
        sc = r.scenario
        assert "sweep" not in sc and sc["seed"] == r.seed and run_key(sc) == r.key
        assert sc["controller"]["bits"] == r.values["controller.bits"]
        assert sc["controller"]["anchors"] == r.values["controller.anchors"]
        assert sc["transmitters"][0]["traffic"]["rate_per_slot"] == r.values["transmitters[0].traffic.rate_per_slot"]
        # set on the raw data: the transmitter's link still inherits the swept channel.link
        assert sc["transmitters"][0]["link"]["distance_m"] == r.values["channel.link.distance_m"]
        assert parse_scenario(sc).sweep is None
    # replicate r has one seed at every grid point (common random numbers), distinct across replicates
    seeds = defaultdict(set)
    for r in runs:
        seeds[r.replicate].add(r.seed)
    assert sorted(seeds) == [0, 1, 2] and all(len(s) == 1 for s in seeds.values())
    assert {r: s.pop() for r, s in seeds.items()} == {r: SeedTree(0).child("sweep", r).integer() for r in range(3)}


def test_a_scenario_seed_changes_every_replicate_seed(sweep_dict):
    sweep_dict["sweep"] = {"seeds": 2}
    first = [r.seed for r in expand(sweep_dict)]
    second = [r.seed for r in expand({**sweep_dict, "seed": 1})]
    assert len(first) == 2 and not set(first) & set(second)


@pytest.mark.parametrize("sweep, path, message", [
    ({"grid": {"simulation.slotz": [10]}}, "sweep.grid.simulation.slotz", "not a scenario field"),
    ({"grid": {"simulation.slots": [10, -1]}}, "sweep.grid.simulation.slots", "value -1 is invalid"),
    ({"grid": {"transmitters[3].id": ["x"]}}, "sweep.grid.transmitters[3].id", "out of range"),
    ({"grid": {"controller.bits": []}}, "sweep.grid.controller.bits", "at least 1"),
    ({"zip": [{"controller.bits": [4, 8], "controller.anchors": [8]}]}, "sweep.zip[0]", "equal lengths"),
    ({"grid": {"controller": [{"kind": "static"}]}, "zip": [{"controller.bits": [4]}]},
     "sweep.zip[0].controller.bits", "overlaps the axis 'controller'"),
    ({"grid": {"seed": [1, 2]}}, "sweep.grid.seed", "sweep.seeds"),
    ({"grid": {"sweep.seeds": [2]}}, "sweep.grid.sweep.seeds", "cannot sweep itself"),
    ({"seeds": 0}, "sweep.seeds", "greater than 0"),
])
def test_an_invalid_sweep_spec_is_one_line_naming_the_axis(tmp_path, sweep_dict, capsys, sweep, path, message):
    sweep_dict["sweep"] = sweep
    assert main(["validate", str(_write(tmp_path, sweep_dict))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}") and message in err and "\n" not in err


def test_values_valid_alone_but_not_together_fail_at_expansion(sweep_dict):
    sweep_dict["stitching"] = {"anchors": [8, 32]}
    sweep_dict["sweep"] = {"grid": {"anchors.count": [64, 32], "controller.anchors": [32, 64]}}
    parse_scenario(sweep_dict)  # each value alone is fine
    with pytest.raises(ScenarioError, match=r"anchors.count = 32, controller.anchors = 64 is invalid") as exc:
        expand(sweep_dict)
    assert exc.value.path == "sweep"


def test_two_runs_with_the_same_resolved_scenario_are_refused(sweep_dict):
    sweep_dict["sweep"] = {"grid": {"controller.bits": [8, 8]}}
    with pytest.raises(ScenarioError, match="resolve to the same scenario"):
        expand(sweep_dict)


def test_sweep_needs_a_sweep_section(tmp_path, sweep_dict, capsys):
    assert main(["sweep", str(_write(tmp_path, sweep_dict)), "--out", str(tmp_path / "o")]) == 2
    assert "no sweep section" in capsys.readouterr().err


def test_set_overrides_reach_the_sweep_section(tmp_path, sweep_dict):
    data, scenario = load_sweep(_write(tmp_path, sweep_dict), ["sweep={grid: {controller.bits: [4, 8]}}",
                                                               "sweep.seeds=3"])
    assert scenario.sweep.seeds == 3 and len(expand(data)) == 6


@pytest.mark.parametrize("flags, message", [
    (["--workers", "0"], "error: --workers: must be at least 1"),
    (["--scheduler", "tcp://127.0.0.1:1"], "error: --scheduler: --scheduler needs --executor dask"),
    (["--executor", "ray"], "invalid choice"),
])
def test_bad_executor_flags_are_input_errors(tmp_path, sweep_dict, capsys, flags, message):
    sweep_dict["sweep"] = {"seeds": 1}
    assert main(["sweep", str(_write(tmp_path, sweep_dict)), "--out", str(tmp_path / "o"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- aggregation


def test_replicate_means_and_student_t_intervals():
    rows = [{"run": i, "x": x, "status": "ok", "energy_j": e, "delay_met": met, "accuracy": acc}
            for i, (x, e, met, acc) in enumerate([(1, 1.0, True, 0.5), (1, 2.0, False, None), (1, 3.0, True, 0.7),
                                                  (2, 5.0, True, 0.9)])]
    rows.append({"run": 4, "x": 2, "status": "failed", "error": "boom"})
    columns, agg = aggregate(["x"], rows)
    assert columns[:4] == ["x", "runs", "ok", "failed"] and "energy_j_ci95" in columns
    one, two = agg
    assert (one["runs"], one["ok"], one["failed"], two["runs"], two["ok"], two["failed"]) == (3, 3, 0, 2, 1, 1)
    assert one["energy_j_mean"] == pytest.approx(2.0)
    assert one["energy_j_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert one["delay_met_mean"] == pytest.approx(2 / 3)
    assert one["accuracy_mean"] == pytest.approx(0.6)  # over the runs where it is defined
    assert two["energy_j_mean"] == 5.0 and two["energy_j_ci95"] is None  # n = 1: no interval
    assert mean_ci95(np.array([])) == (None, None)


def test_the_tradeoff_plot_reads_the_summary_alone(tmp_path):
    rows = [{"run": i, "controller.kind": kind, "controller.v": v, "status": "ok", "energy_j": e + 0.01 * r,
             "mean_delay_s": 1e-3 * v, "accuracy": 0.8 + 0.01 * r}
            for i, (kind, v, e, r) in enumerate((k, v, e, r) for k, e in (("lyapunov", 1.0), ("greedy", 2.0))
                                               for v in (1, 10) for r in range(2))]
    columns, agg = aggregate(["controller.kind", "controller.v"], rows)
    write_csv(tmp_path / "sweep_summary.csv", columns, agg)
    png = tradeoff_curves(tmp_path / "sweep_summary.csv", tmp_path / "plots" / "tradeoff.png")
    assert png is None  # no energy per task: neither settled figures nor tasks_arrived
    for r in rows:
        r["tasks_arrived"] = 100
    columns, agg = aggregate(["controller.kind", "controller.v"], rows)
    write_csv(tmp_path / "sweep_summary.csv", columns, agg)
    png = tradeoff_curves(tmp_path / "sweep_summary.csv", tmp_path / "plots" / "tradeoff.png")
    assert png.stat().st_size > 0 and png.with_suffix(".pdf").exists()
    write_csv(tmp_path / "other.csv", ["x", "runs"], [{"x": 1, "runs": 1}])
    assert tradeoff_curves(tmp_path / "other.csv", tmp_path / "none.png") is None  # nothing to draw


def test_the_tradeoff_plot_uses_the_settled_window_and_draws_the_v_panels(tmp_path):
    rows = [{"run": i, "controller.v": v, "status": "ok", "settled.energy_per_task_j": 4e-5 * (1 + 1 / v) + 1e-7 * r,
             "settled.mean_delay_s": 1.5e-3, "settled.accuracy": 0.87, "optimality_gap": 1 / v + 0.001 * r,
             "controller_stats.delay_queue_mean": 0.03 * v, "controller_stats.accuracy_queue_mean": 0.02 * v}
            for i, (v, r) in enumerate((v, r) for v in (10.0, 100.0, 1000.0) for r in range(3))]
    columns, agg = aggregate(["controller.v"], rows)
    write_csv(tmp_path / "sweep_summary.csv", columns, agg)
    one_row = tradeoff_curves(tmp_path / "sweep_summary.csv", tmp_path / "a.png")
    # `relcomm plot DIR` on a sweep folder: the same figure into DIR/plots
    assert plot_folder(tmp_path) == [tmp_path / "plots" / "tradeoff.png"]
    import matplotlib.image as mpimg

    height, width = mpimg.imread(one_row).shape[:2]
    assert height > 0.6 * width  # two rows of panels (trade-off curves, then the V panels)


def test_a_runs_row_takes_the_summary_sections_one_level_down(sweep_dict):
    run = expand({**sweep_dict, "sweep": {"grid": {"simulation.slots": [20]}}})[0]
    record = {"energy_j": 2.0, "settled": {"accuracy": 0.9, "tasks": 10}, "per_agent": {"d": {"x": 1}},
              "offline_bound": {"status": "optimal", "delay_multiplier": [0.1]}}
    row = run_row(run, "ok", record)
    assert row["energy_j"] == 2.0 and row["settled.accuracy"] == 0.9 and row["settled.tasks"] == 10
    assert row["offline_bound.status"] == "optimal"
    assert not any(k.startswith("per_agent") or k == "offline_bound.delay_multiplier" for k in row)


# --------------------------------------------------------------------------- running


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, sweep_dict, tiny_zoo, capsys):
    # no transmitters is a valid scenario but not a network run: the World raises
    sweep_dict["sweep"] = {"grid": {"transmitters": [sweep_dict["transmitters"], []]}}
    path, out = _write(tmp_path, sweep_dict), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]) == 1
    assert "1 runs failed" in capsys.readouterr().err
    rows = read_csv(out / "sweep.csv")
    assert [r["status"] for r in rows] == ["ok", "failed"]
    failed_dir = out / rows[1]["run_dir"]
    failed = json.loads((failed_dir / "failed.json").read_text())
    assert "at least one transmitter" in failed["error"] and "\n" not in failed["error"]
    assert rows[1]["error"] == failed["error"] and rows[1]["transmitters"] == "[]"
    resolved = yaml.safe_load((failed_dir / "scenario.yaml").read_text())
    assert resolved.pop("version") and parse_scenario(resolved).transmitters == ()
    assert not (failed_dir / "summary.json").exists()
    agg = read_csv(out / "sweep_summary.csv")
    assert [(a["ok"], a["failed"]) for a in agg] == [("1", "0"), ("0", "1")]
    assert float(agg[0]["energy_j_mean"]) > 0 and agg[0]["energy_j_ci95"] == ""
    # started again: the completed run is kept as it is, the failed one is tried again
    done = out / rows[0]["run_dir"] / "summary.json"
    stamp = done.stat().st_mtime_ns
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]) == 1
    assert "1 already done, 0 completed now, 1 failed" in capsys.readouterr().out
    assert done.stat().st_mtime_ns == stamp
    assert json.loads((failed_dir / "failed.json").read_text())["time"] >= failed["time"]


def _published(out: Path) -> list[Path]:
    """summary.json of the published run folders (a hidden staging folder may hold one too)."""
    return [p for p in out.glob("runs/*/summary.json") if not p.parent.name.startswith(".")]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_a_sweep_killed_mid_way_resumes_with_every_run_exactly_once(tmp_path, sweep_dict, tiny_zoo):
    sweep_dict["sweep"] = {"grid": {"controller.bits": [4, 8]}, "seeds": 3}
    path, out = _write(tmp_path, sweep_dict), tmp_path / "out"
    runs = expand(sweep_dict)
    cmd = [sys.executable, "-m", "simulator", "sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not _published(out):
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, "no run completed in time"
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    # the workers die with the sweep, so nothing writes into the folder behind the restart's back
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived the killed sweep"
        time.sleep(0.05)
    before = {p.parent.name: p.stat().st_mtime_ns for p in _published(out)}
    assert 1 <= len(before) < len(runs), "the kill came too late to test a resume"

    report = run_sweep(sweep_dict, out, "local", workers=2)
    assert (report.runs, report.skipped, report.completed, report.failed) == (len(runs), len(before),
                                                                              len(runs) - len(before), 0)
    entries = sorted(p.name for p in (out / "runs").iterdir())
    assert entries == sorted(r.key for r in runs)  # one folder per run, no staging left behind
    assert {k: (out / "runs" / k / "summary.json").stat().st_mtime_ns for k in before} == before  # not rerun
    rows = read_csv(out / "sweep.csv")
    assert [r["run_dir"] for r in rows] == [r.folder for r in runs]
    assert len({r["run_dir"] for r in rows}) == len(runs) and {r["status"] for r in rows} == {"ok"}
    for run, row in zip(runs, rows):
        summary = json.loads((out / run.folder / "summary.json").read_text())
        assert SUMMARY_KEYS <= set(summary) and summary["seed"] == run.seed == int(row["seed"])
        assert summary["tasks_arrived"] == summary["tasks_delivered"] + summary["tasks_dropped"] + summary["tasks_pending"]
        resolved = yaml.safe_load((out / run.folder / "scenario.yaml").read_text())
        resolved.pop("version")
        assert resolved == run.scenario
    agg = read_csv(out / "sweep_summary.csv")
    assert [(a["controller.bits"], a["ok"]) for a in agg] == [("4", "3"), ("8", "3")]
    assert all(float(a["energy_j_ci95"]) >= 0 for a in agg)
    assert (out / "plots" / "tradeoff.png").stat().st_size > 0
