"""The V-sweep driver: runs, place-holder backlogs, settled statistics, tradeoff.csv and its plot."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml

from simulator.cli import main as cli_main
from simulator.config import parse_scenario
from simulator.control.tables import AccuracyTable
from simulator.errors import ScenarioError
from simulator.experiment import tradeoff
from simulator.experiment.runner import settled_metrics
from simulator.experiment.tradeoff import COLUMNS, run_tradeoff, static_choice
from simulator.plots import plot_folder, v_sweep_figure
from tests.network.test_lyapunov_world import fake_calibration, g_hat


@pytest.mark.slow
def test_the_sweep_writes_one_run_per_v_and_baseline(sweep_scenario, tiny_zoo, fake_table, tmp_path):
    out = tmp_path / "tradeoff"
    rows = run_tradeoff(sweep_scenario, out, baselines=("static", "greedy"), zoo=tiny_zoo)
    assert [(r["kind"], r["v"]) for r in rows] == [("lyapunov", 1e5), ("lyapunov", 1e7), ("static", None),
                                                   ("greedy", None)]
    with open(out / "tradeoff.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == COLUMNS and len(table) == 4
    assert (out / "plots" / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "plots" / "tradeoff.pdf").exists()
    # place-holder backlogs (auto): one pilot (seed + 1, 4 × the slots) for every V, then cached
    marks = [json.loads((out / f"v={v:g}" / "summary.json").read_text())["placeholders"] for v in (1e5, 1e7)]
    assert marks[0]["source"] in ("pilot", "cached pilot") and marks[1]["source"] == "cached pilot"
    assert marks[0]["pilot_seed"] == sweep_scenario.seed + 1 and marks[0]["pilot_slots"] == 4 * 300
    assert [r["placeholders"] for r in rows[:2]] == [m["source"] for m in marks]
    for v, mark in zip((1e5, 1e7), marks):
        resolved = yaml.safe_load((out / f"v={v:g}" / "scenario.yaml").read_text())
        ctl = resolved["controller"]
        assert resolved["seed"] == sweep_scenario.seed and ctl["v"] == v
        assert ctl["delay_queue_per_v"] == mark["delay_queue_per_v"] == marks[0]["delay_queue_per_v"] > 0
        assert ctl["accuracy_queue_per_v"] == mark["accuracy_queue_per_v"] == marks[0]["accuracy_queue_per_v"]
        assert ctl["initial_delay_queue"] == ctl["initial_accuracy_queue"] == 0.0
    # each row's settled figures come from its own run directory
    for r in rows:
        assert r["tasks_arrived"] == 200 and r["run_dir"].startswith(str(out))
        window = settled_metrics(out / r["run_dir"].rsplit("/", 1)[-1] / "tasks.csv", 100 * 0.01, True)
        assert window.pop("from_s") == 1.0 and r == {**r, **window}
        assert r["constraints_met"] == (r["mean_delay_s"] <= 0.002 * 1.05 and r["accuracy"] >= 0.8 - 0.01)
    static = yaml.safe_load((out / "baseline-static" / "scenario.yaml").read_text())["controller"]
    assert static["kind"] == "static" and rows[2]["energy_bound_per_task_j"] is None
    assert rows[3]["energy_bound_per_task_j"] == pytest.approx(rows[0]["energy_bound_per_task_j"], rel=1e-3)
    assert rows[2]["settled"] is None and rows[0]["settled"] in (True, False)


def test_settled_metrics_count_the_window_only(tmp_path):
    header = ["arrival_s", "status", "delay_s", "correct", "energy_tx_per_task_j", "energy_cpu_per_task_j", "energy_server_per_task_j"]
    rows = [[0.5, "delivered", 0.1, 1, 1.0, 1.0, 1.0],  # before the window
            [1.0, "delivered", 0.002, 1, 1e-3, 2e-3, 4e-3],
            [1.5, "delivered", 0.004, 0, 1e-3, 2e-3, 4e-3],
            [2.0, "dropped", "", "", 1e-3, 0.0, 0.0]]
    with open(tmp_path / "tasks.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    m = settled_metrics(tmp_path / "tasks.csv", 1.0, include_server_energy=True)
    assert (m["tasks_arrived"], m["tasks_delivered"], m["tasks_dropped"]) == (3, 2, 1)
    assert m["mean_delay_s"] == pytest.approx(0.003) and m["accuracy"] == 0.5
    assert m["energy_per_task_j"] == pytest.approx(15e-3 / 3)
    assert settled_metrics(tmp_path / "tasks.csv", 1.0, include_server_energy=False)["energy_per_task_j"] == pytest.approx(7e-3 / 3)


def test_the_static_baseline_is_the_cheapest_option_meeting_the_target(sweep_scenario):
    choice = static_choice(sweep_scenario, AccuracyTable(fake_calibration()))
    meets = [(k * b, k, b) for k in (8, 32, 64) for b in (2, 4, 8) if g_hat("mlp-1", k, b) >= 0.8]
    assert choice == {"kind": "static", "encoder": "mlp-1", "anchors": min(meets)[1], "bits": min(meets)[2]}


@pytest.mark.slow
def test_the_plot_reads_the_csv_alone(tmp_path):
    rows = []
    for v, e, z in ((10, 5e-5, 2.0), (1e3, 2e-5, 40.0), (1e5, 1.9e-5, 4000.0)):
        rows.append({"kind": "lyapunov", "v": v, "energy_per_task_j": e, "decision_energy_per_task_j": e,
                     "energy_bound_per_task_j": 1.8e-5, "optimality_gap": e / 1.8e-5 - 1,
                     "inefficiency_gap": (e / 1.8e-5 - 1) / 2, "settled": v > 100,
                     "delay_queue_per_v": z / v, "delay_multiplier": 2e-3, "accuracy_queue_per_v": z / v / 2,
                     "accuracy_multiplier": 1e-3,
                     "mean_delay_s": 0.0015, "decision_delay_s": 0.0015, "accuracy": 0.87, "decision_accuracy": 0.88,
                     "delay_target_s": 0.0015, "accuracy_target": 0.87, "constraints_met": True})
    rows.append({"kind": "greedy", "energy_per_task_j": 3e-5, "constraints_met": True})
    rows.append({"kind": "min-energy", "energy_per_task_j": 1e-5, "constraints_met": False})
    from simulator.results import write_csv

    write_csv(tmp_path / "tradeoff.csv", COLUMNS, [{c: r.get(c) for c in COLUMNS} for r in rows])
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "tradeoff.csv", alone / "tradeoff.csv")
    png = v_sweep_figure(alone / "tradeoff.csv", alone / "tradeoff.png")
    assert png.stat().st_size > 10_000 and sorted(p.name for p in alone.iterdir()) == ["tradeoff.csv", "tradeoff.pdf",
                                                                                      "tradeoff.png"]
    # `relcomm plot DIR` recognizes the folder and redraws into DIR/plots
    assert plot_folder(alone) == [alone / "plots" / "tradeoff.png"]


def test_the_driver_needs_a_lyapunov_controller_and_v_values(sweep_scenario, tiny_zoo, tmp_path, capsys):
    data = sweep_scenario.model_dump(mode="json")
    data["controller"] = {**data["controller"], "v_sweep": []}
    with pytest.raises(ScenarioError, match="V values"):
        run_tradeoff(parse_scenario(data), tmp_path, zoo=tiny_zoo)
    data["controller"] = {"kind": "static", "anchors": 8, "bits": 8}
    with pytest.raises(ScenarioError) as info:
        run_tradeoff(parse_scenario(data), tmp_path, zoo=tiny_zoo)
    assert info.value.path == "controller.kind"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli_main(["tradeoff", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: controller.kind") and err.count("\n") == 1


@pytest.mark.slow
def test_scenario_multipliers_skip_the_pilot_and_the_sweep_grid_gives_v(sweep_scenario, tiny_zoo, fake_table, tmp_path):
    data = sweep_scenario.model_dump(mode="json")
    data["controller"].update(v_sweep=[], delay_queue_per_v=0.002, accuracy_queue_per_v=0.001)
    data["sweep"] = {"grid": {"controller.v": [1e4, 1e6]}, "seeds": 2}
    rows = run_tradeoff(parse_scenario(data), tmp_path, baselines=("static",), zoo=tiny_zoo)
    assert [r["v"] for r in rows] == [1e4, 1e6, None] and [r["placeholders"] for r in rows[:2]] == ["scenario"] * 2
    # each run is a single run: the sweep section stays out of its resolved scenario
    assert "sweep" not in yaml.safe_load((tmp_path / "baseline-static" / "scenario.yaml").read_text())
    for v in (1e4, 1e6):
        ctl = yaml.safe_load((tmp_path / f"v={v:g}" / "scenario.yaml").read_text())["controller"]
        assert (ctl["delay_queue_per_v"], ctl["accuracy_queue_per_v"]) == (0.002, 0.001)


@pytest.mark.parametrize("flags, message", [(["--baselines", "nope"], "--baselines: unknown baseline 'nope'"),
                                            (["--pilot-slots", "0"], "--pilot-slots: must be a positive")])
def test_bad_tradeoff_flags_are_one_line_input_errors(sweep_scenario, tmp_path, capsys, flags, message):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep_scenario.model_dump(mode="json")))
    assert cli_main(["tradeoff", str(path), "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_pilot_only_refuses_a_static_scenario_before_any_work(sweep_scenario, tmp_path, capsys, monkeypatch):
    data = sweep_scenario.model_dump(mode="json")
    data["controller"] = {"kind": "static", "anchors": 8, "bits": 8}
    path = tmp_path / "static.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(tradeoff.Zoo, "build", lambda *a, **k: pytest.fail("the zoo was built"))
    assert cli_main(["tradeoff", str(path), "--out", str(tmp_path / "out"), "--quiet", "--pilot-only"]) == 2
    assert capsys.readouterr().err.startswith("error: controller.kind")
    assert not (tmp_path / "out").exists()
