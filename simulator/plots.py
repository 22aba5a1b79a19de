"""Matplotlib figures drawn from result files only (never from live simulator objects)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from simulator.results import atomic_write_bytes, read_csv  # noqa: E402

METHOD_LABELS = {"absolute": "absolute (no alignment)", "relative": "relative (zero-shot)",
                 "procrustes": "Procrustes", "affine": "affine", "inverse-relative": "inverse relative"}


def _save(fig: plt.Figure, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."), dpi=130, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _reference_k(rows: list[dict[str, str]], preferred: int = 256) -> int:
    ks = sorted({int(r["anchors"]) for r in rows if int(r["anchors"]) > 0})
    below = [k for k in ks if k <= preferred]
    return below[-1] if below else ks[0]


def stitching_heatmaps(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Accuracy of every tx → rx pair, one panel per method, at K = 256 (or the nearest below)."""
    rows = [r for r in read_csv(csv_path) if r["split"] == split and r["mode"] == "ideal" and r["bits"] == "32"]
    ids = list(dict.fromkeys(r["tx"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    k_ref = _reference_k(rows)
    ncols = min(3, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 4.0 * nrows), squeeze=False,
                             gridspec_kw={"wspace": 0.35, "hspace": 0.45})
    for ax, method in zip(axes.flat, methods):
        mat = np.full((len(ids), len(ids)), np.nan)
        for r in rows:
            if r["method"] == method and int(r["anchors"]) in (0, k_ref):
                mat[ids.index(r["tx"]), ids.index(r["rx"])] = float(r["accuracy"])
        im = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="viridis")
        for i in range(len(ids)):
            for j in range(len(ids)):
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if mat[i, j] < 0.6 else "black")
        ax.set_xticks(range(len(ids)), ids, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(ids)), ids, fontsize=8)
        ax.set_xlabel("receiver encoder")
        if ax in axes[:, 0]:
            ax.set_ylabel("transmitter encoder")
        title = METHOD_LABELS.get(method, method)
        ax.set_title(title if method == "absolute" else f"{title}, K = {k_ref}", fontsize=10)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"test accuracy ({split} split)")
    fig.suptitle("Zero-shot stitching accuracy, transmitter → receiver", fontsize=12)
    return _save(fig, Path(out_dir) / "stitching_heatmap.png")


