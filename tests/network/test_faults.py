"""Fault interval queries."""

import math

import pytest

from simulator.config import FaultsConfig
from simulator.network.faults import FaultSchedule, IntervalSet


def test_interval_queries_are_half_open():
    s = IntervalSet([(5.0, 6.0, 0.5), (1.0, 2.0, 0.0)])
    assert s.index_at(1.0) == 0 and s.index_at(2.0) == -1 and s.index_at(0.5) == -1
    assert s.end_at(1.5) == 2.0 and s.end_at(3.0) == 3.0
    assert s.next_start(1.0) == 5.0 and s.next_start(0.0) == 1.0 and s.next_start(5.0) == math.inf
    assert s.next_interval(2.5) == (5.0, 6.0) and s.next_interval(7.0) == (math.inf, math.inf)
    assert s.value_at(5.5) == 0.5 and s.value_at(3.0) == 1.0 and s.value_at(1.0) == 0.0
    assert [s.next_boundary(t) for t in (0.0, 1.0, 1.5, 2.0, 5.5, 6.0)] == [1.0, 2.0, 2.0, 5.0, 6.0, math.inf]
    assert s.covered_s(5.5) == pytest.approx(1.5) and IntervalSet().covered_s(10.0) == 0.0
    assert not IntervalSet() and len(s) == 2


def test_overlapping_intervals_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        IntervalSet([(1.0, 3.0), (2.0, 4.0)])
    with pytest.raises(ValueError, match="end > start"):
        IntervalSet([(1.0, 1.0)])


def test_schedule_is_indexed_like_the_agent_lists():
    faults = FaultsConfig.model_validate({
        "link_outages": [{"transmitter": "b", "start_s": 1, "end_s": 2}],
        "device_off": [{"transmitter": "a", "start_s": 3, "end_s": 4}],
        "server_slowdowns": [{"receiver": "s", "start_s": 0, "end_s": 1, "factor": 0.25}]})
    sched = FaultSchedule.from_config(faults, ["a", "b"], ["s"])
    assert [len(x) for x in sched.link_outage] == [0, 1]
    assert [len(x) for x in sched.device_off] == [1, 0]
    assert sched.slowdown[0].value_at(0.5) == 0.25
