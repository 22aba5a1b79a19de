"""Deterministic train / validation and holdout / test splits drawn from the seed tree."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.data.datasets import Dataset
from simulator.rng import SeedTree


@dataclass(frozen=True)
class Splits:
    """Index sets into a dataset.

    ``train`` and ``validation`` index ``x_train`` (disjoint); ``holdout`` and ``test`` index
    ``x_test`` (disjoint, together the whole official test set; ``holdout`` is empty unless the
    calibration table is measured on it). Encoders and heads train on ``train``; the calibration
    table Ĝ is measured on ``validation`` or ``holdout``; the simulation draws its tasks from
    ``test``, so the calibration never sees a task's sample.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    holdout: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def test_is_whole(self) -> bool:
        """Whether the test split is the whole official test set (no holdout)."""
        return len(self.holdout) == 0


def _cut(n: int, fraction: float, seeds: SeedTree, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held): a seeded permutation of ``range(n)`` cut after ``max(1, round(fraction·n))``, each sorted."""
    perm = seeds.child(name).numpy().permutation(n)
    n_held = max(1, int(round(fraction * n)))
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def make_splits(dataset: Dataset, validation_fraction: float, seeds: SeedTree,
                holdout_fraction: float | None = None) -> Splits:
    """Split the official training set into train and validation, and optionally the test set.

    Each cut is a seeded permutation (not stratified): the first ``max(1, round(fraction·n))``
    indices are held out.

    Parameters
    ----------
    dataset : Dataset
    validation_fraction : float
        In (0, 1): share of the official training set held out for validation.
    seeds : SeedTree
        Node of the seed tree owned by the data layer (its children ``validation-split`` and
        ``holdout-split`` draw the two permutations).
    holdout_fraction : float, optional
        In (0, 1): share of the official test set held out as the calibration holdout; the test
        split is the rest. None (default): no holdout, the test split is the whole test set.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in (0, 1)")
    train, validation = _cut(len(dataset.x_train), validation_fraction, seeds, "validation-split")
    n_test = len(dataset.x_test)
    if holdout_fraction is None:
        return Splits(train=train, validation=validation, test=np.arange(n_test))
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError("holdout_fraction must be in (0, 1)")
    if n_test < 2:
        raise ValueError(f"a holdout needs at least 2 test samples (the test set has {n_test})")
    test, holdout = _cut(n_test, holdout_fraction, seeds, "holdout-split")
    if len(test) == 0:  # round(fraction·n) = n
        test, holdout = holdout[-1:], holdout[:-1]
    return Splits(train=train, validation=validation, test=test, holdout=holdout)
