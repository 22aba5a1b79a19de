"""Deterministic train / validation / test splits drawn from the seed tree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.data.datasets import Dataset
from simulator.rng import SeedTree


@dataclass(frozen=True)
class Splits:
    """Index sets into a dataset.

    ``train`` and ``validation`` index ``x_train`` (disjoint); ``test`` indexes ``x_test``.
    The validation split calibrates the optimizer's accuracy table; the simulation draws its
    tasks from the test split, so the two never overlap.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def make_splits(dataset: Dataset, validation_fraction: float, seeds: SeedTree) -> Splits:
    """Split the official training set into train and validation with a seeded permutation.

    Parameters
    ----------
    dataset : Dataset
    validation_fraction : float
        In (0, 1): share of the official training set held out for validation.
    seeds : SeedTree
        Node of the seed tree owned by the data layer.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in (0, 1)")
    n = len(dataset.x_train)
    perm = seeds.child("validation-split").numpy().permutation(n)
    n_val = max(1, int(round(validation_fraction * n)))
    return Splits(train=np.sort(perm[n_val:]), validation=np.sort(perm[:n_val]),
                  test=np.arange(len(dataset.x_test)))
