"""relcomm frontier: the bound's frontier over target pairs, feasibility, the simulated policies, the figure, the CLI."""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil

import numpy as np
import pytest

from simulator.cli import main as cli_main
from simulator.config import parse_scenario, scenario_to_dict
from simulator.experiment import frontier, pilot, runner, sweep, tradeoff
from simulator.experiment.frontier import COLUMNS, frontier_plan, read_trace, run_frontier
from simulator.plots_frontier import frontier_figure
from tests.conftest import TINY
from tests.network.conftest import NETWORK, merge
from tests.network.test_lyapunov_world import DYNAMIC, fake_calibration

DELAYS = (0.0012, 0.0016, 0.002, 0.003, 0.004, 0.006)
ACCS = (0.7, 0.8, 0.85, 0.99)  # 0.99 is beyond every option's Ĝ (at most 0.95 in the synthetic table)


class InProcess:
    """The executor protocol, run in this process (so the synthetic Ĝ patched in here reaches the runs)."""

    workers = 1
    description = "in process"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, jobs):
        for name, fn, args in jobs:
            yield name, fn(*args)


@pytest.fixture(scope="module")
def frontier_dir(tmp_path_factory, tiny_zoo):
    """One frontier of the tiny network: 6 × 4 bound pairs, 2 × 2 simulated (module-scoped: runs once)."""
    mp = pytest.MonkeyPatch()
    rows = lambda zoo, log=None: fake_calibration()  # noqa: E731
    for module in (runner, tradeoff, frontier, sweep):
        mp.setattr(module, "calibration_rows", rows)
    data = merge(merge(copy.deepcopy(TINY), NETWORK), DYNAMIC)
    data["simulation"].update(slots=400, delay_target_s=0.002, accuracy_target=0.8)
    data["controller"] = {"kind": "lyapunov", "anchors": [8, 32, 64], "bits": [2, 4, 8], "mu": 1e3, "nu": 10.0,
                          "settle_slots": 100}
    data["frontier"] = {"delay_targets_s": list(DELAYS), "accuracy_targets": list(ACCS),
                        "run_delay_targets_s": [0.002, 0.004], "run_accuracy_targets": [0.8, 0.85], "v": 1e6}
    scenario = parse_scenario(data)
    out = tmp_path_factory.mktemp("frontier") / "out"
    report = run_frontier(scenario, out, frontier_plan(scenario), executor=InProcess(), zoo=tiny_zoo)
    yield scenario, out, report
    mp.undo()


