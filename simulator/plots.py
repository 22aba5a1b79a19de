"""Matplotlib figures drawn from result files only (never from live simulator objects)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from simulator import yamlio  # noqa: E402
from simulator.results import atomic_write_bytes, read_csv, read_pair_csv  # noqa: E402

METHOD_LABELS = {"absolute": "absolute (no alignment)", "relative": "relative (zero-shot)",
                 "procrustes": "Procrustes", "affine": "affine", "inverse-relative": "inverse relative"}


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write the figure as ``path`` (PNG) and beside it as PDF (vector, for papers); return the PNG path."""
    path = Path(path)
    for suffix in (".png", ".pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=suffix.lstrip("."), dpi=130, bbox_inches="tight")
        atomic_write_bytes(path.with_suffix(suffix), buf.getvalue())
    plt.close(fig)
    return path


def _reference_k(rows: list[dict[str, str]], preferred: int = 256) -> int:
    ks = sorted({int(r["anchors"]) for r in rows if int(r["anchors"]) > 0})
    below = [k for k in ks if k <= preferred]
    return below[-1] if below else ks[0]


def _pair_panel(ax, axes, ids: list[str], values: np.ndarray, labels: list[list[str]], method: str, k: int,
                cmap) -> object:
    """One transmitter × receiver panel: colours from ``values`` in [0, 1], ``labels`` written in the cells."""
    im = ax.imshow(values, vmin=0.0, vmax=1.0, cmap=cmap)
    for i in range(len(ids)):
        for j in range(len(ids)):
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=8,
                    color="white" if values[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(ids)), ids, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(ids)), ids, fontsize=8)
    ax.set_xlabel("receiver encoder")
    if ax in axes[:, 0]:
        ax.set_ylabel("transmitter encoder")
    title = METHOD_LABELS.get(method, method)
    ax.set_title(title if method == "absolute" else f"{title}, K = {k}", fontsize=10)
    return im


def stitching_heatmaps(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Accuracy of every tx → rx pair, one panel per method, at K = 256 (or the nearest below)."""
    rows = [r for r in read_pair_csv(csv_path) if r["split"] == split and r["mode"] == "ideal" and r["bits"] == "32"]
    ids = list(dict.fromkeys(r["tx_encoder"] for r in rows))
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
                mat[ids.index(r["tx_encoder"]), ids.index(r["rx_encoder"])] = float(r["accuracy"])
        im = _pair_panel(ax, axes, ids, mat, [[f"{v:.2f}" for v in row] for row in mat], method, k_ref, "viridis")
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"test accuracy ({split} split)")
    fig.suptitle("Zero-shot stitching accuracy, transmitter → receiver", fontsize=12)
    return save_figure(fig, Path(out_dir) / "stitching_heatmap.png")


def accuracy_vs_anchors(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Mean accuracy over cross-encoder pairs against anchor count K, one line per method."""
    rows = [r for r in read_pair_csv(csv_path) if r["split"] == split and r["mode"] == "ideal" and r["bits"] == "32"]
    by = defaultdict(list)
    native = {}
    for r in rows:
        native[r["rx_encoder"]] = float(r["rx_native_accuracy"])
        if r["tx_encoder"] != r["rx_encoder"]:
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
    return save_figure(fig, Path(out_dir) / "accuracy_vs_anchors.png")


def _pair_curves(rows: list[dict[str, str]], x_key: str) -> tuple[dict, dict]:
    """Cross-pair and same-pair accuracies grouped by (mode, x)."""
    cross, same = defaultdict(list), defaultdict(list)
    for r in rows:
        x = float(r[x_key]) if r[x_key] != "" else None
        (same if r["tx_encoder"] == r["rx_encoder"] else cross)[(r["mode"], x)].append(float(r["accuracy"]))
    return cross, same


def _band(ax: plt.Axes, xs: list[float], groups: dict, key, label: str, **style) -> None:
    mean = [np.mean(groups[key(x)]) for x in xs]
    line, = ax.plot(xs, mean, marker="o", label=label, **style)
    ax.fill_between(xs, [np.min(groups[key(x)]) for x in xs], [np.max(groups[key(x)]) for x in xs],
                    color=line.get_color(), alpha=0.15)


def accuracy_vs_bits(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Relative stitching accuracy against bits per entry (ideal link), with the float32 level."""
    rows = [r for r in read_pair_csv(csv_path) if r["split"] == split and r["method"] == "relative"
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
    return save_figure(fig, Path(out_dir) / "accuracy_vs_bits.png")


def accuracy_vs_snr(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Relative stitching accuracy against per-symbol SNR, uncoded digital and analog transmission."""
    all_rows = [r for r in read_pair_csv(csv_path) if r["split"] == split and r["method"] == "relative"]
    noisy = [r for r in all_rows if r["mode"] in ("digital", "analog")]
    k = int(noisy[0]["anchors"])
    cross, _ = _pair_curves([r for r in noisy if int(r["anchors"]) == k and r["mode"] == "analog"], "snr_db")
    ideal = [float(r["accuracy"]) for r in all_rows if r["mode"] == "ideal" and r["bits"] == "32"
             and int(r["anchors"]) == k and r["tx_encoder"] != r["rx_encoder"]]
    scenario_file = Path(csv_path).parent / "scenario.yaml"
    modulation = ""
    if scenario_file.exists():
        modulation = str((yamlio.load(scenario_file.read_text(), str(scenario_file))[0] or {}).get("channel", {}).get("modulation", "")).upper()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    digital_bits = sorted({int(r["bits"]) for r in noisy if r["mode"] == "digital"})
    for i, bits in enumerate(digital_bits):
        rows_b = [r for r in noisy if int(r["anchors"]) == k and (r["mode"] == "analog" or int(r["bits"]) == bits)]
        cross_b, _ = _pair_curves([r for r in rows_b if r["mode"] == "digital"], "snr_db")
        snrs = sorted(x for (_, x) in cross_b)
        # Distinct dashes: curves of different bit widths often coincide at high SNR.
        _band(ax, snrs, cross_b, lambda s: ("digital", s), f"digital, uncoded {modulation}, {bits} bits/entry",
              ls=("-", "--", "-.", ":")[i % 4])
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
    return save_figure(fig, Path(out_dir) / "accuracy_vs_snr.png")


def retrieval_heatmaps(csv_path: Path, out_dir: Path, split: str = "test") -> Path:
    """Retrieval top-1 (and MRR) of every tx → rx pair, one panel per method, at the largest K in the file."""
    rows = [r for r in read_pair_csv(csv_path) if r["split"] == split]
    if not rows:  # e.g. only `absolute` asked for, between latent spaces of different widths
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no pair could be compared (retrieval.csv is empty)", ha="center", va="center")
        return save_figure(fig, Path(out_dir) / "retrieval.png")
    ids = list(dict.fromkeys([r["tx_encoder"] for r in rows] + [r["rx_encoder"] for r in rows]))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    k_max = max(int(r["anchors"]) for r in rows)
    n = int(rows[0]["candidates"])
    ncols = min(3, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 4.0 * nrows), squeeze=False,
                             gridspec_kw={"wspace": 0.35, "hspace": 0.45})
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    for ax, method in zip(axes.flat, methods):
        top1, mrr = np.full((len(ids), len(ids)), np.nan), np.full((len(ids), len(ids)), np.nan)
        for r in rows:
            if r["method"] == method and int(r["anchors"]) in (0, k_max):
                i, j = ids.index(r["tx_encoder"]), ids.index(r["rx_encoder"])
                top1[i, j], mrr[i, j] = float(r["top1"]), float(r["mrr"])
        labels = [["n/a" if np.isnan(t) else f"{t:.2f}\n({m:.2f})" for t, m in zip(*pair)] for pair in zip(top1, mrr)]
        im = _pair_panel(ax, axes, ids, top1, labels, method, k_max, cmap)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"top-1 retrieval ({split} split)")
    na = "; n/a: latent widths differ" if "absolute" in methods else ""
    fig.suptitle(f"Retrieval of each sample among {n} candidates by cosine similarity, transmitter → receiver\n"
                 f"top-1 (MRR in brackets); chance: top-1 = {1 / n:.3f}{na}", fontsize=11)
    return save_figure(fig, Path(out_dir) / "retrieval.png")


