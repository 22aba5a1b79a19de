"""The calibration table Ĝ(pair, K, b, SNR): relative stitching accuracy on the calibration split."""

from __future__ import annotations

import time
from typing import Callable

import torch

from simulator.channel import db_to_linear, transmit_payload
from simulator.config import Scenario
from simulator.control.tables import CalibrationRows
from simulator.latent.cache import cache_key
from simulator.latent.stitching import Channel, Condition, StitchRow, Workspace, relative_condition_rows
from simulator.latent.zoo import Zoo
from simulator.results import current_names
from simulator.rng import SeedTree


def channel_factory(scenario: Scenario, split: str, device: torch.device | str = "cpu"):
    """Channels for :func:`relative_condition_rows`: each relative block quantized over its own range.

    Noise is drawn from the seed tree node ``stitch-channel/split/tx/rx/K/mode/bits/snr``, so
    every cell of the table is reproducible on its own, by a generator on ``device`` (where the
    representations are): on the CPU the same stream as ever; a CUDA generator draws another
    stream from the same seed (CUDA runs have their own cache entries: the encoders' keys hold
    the device).
    """
    modulation = scenario.channel.modulation

    def build(cond: Condition, tx: str, rx: str, k: int, ranges: list) -> Channel:
        seeds = SeedTree(scenario.seed).child("stitch-channel", split, tx, rx, k, cond.mode, cond.bits, cond.snr_db)
        gen = seeds.torch(device)
        snr = None if cond.snr_db is None else float(db_to_linear(cond.snr_db))

        def channel(r: torch.Tensor) -> torch.Tensor:
            blocks = r.split(k, dim=1)
            return torch.cat([transmit_payload(b, cond.mode, cond.bits, lo, hi, snr, modulation, gen)
                              for b, (lo, hi) in zip(blocks, ranges)], dim=1)
        return channel
    return build


def conditions(scenario: Scenario, include_float: bool) -> list[Condition]:
    """The bits sweep on an ideal link and the SNR sweeps of the digital and analog modes."""
    st = scenario.stitching
    out = [Condition("ideal", b) for b in st.bits if include_float or b != 32]
    out += [Condition("digital", b, float(s)) for b in st.noisy_bits for s in st.snr_db]
    out += [Condition("analog", 32, float(s)) for s in st.snr_db]
    return out


def conditions_key(zoo: Zoo, split: str, anchors: list[int], conds: list[Condition]) -> str:
    """Cache key of :func:`condition_rows`: everything the rows depend on.

    Encoders, anchors, heads, conditions, modulation, seed, and the holdout cut when the split
    is the holdout or the test split beside it (:meth:`Zoo.split_fields`; empty otherwise, so
    keys made before the holdout existed stay valid).
    """
    sc = zoo.scenario
    spec = {"kind": "conditions", "split": split, "encoders": [[e.id, e.key] for e in zoo.encoders.values()],
            "anchor_list": zoo.anchors.tolist(), "anchors": list(anchors),
            "relative": sc.relative.cache_fields(), "heads": sc.heads.model_dump(mode="json"),
            "conditions": [[c.mode, c.bits, c.snr_db] for c in conds],
            "modulation": sc.channel.modulation, "seed": sc.seed, **zoo.split_fields(split)}
    return cache_key(spec)


def condition_rows(zoo: Zoo, split: str, anchors: list[int], conds: list[Condition],
                   log: Callable[[str], None] = lambda m: None, workspace: Workspace | None = None) -> list[StitchRow]:
    """Relative stitching accuracy of every encoder pair × anchor count × link condition on ``split``.

    Deterministic in its inputs, and costly (one head pass per cell, batched per receiver and K
    on the zoo's device), so the rows are cached under :func:`conditions_key` and computed once.
    ``workspace``: device copies shared with other tables of the same run.
    """
    sc = zoo.scenario
    key = conditions_key(zoo, split, anchors, conds)
    stored = zoo.cache.load("conditions", key)
    if stored is not None:
        return [StitchRow(**current_names(row)) for row in stored["rows"]]
    t0 = time.perf_counter()
    log(f"{split} split: {len(zoo.encoders) ** 2} pairs × {len(anchors)} anchor counts × {len(conds)} link "
        "conditions (computed once, then cached)")
    rows = relative_condition_rows(zoo, split, anchors, conds, channel_factory(sc, split, zoo.device),
                                   workspace=workspace)
    zoo.cache.save("conditions", key, {"rows": [r.as_dict() for r in rows]})
    log(f"{len(rows)} cells in {time.perf_counter() - t0:.1f} s")
    return rows


def calibration_rows(zoo: Zoo, log: Callable[[str], None] = lambda m: None,
                     workspace: Workspace | None = None) -> CalibrationRows:
    """Ĝ: every pair × anchor count × condition on the calibration split (the optimizer's table).

    The split is ``data.calibration``: ``validation`` (from the official training set) or
    ``holdout`` (from the official test set, disjoint from the test split the tasks come
    from). Conditions: every ``stitching.bits`` on an error-free link, and the digital (each
    of ``stitching.noisy_bits``) and analog modes at every ``stitching.snr_db``. The rows
    carry the calibration and test splits' sizes (for ``controller.accuracy_margin: auto``).
    """
    sc, split = zoo.scenario, zoo.calibration_split
    rows = condition_rows(zoo, split, list(sc.stitching.anchors), conditions(sc, include_float=True), log, workspace)
    return CalibrationRows(rows, len(getattr(zoo.splits, split)), len(zoo.splits.test))
