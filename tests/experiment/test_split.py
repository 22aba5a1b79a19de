"""One network split into independent cells (relcomm run --executor): the single process's files, byte for byte."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from simulator.cli import main
from simulator.config import parse_scenario
from simulator.experiment.runner import comparable_summary
from simulator.experiment.split import coupling, part_scenario, plan_parts

# Three servers of two devices each: mixed encoders and CPU policies, spread distances with
# shadowing, Poisson traffic heavy enough for queue-full drops, deadlines, two outcome batches
# (> 2048 deliveries), pending tasks at the end, a device-off fault and coded packets on one device.
SPLIT = {
    "channel": {"mode": "ideal", "bandwidth_hz": 2.0e4, "snr_gap_db": 3,
                "link": {"distance_m": 200.0, "fading": "rayleigh", "shadowing_sigma_db": 6.0}},
    "simulation": {"slots": 300, "slot_s": 0.01, "task_timeout_s": 0.08},
    "receivers": [{"id": f"server-{j}", "encoder": enc, "cpu_hz": 2.0e9, "scheduling": sched}
                  for j, (enc, sched) in enumerate([("mlp-2", "fifo"), ("cnn-1", "processor-sharing"),
                                                    ("mlp-2", "fifo")])],
    "transmitters": [{"id": f"dev-{i}", "receiver": f"server-{i % 3}", "encoders": [["mlp-1"], ["cnn-1"]][i % 2],
                      "traffic": {"kind": "poisson", "rate_per_slot": 2.0 + 10 * (i == 4)},
                      "queue": {"capacity": 4}, "link": {"distance_m": 60.0 + 45.0 * i},
                      "radio": {"packet_errors": "fbl" if i == 1 else "none"}}
                     for i in range(6)],
    "faults": {"device_off": [{"transmitter": "dev-2", "start_s": 0.7, "end_s": 1.1}]},
    "controller": {"kind": "static", "anchors": 32, "bits": 4},
    "outputs": {"plots": False},
}


@pytest.fixture
def split_path(tmp_path, tiny_dict, tiny_zoo) -> Path:
    path = tmp_path / "split.yaml"
    path.write_text(yaml.safe_dump({**tiny_dict, **copy.deepcopy(SPLIT)}, sort_keys=False))
    return path


def _same_results(a: Path, b: Path) -> None:
    for name in ("slots.csv", "tasks.csv", "scenario.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert comparable_summary(sa) == comparable_summary(sb)
    assert not (b / ".parts").exists()


def test_parts_are_whole_cells_balanced_by_devices(tiny_dict):
    sc = parse_scenario({**tiny_dict, **copy.deepcopy(SPLIT)})
    assert coupling(sc) is None
    parts = plan_parts(sc, 2)
    assert [(p.transmitters, p.receivers) for p in parts] == [((0, 2, 3, 5), (0, 2)), ((1, 4), (1,))]
    assert len(plan_parts(sc, 8)) == 3
    sub = part_scenario(sc, parts[0])
    assert [t.id for t in sub.transmitters] == ["dev-0", "dev-2", "dev-3", "dev-5"]
    assert [f.transmitter for f in sub.faults.device_off] == ["dev-2"]
    assert part_scenario(sc, parts[1]).faults.device_off == ()


def test_a_split_run_gives_the_single_process_files(split_path, tmp_path, capsys):
    one, local = tmp_path / "one", tmp_path / "local"
    assert main(["run", str(split_path), "--out", str(one), "--quiet"]) == 0
    assert main(["run", str(split_path), "--out", str(local), "--executor", "local", "--workers", "2",
                 "--quiet"]) == 0
    assert "one process" not in capsys.readouterr().err
    summary = json.loads((one / "summary.json").read_text())
    # the scenario exercises what the merge orders: drops, two outcome batches, pending tasks
    assert summary["tasks_delivered"] > 2048 and summary["dropped_by_reason"]["queue-full"] > 0
    assert summary["dropped_by_reason"]["timeout"] > 0 and summary["tasks_pending"] > 0
    _same_results(one, local)
    # the per-cell figure reads summary.json alone: three cells, their delivered-weighted accuracy
    from simulator import plots

    cells = plots._cell_stats(summary["per_agent"])
    assert sorted(cells["devices"].tolist()) == [2, 2, 2]
    first = [summary["per_agent"][d] for d in ("dev-0", "dev-3")]  # server-0's devices, the first cell
    expected = sum(a["accuracy"] * a["tasks_delivered"] for a in first) / sum(a["tasks_delivered"] for a in first)
    assert cells["accuracy"][0] == pytest.approx(expected, rel=1e-12)
    assert plots.cell_distributions(one, tmp_path / "figs").stat().st_size > 0


@pytest.mark.slow
def test_a_split_run_on_a_dask_cluster_gives_the_single_process_files(split_path, tmp_path):
    one, dask = tmp_path / "one", tmp_path / "dask"
    assert main(["run", str(split_path), "--out", str(one), "--quiet"]) == 0
    assert main(["run", str(split_path), "--out", str(dask), "--executor", "dask", "--workers", "2",
                 "--quiet"]) == 0
    _same_results(one, dask)


def test_a_coupled_network_runs_in_one_process_and_says_why(split_path, tmp_path, capsys):
    data = yaml.safe_load(split_path.read_text())
    data["channel"]["mode"] = "digital"
    split_path.write_text(yaml.safe_dump(data))
    assert main(["run", str(split_path), "--out", str(tmp_path / "out"), "--executor", "local", "--quiet",
                 "--set", "simulation.slots=20"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("running in one process: channel.mode digital: every device's payload errors are drawn from "
                    "one shared random stream, in the order the whole network resolves its tasks")]
    assert (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize("argv, flag", [(["--executor", "local", "--workers", "0"], "--workers"),
                                        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
                                        (["--workers", "2"], "--workers"),
                                        (["--executor", "local", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler")])
def test_bad_split_flags_are_one_line_errors(split_path, tmp_path, capsys, argv, flag):
    assert main(["run", str(split_path), "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0]
    assert not (tmp_path / "out").exists()


def test_cells_with_simultaneous_events_are_simulated_again_in_one_process(split_path, tmp_path, capsys):
    data = yaml.safe_load(split_path.read_text())
    for tx in data["transmitters"]:
        tx["traffic"] = {"kind": "deterministic", "rate_per_slot": 1.0}  # every device arrives at t = k·slot_s
    split_path.write_text(yaml.safe_dump(data))
    one, local = tmp_path / "one", tmp_path / "local"
    assert main(["run", str(split_path), "--out", str(one), "--quiet", "--set", "simulation.slots=50"]) == 0
    assert main(["run", str(split_path), "--out", str(local), "--executor", "local", "--workers", "2",
                 "--set", "simulation.slots=50"]) == 0
    assert "tasks of two cells arrived at the same instant" in capsys.readouterr().err
    _same_results(one, local)


def test_city_yaml_is_its_generator_output():
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("make_city", root / "benchmarks" / "make_city.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (root / "scenarios" / "city.yaml").read_text() == module.city_yaml()
    sc = parse_scenario(yaml.safe_load(module.city_yaml()))
    assert (len(sc.transmitters), len(sc.receivers)) == (2000, 100) and coupling(sc) is None
    assert len(plan_parts(sc, 2)) == 2
