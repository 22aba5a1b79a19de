"""Control-test fixtures: a controller's world without the world.

A validated scenario (the tiny network with two transmitters), a :class:`NetworkSpec` with
synthetic cycle and payload tables in place of the trained zoo's, the synthetic Ĝ table of the
network tests, and a Rayleigh gain trace; :func:`drive` plays a controller through the trace
with the decisions' own predicted delays as feedback. Nothing is trained, so these tests run in
seconds and exercise the control layer alone.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import pytest

from simulator.channel import noise_psd_w_hz
from simulator.config import Scenario, parse_scenario
from simulator.control import Decision, Feedback, NetworkSpec, Observation, build_controller
from simulator.rng import SeedTree
from tests.conftest import TINY
from tests.network.conftest import NETWORK, merge
from tests.network.test_lyapunov_world import DYNAMIC, fake_calibration

DEVICE = {"receiver": "srv", "encoders": ["mlp-1", "cnn-1"], "traffic": {"kind": "deterministic", "rate_per_slot": 1.0},
          "cpu": {"f_min_hz": 1e8, "f_max_hz": 1.4e9, "kappa": 1e-27, "flops_per_cycle": 4}}
TWO_DEVICES = merge(DYNAMIC, {"transmitters": [{**DEVICE, "id": "near"}, {**DEVICE, "id": "far"}],
                              "simulation": {"slots": 600}})
MEAN_GAIN = (10.0 ** -11.0, 10.0 ** -12.0)
"""Mean channel gain of each transmitter (linear): about 24 and 14 dB at full power over its half of the band."""


def controller_scenario(controller: dict[str, Any], **update: Any) -> Scenario:
    """The tiny network with two transmitters and ``controller`` (options K ∈ {8, 32, 64}, b ∈ {2, 4, 8})."""
    data = merge(merge(copy.deepcopy(TINY), NETWORK), merge(TWO_DEVICES, update))
    data["controller"] = {"anchors": [8, 32, 64], "bits": [2, 4, 8], **controller}
    return parse_scenario(data)


def synthetic_spec(sc: Scenario) -> NetworkSpec:
    """The scenario's network facts, with synthetic W_tx (the CNN heavier), W_rx and N = K·b + header."""
    txs, rxs = sc.transmitters, sc.receivers
    encoders = tuple(e.id for e in sc.encoders)
    receiver = {r.id: j for j, r in enumerate(rxs)}
    per_rx = np.bincount([receiver[t.receiver] for t in txs], minlength=len(rxs))
    header = sc.channel.header_bits
    return NetworkSpec(
        tuple(t.id for t in txs), tuple(r.id for r in rxs), encoders,
        np.array([receiver[t.receiver] for t in txs], dtype=np.int64),
        tuple(np.array([encoders.index(e) for e in t.encoders], dtype=np.int64) for t in txs),
        np.array([t.cpu.f_min_hz for t in txs]), np.array([t.cpu.f_max_hz for t in txs]),
        np.array([t.cpu.kappa for t in txs]), np.array([t.radio.max_power_w for t in txs]),
        np.array([sc.channel.bandwidth_hz / per_rx[receiver[t.receiver]] for t in txs]),
        float(noise_psd_w_hz(sc.channel.noise_psd_dbm_hz)), 1.0, np.array([r.cpu_hz for r in rxs]),
        sc.anchors.count, receiver_encoders=tuple(r.encoder for r in rxs),
        tx_cycles=lambda i, enc, k: (3e5 if enc.startswith("cnn") else 2e5) + 4e3 * k,
        rx_cycles=lambda j, k: 5e4 + 2e3 * k,
        payload_bits=lambda k, b: k * b + header)


def gain_trace(n_slots: int, seed: int = 0) -> np.ndarray:
    """Rayleigh-faded gains (n_slots, 2) around :data:`MEAN_GAIN`."""
    rng = SeedTree(seed).child("tests", "control", "gains").numpy()
    return np.asarray(MEAN_GAIN) * rng.exponential(1.0, (n_slots, len(MEAN_GAIN)))


def drive(controller, spec: NetworkSpec, gains: np.ndarray,
          each: Callable[[int, Decision], None] | None = None) -> None:
    """Play ``controller`` through ``gains``: no task completes, so each slot's feedback is its decision's prediction.

    ``each(slot, decision)`` is called after every update.
    """
    n, n_rx = spec.n_tx, len(spec.receiver_ids)
    zeros = np.zeros(n)
    for s, gain in enumerate(gains):
        r_max = spec.bandwidth_hz * np.log2(1.0 + spec.max_power_w * gain / (spec.noise_psd_w_hz * spec.bandwidth_hz))
        d = controller.decide(Observation(s, s * 0.01, gain, r_max, np.zeros(n, np.int64), np.zeros(n_rx, np.int64),
                                          np.ones(n, bool), np.ones(n, bool)))
        controller.update(Feedback(s, np.zeros(n, np.int64), np.full(n, np.nan), np.zeros(n, np.int64), zeros))
        if each is not None:
            each(s, d)


@pytest.fixture(scope="module")
def calibration() -> list:
    """The synthetic Ĝ rows of the network tests (rising with K and b, the CNN a little lower)."""
    return fake_calibration()


def build(sc: Scenario, calibration: list):
    """(controller, spec) of a scenario on the synthetic network."""
    spec = synthetic_spec(sc)
    return build_controller(sc, spec, calibration), spec
