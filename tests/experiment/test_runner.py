"""`relcomm run` and the runner: the results directory contract, atomic publication, conservation, errors."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from simulator import __version__
from simulator.cli import main
from simulator.config import parse_scenario
from simulator.experiment import runner
from simulator.experiment.runner import ConservationError, check_conservation, run_scenario
from simulator.network.metrics import SLOT_COLUMNS, TASK_COLUMNS
from simulator.network.world import RunCounts

NETWORK = {
    "channel": {"mode": "digital", "link": {"distance_m": 150.0, "fading": "rayleigh"}},
    "simulation": {"slots": 200, "slot_s": 0.01, "task_timeout_s": 0.1, "delay_target_s": 0.01,
                   "accuracy_target": 0.5},
    "receivers": [{"id": "srv", "encoder": "mlp-2"}],
    "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"], "traffic": {"rate_per_slot": 1.5}}],
    "faults": {"device_off": [{"transmitter": "dev", "start_s": 0.5, "end_s": 0.8}]},
    "controller": {"anchors": 32, "bits": 8},
}
SUMMARY_KEYS = {"slots", "tasks_arrived", "tasks_delivered", "tasks_dropped", "tasks_pending", "accuracy",
                "mean_delay_s", "p95_delay_s", "avg_power_w", "energy_j", "delay_target_s", "accuracy_target",
                "delay_met", "accuracy_met", "seed", "wall_s", "per_agent"}


@pytest.fixture
def net_file(tmp_path, tiny_dict, tiny_zoo):  # tiny_zoo: the encoders are in the private cache
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump({**tiny_dict, **NETWORK}))
    return path


def test_run_writes_the_results_directory(tmp_path, net_file, capsys):
    out = tmp_path / "res"
    assert main(["run", str(net_file), "--out", str(out), "--quiet"]) == 0
    assert "tasks delivered" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [".relcomm-results.json", "plots", "scenario.yaml", "slots.csv",
                                                     "summary.json", "tasks.csv"]
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["tasks_arrived"] == summary["tasks_delivered"] + summary["tasks_dropped"] + summary["tasks_pending"]
    assert summary["delay_met"] == (summary["mean_delay_s"] <= 0.01)
    assert set(summary["per_agent"]) == {"dev", "srv"}
    resolved = yaml.safe_load((out / "scenario.yaml").read_text())
    assert resolved["seed"] == 0 and resolved["version"] == __version__
    assert parse_scenario(resolved) == parse_scenario({**yaml.safe_load(net_file.read_text())})
    with open(out / "slots.csv") as fh:
        slots = list(csv.DictReader(fh))
    with open(out / "tasks.csv") as fh:
        tasks = list(csv.DictReader(fh))
    assert tuple(slots[0]) == SLOT_COLUMNS and len(slots) == 200
    assert tuple(tasks[0]) == TASK_COLUMNS and len(tasks) == summary["tasks_arrived"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".res")]  # no staging left behind


def test_rerun_replaces_the_folder_and_is_identical_but_for_wall_time(tmp_path, net_file):
    out = tmp_path / "res"
    assert main(["run", str(net_file), "--out", str(out), "--quiet"]) == 0
    first = json.loads((out / "summary.json").read_text())
    tasks = (out / "tasks.csv").read_bytes()
    (out / "stale.txt").write_text("x")
    assert main(["run", str(net_file), "--out", str(out), "--quiet"]) == 0
    second = json.loads((out / "summary.json").read_text())
    assert not (out / "stale.txt").exists()
    assert runner.comparable_summary(first) == runner.comparable_summary(second)
    assert (out / "tasks.csv").read_bytes() == tasks
    # the results folder's own scenario.yaml (resolved, with the version that wrote it) runs again, the same
    again = tmp_path / "again"
    assert main(["run", str(out / "scenario.yaml"), "--out", str(again), "--quiet"]) == 0
    assert runner.comparable_summary(json.loads((again / "summary.json").read_text())) == \
        runner.comparable_summary(first)
    assert (again / "tasks.csv").read_bytes() == tasks


def test_a_failed_run_leaves_the_old_results_alone(tmp_path, net_file, tiny_zoo, monkeypatch):
    out = tmp_path / "res"
    assert main(["run", str(net_file), "--out", str(out), "--quiet"]) == 0
    before = (out / "summary.json").read_bytes()

    def broken(self, folder, log=None):
        (folder / "slots.csv").write_text("partial")
        raise RuntimeError("boom")

    monkeypatch.setattr(runner.World, "run", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run_scenario(parse_scenario(yaml.safe_load(net_file.read_text())), out, zoo=tiny_zoo)
    assert (out / "summary.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".res")]


def test_conservation_check_raises_on_a_lost_task(tmp_path, net_file, tiny_zoo, monkeypatch):
    check_conservation(RunCounts(10, 7, 2, 1))
    with pytest.raises(ConservationError, match="arrived 10"):
        check_conservation(RunCounts(10, 7, 2, 0))
    # A world that loses a task (here: one silently removed from the pending count) fails the run.
    original = runner.World.pending_tasks
    monkeypatch.setattr(runner.World, "pending_tasks", lambda self: original(self)[1:])
    sc = parse_scenario({**yaml.safe_load(net_file.read_text()),
                         "simulation": {"slots": 200, "slot_s": 0.01}, "faults": {}})
    sc = sc.model_copy(update={"receivers": (sc.receivers[0].model_copy(update={"cpu_hz": 1e3}),)})
    with pytest.raises(ConservationError):
        run_scenario(sc, tmp_path / "lost", zoo=tiny_zoo)
    assert not (tmp_path / "lost").exists()


@pytest.mark.parametrize("edit, where", [
    ({"transmitters": [{"id": "dev", "receiver": "nope", "encoders": ["mlp-1"]}]}, "transmitters[0].receiver"),
    ({"transmitters": [], "faults": {}}, "transmitters"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, tiny_dict, edit, where, capsys, monkeypatch):
    # refused before any work: no encoder is trained (a cold cache would print its training lines first)
    monkeypatch.setattr(runner.Zoo, "build", lambda *a, **k: pytest.fail("the zoo was built for a bad scenario"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**tiny_dict, **NETWORK, **edit}))
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {where}") and "\n" not in err
    assert not (tmp_path / "o").exists()
