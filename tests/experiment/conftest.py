"""Fixtures of the experiment tests: a small lyapunov scenario for the V sweep and the pilot, a synthetic Ĝ."""

from __future__ import annotations

import pytest

from simulator.config import parse_scenario
from simulator.experiment import runner, tradeoff
from tests.network.conftest import NETWORK, merge
from tests.network.test_lyapunov_world import DYNAMIC, fake_calibration


@pytest.fixture
def fake_table(monkeypatch):
    """The synthetic Ĝ of the network tests instead of a minute of calibration."""
    monkeypatch.setattr(runner, "calibration_rows", lambda zoo, log=None: fake_calibration())
    monkeypatch.setattr(tradeoff, "calibration_rows", lambda zoo, log=None: fake_calibration())


@pytest.fixture
def sweep_scenario(tiny_dict):
    data = merge(merge(tiny_dict, NETWORK), DYNAMIC)
    data["simulation"].update(slots=300, delay_target_s=0.002, accuracy_target=0.8)
    data["controller"] = {"kind": "lyapunov", "anchors": [8, 32, 64], "bits": [2, 4, 8], "mu": 1e3, "nu": 10.0,
                          "settle_slots": 100, "v_sweep": [1e5, 1e7]}
    return parse_scenario(data)
