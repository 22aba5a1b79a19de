"""The batched stitching tables give the numbers of one cell at a time."""

from __future__ import annotations

import pytest
import torch

from simulator.experiment.calibration import channel_factory, conditions
from simulator.latent import stitching
from simulator.latent.stitching import (Workspace, accuracies, predict, relative_condition_rows,
                                        stitching_rows)

METHODS = ("absolute", "relative", "procrustes", "affine", "inverse-relative")


def _accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).float().mean())  # how one cell at a time scored


def test_stitching_rows_equal_one_prediction_per_cell(tiny_zoo):
    rows = stitching_rows(tiny_zoo, "test", METHODS, [16, 64])
    labels = tiny_zoo.labels("test")
    assert len(rows) == 9 * (1 + 4 * 2)
    for r in rows:
        assert r.accuracy == _accuracy(predict(tiny_zoo, r.tx_encoder, r.rx_encoder, r.method, r.anchors, "test"), labels), r


@pytest.mark.parametrize("limit", [None, 1])
def test_condition_rows_equal_one_channel_and_head_call_per_cell(tiny_zoo, monkeypatch, limit):
    """Same generators, same draws: stacking conditions (or one per group) changes no accuracy.

    ``limit = 1`` forces one condition per head call, the default stacks them all.
    """
    if limit is not None:
        monkeypatch.setitem(stitching.STACK_ELEMENTS, "cpu", limit)
    sc = tiny_zoo.scenario
    conds = conditions(sc, include_float=True)
    pairs = [("mlp-1", "mlp-2"), ("cnn-1", "mlp-1"), ("mlp-2", "mlp-2")]
    factory = channel_factory(sc, "validation")
    rows = relative_condition_rows(tiny_zoo, "validation", [16, 64], conds, factory, pairs)
    assert len(rows) == len(pairs) * 2 * len(conds)
    labels = tiny_zoo.labels("validation")
    noisy = 0
    for r in rows:
        cond = next(c for c in conds if (c.mode, c.bits, c.snr_db) == (r.mode, r.bits, r.snr_db))
        ranges = tiny_zoo.projector(r.tx_encoder, r.anchors).value_ranges()
        channel = factory(cond, r.tx_encoder, r.rx_encoder, r.anchors, ranges)
        expected = _accuracy(predict(tiny_zoo, r.tx_encoder, r.rx_encoder, "relative", r.anchors, "validation", channel), labels)
        assert r.accuracy == expected, r
        noisy += r.mode != "ideal"
    assert noisy > 0


def test_accuracies_of_stacked_batches_are_those_of_each_batch(tiny_zoo):
    head = tiny_zoo.relative_head("mlp-1", 16)
    ws = Workspace(tiny_zoo)
    labels = ws.labels("validation")
    batches = [ws.relative(e, 16, "validation") for e in ("mlp-1", "mlp-2", "cnn-1")]
    with torch.no_grad():
        one_by_one = [_accuracy(head(b).argmax(1), labels) for b in batches]
    assert accuracies(head, [lambda b=b: b for b in batches], labels) == one_by_one
    assert accuracies(head, [], labels) == []


def test_workspace_shares_fitted_maps_and_moves_nothing_on_the_cpu(tiny_zoo):
    ws = Workspace(tiny_zoo)
    assert ws.anchor_map("mlp-1", "cnn-1", "procrustes", 16) is ws.anchor_map("mlp-1", "cnn-1", "procrustes", 16)
    assert ws.projector("mlp-1", 16) is tiny_zoo.projector("mlp-1", 16)  # already on the zoo's device
    r = ws.relative("mlp-1", 16, "test")
    assert r is ws.relative("mlp-1", 16, "test")
    ws.forget("relative")
    assert ws.relative("mlp-1", 16, "test") is not r and torch.equal(ws.relative("mlp-1", 16, "test"), r)
