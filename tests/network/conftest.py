"""Network-test fixtures: the tiny digits scenario of tests/conftest.py plus a small network on top.

The session-wide private cache (``RELCOMM_HOME`` in a temporary folder) and the tiny zoo come
from tests/conftest.py, so these tests never touch the user's cache and share one trained zoo.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest

from simulator.config import Scenario, parse_scenario


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge (``update`` wins; lists are replaced)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


NETWORK = {
    "channel": {"mode": "ideal", "bandwidth_hz": 1.0e6, "header_bits": 64,
                "link": {"distance_m": 50.0, "fading": "none"}},
    "simulation": {"slots": 400, "slot_s": 0.01},
    "receivers": [{"id": "srv", "encoder": "mlp-2", "cpu_hz": 1.0e9, "flops_per_cycle": 8}],
    "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"],
                      "traffic": {"kind": "poisson", "rate_per_slot": 2.0},
                      "cpu": {"f_min_hz": 1.0e8, "f_max_hz": 1.0e8, "flops_per_cycle": 4}}],
    "controller": {"kind": "static", "anchors": 32, "bits": 32, "rate_bps": 2.0e6},
}


@pytest.fixture
def net_dict(tiny_dict) -> dict:
    """The tiny scenario with one device (mlp-1) and one server (mlp-2): ideal link, no fading."""
    return merge(tiny_dict, NETWORK)


@pytest.fixture
def scenario_of(net_dict) -> Callable[..., Scenario]:
    """``scenario_of(update)``: the network scenario with ``update`` merged in, validated."""
    def build(update: dict | None = None, **top: Any) -> Scenario:
        return parse_scenario(merge(net_dict, {**(update or {}), **top}))
    return build


@pytest.fixture
def run_net(tiny_zoo, tmp_path) -> Callable[..., tuple[dict, Path]]:
    """``run_net(scenario, name)``: run it with the shared zoo; returns (summary, results folder)."""
    from simulator.experiment.runner import run_scenario

    def run(scenario: Scenario, name: str = "run") -> tuple[dict, Path]:
        out = tmp_path / name
        return run_scenario(scenario, out, zoo=tiny_zoo), out
    return run
