"""The world's fast paths (callback devices, light events, FIFO/partitioned CPU plans) give the general path's bytes."""

from __future__ import annotations

from functools import partial

import simpy
import pytest

from simulator.experiment.runner import comparable_summary
from simulator.network.schedule import after, at, call_after, call_at, run_while
from simulator.network.world import World

DEV = {"receiver": "fifo", "encoders": ["mlp-1"], "traffic": {"rate_per_slot": 3.0}}


def _run_both(scenario, zoo, tmp_path) -> dict:
    """Run ``scenario`` with ``fast=True`` and ``fast=False``; the folders, summaries and the fast world."""
    out = {}
    for fast in (True, False):
        folder = tmp_path / ("fast" if fast else "general")
        folder.mkdir()
        world = World(scenario, zoo, fast=fast)
        out[fast] = (folder, comparable_summary(world.run(folder)), world)
    return out


def _assert_same(out: dict) -> None:
    (fast, s_fast, _), (general, s_general, _) = out[True], out[False]
    for name in ("tasks.csv", "slots.csv"):
        assert (fast / name).read_bytes() == (general / name).read_bytes(), name
    assert s_fast == s_general


def test_fast_and_general_paths_write_the_same_files(scenario_of, tiny_zoo, tmp_path):
    """Deadlines, full device queues (both policies), a slow server with a full queue, coded packets with errors,
    outages, three server policies, devices whose arrivals and costs tie exactly (two periodic
    devices with the same settings, on one server and on two), and a device with a fault (general
    process beside callback devices)."""
    periodic = {**DEV, "traffic": {"kind": "deterministic", "rate_per_slot": 2.0}}
    sc = scenario_of({
        "channel": {"mode": "digital", "link": {"fading": "rayleigh", "distance_m": 150.0}},
        "simulation": {"slots": 300, "task_timeout_s": 0.004},
        "receivers": [{"id": "fifo", "encoder": "mlp-2", "cpu_hz": 2.0e6, "flops_per_cycle": 8, "queue_capacity": 2},
                      {"id": "part", "encoder": "mlp-2", "cpu_hz": 1.0e9, "flops_per_cycle": 8,
                       "scheduling": "partitioned"},
                      {"id": "ps", "encoder": "mlp-2", "cpu_hz": 1.0e9, "flops_per_cycle": 8,
                       "scheduling": "processor-sharing"}],
        "transmitters": [
            {**DEV, "id": "plain"},
            {**DEV, "id": "burst", "traffic": {"kind": "bursty", "rate_per_slot": 40.0, "mean_on_slots": 3,
                                               "mean_off_slots": 10}, "queue": {"capacity": 3}},
            {**DEV, "id": "oldest", "traffic": {"rate_per_slot": 30.0},
             "queue": {"capacity": 2, "drop_policy": "drop-oldest"}},
            {**DEV, "id": "coded", "receiver": "part", "radio": {"packet_errors": "fbl", "max_attempts": 3},
             "link": {"distance_m": 400.0}},
            {**DEV, "id": "far", "receiver": "part", "link": {"distance_m": 1.0e5}, "radio": {"max_attempts": 2}},
            {**periodic, "id": "tick-a", "receiver": "part"},
            {**periodic, "id": "tick-b", "receiver": "part"},
            {**periodic, "id": "tick-c", "receiver": "ps"},
            {**periodic, "id": "tick-d", "receiver": "fifo"},
            {**DEV, "id": "faulty", "receiver": "ps"}],
        "faults": {"link_outages": [{"transmitter": "faulty", "start_s": 1.0, "end_s": 1.3}],
                   "server_slowdowns": [{"receiver": "ps", "start_s": 2.0, "end_s": 2.1, "factor": 0.01}]},
        "controller": {"kind": "static", "anchors": 32, "bits": 8, "rate_bps": 1.0e6}})
    out = _run_both(sc, tiny_zoo, tmp_path)
    _assert_same(out)
    reasons = out[True][1]["dropped_by_reason"]
    for reason in ("timeout", "queue-full", "receiver-queue-full", "outage"):
        assert reasons.get(reason, 0) > 0, (reason, reasons)
    assert reasons.get("packet-error", 0) > 0 or any(
        int(line.split(",")[19]) > 1 for line in (out[True][0] / "tasks.csv").read_text().splitlines()[1:])
    world = out[True][2]
    assert [tx.process is None for tx in world.transmitters] == [True] * 9 + [False]


@pytest.mark.parametrize("policy", ["fifo", "partitioned"])
def test_encodings_that_spill_into_the_next_slot(scenario_of, tiny_zoo, tmp_path, monkeypatch, policy):
    """A slow device CPU: many encodings end in a later slot (the general steps, driven by callbacks)."""
    from simulator.network.agents import Transmitter

    general = Transmitter._encode_then_transmit
    spilled = []

    def counted(self, task):
        spilled.append(task.id)
        return general(self, task)

    monkeypatch.setattr(Transmitter, "_encode_then_transmit", counted)
    sc = scenario_of({
        "simulation": {"slots": 100, "task_timeout_s": 0.05},
        "receivers": [{"id": "fifo", "encoder": "mlp-2", "cpu_hz": 1.0e8, "flops_per_cycle": 8,
                       "scheduling": policy}],
        "transmitters": [{**DEV, "id": f"dev-{i}", "cpu": {"f_min_hz": 3e5, "f_max_hz": 3e5, "flops_per_cycle": 4},
                          "traffic": {"rate_per_slot": 0.5 + i}} for i in range(3)],
        "controller": {"kind": "static", "anchors": 32, "bits": 8, "rate_bps": 1.0e6}})
    out = _run_both(sc, tiny_zoo, tmp_path)
    _assert_same(out)
    summary = out[True][1]
    assert summary["tasks_delivered"] > 0 and summary["dropped_by_reason"].get("timeout", 0) > 0
    assert spilled  # (the general run's devices are processes: only the fast run calls it)


def test_marks_and_calls_fire_in_simpy_timeout_order():
    """Marks, queued calls and timeouts scheduled in one order fire in that order at equal times, by time otherwise."""
    fired: list[str] = []

    def record(name: str, _event) -> None:
        fired.append(name)

    def schedule(env, kind: str) -> None:
        for name, delay in (("a", 0.5), ("b", 0.25), ("c", 0.5), ("d", 0.25 + 0.25)):
            if kind == "simpy":
                env.timeout(delay).callbacks.append(partial(record, name))
            elif kind == "marks" or name == "c":  # (the calls' run mixes in one mark)
                after(env, delay, partial(record, name))
            else:
                call_after(env, delay, partial(record, name))
        if kind == "simpy":
            env.timeout(0.5).callbacks.append(partial(record, "e"))
        elif kind == "marks":
            at(env, 0.5, partial(record, "e"))
        else:
            call_at(env, 0.5, partial(record, "e"))

    orders = []
    for kind in ("simpy", "marks", "calls"):
        env = simpy.Environment()
        schedule(env, kind)
        fired.clear()
        run_while(env, lambda env=env: bool(env._queue))
        orders.append(list(fired))
    assert orders[0] == orders[1] == orders[2] == ["b", "a", "c", "d", "e"]


def test_a_queued_call_must_be_a_method_or_partial():
    """run_while tells a queued call from an event by its type: anything else is refused when queued."""
    env = simpy.Environment()
    with pytest.raises(TypeError, match="call_after"):
        call_after(env, 1.0, lambda _e: None)
    with pytest.raises(TypeError, match="call_at"):
        call_at(env, 1.0, lambda _e: None)
    assert not env._queue
