"""Memory per device: what a world holds grows with the device count by no more than each device must hold."""

from __future__ import annotations

import sys
import tracemalloc

import pytest

from simulator.config import parse_scenario
from simulator.network.agents import Task
from simulator.network.metrics import SLOT_COLUMNS
from simulator.network.traffic import _CHUNK
from simulator.network.world import _BLOCK_FIELDS, BLOCK_SLOTS, World

from .conftest import merge

SLOTS = 40
RATE_PER_SLOT = 8.0  # 8 devices x 8 tasks x 40 slots > OUTCOME_BATCH: both sizes fill the outcome batch
CAPACITY = 16


def _network(n_devices: int, net_dict: dict) -> dict:
    """``n_devices`` Rayleigh links (one in four correlated) to one server per ten devices."""
    receivers = [{"id": f"srv-{j}", "encoder": "mlp-2", "cpu_hz": 1.0e9, "flops_per_cycle": 8}
                 for j in range(-(-n_devices // 10))]
    transmitters = [{"id": f"dev-{i}", "receiver": f"srv-{i // 10}", "encoders": ["mlp-1"],
                     "traffic": {"kind": "poisson", "rate_per_slot": RATE_PER_SLOT}, "queue": {"capacity": CAPACITY},
                     "link": {"fading": "rayleigh", "doppler_hz": 10.0 if i % 4 == 0 else 0.0}}
                    for i in range(n_devices)]
    return merge(net_dict, {"simulation": {"slots": SLOTS}, "receivers": receivers, "transmitters": transmitters})


def _peak_traced_b(scenario, zoo, folder) -> int:
    """Peak bytes traced while the world is built and run."""
    tracemalloc.start()
    try:
        World(scenario, zoo).run(folder)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def per_device_bound_b() -> int:
    """What one device may hold at the peak of a ``SLOTS``-slot run (bytes), item by item.

    - its arrival chunk as arrays: ``_CHUNK`` times (float64) and samples (int32);
    - its link column of one block of ``min(SLOTS, BLOCK_SLOTS)`` slots: gain and R_max, and up to
      six temporaries of that shape while a block is made;
    - its column of the ``slots.csv`` block, and the Python objects of one write of it: each cell a
      number (at most 32 bytes), its list slot and its row-tuple slot (8 bytes each), per column;
    - its tasks: a full queue, the one in service, and 32 more (4λ, λ = 8 per slot) for those at the
      server and those delivered in the last slot awaiting the outcome batch — each a ``Task``
      whose every slot holds its own number (32 bytes at most);
    - 16 KiB for its fixed objects: transmitter, SimPy process, generators, tallies, table entries.
    """
    rows = min(SLOTS, BLOCK_SLOTS)
    task_b = sys.getsizeof(Task(0, 0, 0, 0, 0.0, 0.0)) + 32 * len(Task.__slots__)
    arrivals = _CHUNK * (8 + 4)
    link = 8 * rows * 8
    block = rows * (8 * len(_BLOCK_FIELDS) + (32 + 8 + 8) * len(SLOT_COLUMNS))
    tasks = (CAPACITY + 1 + 32) * task_b
    return arrivals + link + block + tasks + 16 * 1024


def test_memory_per_device_is_bounded(net_dict, tiny_zoo, tmp_path):
    small, large = 8, 40
    scenarios = {n: parse_scenario(_network(n, net_dict)) for n in (small, large)}
    World(scenarios[small], tiny_zoo).run(tmp_path / "warm-up")  # heads and projectors loaded once, untraced
    peak = {n: _peak_traced_b(sc, tiny_zoo, tmp_path / str(n)) for n, sc in scenarios.items()}
    per_device = (peak[large] - peak[small]) / (large - small)
    bound = per_device_bound_b()
    assert per_device <= bound, f"{per_device / 1024:.0f} KiB per device > {bound / 1024:.0f} KiB"
    # the bound must be far below what used to be held: 65,536 slots of gains and R_max per link
    assert bound < 2 * 8 * 65_536


@pytest.mark.parametrize("blocks", [1, 7])
def test_results_do_not_depend_on_the_block_size(net_dict, tiny_zoo, tmp_path, monkeypatch, blocks):
    """Smaller slots.csv blocks (as in large networks) give the same files and energy totals."""
    import simulator.network.world as world_module

    data = _network(12, net_dict)
    data["simulation"]["slots"] = 2 * BLOCK_SLOTS + 5
    for tx in data["transmitters"]:
        tx["traffic"]["rate_per_slot"] = 0.2
    scenario = parse_scenario(data)
    reference = World(scenario, tiny_zoo).run(tmp_path / "ref")
    monkeypatch.setattr(world_module, "BLOCK_CELLS", 12 * blocks)
    world = World(scenario, tiny_zoo)
    assert world._rows == blocks
    summary = world.run(tmp_path / "small")
    assert summary["per_agent"] == reference["per_agent"] and summary["energy_j"] == reference["energy_j"]
    assert (tmp_path / "small" / "slots.csv").read_bytes() == (tmp_path / "ref" / "slots.csv").read_bytes()
