"""Shared fixtures: a private cache per test session and a tiny scenario on sklearn digits."""

from __future__ import annotations

import copy
import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers already fill the cores; extra intra-op threads would only contend.
    torch.set_num_threads(1)

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"dataset": "digits", "validation_fraction": 0.15},
    "encoders": [
        {"id": "mlp-1", "arch": "mlp", "latent_dim": 16, "hidden": [64], "seed": 1,
         "train": {"epochs": 12, "batch_size": 64, "lr": 0.005}},
        {"id": "mlp-2", "arch": "mlp", "latent_dim": 16, "hidden": [64], "seed": 2,
         "train": {"epochs": 12, "batch_size": 64, "lr": 0.005}},
        {"id": "cnn-1", "arch": "cnn", "latent_dim": 24, "hidden": [8], "seed": 1,
         "train": {"epochs": 12, "batch_size": 64, "lr": 0.005}},
    ],
    "anchors": {"strategy": "random", "count": 64, "seed": 0},
    "heads": {"hidden": 64, "train": {"epochs": 20, "batch_size": 64, "lr": 0.005}},
    "stitching": {"anchors": [8, 32, 64], "bits": [1, 2, 4, 8, 32], "snr_db": [0.0, 20.0]},
}


@pytest.fixture(scope="session", autouse=True)
def private_relcomm_home(tmp_path_factory):
    """Every test session trains into its own cache, never the user's."""
    home = tmp_path_factory.mktemp("relcomm-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("RELCOMM_HOME", str(home))
    yield home
    mp.undo()


@pytest.fixture
def tiny_dict():
    """A fresh copy of the tiny scenario as plain data (edit freely)."""
    return copy.deepcopy(TINY)


@pytest.fixture(scope="session")
def tiny_zoo(private_relcomm_home):
    from simulator.config import parse_scenario
    from simulator.latent.zoo import Zoo

    return Zoo.build(parse_scenario(copy.deepcopy(TINY)), log=lambda m: None)
