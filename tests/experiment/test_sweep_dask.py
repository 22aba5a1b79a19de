"""Sweeps through dask.distributed: a LocalCluster the sweep starts, and an existing cluster by address."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from simulator.cli import main
from simulator.experiment.runner import comparable_summary
from simulator.experiment.sweep import expand
from simulator.results import read_csv
from tests.experiment.test_sweep import NETWORK

distributed = pytest.importorskip("distributed")


@pytest.mark.slow
def test_a_sweep_runs_through_dask_and_resumes_on_an_existing_cluster(tmp_path, tiny_dict, tiny_zoo, capsys):
    data = {**tiny_dict, **copy.deepcopy(NETWORK),
            "sweep": {"grid": {"controller.bits": [4, 8]}, "seeds": 1}}
    path, out = tmp_path / "sweep.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(data))

    # 1. the sweep starts its own LocalCluster (worker processes on loopback)
    assert main(["sweep", str(path), "--out", str(out), "--executor", "dask", "--workers", "2", "--quiet"]) == 0
    assert "2 completed now, 0 failed" in capsys.readouterr().out
    rows = read_csv(out / "sweep.csv")
    assert [r["run_dir"] for r in rows] == [r.folder for r in expand(data)]
    assert {r["status"] for r in rows} == {"ok"}
    agg = read_csv(out / "sweep_summary.csv")
    assert [(a["controller.bits"], a["ok"], a["energy_j_ci95"]) for a in agg] == [("4", "1", ""), ("8", "1", "")]
    assert (out / "plots" / "tradeoff.png").stat().st_size > 0

    # 2. one more replicate per point, through a cluster that is already running: only the new runs execute
    data["sweep"]["seeds"] = 2
    path.write_text(yaml.safe_dump(data))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        assert main(["sweep", str(path), "--out", str(out), "--executor", "dask",
                     "--scheduler", cluster.scheduler_address, "--quiet"]) == 0
        ran = cluster.scheduler.task_prefixes["relcomm"].state_counts
        assert ran["memory"] == 2  # the two new runs finished there, nothing was rerun
    assert "4 runs: 2 already done, 2 completed now, 0 failed" in capsys.readouterr().out
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    agg = read_csv(out / "sweep_summary.csv")
    assert [a["ok"] for a in agg] == ["2", "2"] and all(float(a["energy_j_ci95"]) >= 0 for a in agg)

    # the same run through dask and in this process gives the same summary
    from simulator.experiment.sweep import execute_run

    run = expand(data)[0]
    assert execute_run(run.scenario, str(tmp_path / "here"))["status"] == "ok"
    here = json.loads((tmp_path / "here" / "summary.json").read_text())
    there = json.loads((out / run.folder / "summary.json").read_text())
    assert comparable_summary(here) == comparable_summary(there)
