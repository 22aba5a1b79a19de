"""`relcomm stitch`: the alignment-under-mismatch matrix and the calibration table, as a results folder."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from simulator import __version__, plots
from simulator.config import Scenario, scenario_to_dict
from simulator.folders import claim
from simulator.experiment.calibration import calibration_rows, condition_rows, conditions
from simulator.latent import retrieval
from simulator.latent.stitching import COLUMNS, StitchRow, Workspace, stitching_rows
from simulator.latent.zoo import Zoo
from simulator.results import write_csv, write_json, write_yaml


def smallest_bits(rows: list[StitchRow], tolerance: float = 0.01) -> dict:
    """Per pair, the smallest b (ideal link) whose accuracy is within ``tolerance`` of float32."""
    curves: dict = defaultdict(dict)
    for r in rows:
        if r.mode == "ideal" and r.method == "relative":
            curves[(r.tx_encoder, r.rx_encoder, r.anchors)][r.bits] = r.accuracy
    out = {}
    for (tx, rx, k), curve in curves.items():
        if 32 in curve and len(curve) > 1:
            ok = [b for b in sorted(curve) if b != 32 and curve[b] >= curve[32] - tolerance]
            out[f"{tx}->{rx}"] = ok[0] if ok else 32
    return out


def summarize(rows: list[StitchRow], k_ref: int = 256) -> dict:
    """Ratios of cross-pair accuracy to the receiver's same-encoder accuracy (same method and K)."""
    ref = {(r.rx_encoder, r.method, r.anchors): r.accuracy for r in rows if r.tx_encoder == r.rx_encoder}
    out: dict = defaultdict(dict)
    for r in rows:
        if r.tx_encoder != r.rx_encoder and r.anchors in (0, k_ref):
            out[r.method][f"{r.tx_encoder}->{r.rx_encoder}"] = {
                "accuracy": r.accuracy,
                "ratio_to_same_encoder": r.accuracy / ref[(r.rx_encoder, r.method, r.anchors)],
                "ratio_to_rx_native": r.accuracy / r.rx_native_accuracy}
    return {"anchors": k_ref, "pairs": dict(out)}


def run_stitch(scenario: Scenario, out_dir: Path, log: Callable[[str], None]) -> dict:
    """Build the zoo, measure the matrix on the test split (and Ĝ on validation), write everything.

    Writes ``stitching.csv`` (DESIGN §4 columns), ``retrieval.csv`` (:mod:`simulator.latent.retrieval`),
    ``stitch_summary.json``, ``scenario.yaml`` and the plots of :func:`simulator.plots.stitching_plots`
    into ``out_dir``; the folder appears only when complete.
    """
    with claim(out_dir, "stitch") as target:  # checked and locked before any work
        t0 = time.perf_counter()
        zoo = Zoo.build(scenario, log=log)
        st = scenario.stitching
        log(f"stitching {len(zoo.encoders)}×{len(zoo.encoders)} pairs × {len(st.methods)} methods × "
            f"{len(st.anchors)} anchor counts")
        ws = Workspace(zoo)  # latents, projectors and fitted maps on the zoo's device, shared below
        rows = stitching_rows(zoo, "test", st.methods, st.anchors, workspace=ws)
        k_curve = st.curve_anchors or max([k for k in st.anchors if k <= 256] or [min(st.anchors)])
        log(f"accuracy through the channel at K = {k_curve}: {len(st.bits)} bit widths, {len(st.snr_db)} SNRs")
        rows += condition_rows(zoo, "test", [k_curve], conditions(scenario, include_float=False), log, ws)
        if st.calibrate:
            rows += calibration_rows(zoo, log, ws)
        n_candidates = min(st.retrieval_candidates, len(zoo.splits.test))
        log(f"retrieval among {n_candidates} test samples")
        retrieved = retrieval.retrieval_rows(zoo, st.methods, st.anchors, n_candidates, workspace=ws)
        with target.staging() as staging:
            write_csv(staging / "stitching.csv", COLUMNS, (r.as_dict() for r in rows))
            write_csv(staging / "retrieval.csv", retrieval.COLUMNS, (r.as_dict() for r in retrieved))
            k_ref = max([k for k in st.anchors if k <= 256] or [min(st.anchors)])
            summary = {"version": __version__, "wall_s": time.perf_counter() - t0,
                       "encoders": {e.id: {"flops": e.flops, "latent_dim": e.latent_dim, "arch": e.cfg.arch,
                                           "test_accuracy": zoo.native_accuracy(e.id, "test")}
                                    for e in zoo.encoders.values()},
                       **summarize([r for r in rows if r.split == "test" and r.mode == "ideal" and r.bits == 32], k_ref),
                       "curve_anchors": k_curve,
                       "smallest_bits_within_1pt": smallest_bits([r for r in rows if r.split == "test"])}
            write_json(staging / "stitch_summary.json", summary)
            write_yaml(staging / "scenario.yaml", {**scenario_to_dict(scenario), "version": __version__})
            plots.stitching_plots(staging)
    return summary