# --------------------------------------------------------------------------- run time series

VIRTUAL_QUEUE_COLUMNS = ("delay_queue", "accuracy_queue")
"""Columns of ``slots.csv`` with a controller's virtual queues, drawn when present."""

MAX_POINTS = 600
"""Time bins of a time-series plot: longer runs are averaged over ``ceil(slots / MAX_POINTS)`` slots."""

MAX_LINES = 6
"""More transmitters than this are drawn as their mean, with the min–max band across them."""

_CHUNK_ROWS = 4096
_RUN_COLUMNS = ("queue_len", "anchors", "bits", "rate_bps", "r_max_bps", "cpu_hz", "gain_db", "power_w", "snr_db",
                "energy_tx_per_slot_j", "energy_cpu_per_slot_j", "tasks_arrived", "tasks_delivered", "tasks_dropped",
                "link_up", "device_on")


class BinnedSlots:
    """Columns of ``slots.csv`` averaged over time bins, per group of transmitters, in bounded memory.

    The file is streamed in chunks of rows; only the needed columns are kept, and each is reduced
    at once to a sum, a count, a minimum and a maximum per (group, bin). Memory is
    O(groups × bins × columns) whatever the length of the run.

    Parameters
    ----------
    path : Path
        ``slots.csv``.
    n_slots : int
        Slots in the run (``summary.json`` ``slots``); with ``max_points`` it sets the bin width.
    group_of : dict
        Transmitter id → group index (0 … n_groups − 1).
    columns : sequence of str
        Columns to reduce; those absent from the file are skipped (see :attr:`columns`).
    derived : dict, optional
        Name → ``f(values, rows_group)`` computing an extra column from a chunk (a dict of float64
        arrays keyed by column) and the group index of each row.
    max_points : int

    Attributes
    ----------
    slots_per_bin : int
    columns : list of str
        Columns found (and derived).
    mean, lo, hi : dict of str → float64 (n_groups, n_bins)
        NaN where a bin had no finite value.
    """

    def __init__(self, path: Path, n_slots: int, group_of: dict[str, int], columns, derived=None,
                 max_points: int = MAX_POINTS):
        n_groups = max(group_of.values()) + 1
        self.slots_per_bin = max(1, int(np.ceil(n_slots / max_points)))
        n_bins = max(1, int(np.ceil(n_slots / self.slots_per_bin)))
        self.n_bins = n_bins
        derived = dict(derived or {})
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None) or []
            index = {name: i for i, name in enumerate(header)}
            if "slot" not in index or "transmitter" not in index:
                raise ValueError(f"{path} lacks the slot and transmitter columns")
            self.columns = [c for c in columns if c in index]
            self.columns += [c for c in header if c in VIRTUAL_QUEUE_COLUMNS and c not in self.columns]
            keep = [index["slot"], index["transmitter"]] + [index[c] for c in self.columns]
            names = list(self.columns) + list(derived)
            size = n_groups * n_bins
            acc = {c: (np.zeros(size), np.zeros(size), np.full(size, np.inf), np.full(size, -np.inf)) for c in names}
            while True:
                chunk = [[row[i] for i in keep] for _, row in zip(range(_CHUNK_ROWS), reader)]
                if not chunk:
                    break
                cols = list(zip(*chunk))
                slot = np.asarray(cols[0], dtype=np.int64)
                group = np.fromiter((group_of.get(t, -1) for t in cols[1]), dtype=np.int64, count=len(chunk))
                ok = group >= 0
                key = group * n_bins + np.minimum(slot // self.slots_per_bin, n_bins - 1)
                values = {c: _floats(col) for c, col in zip(self.columns, cols[2:])}
                for name, fn in derived.items():
                    try:
                        values[name] = fn(values, group)
                    except KeyError:  # a column it needs is not in this file
                        values[name] = np.full(len(chunk), np.nan)
                for name, v in values.items():
                    s, n, lo, hi = acc[name]
                    good = ok & np.isfinite(v)
                    s += np.bincount(key[good], weights=v[good], minlength=size)
                    n += np.bincount(key[good], minlength=size)
                    np.minimum.at(lo, key[good], v[good])
                    np.maximum.at(hi, key[good], v[good])
        self.columns = names
        shape = (n_groups, n_bins)
        self.mean, self.lo, self.hi = {}, {}, {}
        for name, (s, n, lo, hi) in acc.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                self.mean[name] = np.where(n > 0, s / np.maximum(n, 1), np.nan).reshape(shape)
            self.lo[name] = np.where(n > 0, lo, np.nan).reshape(shape)
            self.hi[name] = np.where(n > 0, hi, np.nan).reshape(shape)

    def time_s(self, slot_s: float) -> np.ndarray:
        """Start time of each bin (s)."""
        return np.arange(self.n_bins) * self.slots_per_bin * slot_s


_SPECIAL_CELLS = {"": np.nan, "True": 1.0, "False": 0.0}


def _floats(col: tuple[str, ...]) -> np.ndarray:
    """A CSV column as float64: empty cells NaN, ``True``/``False`` 1/0."""
    if col and col[0] in ("True", "False"):
        return (np.asarray(col) == "True").astype(np.float64)
    try:
        return np.asarray(col, dtype=np.float64)
    except ValueError:
        return np.array([_SPECIAL_CELLS[x] if x in _SPECIAL_CELLS else float(x) for x in col])


def _read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def run_timeseries(run_dir: Path, out_dir: Path | None = None, max_points: int = MAX_POINTS) -> Path:
    """Time series of a run, from ``slots.csv`` (streamed, binned) and ``summary.json``.

    Panels, against simulated time (s): device queue length (tasks); the controller's virtual
    queues (``delay_queue``, ``accuracy_queue``) when present, else tasks arrived / delivered / dropped per slot;
    K (anchors per task); b (bits per entry); transmission rate and R_max at full power
    (Mbit/s); device CPU frequency (GHz); received SNR at the chosen power (dB); device energy
    per slot (mJ, transmission + computation). One line per transmitter (their mean, with the
    band across them, beyond ``MAX_LINES``); a long run is averaged over bins of slots, with
    the min–max band within each bin.

    Writes ``timeseries.png`` and ``timeseries.pdf`` into ``out_dir`` (default ``run_dir/plots``).
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "plots"
    summary = _read_json(run_dir / "summary.json")
    n_slots, slot_s = int(summary["slots"]), float(summary.get("slot_s", 1.0))
    txs = [a for a, v in (summary.get("per_agent") or {}).items() if v.get("kind") == "transmitter"]
    if len(txs) <= MAX_LINES:
        groups, group_of = txs, {t: i for i, t in enumerate(txs)}
    else:
        groups, group_of = [f"mean of {len(txs)} devices"], {t: 0 for t in txs}
    derived = {"energy_mj": lambda v, g: (v["energy_tx_per_slot_j"] + v["energy_cpu_per_slot_j"]) * 1e3,
               "fault": lambda v, g: 1.0 - v["link_up"] * v["device_on"]}
    data = BinnedSlots(run_dir / "slots.csv", n_slots, group_of or {"": 0}, _RUN_COLUMNS, derived, max_points)
    t = data.time_s(slot_s)
    vq = [c for c in data.columns if c in VIRTUAL_QUEUE_COLUMNS]

    fig, axes = plt.subplots(4, 2, figsize=(12, 11), sharex=True, gridspec_kw={"hspace": 0.32, "wspace": 0.22})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    band = data.slots_per_bin > 1 or len(txs) > MAX_LINES

    def draw(ax, column, scale=1.0, step=False, ls="-", label=True, unit=""):
        if column not in data.mean or not np.isfinite(data.mean[column]).any():
            ax.text(0.5, 0.5, "not in the results", transform=ax.transAxes, ha="center", color="grey")
            return
        if step:
            lo, hi = np.nanmin(data.lo[column], axis=1), np.nanmax(data.hi[column], axis=1)
            if np.all(lo == hi):  # a setting that never changed: say it in words, lines would overlap
                text = " · ".join(f"{name}: {lo[g] * scale:g}{unit}" for g, name in enumerate(groups))
                ax.text(0.01, 0.97, f"constant — {text}", transform=ax.transAxes, va="top", fontsize=8,
                        bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.9})
        for g, name in enumerate(groups):
            # Later devices are drawn thinner, so identical settings (a static controller) stay visible.
            lw = max(0.8, 3.6 - 1.0 * g) if step and len(groups) > 1 else 1.2
            kw = {"color": colors[g % len(colors)], "lw": lw, "ls": ls}
            y = data.mean[column][g] * scale
            if step:
                ax.step(t, y, where="post", label=name if label else None, **kw)
            else:
                ax.plot(t, y, label=name if label else None, **kw)
            if band and ls == "-":
                ax.fill_between(t, data.lo[column][g] * scale, data.hi[column][g] * scale, color=kw["color"],
                                alpha=0.15, lw=0, step="post" if step else None)

    ax = axes[0, 0]
    draw(ax, "queue_len")
    ax.set_ylabel("device queue (tasks)")
    ax.set_title("Backlog at the device")
    ax = axes[0, 1]
    if vq:
        for i, c in enumerate(vq):
            for g in range(len(groups)):
                ax.plot(t, data.mean[c][g], color=colors[g % len(colors)], ls=("-", "--", ":", "-.")[i % 4], lw=1.2)
        names = {"delay": "delay Z", "accuracy": "accuracy Y"}
        ax.set_ylabel("virtual queue (objective units)")
        ax.set_title("Virtual queues: " + ", ".join(
            f"{names.get(c.removesuffix('_queue'), c)} "
            f"({('solid', 'dashed', 'dotted', 'dash-dot')[i % 4]})" for i, c in enumerate(vq)))
    else:
        for c, label, style in (("tasks_arrived", "arrived", {"color": "0.55", "lw": 2.4}),
                                ("tasks_delivered", "delivered", {"color": "tab:green", "lw": 1.0}),
                                ("tasks_dropped", "dropped", {"color": "tab:red", "lw": 1.0})):
            if c in data.mean:
                ax.plot(t, np.nansum(data.mean[c], axis=0) * (len(txs) if len(txs) > MAX_LINES else 1),
                        label=label, **style)
        ax.set_ylabel("tasks per slot (all devices)")
        ax.set_title("Task flow")
        ax.legend(fontsize=8, loc="upper right")
    draw(axes[1, 0], "anchors", step=True)
    axes[1, 0].set_ylabel("K (anchors per task)")
    axes[1, 0].set_title("Anchors sent, K")
    draw(axes[1, 1], "bits", step=True)
    axes[1, 1].set_ylabel("b (bits per entry)")
    axes[1, 1].set_title("Quantization, b (32 = float32)")
    ax = axes[2, 0]
    draw(ax, "rate_bps", scale=1e-6)
    draw(ax, "r_max_bps", scale=1e-6, ls=":", label=False)
    ax.set_ylabel("rate (Mbit/s)")
    ax.set_title("Transmission rate (solid) and R_max at full power (dotted)")
    draw(axes[2, 1], "cpu_hz", scale=1e-9, step=True, unit=" GHz")
    axes[2, 1].set_ylabel("CPU frequency (GHz)")
    axes[2, 1].set_title("Device CPU frequency")
    draw(axes[3, 0], "snr_db")
    axes[3, 0].set_ylabel("SNR (dB)")
    axes[3, 0].set_title("Received SNR at the chosen power")
    draw(axes[3, 1], "energy_mj")
    axes[3, 1].set_ylabel("energy per slot (mJ)")
    axes[3, 1].set_title("Device energy per slot (radio + CPU)")
    fault = data.mean.get("fault")
    faulted = np.nanmax(np.nan_to_num(fault, nan=0.0), axis=0) > 0 if fault is not None else np.zeros(len(t), bool)
    edges = np.flatnonzero(np.diff(np.r_[0, faulted.astype(int), 0]))
    width = data.slots_per_bin * slot_s
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.margins(x=0)
        for start, stop in zip(edges[::2], edges[1::2]):
            ax.axvspan(t[start], t[stop - 1] + width, color="tab:red", alpha=0.08, lw=0)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    for ax in (axes[1, 0], axes[1, 1]):
        ax.yaxis.get_major_locator().set_params(integer=True)

    def fmt(value, unit_scale, unit, spec=".3g"):
        return "n/a" if value is None else f"{value * unit_scale:{spec}} {unit}".strip()
    headline = (f"{summary.get('name', run_dir.name)}: {summary.get('controller', '?')} controller, "
                f"{n_slots} slots of {slot_s * 1e3:g} ms — accuracy {fmt(summary.get('accuracy'), 1, '', '.3f')}, "
                f"mean delay {fmt(summary.get('mean_delay_s'), 1e3, 'ms')}, "
                f"average power {fmt(summary.get('avg_power_w'), 1e3, 'mW')}, "
                f"{summary.get('tasks_delivered', '?')}/{summary.get('tasks_arrived', '?')} tasks delivered")
    note = (f"each point: mean over {data.slots_per_bin} slots, band: min–max within the bin"
            if data.slots_per_bin > 1 else "one point per slot")
    if len(txs) > MAX_LINES:
        note += f"; {len(txs)} devices pooled (band: min–max across devices and slots)"
    fig.suptitle(f"{headline}\n{note}", fontsize=11, y=0.995)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if len(edges):
        from matplotlib.patches import Patch

        handles.append(Patch(color="tab:red", alpha=0.15))
        labels.append("fault: link down or device off")
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=min(len(handles), 6),
                   fontsize=9, frameon=False, title="transmitter", title_fontsize=9)
    return save_figure(fig, out_dir / "timeseries.png")


# --------------------------------------------------------------------------- trade-off curves

_ENERGY_UNITS = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"))


def _energy_unit(values: np.ndarray) -> tuple[float, str]:
    """(scale, unit) that puts the median magnitude of ``values`` (J) between 1 and 1000."""
    finite = np.abs(values[np.isfinite(values)])
    ref = float(np.median(finite)) if finite.size else 1.0
    for scale, unit in _ENERGY_UNITS:
        if ref >= scale:
            return scale, unit
    return _ENERGY_UNITS[-1]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell(text: str) -> str:
    """A CSV cell as a point label: numbers in short %g form (1e+05, 0.5), anything else as it is."""
    return f"{float(text):.3g}" if _is_number(text) else text


def _axis_label(path: str) -> str:
    """The last part of a swept path, ``V`` for ``controller.v``."""
    return "V" if path == "controller.v" else path.rsplit(".", 1)[-1]


def _float(cell: str | None) -> float:
    return math.nan if cell in (None, "", "None") else float(cell)


def _point_labels(members: list[dict[str, str]], labels: list[str], x: np.ndarray,
                  y: np.ndarray) -> list[tuple[str, float, float]]:
    """(text, x, y) labels of a curve's points; consecutive points closer than 3 % of the curve's
    range in both x and y share one label ("V=1e+04 … 1e+06") when a single axis is swept."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not labels or not ok.any():
        return []
    if len(labels) > 1:
        return [(", ".join(f"{_axis_label(a)}={_cell(r[a])}" for a in labels), xi, yi)
                for r, xi, yi, k in zip(members, x, y, ok) if k]
    axis = labels[0]
    span_x = max(float(np.ptp(x[ok])), 1e-300)
    span_y = max(float(np.ptp(y[ok])), 1e-300)
    groups: list[list[int]] = []
    for i in np.flatnonzero(ok):
        first = groups[-1][0] if groups else None
        if first is not None and abs(x[i] - x[first]) < 0.03 * span_x and abs(y[i] - y[first]) < 0.03 * span_y:
            groups[-1].append(i)
        else:
            groups.append([i])
    out = []
    for g in groups:
        values = _cell(members[g[0]][axis]) + ("" if len(g) == 1 else f" … {_cell(members[g[-1]][axis])}")
        out.append((f"{_axis_label(axis)}={values}", x[g[0]], y[g[0]]))
    return out


def tradeoff_curves(summary_csv: Path, out_png: Path) -> Path | None:
    """The trade-off across a sweep, from ``sweep_summary.csv`` alone, with 95 % error bars.

    Energy per task against mean delay and against accuracy, one curve per ``controller.kind``
    (one curve when the kind is not swept), each point labelled with its other swept values
    (``v=1e+04``). The settled-window figures (``settled.*``, transient left out) are used when
    the runs have them, else the whole run's (energy per arrived task). When ``controller.v``
    is swept, two more panels against V: the excess of the decisions' energy over the offline
    bound (``optimality_gap`` where the decisions meet its constraints, and ``inefficiency_gap``,
    paired within each run, with a ∝ 1/V reference through the first V where every run settled)
    and the mean virtual queues with a ∝ V
    reference. Returns ``None`` (and draws nothing) without energy,
    delay and accuracy columns.
    """
    rows = read_csv(summary_csv)
    if not rows:
        return None
    cols = list(rows[0])
    settled = "settled.energy_per_task_j_mean" in cols
    e_col, d_col, a_col = (("settled.energy_per_task_j", "settled.mean_delay_s", "settled.accuracy") if settled
                           else ("energy_per_task_j", "mean_delay_s", "accuracy"))
    if not settled and "energy_j_mean" in cols and "tasks_arrived_mean" in cols:
        for r in rows:  # energy per arrived task from the run totals
            n = _float(r["tasks_arrived_mean"])
            r["energy_per_task_j_mean"] = str(_float(r["energy_j_mean"]) / n) if n else ""
            r["energy_per_task_j_ci95"] = (str(_float(r["energy_j_ci95"]) / n)
                                           if n and r.get("energy_j_ci95") not in (None, "") else "")
    if any(f"{c}_mean" not in rows[0] for c in (e_col, d_col, a_col)):
        return None
    axes = cols[: cols.index("runs")]
    kind_col = "controller.kind" if "controller.kind" in axes else None
    labels = [a for a in axes if a != kind_col]
    v_axis = "controller.v" in labels
    curves: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        curves[r[kind_col] if kind_col else "sweep"].append(r)

    def order(r: dict[str, str]) -> tuple:
        return tuple((0, float(r[a]), "") if _is_number(r[a]) else (1, 0.0, r[a]) for a in labels)

    def col(members, name, scale=1.0):
        return np.array([_float(r.get(f"{name}_mean")) * scale for r in members]), \
            np.array([_float(r.get(f"{name}_ci95")) * scale for r in members])

    scale, unit = _energy_unit(np.array([_float(r[f"{e_col}_mean"]) for r in rows]))
    n_rows = 2 if v_axis else 1
    fig, panels = plt.subplots(n_rows, 2, figsize=(12, 4.6 * n_rows), squeeze=False,
                               gridspec_kw={"wspace": 0.28, "hspace": 0.35})
    window = "settled window" if settled else "whole run"
    colour_by = labels[0] if (len(curves) == 1 and len(labels) == 1 and all(_is_number(r[labels[0]]) for r in rows)
                              and len(rows) > 2) else None
    if colour_by is not None:
        values = np.array([float(r[colour_by]) for r in rows])
        log = bool(np.all(values > 0) and values.max() / values.min() >= 100)
        norm = (matplotlib.colors.LogNorm if log else matplotlib.colors.Normalize)(values.min(), values.max())
        cmap = plt.get_cmap("viridis")
    for (x_name, x_scale, x_label), ax in zip(((d_col, 1e3, "mean delay (ms)"), (a_col, 1.0, "accuracy")),
                                              panels[0]):
        for name, members in curves.items():
            members = sorted(members, key=order)
            x, xerr = col(members, x_name, x_scale)
            y, yerr = col(members, e_col, 1.0 / scale)
            if colour_by is not None:
                # one curve over one numeric axis: colour the points by its value (a colour bar says
                # which), since the labels of nearly coinciding points would overlap
                ax.plot(x, y, color="0.6", lw=1, zorder=1)
                values = np.array([float(r[colour_by]) for r in members])
                for xi, yi, dx, dy, vi in zip(x, y, xerr, yerr, values):
                    ax.errorbar([xi], [yi], xerr=[np.nan_to_num(dx)], yerr=[np.nan_to_num(dy)], marker="o", ms=5,
                                capsize=2, elinewidth=0.8, color=cmap(norm(vi)), zorder=2)
                ax.errorbar([], [], xerr=[], yerr=[], marker="o", ms=5, color="0.3", label="mean ± 95 % CI")
                bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02)
                bar.set_label(_axis_label(colour_by))
                continue
            ax.errorbar(x, y, xerr=np.nan_to_num(xerr), yerr=np.nan_to_num(yerr), marker="o", ms=4, capsize=2,
                        lw=1.2, elinewidth=0.7, label=f"{name} (mean ± 95 % CI)" if kind_col else "mean ± 95 % CI")
            for i, (text, xi, yi) in enumerate(_point_labels(members, labels, x, y)):
                # alternate above and below, so that labels of close points do not overlap
                ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(5, 4 if i % 2 == 0 else -10),
                            fontsize=7)
        target, limit = (("delay_target_s", "settled.delay_limit_s") if x_name == d_col
                         else ("accuracy_target", "settled.accuracy_limit"))
        t, _ = col(rows, target, x_scale)
        lim, _ = col(rows, limit, x_scale)
        if np.isfinite(t).any():
            ax.axvline(np.nanmean(t), color="k", ls=":", lw=1, label="target")
        if np.isfinite(lim).any():
            ax.axvline(np.nanmean(lim), color="r", ls=":", lw=1, label="limit (target ± tolerance)")
        ax.set(xlabel=f"{x_label}, {window}", ylabel=f"energy per task ({unit})",
               title=f"Energy against {x_label.split(' (')[0]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="controller" if kind_col else None, title_fontsize=8)
    if v_axis:
        ax_gap, ax_q = panels[1]
        for name, members in curves.items():
            members = sorted(members, key=order)
            v = np.array([_float(r["controller.v"]) for r in members])
            for key, marker, what in (("optimality_gap", "o", "decisions / bound − 1"),
                                      ("inefficiency_gap", "s", "decisions / bound at their own averages − 1")):
                gap, gap_err = col(members, key, 100.0)
                if np.isfinite(gap).any():
                    ax_gap.errorbar(v, gap, yerr=np.nan_to_num(gap_err), marker=marker, ms=4, capsize=3,
                                    label=f"{name}: {what}")
            gap, _ = col(members, "inefficiency_gap", 100.0)
            # the 1/V law holds once the queues have settled: anchor the guide at the first V where every
            # run settled (an unsettled small V sits far above it), else at the first point
            settled_share, _ = col(members, "settling.settled")
            ok = np.isfinite(gap) & (gap > 0)
            anchor = np.flatnonzero(ok & (settled_share == 1.0))
            anchor, where = (anchor, "the first V where every run settled") if anchor.size else \
                (np.flatnonzero(ok), "the first point")
            if anchor.size:
                first = int(anchor[0])
                ax_gap.plot(v, gap[first] * v[first] / v, "k:", lw=1, label=f"reference ∝ 1/V through {where}")
            for queue, marker in (("delay", "o"), ("accuracy", "s")):
                q, q_err = col(members, f"controller_stats.{queue}_queue_mean")
                if np.isfinite(q).any() and (q > 0).any():
                    ax_q.errorbar(v, q, yerr=np.nan_to_num(q_err), marker=marker, ms=4, capsize=3,
                                  label=f"{name}: {queue} queue ({'Z' if queue == 'delay' else 'Y'})")
            z, _ = col(members, "controller_stats.delay_queue_mean")
            ok = np.isfinite(z) & (z > 0)
            if ok.any():
                ax_q.plot(v, np.median(z[ok] / v[ok]) * v, "k:", lw=1, label="reference ∝ V")
        ax_gap.set_xscale("log")
        # a 1/V fall spans decades, and a gap can be slightly negative: log-like above 0.01 %, linear below
        ax_gap.set_yscale("symlog", linthresh=0.01)
        ax_gap.axhline(0.0, color="grey", lw=0.8)
        ax_gap.set(xlabel="V", ylabel="excess energy over the offline bound (%)",
                   title="Energy above the offline bound")
        ax_q.set(xscale="log", yscale="log", xlabel="V", ylabel="mean virtual queue (objective units)",
                 title="Mean virtual-queue backlog")
        for ax in (ax_gap, ax_q):
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    n = sorted({int(r["ok"]) for r in rows})
    reps = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
    fig.suptitle(f"Trade-off over the sweep: mean ± 95 % CI over {reps} replicate(s) per point", fontsize=11)
    return save_figure(fig, out_png)


def v_sweep_figure(csv_path: Path, png_path: Path) -> Path:
    """The trade-off driver's figure, from ``tradeoff.csv`` alone (eight panels; PNG and PDF).

    First row, against V (log): energy per task with the offline bound; its excess over the
    bound; the mean virtual queues with a ∝ V guide. Second row: the baselines' energy next to
    the controller's (hatched when a run misses the targets); the realized mean delay and
    accuracy against V with their targets and tolerances. Third row: the energy–delay and
    energy–accuracy planes, the controller's curve (its ends labelled with V) and every baseline
    as a point (hollow when it misses a target).
    """
    rows = read_csv(csv_path)
    delay_tol = _float(rows[0].get("delay_tolerance", "")) if rows else math.nan
    acc_tol = _float(rows[0].get("accuracy_tolerance", "")) if rows else math.nan
    dyn = [r for r in rows if r["kind"] == "lyapunov"]
    base = [r for r in rows if r["kind"] != "lyapunov"]
    v = np.array([_float(r["v"]) for r in dyn])

    def col(rs, key):
        return np.array([_float(r.get(key, "")) for r in rs])

    def label_v(ax, x, y, dy=6):
        for xi, yi in zip(x, y):
            if np.isfinite(yi):
                ax.annotate(f"{xi:g}", (xi, yi), textcoords="offset points", xytext=(0, dy), fontsize=7,
                            ha="center")

    def finish(ax, title, ylabel):
        ax.set(xlabel="V (energy weight of the drift-plus-penalty objective)", ylabel=ylabel, title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)

    fig = plt.figure(figsize=(16, 13.5), constrained_layout=True)
    grid = fig.add_gridspec(3, 6)
    axes = np.array([[fig.add_subplot(grid[r, 2 * c:2 * c + 2]) for c in range(3)] for r in range(2)])
    planes = [fig.add_subplot(grid[2, 0:3]), fig.add_subplot(grid[2, 3:6])]
    energy = col(dyn, "energy_per_task_j") * 1e6
    bound = col(dyn, "energy_bound_per_task_j") * 1e6
    unsettled = np.array([r.get("settled") == "False" for r in dyn], dtype=bool)

    def hollow(ax, x, y):
        """Circle the V values whose queues had not settled (their figures are transient); one legend entry."""
        if unsettled.any():
            named = "queues not settled" in ax.get_legend_handles_labels()[1]
            ax.plot(x[unsettled], y[unsettled], "o", ms=11, mfc="none", mec="r",
                    label=None if named else "queues not settled")

    ax = axes[0, 0]
    ax.semilogx(v, energy, "o-", label="Lyapunov, realized energy per task")
    ax.semilogx(v, col(dyn, "decision_energy_per_task_j") * 1e6, "x--", label="Lyapunov, decisions (predicted)")
    ax.semilogx(v, bound, "k:", lw=2, label="offline lower bound (per task)")
    hollow(ax, v, energy)
    label_v(ax, v, energy)
    finish(ax, "Energy per task and the offline bound", "energy per task (µJ)")

    ax = axes[0, 1]
    for key, style, label in (("optimality_gap", "o-", "decisions / bound − 1 (optimality_gap; empty where "
                                                       "the decisions break a constraint)"),
                              ("inefficiency_gap", "s--", "decisions / bound at their own averages − 1")):
        gap = col(dyn, key) * 100
        ok = np.isfinite(gap) & (gap > 0)
        ax.loglog(v[ok], gap[ok], style, label=label)
    ax.loglog(v, np.where(energy > bound, (energy / bound - 1.0) * 100, np.nan), "x:", color="grey",
              label="realized energy / bound − 1")
    finish(ax, "Energy above the offline bound", "excess over the bound (%)")

    ax = axes[0, 2]
    for key, mult, style, color, name in (("delay_queue_per_v", "delay_multiplier", "o-", "C0", "Z/V, λ* (J/s)"),
                                          ("accuracy_queue_per_v", "accuracy_multiplier", "s-", "C1", "Y/V, η* (J)")):
        q, m = col(dyn, key), col(dyn, mult)
        ax.semilogx(v, q, style, color=color, label=f"queue per V: {name.split(',')[0]} (window mean)")
        ax.semilogx(v, m, ":", color=color, lw=2, label=f"bound's multiplier: {name.split(', ')[1]}")
        hollow(ax, v, q)
    ax.set_yscale("log")
    finish(ax, "Queues per V against the bound's multipliers", "Z/V (J/s) and Y/V (J)")

    ax = axes[1, 0]
    names, values, met = [], [], []
    for i, r in enumerate(dyn):
        names.append(f"V={v[i]:g}")
        values.append(energy[i])
        met.append(r["constraints_met"] == "True")
    for r in base:
        names.append(r["kind"].replace("-", "-\n"))
        values.append(_float(r["energy_per_task_j"]) * 1e6)
        met.append(r["constraints_met"] == "True")
    bars = ax.bar(names, values, color=["C0"] * len(dyn) + ["grey"] * len(base))
    for b, m, val in zip(bars, met, values):
        if not m:
            b.set_hatch("//")
            b.set_alpha(0.5)
        ax.annotate(f"{val:.3g}", (b.get_x() + b.get_width() / 2, val), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=7)
    if dyn and np.isfinite(bound).any():
        ax.axhline(np.nanmin(bound), color="k", ls=":", label="offline lower bound")
    ax.bar([0], [0], color="white", hatch="//", edgecolor="grey", label="misses a target")
    ax.set_yscale("log")
    ax.tick_params(axis="x", labelsize=7, rotation=45)
    ax.set(ylabel="energy per task (µJ)", title="Every run: Lyapunov at each V (blue), baselines (grey)")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", which="both", alpha=0.3)

    ax = axes[1, 1]
    target = _float(dyn[0]["delay_target_s"]) * 1e3 if dyn else math.nan
    ax.semilogx(v, col(dyn, "mean_delay_s") * 1e3, "o-", label="realized mean delay")
    ax.semilogx(v, col(dyn, "decision_delay_s") * 1e3, "x--", label="decisions (predicted)")
    ax.axhline(target, color="k", ls=":", label="target")
    ax.axhline(target * (1 + delay_tol), color="r", ls=":", lw=0.8, label=f"target + {delay_tol:.0%}")
    finish(ax, "Mean delay (settled window)", "mean delay (ms)")

    ax = axes[1, 2]
    target = _float(dyn[0]["accuracy_target"]) if dyn else math.nan
    margin = _float(dyn[0].get("accuracy_margin", "")) if dyn else math.nan
    ax.semilogx(v, col(dyn, "accuracy"), "o-", label="realized accuracy (test split)")
    ax.semilogx(v, col(dyn, "decision_accuracy"), "x--", label="calibrated Ĝ of the decisions (calibration split)")
    ax.axhline(target, color="k", ls=":", label="target")
    if np.isfinite(margin) and margin > 0:
        ax.axhline(target + margin, color="C1", ls=":", lw=0.8, label="target + margin (what Ĝ aims at)")
    ax.axhline(target - acc_tol, color="r", ls=":", lw=0.8, label=f"target − {acc_tol:g}")
    finish(ax, "Accuracy (settled window)", "accuracy")
    # the trade-off planes: the controller's curve over V, each baseline a point (log energy axis)
    markers = {"static": "s", "max-accuracy": "^", "min-energy": "v", "greedy": "D"}
    for ax, key, scale, label, target_key, limit in (
            (planes[0], "mean_delay_s", 1e3, "mean delay (ms)", "delay_target_s", lambda t: t * (1 + delay_tol)),
            (planes[1], "accuracy", 1.0, "accuracy (test split)", "accuracy_target", lambda t: t - acc_tol)):
        x = col(dyn, key) * scale
        ax.plot(x, energy, "o-", color="C0", label=f"Lyapunov, V = {v.min():.3g} … {v.max():.3g}" if len(v) else None)
        ends = [i for i in (int(np.argmin(v)), int(np.argmax(v))) if len(v)] if len(v) else []
        for i, dy in zip(dict.fromkeys(ends), (8, -12)):  # the curve's ends (its middle points crowd)
            if np.isfinite(x[i]) and np.isfinite(energy[i]):
                ax.annotate(f"V={v[i]:.3g}", (x[i], energy[i]), textcoords="offset points", xytext=(8, dy),
                            fontsize=8, color="C0")
        for r in base:
            xb, yb = _float(r.get(key)) * scale, _float(r["energy_per_task_j"]) * 1e6
            met_b = r["constraints_met"] == "True"
            ax.plot([xb], [yb], markers.get(r["kind"], "o"), ms=8, color="grey" if met_b else "white",
                    markeredgecolor="k", label=f"{r['kind']}{'' if met_b else ' (misses a target)'}")
        target = _float(rows[0].get(target_key)) * scale if rows else math.nan
        if np.isfinite(target):
            ax.axvline(target, color="k", ls=":", lw=1, label="target")
            ax.axvline(limit(target / scale) * scale, color="r", ls=":", lw=0.8, label="limit (target ± tolerance)")
        ax.set_yscale("log")
        ax.set(xlabel=f"{label}, settled window", ylabel="energy per task (µJ)",
               title=f"Energy against {label.split(' (')[0]}: the controller and the baselines")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, png_path)



