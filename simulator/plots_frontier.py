"""The frontier figure of ``relcomm frontier``, drawn from ``frontier.csv`` alone."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from simulator.plots import _ENERGY_UNITS, save_figure  # noqa: E402
from simulator.results import read_csv  # noqa: E402

POLICY_MARKERS = {"lyapunov": ("o", "controller (lyapunov)"), "greedy": ("^", "greedy"), "static": ("s", "static"),
                  "max-accuracy": ("D", "max-accuracy"), "min-energy": ("v", "min-energy")}
# Markers of one delay target side by side (a factor on the log axis), so that they do not hide each other.
POLICY_OFFSET = {"lyapunov": 1.0, "greedy": 1.045, "static": 0.957, "max-accuracy": 1.09, "min-energy": 0.917}
PLAIN = FuncFormatter(lambda v, _pos: f"{v:g}")
# minor ticks of a narrow log axis: only 2, 3 and 5 × a power of ten are labelled
SPARSE = FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:.0e}"[0] in "235" else "")
ENCODER_STYLES = ("-", "--", ":", "-.")


def _f(cell: str | None) -> float:
    return math.nan if cell in (None, "", "None") else float(cell)


def _true(cell: str | None) -> bool:
    return cell == "True"


def _unit(values: list[float]) -> tuple[float, str]:
    """(scale, unit) that puts the median magnitude of ``values`` (J) between 1 and 1000."""
    finite = np.abs(np.asarray([v for v in values if math.isfinite(v)]))
    ref = float(np.median(finite)) if finite.size else 1.0
    for scale, unit in _ENERGY_UNITS:
        if ref >= scale:
            return scale, unit
    return _ENERGY_UNITS[-1]


def frontier_figure(csv_path: Path, png_path: Path) -> Path:
    """Energy per task against the delay target, one curve per accuracy target; what the optimum chooses.

    Top: the offline bound's frontier (lines, one colour per accuracy target), the controller
    (filled circles) and each baseline (its own marker) where its run meets both targets
    (hollow where it does not); for each accuracy target the delay targets below the least
    reachable delay are shaded (no policy meets the pair). Bottom: along the frontier, the
    optimum's mean K, mean b and share of each encoder (per-slot minimizers at the bound's
    multipliers).
    """
    rows = read_csv(csv_path)
    bound = [r for r in rows if r["policy"] == "bound"]
    accs = sorted({_f(r["accuracy_target"]) for r in bound})
    delays = sorted({_f(r["delay_target_s"]) for r in bound})
    encoders = [c[len("share_"):] for c in (rows[0].keys() if rows else ()) if c.startswith("share_")]
    energies = [_f(r["energy_per_task_j"]) for r in rows]
    scale, unit = _unit(energies)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(accs), 1)))
    fig = plt.figure(figsize=(13.5, 9.0))
    grid = fig.add_gridspec(2, 3, height_ratios=(1.35, 1.0), hspace=0.42, wspace=0.32)
    ax = fig.add_subplot(grid[0, :])
    sub = [fig.add_subplot(grid[1, i]) for i in range(3)]
    x_lo, x_hi = min(delays) * 1e3 / 1.12, max(delays) * 1e3 * 1.12  # room for the markers set side by side
    policies_seen: set[str] = set()
    infeasible_all = []
    for a, color in zip(accs, colors):
        pts = sorted((r for r in bound if _f(r["accuracy_target"]) == a), key=lambda r: _f(r["delay_target_s"]))
        xs = np.array([_f(r["delay_target_s"]) * 1e3 for r in pts])
        feas = np.array([_true(r["feasible"]) for r in pts])
        ys = np.array([_f(r["energy_per_task_j"]) / scale for r in pts])
        best = _f(pts[0]["best_delay_s"]) * 1e3 if pts else math.nan
        label = f"A ≥ {a:g}"
        if not feas.any():
            infeasible_all.append(a)
            label += " (infeasible at every delay)"
        ax.plot(xs[feas], ys[feas], "-", color=color, lw=2.0, label=label)
        if math.isfinite(best) and best > x_lo:  # a target no delay reaches is said in the legend instead
            best = min(best, x_hi)
            ax.axvspan(x_lo, best, color=color, alpha=0.10, lw=0)
            ax.axvline(best, color=color, lw=0.8, ls=":")
        ax.plot(xs[~feas], np.full((~feas).sum(), np.nan), "x", color=color)  # keeps colours in order
        for pol, (marker, _) in POLICY_MARKERS.items():
            runs = [r for r in rows if r["policy"] == pol and _f(r["accuracy_target"]) == a and r["energy_per_task_j"]]
            if not runs:
                continue
            policies_seen.add(pol)
            met = [r for r in runs if _true(r["constraints_met"])]
            missed = [r for r in runs if not _true(r["constraints_met"])]
            size, shift = (80 if pol == "lyapunov" else 45), POLICY_OFFSET[pol] * 1e3
            ax.scatter([_f(r["delay_target_s"]) * shift for r in met], [_f(r["energy_per_task_j"]) / scale for r in met],
                       marker=marker, s=size, color=color, edgecolors="black", linewidths=0.6, zorder=4)
            ax.scatter([_f(r["delay_target_s"]) * shift for r in missed],
                       [_f(r["energy_per_task_j"]) / scale for r in missed], marker=marker, s=size,
                       facecolors="none", edgecolors=color, linewidths=1.2, zorder=4)
        for k, (key, axis) in enumerate((("mean_anchors", sub[0]), ("mean_bits", sub[1]))):
            axis.plot(xs[feas], [_f(r[key]) for r, f in zip(pts, feas) if f], "o-", color=color, ms=3.5, lw=1.5)
        for style, enc in zip(ENCODER_STYLES, encoders):
            sub[2].plot(xs[feas], [_f(r[f"share_{enc}"]) for r, f in zip(pts, feas) if f], style, color=color,
                        marker=".", ms=5, lw=1.5)
    ax.set_xlim(x_lo, x_hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("delay target L_max (ms, mean per task)")
    ax.set_ylabel(f"energy per task ({unit})")
    n_feas = sum(_true(r["feasible"]) for r in bound)
    gaps = [_f(r["realized_gap"]) for r in rows if r["policy"] == "lyapunov" and r["realized_gap"]]
    gap_lo, gap_hi = min(gaps, default=0.0), max(gaps, default=0.0)
    spread = f"{gap_lo:+.2%}" if gap_lo == gap_hi else f"{gap_lo:+.2%} … {gap_hi:+.2%}"
    ctl = (f";\nthe controller's realized energy per task {spread} from the bound at the {len(gaps)} "
           f"pair{'s' * (len(gaps) != 1)} it ran" if gaps else "")
    ax.set_title(f"Energy per task against the delay target: the offline bound's frontier (lines; {n_feas}/{len(bound)} "
                 f"target pairs feasible){ctl}\nmarkers: simulated policies (filled: both targets met), side by side "
                 "at their delay target; shaded: delay targets below the least reachable delay", fontsize=10)
    handles, _ = ax.get_legend_handles_labels()
    handles = [h for h in handles if h.get_label() and not h.get_label().startswith("_")]
    handles += [Line2D([], [], ls="", marker=POLICY_MARKERS[p][0], color="gray", markeredgecolor="black",
                       label=POLICY_MARKERS[p][1]) for p in POLICY_MARKERS if p in policies_seen]
    if policies_seen:
        handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", markeredgecolor="gray",
                              label="hollow: a target missed"))
    handles.append(Patch(color="gray", alpha=0.25, label="infeasible (below the least reachable delay)"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="bound: accuracy target A", title_fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    for axis, title, ylabel in ((sub[0], "optimum's mean K (anchors)", "mean K"),
                                (sub[1], "optimum's mean b (bits per entry)", "mean b"),
                                (sub[2], "optimum's share of each encoder", "share of decisions")):
        axis.set_xscale("log")
        axis.set_xlim(x_lo, x_hi)
        axis.set_xlabel("delay target (ms)")
        axis.set_ylabel(ylabel)
        axis.set_title(title, fontsize=9.5)
        axis.grid(True, which="both", alpha=0.3)
    sub[2].set_ylim(-0.05, 1.05)
    ks = [_f(r["mean_anchors"]) for r in bound if r["mean_anchors"]]
    if ks:  # K options are powers of 2 in practice: a log2 axis with its powers labelled
        sub[0].set_yscale("log", base=2)
        lo, hi = math.floor(math.log2(min(ks))), math.ceil(math.log2(max(ks)))
        sub[0].set_yticks([2.0 ** k for k in range(lo, hi + 1)])
        sub[0].yaxis.set_major_formatter(PLAIN)
        sub[0].yaxis.set_minor_formatter(FuncFormatter(lambda _v, _p: ""))
    for axis in (ax, *sub):
        axis.xaxis.set_major_formatter(PLAIN)
        axis.xaxis.set_minor_formatter(PLAIN if axis is ax else SPARSE)
        axis.tick_params(axis="x", which="both", labelsize=8)
    sub[2].legend(handles=[Line2D([], [], ls=s, color="black", label=e) for s, e in zip(ENCODER_STYLES, encoders)],
                  fontsize=8, title="encoder", title_fontsize=8)
    return save_figure(fig, png_path)


__all__ = ["frontier_figure"]