def _rows(out):
    with open(out / "frontier.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _f(cell):
    return math.nan if cell == "" else float(cell)


def _bound(rows):
    return {(float(r["delay_target_s"]), float(r["accuracy_target"])): r for r in rows if r["policy"] == "bound"}


@pytest.mark.slow
def test_the_csv_has_one_row_per_pair_and_policy(frontier_dir):
    scenario, out, report = frontier_dir
    rows = _rows(out)
    assert tuple(rows[0])[:len(COLUMNS)] == COLUMNS
    assert {c for c in rows[0] if c.startswith("share_")} == {"share_mlp-1", "share_cnn-1"}
    assert len(_bound(rows)) == len(DELAYS) * len(ACCS) == report.pairs
    runs = [r for r in rows if r["policy"] != "bound"]
    pairs = {(l, a) for l in (0.002, 0.004) for a in (0.8, 0.85)}
    feasible = {p for p in pairs if _bound(rows)[p]["feasible"] == "True"}
    assert feasible  # the tiny scenario can meet these
    for policy in ("lyapunov", "greedy", "static", "max-accuracy", "min-energy"):
        mine = {(float(r["delay_target_s"]), float(r["accuracy_target"])) for r in runs if r["policy"] == policy}
        assert mine == feasible, policy
    assert all(r["error"] == "" for r in runs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 24 and summary["trace_run"] == "runs/max-accuracy"
    assert (out / "plots" / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_bound_falls_as_the_delay_target_loosens_and_rises_with_the_accuracy_target(frontier_dir):
    _, out, _ = frontier_dir
    bound = _bound(_rows(out))
    rtol = 1e-6  # the dual's certificate (rtol 1e-8) with room for the search's stopping rule
    for a in ACCS:
        energies = [_f(bound[(l, a)]["energy_per_task_j"]) for l in DELAYS if bound[(l, a)]["feasible"] == "True"]
        assert all(e2 <= e1 * (1 + rtol) for e1, e2 in zip(energies, energies[1:])), (a, energies)
        # once feasible, looser delay targets stay feasible
        flags = [bound[(l, a)]["feasible"] == "True" for l in DELAYS]
        assert flags == sorted(flags)
    for l in DELAYS:
        energies = [_f(bound[(l, a)]["energy_per_task_j"]) for a in ACCS if bound[(l, a)]["feasible"] == "True"]
        assert all(e2 >= e1 * (1 - rtol) for e1, e2 in zip(energies, energies[1:])), (l, energies)
    assert sum(r["feasible"] == "True" for r in bound.values()) > len(DELAYS)  # not a trivial grid


@pytest.mark.slow
def test_a_pair_beyond_the_best_reachable_g_is_infeasible_and_feasibility_follows_the_least_delay(frontier_dir):
    _, out, _ = frontier_dir
    bound = _bound(_rows(out))
    for (l, a), r in bound.items():
        best_acc, best_delay, a_min = _f(r["best_accuracy"]), _f(r["best_delay_s"]), _f(r["accuracy_min"])
        assert best_acc <= 0.95 + 1e-12  # the synthetic table's best option
        if a == 0.99:
            assert r["feasible"] == "False" and r["bound_status"] == "infeasible"
            assert a_min > best_acc and math.isinf(best_delay) and r["energy_per_task_j"] == ""
        elif r["feasible"] == "True":
            assert best_delay <= l * (1 + 1e-9)
            # the relaxed optimum meets both targets
            assert _f(r["decision_delay_s"]) <= l * (1 + 1e-6)
            assert _f(r["decision_accuracy"]) >= a_min - 1e-6
            assert 8 <= _f(r["mean_anchors"]) <= 64 and 2 <= _f(r["mean_bits"]) <= 8
            assert _f(r["share_mlp-1"]) + _f(r["share_cnn-1"]) == pytest.approx(1.0)
        else:
            # infeasible below the least reachable delay (up to the bisection's resolution)
            assert best_delay >= l * (1 - 1e-3)


@pytest.mark.slow
def test_the_least_reachable_delay_is_where_the_dual_turns_infeasible(frontier_dir, tiny_zoo):
    """Just below the least reachable delay the oracle itself finds the pair infeasible; just above, feasible."""
    scenario, out, _ = frontier_dir
    plan = frontier_plan(scenario)
    mp = pytest.MonkeyPatch()
    mp.setattr(frontier, "calibration_rows", lambda zoo, log=None: fake_calibration())
    try:
        controller = frontier.table_controller(scenario, plan, tiny_zoo, fake_calibration())
    finally:
        mp.undo()
    gain, active = read_trace(out / "runs" / "max-accuracy" / "slots.csv", 1, 100)
    trace = frontier.bound_trace(controller, gain, active, (100, 400))
    bound = _bound(_rows(out))
    a_min = _f(bound[(DELAYS[0], 0.85)]["accuracy_min"])
    best_delay, best_acc = frontier.reachable(trace, a_min)
    assert best_delay[0] == pytest.approx(_f(bound[(DELAYS[0], 0.85)]["best_delay_s"]))
    assert frontier.bound_at(trace, best_delay[0] * 0.98, a_min).status == "infeasible"
    assert frontier.bound_at(trace, best_delay[0] * 1.02, a_min).status != "infeasible"
    assert frontier.bound_at(trace, 1.0, best_acc[0] + 1e-3).status == "infeasible"
    assert frontier.bound_at(trace, 1.0, best_acc[0] - 1e-3).status != "infeasible"


@pytest.mark.slow
def test_the_frontier_bound_is_the_bound_the_runner_reports_at_that_pair(frontier_dir):
    _, out, _ = frontier_dir
    rows = _rows(out)
    for r in (r for r in rows if r["policy"] == "lyapunov"):
        summary = json.loads((out / "runs" / r["run_dir"].rsplit("/", 1)[-1] / "summary.json").read_text())
        assert _f(r["energy_bound_per_task_j"]) == pytest.approx(summary["energy_bound_per_task_j"], rel=1e-6)
        if summary["optimality_gap"] is not None and r["optimality_gap"] != "":
            assert _f(r["optimality_gap"]) == pytest.approx(summary["optimality_gap"], abs=1e-6)


@pytest.mark.slow
def test_every_run_sees_the_trace_the_bound_was_computed_on(frontier_dir):
    scenario, out, _ = frontier_dir
    traces = [read_trace(d / "slots.csv", 1, 100) for d in sorted((out / "runs").iterdir())
              if (d / "slots.csv").exists()]
    assert len(traces) >= 5
    for gain, active in traces[1:]:
        np.testing.assert_array_equal(gain, traces[0][0])
        np.testing.assert_array_equal(active, traces[0][1])


@pytest.mark.slow
def test_the_controller_is_never_below_the_frontier_by_more_than_its_noise(frontier_dir):
    """Decisions: E ≥ bound − λ*·(delay excess)⁺ − η*·(Ĝ shortfall)⁺ (the multipliers are subgradients of the
    least energy in the targets, so a policy that misses a target by δ can undercut the bound by at most
    multiplier × δ); realized: the same, less 3 standard errors of the window's mean energy per task."""
    _, out, _ = frontier_dir
    rows = [r for r in _rows(out) if r["policy"] == "lyapunov"]
    assert rows
    for r in rows:
        bound = _f(r["energy_bound_per_task_j"])
        slack = (_f(r["delay_multiplier"]) * max(0.0, _f(r["decision_delay_s"]) - _f(r["delay_target_s"]))
                 + _f(r["accuracy_multiplier"]) * max(0.0, _f(r["accuracy_min"]) - _f(r["decision_accuracy"])))
        assert _f(r["decision_energy_per_task_j"]) >= bound - slack - 1e-6 * bound
        with open(out / "runs" / r["run_dir"].rsplit("/", 1)[-1] / "tasks.csv", newline="") as fh:
            energy = np.array([float(t["energy_tx_per_task_j"]) + float(t["energy_cpu_per_task_j"]) + float(t["energy_server_per_task_j"])
                               for t in csv.DictReader(fh) if float(t["arrival_s"]) >= 1.0])
        se = energy.std(ddof=1) / math.sqrt(energy.size)
        assert _f(r["energy_per_task_j"]) == pytest.approx(energy.mean(), rel=1e-9)
        assert _f(r["energy_per_task_j"]) >= bound - slack - 3 * se


@pytest.mark.slow
def test_one_pilot_gives_every_controller_run_the_place_holders_its_own_pilot_would(frontier_dir, tiny_zoo):
    """The shared pilot (seed + 1, never the run's seed) gives each pair the numbers of that pair's own pilot
    (pilot_multipliers, as the runner would have run it), bit for bit; the runs take them as numbers."""
    scenario, out, _ = frontier_dir
    record = json.loads((out / "summary.json").read_text())["placeholders"]
    assert record["pilot_seed"] == scenario.seed + 1 != scenario.seed
    assert record["pilot_slots"] == 4 * scenario.simulation.slots
    learned = {(p["delay_target_s"], p["accuracy_target"]): (p["delay_queue_per_v"], p["accuracy_queue_per_v"])
               for p in record["pairs"]}
    rows = [r for r in _rows(out) if r["policy"] == "lyapunov"]
    assert {(float(r["delay_target_s"]), float(r["accuracy_target"])) for r in rows} == set(learned)
    for r in rows:
        placeholders = json.loads((out / "runs" / r["run_dir"].rsplit("/", 1)[-1] / "summary.json").read_text())[
            "placeholders"]
        assert placeholders["source"] == "scenario"
        pair = (float(r["delay_target_s"]), float(r["accuracy_target"]))
        assert (placeholders["delay_queue_per_v"], placeholders["accuracy_queue_per_v"]) == learned[pair]
    # the pair with the tightest targets, against its own pilot
    pair = (min(p[0] for p in learned), max(p[1] for p in learned))
    sim, = [s for s in frontier.simulations(scenario, frontier_plan(scenario), [pair], fake_calibration())
            if s.policy == "lyapunov"]
    assert sim.scenario.controller.delay_queue_per_v == "auto"
    lam, eta, cached = pilot.pilot_multipliers(sim.scenario, tiny_zoo, fake_calibration(), runner.run_scenario)
    assert not cached and (lam, eta) == learned[pair]


def test_one_pilot_serves_only_scenarios_that_differ_in_their_targets(sweep_scenario):
    data = scenario_to_dict(sweep_scenario)
    data["simulation"]["slots"] += 1
    other = parse_scenario(data)
    with pytest.raises(ValueError, match="differ only in their targets"):
        pilot.shared_pilot([sweep_scenario, other], zoo=None, calibration=fake_calibration())


def test_a_pair_whose_pilot_bound_is_infeasible_is_not_run_and_the_others_get_numbers(sweep_scenario, monkeypatch):
    plan = frontier_plan(sweep_scenario, baselines=["greedy"], v=1e5)
    pairs = [(0.002, 0.8), (0.004, 0.8)]
    sims = frontier.simulations(sweep_scenario, plan, pairs, fake_calibration())
    monkeypatch.setattr(frontier, "shared_pilot", lambda scenarios, zoo, calibration, log: [None, (0.5, 0.25)])
    kept, errors, record = frontier.with_placeholders(sims, None, fake_calibration())
    assert errors == {"lyapunov-L2ms-A0.8": pilot.INFEASIBLE}
    assert [s.name for s in kept] == ["lyapunov-L4ms-A0.8", "greedy-L2ms-A0.8", "greedy-L4ms-A0.8"]
    ctl = kept[0].scenario.controller
    assert (ctl.delay_queue_per_v, ctl.accuracy_queue_per_v, ctl.v) == (0.5, 0.25, 1e5)
    assert record["pilot_seed"] == sweep_scenario.seed + 1
    assert [(p["delay_target_s"], p["delay_queue_per_v"], p["accuracy_queue_per_v"]) for p in record["pairs"]] == [
        (0.002, None, None), (0.004, 0.5, 0.25)]
    # numbers in the scenario, or V below placeholder_from_v: no pilot
    low = frontier.simulations(sweep_scenario, frontier_plan(sweep_scenario, baselines=[], v=10.0), pairs,
                               fake_calibration())
    assert frontier.with_placeholders(low, None, fake_calibration()) == (low, {}, None)


def test_the_plan_takes_flags_over_the_section_over_the_defaults(sweep_scenario):
    plan = frontier_plan(sweep_scenario)
    assert len(plan.delay_targets_s) == 8 and plan.delay_targets_s[0] == pytest.approx(0.0004)
    assert plan.delay_targets_s[-1] == pytest.approx(0.004)
    assert plan.accuracy_targets == (0.78, 0.79, 0.8, 0.81)
    assert plan.run_delay_targets_s == plan.delay_targets_s[1::2] and plan.run_accuracy_targets == (0.79, 0.81)
    assert plan.baselines == tradeoff.BASELINES and plan.v == 1e5
    plan = frontier_plan(sweep_scenario, delay_targets=[0.003, 0.001], accuracy_targets=[0.8], run_delay_targets=[],
                         baselines=["greedy"], v=1e4)
    assert plan.delay_targets_s == (0.001, 0.003) and plan.run_delay_targets_s == ()
    assert plan.run_accuracy_targets == (0.8,) and plan.baselines == ("greedy",) and plan.v == 1e4


@pytest.mark.parametrize("argv, field", [
    (["--delay-targets", "-0.001"], "--delay-targets"),
    (["--accuracy-targets", "1.5"], "--accuracy-targets"),
    (["--delay-targets", "0.001", "0.002", "--run-delay-targets", "0.0015"], "--run-delay-targets"),
    (["--baselines", "oracle"], "--baselines"),
    (["--v", "0"], "--v"),
    (["--workers", "0"], "--workers"),
    (["--delay-targets", "abc"], "command line"),
    (["--set", "frontier.v=-1"], "frontier.v"),
])
def test_bad_input_is_one_line_and_exit_2(argv, field, sweep_scenario, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(scenario_to_dict(sweep_scenario)))
    assert cli_main(["frontier", str(path), "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and field in err
    assert not (tmp_path / "out").exists()


def test_a_controller_other_than_lyapunov_is_refused(sweep_scenario, tmp_path, capsys):
    data = scenario_to_dict(sweep_scenario)
    data["controller"] = {"kind": "greedy", "anchors": [8, 32, 64], "bits": [2, 4, 8]}
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(data))
    assert cli_main(["frontier", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "controller.kind" in capsys.readouterr().err


def test_the_figure_reads_the_csv_alone(tmp_path):
    cols = list(COLUMNS) + ["share_a", "share_b"]
    rows = []
    for a, best in ((0.8, 0.0015), (0.9, 0.003), (0.99, math.inf)):
        for l in (0.001, 0.002, 0.004):
            feas = l >= best
            rows.append({"delay_target_s": l, "accuracy_target": a, "policy": "bound", "feasible": feas,
                         "best_delay_s": best, "energy_per_task_j": (2e-5 * a / l * 1e-3) if feas else "",
                         "mean_anchors": 64 if feas else "", "mean_bits": 4 if feas else "",
                         "share_a": 0.3 if feas else "", "share_b": 0.7 if feas else ""})
    rows.append({"delay_target_s": 0.002, "accuracy_target": 0.8, "policy": "lyapunov", "energy_per_task_j": 9e-6,
                 "constraints_met": True})
    rows.append({"delay_target_s": 0.004, "accuracy_target": 0.9, "policy": "greedy", "energy_per_task_j": 2e-5,
                 "constraints_met": False})
    with open(tmp_path / "frontier.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        w.writerows([{k: r.get(k, "") for k in cols} for r in rows])
    png = frontier_figure(tmp_path / "frontier.csv", tmp_path / "plots" / "frontier.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.with_suffix(".pdf").exists()
    # relcomm plot redraws a frontier folder from its CSV
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(tmp_path / "frontier.csv", again / "frontier.csv")
    assert cli_main(["plot", str(again)]) == 0
    assert (again / "plots" / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cli_names_the_pairs_where_the_controller_did_not_settle(sweep_scenario, tmp_path, capsys,
                                                                     monkeypatch):
    from simulator.experiment import frontier as frontier_module

    rows = [{"policy": "lyapunov", "delay_target_s": 0.0004, "accuracy_target": 0.86, "optimality_gap": 0.0128,
             "settled": False},
            {"policy": "lyapunov", "delay_target_s": 0.003, "accuracy_target": 0.86, "optimality_gap": 0.001,
             "settled": True},
            {"policy": "greedy", "delay_target_s": 0.003, "accuracy_target": 0.86, "settled": None}]
    monkeypatch.setattr(frontier_module, "run_frontier", lambda scenario, out, *a, **k: frontier_module.FrontierReport(
        out, rows, 4, 3, 3, 0, 1.0, 0.5, "test"))
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(scenario_to_dict(sweep_scenario)))
    assert cli_main(["frontier", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "largest gap to the bound +1.28%" in out
    assert "did not settle at 1 target pair(s) (0.4 ms / 0.86)" in out
    assert f"--set simulation.slots=N, now {sweep_scenario.simulation.slots}" in out
