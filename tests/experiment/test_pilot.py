"""Place-holder backlogs resolved by a cached pilot run (``auto``)."""

from __future__ import annotations

import dataclasses

import pytest

from simulator.config import parse_scenario
from simulator.experiment import pilot as pilot_mod
from simulator.experiment.runner import run_scenario
from tests.network.test_lyapunov_world import fake_calibration


def _at_v(scenario, v, **controller):
    data = scenario.model_dump(mode="json")
    data["controller"].update(v=v, v_sweep=[], **controller)
    return parse_scenario(data)


def test_auto_runs_one_pilot_per_scenario_and_zoo_and_reuses_it_for_every_v(sweep_scenario, tiny_zoo, fake_table,
                                                                             tmp_path):
    calibration = fake_calibration()
    sc = _at_v(sweep_scenario, 1e5)
    assert sc.controller.delay_queue_per_v == "auto" and pilot_mod.wants_pilot(sc)
    lam, eta, cached = pilot_mod.pilot_multipliers(sc, tiny_zoo, calibration, run_scenario)
    # what the pilot learns: the offline bound's multipliers on seed + 1, 4 × the slots
    pilot = pilot_mod.pilot_scenario(sc)
    assert pilot.seed == sc.seed + 1 and pilot.simulation.slots == 4 * sc.simulation.slots
    bound = run_scenario(pilot, tmp_path / "again", zoo=tiny_zoo)["offline_bound"]
    assert (lam, eta) == (pytest.approx(bound["delay_multiplier"][0]), pytest.approx(bound["accuracy_multiplier"][0]))
    # V is not part of the key, the calibration table is: another V reads the cache, another Ĝ does not
    other = _at_v(sweep_scenario, 1e7)
    assert pilot_mod.pilot_key(pilot_mod.pilot_scenario(other), calibration) == \
        pilot_mod.pilot_key(pilot, calibration)
    assert pilot_mod.pilot_multipliers(other, tiny_zoo, calibration, run_scenario) == (lam, eta, True)
    retrained = [dataclasses.replace(calibration[0], accuracy=calibration[0].accuracy - 1e-3), *calibration[1:]]
    assert pilot_mod.pilot_key(pilot, retrained) != pilot_mod.pilot_key(pilot, calibration)
    # resolution: the numbers go into the scenario, the record says where they came from
    resolved, record = pilot_mod.resolve_placeholders(other, tiny_zoo, calibration, run_scenario)
    assert resolved.controller.delay_queue_per_v == lam and resolved.controller.accuracy_queue_per_v == eta
    assert record == {"source": "cached pilot", "pilot_seed": sc.seed + 1, "pilot_slots": 4 * sc.simulation.slots,
                      "delay_queue_per_v": lam, "accuracy_queue_per_v": eta}


def test_below_placeholder_from_v_auto_is_empty_queues_and_numbers_are_kept(sweep_scenario, tiny_zoo):
    low = _at_v(sweep_scenario, 10.0)
    assert not pilot_mod.wants_pilot(low)
    resolved, record = pilot_mod.resolve_placeholders(low, tiny_zoo, fake_calibration(), run_scenario)
    assert record["source"] == "none below placeholder_from_v"
    assert resolved.controller.delay_queue_per_v == resolved.controller.accuracy_queue_per_v == 0.0
    given = _at_v(sweep_scenario, 1e5, delay_queue_per_v=0.003, accuracy_queue_per_v="auto", placeholder_from_v=1e6)
    resolved, record = pilot_mod.resolve_placeholders(given, tiny_zoo, fake_calibration(), run_scenario)
    assert (resolved.controller.delay_queue_per_v, resolved.controller.accuracy_queue_per_v) == (0.003, 0.0)
    assert record["source"] == "none below placeholder_from_v"
    static = parse_scenario({**sweep_scenario.model_dump(mode="json"),
                             "controller": {"kind": "static", "anchors": 8, "bits": 8}})
    assert pilot_mod.resolve_placeholders(static, tiny_zoo, None, run_scenario) == (static, None)
