"""Accuracy margins: the sampling margin's formula, the settled window's size, and 'auto' resolved in the controller."""

from __future__ import annotations

import math

import pytest

from simulator.control.tables import CalibrationRows, Z_975, accuracy_margin, sampling_margin, window_tasks
from simulator.errors import ScenarioError

from .conftest import build, controller_scenario


def test_sampling_margin_on_a_known_case():
    # 1.959964 · sqrt(0.9 · 0.1 · (1/1000 + 1/4000 + 1/8000)) = 1.959964 · sqrt(1.2375e-4)
    assert Z_975 == pytest.approx(1.959963984540054, abs=1e-12)
    assert sampling_margin(0.9, 1000, 4000, 8000) == pytest.approx(0.0218032, abs=1e-6)
    assert sampling_margin(0.5, 100, 100, 50, z=1.0) == pytest.approx(math.sqrt(0.25 * 0.04))
    assert sampling_margin(1.0, 10, 10, 10) == 0.0  # a certain outcome has no sampling error
    with pytest.raises(ValueError):
        sampling_margin(0.9, 0, 10, 10)


def test_window_tasks_count_every_transmitter_over_the_settled_slots():
    sc = controller_scenario({"kind": "greedy", "settle_slots": 100})  # 600 slots, two devices at 1 task/slot
    assert window_tasks(sc) == 500 * 2.0
    bursty = {"kind": "bursty", "rate_per_slot": 6.0, "mean_on_slots": 20.0, "mean_off_slots": 40.0}
    sc = controller_scenario({"kind": "greedy"}, transmitters=[
        {**sc.transmitters[0].model_dump(mode="json"), "traffic": bursty},
        {**sc.transmitters[1].model_dump(mode="json")}])
    assert window_tasks(sc) == pytest.approx(600 * (6.0 * 20 / 60 + 1.0))


def test_auto_margin_resolves_from_the_calibration_sizes(calibration):
    sc = controller_scenario({"kind": "greedy", "accuracy_margin": "auto", "settle_slots": 200})
    rows = CalibrationRows(calibration, n_calibration=300, n_test=900)
    expected = sampling_margin(0.85, 300, 900, 400 * 2.0)
    assert accuracy_margin(sc, rows) == pytest.approx(expected)
    assert expected == pytest.approx(Z_975 * math.sqrt(0.85 * 0.15 * (1 / 300 + 1 / 900 + 1 / 800)))
    ctl, _ = build(sc, rows)
    assert ctl.accuracy_margin == pytest.approx(expected)
    assert ctl.accuracy_min == pytest.approx(0.85 + expected)
    with pytest.raises(ScenarioError) as info:  # plain rows do not say how many samples they stand for
        accuracy_margin(sc, calibration)
    assert info.value.path == "controller.accuracy_margin"
    number = controller_scenario({"kind": "greedy", "accuracy_margin": 0.01})
    assert accuracy_margin(number, rows) == 0.01 and accuracy_margin(number, None) == 0.01
    no_target = controller_scenario({"kind": "max-accuracy", "accuracy_margin": "auto"},
                                    simulation={"accuracy_target": None})
    assert accuracy_margin(no_target, calibration) == 0.0


def test_an_auto_margin_above_the_best_accuracy_is_an_error(calibration):
    sc = controller_scenario({"kind": "greedy", "accuracy_margin": "auto"})
    with pytest.raises(ScenarioError) as info:  # 20 calibration samples: a margin of about 0.16
        build(sc, CalibrationRows(calibration, n_calibration=20, n_test=20))
    assert info.value.path == "simulation.accuracy_target" and "(auto)" in str(info.value)


def test_accuracy_margin_takes_a_number_or_auto_only():
    with pytest.raises(ScenarioError) as info:
        controller_scenario({"kind": "greedy", "accuracy_margin": "big"})
    assert info.value.one_line().startswith("controller.accuracy_margin")
