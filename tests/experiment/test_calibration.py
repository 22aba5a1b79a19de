"""The calibration split: Ĝ on a holdout cut from the test set, its cache keys, and realized accuracy against it."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
import torch

from simulator.config import parse_scenario
from simulator.control.tables import CalibrationRows, sampling_margin
from simulator.experiment.calibration import calibration_rows, condition_rows, conditions, conditions_key
from simulator.experiment.runner import run_scenario
from simulator.latent.cache import cache_key
from simulator.latent.zoo import Zoo
from tests.network.conftest import NETWORK, merge

Z_TEST = 3.0
"""Two-sided normal quantile of the statistical checks (a 0.3 % false alarm before the seed is fixed)."""


@pytest.fixture(scope="module")
def holdout_dict():
    from tests.conftest import TINY

    d = copy.deepcopy(TINY)
    d["data"] = {**d["data"], "calibration": "holdout", "holdout_fraction": 0.5}
    return d


@pytest.fixture(scope="module")
def holdout_zoo(tiny_zoo, holdout_dict):
    """The tiny zoo with half the test set held out for Ĝ (same encoders and heads: from the cache)."""
    return Zoo.build(parse_scenario(holdout_dict), log=lambda m: None)


def _base_commit_key(zoo: Zoo, split: str, anchors, conds) -> str:
    """The key of the calibration rows as the code before the holdout (eef6195) spelled it, verbatim."""
    sc = zoo.scenario
    spec = {"kind": "conditions", "split": split, "encoders": [[e.id, e.key] for e in zoo.encoders.values()],
            "anchor_list": zoo.anchors.tolist(), "anchors": list(anchors),
            "relative": sc.relative.cache_fields(), "heads": sc.heads.model_dump(mode="json"),
            "conditions": [[c.mode, c.bits, c.snr_db] for c in conds],
            "modulation": sc.channel.modulation, "seed": sc.seed}
    return cache_key(spec)


def test_validation_default_keeps_the_cache_keys(tiny_zoo, holdout_zoo):
    sc = tiny_zoo.scenario
    assert sc.data.calibration == "validation" and tiny_zoo.splits.test_is_whole
    anchors, conds = list(sc.stitching.anchors), conditions(sc, include_float=True)
    for split in ("validation", "test"):
        assert conditions_key(tiny_zoo, split, anchors, conds) == _base_commit_key(tiny_zoo, split, anchors, conds)
    # the holdout shares the encoders (and their keys) but not the test rows: a new test split
    assert [e.key for e in holdout_zoo.encoders.values()] == [e.key for e in tiny_zoo.encoders.values()]
    assert conditions_key(holdout_zoo, "test", anchors, conds) != conditions_key(tiny_zoo, "test", anchors, conds)
    assert conditions_key(holdout_zoo, "holdout", anchors, conds) != conditions_key(
        holdout_zoo, "test", anchors, conds)


def test_the_zoo_serves_the_test_split_and_the_holdout_apart(tiny_zoo, holdout_zoo):
    s, data = holdout_zoo.splits, holdout_zoo.dataset
    assert len(s.holdout) + len(s.test) == len(data.x_test) and not set(s.holdout) & set(s.test)
    for split in ("test", "holdout"):
        idx = torch.from_numpy(getattr(s, split))
        assert torch.equal(holdout_zoo.labels(split), torch.from_numpy(data.y_test)[idx])
        for enc_id, enc in holdout_zoo.encoders.items():
            assert torch.equal(holdout_zoo.latents(enc_id, split), enc.latents_test[idx])
    for enc in holdout_zoo.encoders.values():
        assert len(enc.flops_test) == len(s.test)  # indexed like the test split, as the world reads it
    assert torch.equal(tiny_zoo.latents("mlp-1", "test"), tiny_zoo.encoders["mlp-1"].latents_test)
    rows = calibration_rows(holdout_zoo)
    assert isinstance(rows, CalibrationRows) and {r.split for r in rows} == {"holdout"}
    assert (rows.n_calibration, rows.n_test) == (len(s.holdout), len(s.test))
    plain = calibration_rows(tiny_zoo)
    assert {r.split for r in plain} == {"validation"}
    assert (plain.n_calibration, plain.n_test) == (len(tiny_zoo.splits.validation), len(data.x_test))


@pytest.mark.parametrize("encoder, k, bits", [("mlp-1", 32, 8), ("cnn-1", 64, 4)])
def test_a_fixed_option_realizes_the_holdout_accuracy_on_the_test_split(holdout_zoo, holdout_dict, tmp_path,
                                                                       encoder, k, bits):
    """Tasks come from the test split, and their accuracy matches Ĝ measured on the holdout.

    Realized − Ĝ: the holdout and the test split are disjoint halves of one set, and the tasks
    are drawn with replacement from the test split, so the difference has variance
    G(1 − G)(1/n_cal + 1/n_test + 1/n_tasks) (:func:`sampling_margin` with z = 1).
    """
    sc = parse_scenario(merge(merge(holdout_dict, NETWORK), {
        "simulation": {"slots": 1500},
        "transmitters": [{**NETWORK["transmitters"][0], "encoders": [encoder]}],
        "controller": {"kind": "static", "anchors": k, "bits": bits, "rate_bps": 2.0e6}}))
    summary = run_scenario(sc, tmp_path / "run", zoo=holdout_zoo)
    rows = calibration_rows(holdout_zoo)
    g = next(r.accuracy for r in rows if (r.tx_encoder, r.rx_encoder, r.anchors, r.bits, r.mode) == (encoder, "mlp-2", k, bits, "ideal"))
    with open(tmp_path / "run" / "tasks.csv", newline="") as fh:
        tasks = [t for t in csv.DictReader(fh) if t["status"] == "delivered"]
    y_test = holdout_zoo.dataset.y_test[holdout_zoo.splits.test]
    assert all(int(t["label"]) == y_test[int(t["sample"])] for t in tasks)  # samples index the test split
    n = len(tasks)
    assert n > 2000 and summary["accuracy"] == pytest.approx(np.mean([t["correct"] == "1" for t in tasks]))
    sd = sampling_margin(g, rows.n_calibration, rows.n_test, n, z=1.0)
    assert abs(summary["accuracy"] - g) <= Z_TEST * sd, (summary["accuracy"], g, sd)


def test_cached_rows_under_the_old_pair_names_are_read_not_recomputed(tiny_zoo, monkeypatch):
    # Calibration rows cached before the columns were renamed (tx, rx → tx_encoder, rx_encoder) stay valid.
    sc = tiny_zoo.scenario
    anchors, conds = list(sc.stitching.anchors), conditions(sc, include_float=True)
    rows = condition_rows(tiny_zoo, "validation", anchors, conds)
    key = conditions_key(tiny_zoo, "validation", anchors, conds)
    old = [{("tx" if k == "tx_encoder" else "rx" if k == "rx_encoder" else k): v for k, v in r.as_dict().items()}
           for r in rows]
    assert {"tx", "rx"} <= old[0].keys() and "tx_encoder" not in old[0]
    tiny_zoo.cache.save("conditions", key, {"rows": old})
    try:
        monkeypatch.setattr("simulator.experiment.calibration.relative_condition_rows", lambda *a, **k: 1 / 0)
        assert condition_rows(tiny_zoo, "validation", anchors, conds) == rows
    finally:
        tiny_zoo.cache.save("conditions", key, {"rows": [r.as_dict() for r in rows]})