CELL_PLOT_MIN = 4
"""Cells (servers with devices) from which a run also gets the per-cell distributions figure."""


def _cell_stats(per_agent: dict) -> dict[str, np.ndarray]:
    """Per cell (a server and its devices), from ``summary.json``'s ``per_agent``: accuracy and mean
    delay of the delivered tasks, energy per arrived task (device transmit + compute + server), devices."""
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0])
    for entry in per_agent.values():
        if entry["kind"] != "transmitter":
            continue
        c = acc[entry["receiver"]]
        n = entry["tasks_delivered"]
        c[0] += n * (entry["accuracy"] or 0.0)
        c[1] += n * (entry["mean_delay_s"] or 0.0)
        c[2] += n
        c[3] += entry["energy_tx_j"] + entry["energy_cpu_j"]
        c[4] += entry["tasks_arrived"]
        c[5] += 1
    for rx, c in acc.items():
        c[3] += per_agent[rx]["energy_server_j"]
    rows = np.array([[c[0] / c[2] if c[2] else math.nan, c[1] / c[2] if c[2] else math.nan,
                      c[3] / c[4] if c[4] else math.nan, c[5]] for c in acc.values()]).reshape(-1, 4)
    return {"accuracy": rows[:, 0], "delay_s": rows[:, 1], "energy_per_task_j": rows[:, 2], "devices": rows[:, 3]}


