"""The static controller's decisions."""

import numpy as np
import pytest

from simulator.control import Observation, anchor_options
from simulator.control.kinds.static import StaticController
from simulator.network.world import World


def obs(n, r_max):
    z = np.zeros(n)
    return Observation(0, 0.0, z, np.asarray(r_max, dtype=float), np.zeros(n, int), np.zeros(1, int),
                       np.ones(n, bool), np.ones(n, bool))


def test_static_decisions(scenario_of, tiny_zoo):
    dev = {"receiver": "srv", "encoders": ["mlp-2", "mlp-1"], "cpu": {"f_min_hz": 1e8, "f_max_hz": 2e9}}
    sc = scenario_of({"transmitters": [{**dev, "id": "a"}, {**dev, "id": "b"}],
                      "controller": {"anchors": 16, "bits": 4, "rate_bps": None, "cpu_hz": 5e9}})
    spec = World(sc, tiny_zoo).spec
    ctl = StaticController(sc, spec)
    d = ctl.decide(obs(2, [1e6, 0.0]))
    assert [spec.encoder_ids[e] for e in d.encoder] == ["mlp-2", "mlp-2"]  # first of the pool
    assert d.anchors.tolist() == [16, 16] and d.bits.tolist() == [4, 4]
    assert d.rate_bps.tolist() == [1e6, 0.0]  # R_max, and hold where nothing can be carried
    assert d.cpu_hz.tolist() == [2e9, 2e9]  # clipped to f_max
    assert d.server_share.tolist() == [0.5, 0.5]
    assert anchor_options(sc) == (16,)
    fixed = StaticController(scenario_of({"controller": {"encoder": "mlp-1", "rate_bps": 3e6}}), spec)
    d = fixed.decide(obs(2, [1e6, 1e7]))
    assert d.rate_bps.tolist() == [3e6, 3e6] and fixed.decide(obs(2, [0, 0])) is d


def test_a_world_needs_agents(tiny_dict, tiny_zoo):
    from simulator.config import parse_scenario
    from simulator.errors import ScenarioError

    with pytest.raises(ScenarioError, match="at least one transmitter"):
        World(parse_scenario(tiny_dict), tiny_zoo)
