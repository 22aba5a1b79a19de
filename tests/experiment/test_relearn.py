"""Re-learned place-holders (``controller.relearn``): learning-aided drift-plus-penalty at large V."""

from __future__ import annotations

import pytest

from simulator.config import parse_scenario
from simulator.control.kinds.lyapunov import relearn_checkpoints
from simulator.experiment.runner import run_scenario


def _at(scenario, **controller):
    data = scenario.model_dump(mode="json")
    data["controller"].update(v_sweep=[], **controller)
    return parse_scenario(data)


@pytest.mark.parametrize("slots, settle", [(10_000, 2_000), (10_000, 0), (300, 100), (100, 0), (3, 1)])
def test_checkpoints_double_before_the_window_then_split_it_in_tenths(slots, settle):
    points = relearn_checkpoints(slots, settle)
    assert list(points) == sorted(set(points)) and all(0 < p < slots for p in points)
    step = max(100, -(-(slots - settle) // 10))
    early = [p for p in points if p < (settle or step)]
    assert early == [256 * 2**j for j in range(len(early))]
    assert points[len(early):] == tuple(p for p in (settle + k * step for k in range(10)) if 0 < p < slots)
    assert relearn_checkpoints(10_000, 2_000) == (256, 512, 1024, *range(2000, 10_000, 800))


def test_relearning_corrects_a_wrong_place_holder_that_the_queues_cannot_at_large_v(sweep_scenario, tiny_zoo,
                                                                                   fake_table, tmp_path):
    # the bound (and its multipliers) does not depend on the decisions: one run gives λ*, η* of the trace
    base = _at(sweep_scenario, v=1e12, delay_queue_per_v=0.0, accuracy_queue_per_v=0.0, relearn=False)
    ref = run_scenario(base, tmp_path / "ref", zoo=tiny_zoo)
    lam, eta = ref["offline_bound"]["delay_multiplier"][0], ref["offline_bound"]["accuracy_multiplier"][0]
    assert lam > 0 and eta > 0
    runs = {}
    for relearn in (False, True):
        sc = _at(sweep_scenario, v=1e12, delay_queue_per_v=2 * lam, accuracy_queue_per_v=2 * eta, relearn=relearn)
        runs[relearn] = run_scenario(sc, tmp_path / f"relearn-{relearn}", zoo=tiny_zoo)
    frozen, learned = runs[False], runs[True]
    assert "placeholder_relearning" not in frozen
    # at V = 1e12 the queues do not move: twice the multipliers stay twice, the targets are overshot
    assert frozen["settling"]["delay_queue_per_v"][0] == pytest.approx(2 * lam, rel=1e-3)
    assert frozen["settling"]["settled"] is False
    # relearned from the run's own states: settled (the report's 5 % criterion), the accuracy price
    # (the binding one here) at the trace's η*, both targets met, and energy nearer the bound
    assert learned["settling"]["settled"] is True
    assert learned["settling"]["accuracy_queue_per_v"][0] == pytest.approx(eta, rel=learned["settling"]["tolerance"])
    assert [e["slot"] for e in learned["placeholder_relearning"]] == list(relearn_checkpoints(300, 100))
    assert learned["optimality_gap"] is not None
    assert learned["optimality_gap"] < frozen["optimality_gap"] / 2


def test_a_checkpoint_sees_only_the_slots_before_it(sweep_scenario, tiny_zoo, fake_table, tmp_path):
    # the same seed's first slots in a run twice as long: the checkpoint at the window's start
    # (no excess to pay back yet) learns the same multipliers, whatever comes after it
    out = []
    for slots in (300, 600):
        data = sweep_scenario.model_dump(mode="json")
        data["simulation"]["slots"] = slots
        sc = _at(parse_scenario(data), v=1e12, delay_queue_per_v=0.01, accuracy_queue_per_v=0.01)
        out.append(run_scenario(sc, tmp_path / str(slots), zoo=tiny_zoo)["placeholder_relearning"])
    at_settle = [next(e for e in run if e["slot"] == 100) for run in out]
    assert at_settle[0] == at_settle[1]
