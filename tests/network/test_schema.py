"""The network sections of the scenario schema: defaults, link inheritance and cross-field errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.config import load_scenario, parse_scenario, scenario_to_dict
from simulator.errors import ScenarioError

from .conftest import merge

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def error_of(data: dict) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    return info.value.one_line()


def test_a_latent_only_scenario_has_no_network(tiny_dict):
    sc = parse_scenario(tiny_dict)
    assert sc.transmitters == () and sc.receivers == () and sc.controller.kind == "static"


def test_transmitter_links_inherit_channel_link_key_by_key(net_dict):
    data = merge(net_dict, {"channel": {"link": {"distance_m": 70.0, "fading": "rician", "k_factor": 3.0}}})
    data["transmitters"].append({"id": "far", "receiver": "srv", "encoders": ["mlp-2"],
                                 "link": {"distance_m": 300.0}})
    sc = parse_scenario(data)
    near, far = sc.transmitters
    assert (near.link.distance_m, near.link.fading, near.link.k_factor) == (70.0, "rician", 3.0)
    assert (far.link.distance_m, far.link.fading, far.link.k_factor) == (300.0, "rician", 3.0)
    # The resolved scenario spells every link out and reads back to the same scenario.
    assert parse_scenario(scenario_to_dict(sc)) == sc


@pytest.mark.parametrize("update, where, what", [
    ({"transmitters": [{"id": "dev", "receiver": "nowhere", "encoders": ["mlp-1"]}]},
     "transmitters[0].receiver", "unknown receiver 'nowhere'"),
    ({"transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1", "nope"]}]},
     "transmitters[0].encoders[1]", "unknown encoder 'nope'"),
    ({"receivers": [{"id": "srv", "encoder": "nope"}]}, "receivers[0].encoder", "unknown encoder 'nope'"),
    ({"transmitters": [{"id": "srv", "receiver": "srv", "encoders": ["mlp-1"]}]},
     "transmitters[0].id", "duplicate agent id 'srv'"),
    ({"transmitters": [{"id": "a", "receiver": "srv", "encoders": ["mlp-1"]},
                       {"id": "a", "receiver": "srv", "encoders": ["mlp-1"]}]},
     "transmitters[1].id", "duplicate agent id 'a'"),
    ({"controller": {"anchors": 65}}, "controller.anchors", "exceeds the anchor list length"),
    ({"controller": {"encoder": "mlp-2"}}, "controller.encoder", "not in the pool"),
    ({"controller": {"encoder": "nope"}}, "controller.encoder", "unknown encoder 'nope'"),
    ({"controller": {"bits": 20}}, "controller.bits", "1..16 or 32"),
    ({"transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"],
                        "cpu": {"f_min_hz": 2e9, "f_max_hz": 1e9}}]}, "transmitters[0].cpu.f_min_hz", "exceeds"),
    ({"transmitters": [{"id": "a", "receiver": "srv", "encoders": ["mlp-1"], "link": {"bandwidth_share": 0.7}},
                       {"id": "b", "receiver": "srv", "encoders": ["mlp-1"], "link": {"bandwidth_share": 0.7}}]},
     "transmitters[1].link.bandwidth_share", "add up to more than 1"),
    ({"transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"], "link": {"distance_m": -1}}]},
     "transmitters[0].link.distance_m", "greater than 0"),
    ({"channel": {"mode": "analog"}, "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"],
                                                       "radio": {"packet_errors": "fbl"}}]},
     "transmitters[0].radio.packet_errors", "analog"),
    ({"faults": {"device_off": [{"transmitter": "ghost", "start_s": 1, "end_s": 2}]}},
     "faults.device_off[0].transmitter", "unknown transmitter 'ghost'"),
    ({"faults": {"server_slowdowns": [{"receiver": "srv", "start_s": 1, "end_s": 3, "factor": 0.5},
                                      {"receiver": "srv", "start_s": 2, "end_s": 4, "factor": 0.5}]}},
     "faults.server_slowdowns[1].start_s", "overlaps"),
    ({"faults": {"link_outages": [{"transmitter": "dev", "start_s": 2, "end_s": 1}]}},
     "faults.link_outages[0].end_s", "must be after start_s"),
    ({"simulation": {"slot_s": float("nan")}}, "simulation.slot_s", "finite"),
    ({"simulation": {"slots": 10, "slot_len": 1}}, "simulation.slot_len", "unknown key"),
])
def test_cross_field_errors_name_the_field(net_dict, update, where, what):
    message = error_of(merge(net_dict, update))
    assert message.startswith(where), message
    assert what in message, message


@pytest.mark.parametrize("name", ["quickstart.yaml", "multi-device.yaml"])
def test_shipped_network_scenarios_validate(name):
    sc = load_scenario(SCENARIOS / name)
    assert sc.transmitters and sc.receivers
    mismatch = load_scenario(SCENARIOS / "mismatch.yaml")
    # Same latent sections (and encoder definitions) as the mismatch zoo: the cache is shared.
    for section in ("data", "anchors", "relative", "heads"):
        assert getattr(sc, section) == getattr(mismatch, section)
    assert set(sc.encoders) <= set(mismatch.encoders)
    rx_encoder = {rx.id: rx.encoder for rx in sc.receivers}
    for tx in sc.transmitters:
        assert tx.encoders[0] != rx_encoder[tx.receiver]  # every device is mismatched with its server


def test_multi_device_has_every_fault_type_and_eight_devices():
    sc = load_scenario(SCENARIOS / "multi-device.yaml")
    assert len(sc.transmitters) >= 8 and len(sc.receivers) == 2
    assert sc.faults.link_outages and sc.faults.device_off and sc.faults.server_slowdowns
    assert len({tx.encoders[0] for tx in sc.transmitters}) >= 3