def accuracy_vs_anchors(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Mean accuracy over cross-encoder pairs against anchor count K, one line per method."""
    rows = [r for r in read_csv(csv_path) if r["split"] == split and r["mode"] == "ideal" and r["bits"] == "32"]
    by = defaultdict(list)
    native = {}
    for r in rows:
        native[r["rx"]] = float(r["rx_native_accuracy"])
        if r["tx"] != r["rx"]:
            by[(r["method"], int(r["anchors"]))].append(float(r["accuracy"]))
    ks = sorted({k for (_, k) in by if k > 0})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(m for (m, _) in by):
        if method == "absolute":
            vals = by[(method, 0)]
            ax.axhline(np.mean(vals), color="grey", ls=":", label=f"{METHOD_LABELS[method]}")
            continue
        mean = np.array([np.mean(by[(method, k)]) for k in ks])
        lo = np.array([np.min(by[(method, k)]) for k in ks])
        hi = np.array([np.max(by[(method, k)]) for k in ks])
        line, = ax.plot(ks, mean, marker="o", label=METHOD_LABELS.get(method, method))
        ax.fill_between(ks, lo, hi, color=line.get_color(), alpha=0.15)
    ax.axhline(np.mean(list(native.values())), color="black", ls="--", label="receivers' own accuracy (mean)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("anchor count K")
    ax.set_ylabel(f"accuracy ({split} split)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title("Stitching accuracy vs anchors (cross-encoder pairs: mean, band = min–max)")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, Path(out_dir) / "accuracy_vs_anchors.png")


def _pair_curves(rows: list[dict[str, str]], x_key: str) -> tuple[dict, dict]:
    """Cross-pair and same-pair accuracies grouped by (mode, x)."""
    cross, same = defaultdict(list), defaultdict(list)
    for r in rows:
        x = float(r[x_key]) if r[x_key] != "" else None
        (same if r["tx"] == r["rx"] else cross)[(r["mode"], x)].append(float(r["accuracy"]))
    return cross, same


def _band(ax: plt.Axes, xs: list[float], groups: dict, key, label: str, **style) -> None:
    mean = [np.mean(groups[key(x)]) for x in xs]
    line, = ax.plot(xs, mean, marker="o", label=label, **style)
    ax.fill_between(xs, [np.min(groups[key(x)]) for x in xs], [np.max(groups[key(x)]) for x in xs],
                    color=line.get_color(), alpha=0.15)


def accuracy_vs_bits(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Relative stitching accuracy against bits per entry (ideal link), with the float32 level."""
    rows = [r for r in read_csv(csv_path) if r["split"] == split and r["method"] == "relative"
            and r["mode"] == "ideal"]
    k = max(int(r["anchors"]) for r in rows if r["bits"] != "32")
    rows = [r for r in rows if int(r["anchors"]) == k]
    cross, same = _pair_curves(rows, "bits")
    bits = sorted({x for (_, x) in cross if x != 32})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _band(ax, bits, cross, lambda b: ("ideal", b), "cross-encoder pairs (mean, band = min–max)")
    _band(ax, bits, same, lambda b: ("ideal", b), "same-encoder pairs", ls="--")
    ax.axhline(np.mean(cross[("ideal", 32.0)]), color="grey", ls=":", label="cross pairs, float32")
    ax.set_xlabel("bits per entry b (uniform quantizer on [−1, 1])")
    ax.set_ylabel(f"accuracy ({split} split)")
    ax.set_xticks(bits, [str(int(b)) for b in bits])
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"Relative stitching vs quantization, K = {k}, error-free link")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, Path(out_dir) / "accuracy_vs_bits.png")


def accuracy_vs_snr(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Relative stitching accuracy against per-symbol SNR, uncoded digital and analog transmission."""
    all_rows = [r for r in read_csv(csv_path) if r["split"] == split and r["method"] == "relative"]
    noisy = [r for r in all_rows if r["mode"] in ("digital", "analog")]
    k = int(noisy[0]["anchors"])
    cross, _ = _pair_curves([r for r in noisy if int(r["anchors"]) == k and r["mode"] == "analog"], "snr_db")
    ideal = [float(r["accuracy"]) for r in all_rows if r["mode"] == "ideal" and r["bits"] == "32"
             and int(r["anchors"]) == k and r["tx"] != r["rx"]]
    scenario_file = Path(csv_path).parent / "scenario.yaml"
    modulation = ""
    if scenario_file.exists():
        modulation = str((yaml.safe_load(scenario_file.read_text()) or {}).get("channel", {}).get("modulation", "")).upper()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    digital_bits = sorted({int(r["bits"]) for r in noisy if r["mode"] == "digital"})
    for bits in digital_bits:
        rows_b = [r for r in noisy if int(r["anchors"]) == k and (r["mode"] == "analog" or int(r["bits"]) == bits)]
        cross_b, _ = _pair_curves([r for r in rows_b if r["mode"] == "digital"], "snr_db")
        snrs = sorted(x for (_, x) in cross_b)
        _band(ax, snrs, cross_b, lambda s: ("digital", s), f"digital, uncoded {modulation}, {bits} bits/entry")
    snrs = sorted(x for (m, x) in cross if m == "analog")
    if snrs:
        _band(ax, snrs, cross, lambda s: ("analog", s), "analog (AWGN on similarities)")
    if ideal:
        ax.axhline(np.mean(ideal), color="grey", ls=":", label="error-free float32")
    ax.set_xlabel("SNR per symbol (dB)")
    ax.set_ylabel(f"accuracy ({split} split)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"Relative stitching through a noisy link, K = {k} (cross-encoder pairs)")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, Path(out_dir) / "accuracy_vs_snr.png")