def cell_distributions(run_dir: Path, out_dir: Path | None = None) -> Path:
    """Histograms across the cells of a run (a server and its devices), from ``summary.json`` alone.

    Panels: the cells' accuracy, mean delay (ms) and energy per task (device + server, µJ or as
    fits), each with its median marked: one bar chart per quantity, however many cells.
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "plots"
    summary = _read_json(run_dir / "summary.json")
    stats = _cell_stats(summary["per_agent"])
    scale, unit = _energy_unit(stats["energy_per_task_j"][np.isfinite(stats["energy_per_task_j"])])
    panels = [("accuracy", 1.0, "accuracy of delivered tasks"), ("delay_s", 1e3, "mean delay (ms)"),
              ("energy_per_task_j", 1.0 / scale, f"energy per task ({unit})")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (key, factor, label) in zip(axes, panels):
        values = stats[key][np.isfinite(stats[key])] * factor
        ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="tab:blue", alpha=0.8)
        if len(values):
            med = float(np.median(values))
            ax.axvline(med, color="black", ls="--", lw=1, label=f"median {med:.3g}")
            ax.legend(fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("cells")
    lo, hi = int(stats["devices"].min()), int(stats["devices"].max())
    fig.suptitle(f"{summary.get('name', '')}: {len(stats['devices'])} cells (a server and its "
                 f"{lo if lo == hi else f'{lo}–{hi}'} devices), {summary['slots']} slots, seed {summary['seed']}",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_dir / "cells.png")


# --------------------------------------------------------------------------- results folders


def results_kind(folder: Path) -> str:
    """What a results folder holds, from its files.

    ``run`` (``summary.json`` and ``slots.csv``: relcomm run), ``stitch`` (``stitching.csv``:
    relcomm stitch), ``sweep`` (``sweep_summary.csv``: relcomm sweep), ``tradeoff``
    (``tradeoff.csv``: the V-sweep driver) or ``unknown``.
    """
    folder = Path(folder)
    if (folder / "summary.json").is_file() and (folder / "slots.csv").is_file():
        return "run"
    for name, kind in (("stitching.csv", "stitch"), ("sweep_summary.csv", "sweep"), ("tradeoff.csv", "tradeoff")):
        if (folder / name).is_file():
            return kind
    return "unknown"


def stitching_plots(folder: Path, out_dir: Path | None = None) -> list[Path]:
    """The figures of a ``relcomm stitch`` folder: heatmap; accuracy vs K, bits, SNR; retrieval (if its CSV is there)."""
    folder = Path(folder)
    out_dir = Path(out_dir) if out_dir is not None else folder / "plots"
    csv_path = folder / "stitching.csv"
    pngs = [fn(csv_path, out_dir) for fn in (stitching_heatmaps, accuracy_vs_anchors, accuracy_vs_bits,
                                             accuracy_vs_snr)]
    if (folder / "retrieval.csv").is_file():  # folders written before retrieval existed lack it
        pngs.append(retrieval_heatmaps(folder / "retrieval.csv", out_dir))
    return pngs


def plot_folder(folder: Path, out_dir: Path | None = None) -> list[Path]:
    """Draw every plot a results folder supports into ``out_dir`` (default ``folder/plots``); PNG paths."""
    kind = results_kind(folder)
    if kind == "run":
        pngs = [run_timeseries(folder, out_dir)]
        per_agent = _read_json(Path(folder) / "summary.json").get("per_agent", {})
        if len({a.get("receiver") for a in per_agent.values() if a.get("kind") == "transmitter"}) >= CELL_PLOT_MIN:
            pngs.append(cell_distributions(folder, out_dir))
        return pngs
    if kind == "stitch":
        return stitching_plots(folder, out_dir)
    out_dir = Path(out_dir) if out_dir is not None else Path(folder) / "plots"
    if kind == "sweep":
        png = tradeoff_curves(Path(folder) / "sweep_summary.csv", out_dir / "tradeoff.png")
        return [png] if png is not None else []
    if kind == "tradeoff":
        return [v_sweep_figure(Path(folder) / "tradeoff.csv", out_dir / "tradeoff.png")]
    raise ValueError(f"{folder} is not a results folder")


def draw_run_plots(folder: Path, log=lambda _m: None) -> list[Path]:
    """The run plots into ``folder/plots``; a failure is logged, never fatal (the data matter more)."""
    try:
        return plot_folder(folder)
    except Exception as exc:  # noqa: BLE001 - plots can be redrawn later with `relcomm plot`
        log(f"warning: plots not drawn ({type(exc).__name__}: {exc}); draw them later with `relcomm plot`")
        return []
