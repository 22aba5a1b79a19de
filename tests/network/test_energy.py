"""Compute and energy model."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from simulator.latent.relative import RelativeProjector
from simulator.network.energy import (EnergyLedger, compute_energy_j, cycles, head_flops, idle_energy_j,
                                      projection_flops, transmit_energy_j)
from simulator.rng import SeedTree


def test_formulas():
    assert cycles(8e6, 4) == 2e6
    assert compute_energy_j(1e-28, 1e9, 2e6) == pytest.approx(1e-28 * 1e18 * 2e6)
    assert transmit_energy_j(0.1, 2e-3) == pytest.approx(2e-4)
    assert idle_energy_j(0.5, 4.0) == 2.0


def test_projection_flops_count_the_matmul_and_norms():
    d, k = 64, 32
    assert projection_flops(d, k, ["cosine"], False) == 2 * d * k + 2 * d + k
    assert projection_flops(d, k, ["cosine"], True) == 2 * d * k + 4 * d + 2 * k
    assert projection_flops(d, k, ["cosine"], False, standardize=True) == 2 * d * k + 6 * d + 2 * k  # z-scores: 2d
    assert projection_flops(d, k, ["cosine", "l1"], False) == 2 * d * k + 2 * d + k + 3 * d * k
    assert projection_flops(d, k, ["euclidean"], True) == 2 * d * k + 3 * d + 3 * k


@pytest.mark.parametrize("similarities, center", [(["cosine"], False), (["cosine"], True),
                                                  (["euclidean"], False), (["cosine", "euclidean"], True)])
def test_projection_flops_match_the_matmuls_the_projector_runs(similarities, center):
    # FlopCounterMode measures the matrix products the projector really executes (2 FLOPs per
    # multiply-accumulate, the convention of projection_flops); it does not see element-wise ops.
    d, k, n = 64, 32, 5
    g = SeedTree(0).child("flops").torch()
    proj = RelativeProjector.fit(torch.randn(k, d, generator=g), similarities, center)
    with FlopCounterMode(display=False) as counter:
        proj(torch.randn(n, d, generator=g))
    matmul = counter.get_total_flops() / n
    assert matmul == 2 * d * k * len(similarities)
    # What the count adds on top is element-wise work on the d inputs and the K outputs: a few
    # passes over each, far below one more (d × K) product.
    elementwise = projection_flops(d, k, similarities, center) - matmul
    assert 0 < elementwise <= 4 * (d + k) * len(similarities)


def test_head_flops_grow_with_k():
    small, large = head_flops(16, 1, 64, 10), head_flops(64, 1, 64, 10)
    assert large - small == (2 * 64) * 48 + 5 * 48  # first layer 2·K·hidden, plus the norm
    assert head_flops(16, 2, 64, 10) > small


def test_ledger():
    a = EnergyLedger(tx_j=1.0, cpu_j=2.0)
    a.add(EnergyLedger(server_j=3.0, idle_j=4.0))
    assert a.total_j == 10.0 and a.as_dict()["energy_j"] == 10.0


def test_each_task_is_charged_the_flops_of_its_own_sample(tiny_zoo, scenario_of, tmp_path):
    """Text samples differ in length: a task pays its own sample's encoding, the controller plans with the mean."""
    import csv
    import dataclasses

    import numpy as np

    from simulator.experiment.runner import run_scenario
    from simulator.network.energy import projection_flops

    enc = tiny_zoo.encoders["mlp-1"]
    n = len(enc.latents_test)
    per_sample = enc.flops + (np.arange(n, dtype=np.int64) % 7 - 3) * (enc.flops // 10)  # about the same mean
    zoo = dataclasses.replace(tiny_zoo, encoders={**tiny_zoo.encoders,
                                                  "mlp-1": dataclasses.replace(enc, flops_test=per_sample)})
    sc = scenario_of(simulation={"slots": 60})
    run_scenario(sc, tmp_path / "run", zoo=zoo)
    tx = sc.transmitters[0]
    with open(tmp_path / "run" / "tasks.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "delivered" and r["retries"] == "0"]
    assert len({int(r["sample"]) % 7 for r in rows}) > 1
    proj = projection_flops(enc.latent_dim, 32, sc.relative.similarity, sc.relative.center)
    for r in rows:
        f = float(r["cpu_hz"])
        work = (enc.flops + proj) / tx.cpu.flops_per_cycle \
            + (per_sample[int(r["sample"])] - enc.flops) / tx.cpu.flops_per_cycle
        assert float(r["energy_cpu_per_task_j"]) == pytest.approx(tx.cpu.kappa * f**2 * work, rel=1e-12)
