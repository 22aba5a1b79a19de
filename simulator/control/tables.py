"""Option and accuracy tables: every transmitter's discrete options, what each costs, and its Ĝ."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from simulator.control.interface import NetworkSpec
from simulator.errors import ScenarioError

if TYPE_CHECKING:
    from simulator.config import Scenario


class CalibrationRows(list):
    """The calibration table's rows (:class:`~simulator.latent.stitching.StitchRow`) and the sample sizes behind them.

    A list of rows like any other (everything that reads rows reads these), which also says how
    many samples each Ĝ was measured on and how many the run's tasks are drawn from: what
    ``controller.accuracy_margin: auto`` (:func:`accuracy_margin`) needs.

    Parameters
    ----------
    rows : iterable of StitchRow
    n_calibration : int
        Samples of the calibration split (each row's accuracy is a mean over all of them).
    n_test : int
        Samples of the test split the run draws its tasks from.
    """

    def __init__(self, rows: Iterable[Any], n_calibration: int, n_test: int):
        super().__init__(rows)
        self.n_calibration = int(n_calibration)
        self.n_test = int(n_test)


Z_975 = NormalDist().inv_cdf(0.975)
"""One-sided 97.5 % quantile of the standard normal (1.95996…)."""


def sampling_margin(accuracy: float, n_calibration: int, n_test: int, n_window: float, z: float = Z_975) -> float:
    """Margin that covers the sampling error between Ĝ and a run's realized accuracy.

    ``m = z · sqrt(G (1 − G) · (1/n_cal + 1/n_test + 1/n_window))``

    The controller keeps the decisions' mean Ĝ at ``G + m``; the realized accuracy of the
    settled window then misses ``G`` with probability about ``1 − Φ(z)`` (2.5 % at the
    default z) when Ĝ is unbiased for the test distribution (a calibration split drawn from
    it: ``data.calibration: holdout``). Two independent errors separate the two:

    - Ĝ against the test split's own accuracy: two disjoint random subsets (n_cal and n_test
      samples) of one finite set differ in mean correctness with variance
      ``σ² (1/n_cal + 1/n_test)`` (sampling without replacement, to first order);
    - the window against the test split: ``n_window`` tasks drawn with replacement from it
      have a mean correctness of variance ``σ²/n_window``.

    A task's correctness is a Bernoulli variable, and a mixture of options with mean accuracy
    G has per-sample variance ``σ² ≤ G (1 − G)`` (the bound used: the margin is conservative
    when several options are mixed, and the normal approximation holds at these sizes).
    Distribution shift between a validation split and the test set is not sampling error and
    is not covered.

    Parameters
    ----------
    accuracy : float
        G, the accuracy target, in [0, 1].
    n_calibration, n_test : int
        Sizes of the calibration and test splits (samples), ≥ 1.
    n_window : float
        Expected number of tasks in the judged window, > 0.
    z : float
        Normal quantile of the wanted one-sided confidence.

    Returns
    -------
    float
        The margin (accuracy, absolute).

    Examples
    --------
    >>> round(sampling_margin(0.9, 1000, 1000, 1e12, z=2.0), 6)  # 2 · sqrt(0.09 · 0.002)
    0.026833
    """
    if min(n_calibration, n_test) < 1 or n_window <= 0:
        raise ValueError("sample sizes must be positive")
    g = float(accuracy)
    return float(z * np.sqrt(g * (1.0 - g) * (1.0 / n_calibration + 1.0 / n_test + 1.0 / n_window)))


def window_tasks(scenario: Scenario) -> float:
    """Expected tasks in the settled window: ``(slots − settle_slots) · Σ_i λ_i`` (λ_i mean arrivals per slot)."""
    slots = scenario.simulation.slots - getattr(scenario.controller, "settle_slots", 0)
    return slots * sum(tx.traffic.mean_rate_per_slot for tx in scenario.transmitters)


def accuracy_margin(scenario: Scenario, calibration: Any) -> float:
    """``controller.accuracy_margin`` as a number: the scenario's, or ``auto`` resolved.

    ``auto``: :func:`sampling_margin` at G = ``simulation.accuracy_target``, n_cal and n_test
    from ``calibration`` (:class:`CalibrationRows` or an :class:`AccuracyTable` built from them)
    and n_window = :func:`window_tasks` (the verdict judges the settled window's accuracy over
    every transmitter's tasks). 0 when the scenario has no accuracy target.
    """
    margin = scenario.controller.accuracy_margin
    target = scenario.simulation.accuracy_target
    if margin != "auto":
        return float(margin)
    if target is None or not scenario.transmitters:
        return 0.0
    n_cal, n_test = getattr(calibration, "n_calibration", None), getattr(calibration, "n_test", None)
    if n_cal is None or n_test is None:
        raise ScenarioError("'auto' needs the calibration's sample sizes (rows from "
                            "simulator.experiment.calibration.calibration_rows)", path="controller.accuracy_margin")
    return sampling_margin(target, n_cal, n_test, window_tasks(scenario))


class AccuracyTable:
    """Ĝ(tx encoder, rx encoder, K, b [, SNR]) from the calibration rows (relative method).

    The rows (:func:`simulator.experiment.calibration.calibration_rows`) hold the relative
    stitching accuracy on the calibration split (``data.calibration``: validation or holdout),
    measured through the real pipeline: ``ideal`` rows through quantization alone, ``digital``
    rows also through bit flips at the uncoded BER of each SNR of ``stitching.snr_db``.

    SNR lookup (:func:`interpolate_db`): linear interpolation in dB between the calibrated grid
    points, clamped to the end values outside the grid (no extrapolation: below the grid the
    lowest point's accuracy, above it the highest's).

    Parameters
    ----------
    rows : sequence of StitchRow
        :class:`CalibrationRows` also give the table their sample sizes (``n_calibration``,
        ``n_test``; None for plain rows), which :func:`accuracy_margin` reads.
    """

    def __init__(self, rows: Sequence[Any]):
        self.n_calibration: int | None = getattr(rows, "n_calibration", None)
        self.n_test: int | None = getattr(rows, "n_test", None)
        self._ideal: dict[tuple, float] = {}
        curves: dict[tuple, list[tuple[float, float]]] = {}
        for r in rows:
            if r.method != "relative":
                continue
            key = (r.tx_encoder, r.rx_encoder, int(r.anchors), int(r.bits))
            if r.mode == "ideal":
                self._ideal[key] = float(r.accuracy)
            elif r.mode == "digital" and r.snr_db is not None:
                curves.setdefault(key, []).append((float(r.snr_db), float(r.accuracy)))
        self._digital = {k: (np.array([s for s, _ in sorted(v)]), np.array([a for _, a in sorted(v)]))
                         for k, v in curves.items()}

    def ideal(self, tx: str, rx: str, k: int, bits: int) -> float:
        """Ĝ through quantization alone (an error-free link)."""
        try:
            return self._ideal[(tx, rx, k, bits)]
        except KeyError:
            raise ScenarioError(f"the calibration table has no error-free cell {tx} → {rx}, K = {k}, b = {bits}",
                                path="controller") from None

    def digital(self, tx: str, rx: str, k: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """(SNR grid in dB, Ĝ at each) through the digital channel (uncoded bits at the BER of the SNR)."""
        try:
            return self._digital[(tx, rx, k, bits)]
        except KeyError:
            raise ScenarioError(f"the calibration table has no digital curve {tx} → {rx}, K = {k}, b = {bits}",
                                path="controller") from None


def interpolate_db(grid_db: np.ndarray, table: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """Ĝ of every (device, option) at each device's SNR: linear in dB, clamped at the grid's ends.

    Parameters
    ----------
    grid_db : float64 (S,)
        Increasing SNR grid (dB).
    table : float64 (n, m, S)
        Ĝ at the grid points.
    snr : float64 (n,)
        Linear SNR per device (0 → the lowest grid point).

    Returns
    -------
    float64 (n, m)
    """
    if grid_db.shape[0] == 1:
        return table[:, :, 0]
    with np.errstate(divide="ignore"):
        x = np.clip(10.0 * np.log10(np.asarray(snr, dtype=float)), grid_db[0], grid_db[-1])
    j = np.clip(np.searchsorted(grid_db, x, side="right") - 1, 0, grid_db.shape[0] - 2)
    w = ((x - grid_db[j]) / (grid_db[j + 1] - grid_db[j]))[:, None]
    rows = np.arange(table.shape[0])
    return (1.0 - w) * table[rows, :, j] + w * table[rows, :, j + 1]


@dataclass(frozen=True)
class OptionTable:
    """Every transmitter's discrete options ``(encoder in its pool) × K × b``, and what each costs.

    Options are numbered pool slot-major, then K, then b (``m = max pool size × |K| × |b|``);
    slots beyond a smaller pool are padding, masked out by ``allowed``.

    Attributes
    ----------
    encoder : int64 (n, m)
        Index into ``NetworkSpec.encoder_ids``.
    anchors, bits : int64 (m,)
    allowed : bool (n, m)
    payload_bits : float64 (m,)
        ``N`` (the world's table).
    tx_cycles, rx_cycles : float64 (n, m)
        ``W_tx`` of the device and ``W_rx`` of its receiver (the world's tables).
    accuracy : float64 (n, m, S)
        Ĝ; S = 1 (error-free: ideal links or coded packets) or the calibrated SNR grid.
    snr_grid_db : float64 (S,)
        The grid (``[nan]`` when S = 1).
    """

    encoder: np.ndarray
    anchors: np.ndarray
    bits: np.ndarray
    allowed: np.ndarray
    payload_bits: np.ndarray
    tx_cycles: np.ndarray
    rx_cycles: np.ndarray
    accuracy: np.ndarray
    snr_grid_db: np.ndarray

    @property
    def noisy(self) -> bool:
        """Ĝ depends on the SNR (some device sends uncoded bits over a digital link)."""
        return self.snr_grid_db.shape[0] > 1

    def best_accuracy(self) -> tuple[np.ndarray, np.ndarray]:
        """Per device, the highest Ĝ of any allowed option at any SNR, and that option."""
        acc = np.where(self.allowed, self.accuracy.max(axis=2), -np.inf)
        best = np.argmax(acc, axis=1)
        return acc[np.arange(acc.shape[0]), best], best


def option_table(scenario: Scenario, spec: NetworkSpec, accuracy: AccuracyTable) -> OptionTable:
    """The :class:`OptionTable` of a scenario with a dynamic ``controller`` (see its docstring)."""
    cfg = scenario.controller
    ks, bs = np.asarray(cfg.anchors, dtype=np.int64), np.asarray(cfg.bits, dtype=np.int64)
    n, n_pool = spec.n_tx, max(len(p) for p in spec.pools)
    slot, k_opt, b_opt = (a.ravel() for a in np.meshgrid(np.arange(n_pool), ks, bs, indexing="ij"))
    m = slot.shape[0]
    coded = [tx.radio.packet_errors == "fbl" for tx in scenario.transmitters]
    noisy = scenario.channel.mode == "digital" and not all(coded)
    grid = np.asarray(sorted(scenario.stitching.snr_db), dtype=float) if noisy else np.array([np.nan])
    encoder = np.zeros((n, m), np.int64)
    allowed = np.zeros((n, m), bool)
    w_tx, w_rx, acc = np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m, grid.shape[0]))
    cache: dict[tuple, np.ndarray] = {}
    for i, pool in enumerate(spec.pools):
        j = int(spec.receiver_of[i])
        rx = spec.receiver_encoders[j]
        for o in range(m):
            in_pool = slot[o] < len(pool)
            e = int(pool[slot[o]] if in_pool else pool[0])
            enc, k, b = spec.encoder_ids[e], int(k_opt[o]), int(b_opt[o])
            encoder[i, o], allowed[i, o] = e, in_pool
            w_tx[i, o] = spec.tx_cycles(i, enc, k)
            w_rx[i, o] = spec.rx_cycles(j, k)
            key = (enc, rx, k, b, noisy and not coded[i])
            if key not in cache:
                if key[-1]:
                    snr_db, curve = accuracy.digital(enc, rx, k, b)
                    if snr_db.shape != grid.shape or not np.allclose(snr_db, grid):
                        raise ScenarioError(f"the digital calibration of {enc} → {rx}, K = {k}, b = {b} is not on "
                                            "the stitching.snr_db grid", path="stitching.snr_db")
                    cache[key] = curve
                else:
                    cache[key] = np.full(grid.shape[0], accuracy.ideal(enc, rx, k, b))
            acc[i, o] = cache[key]
    payload = np.array([spec.payload_bits(int(k), int(b)) for k, b in zip(k_opt, b_opt)], dtype=float)
    return OptionTable(encoder, k_opt, b_opt, allowed, payload, w_tx, w_rx, acc, grid)


def check_accuracy_target(scenario: Scenario, spec: NetworkSpec, table: OptionTable, margin: float) -> None:
    """Raise a :class:`ScenarioError` when some device cannot reach ``simulation.accuracy_target``.

    Reachable means: the highest calibrated Ĝ among the device's options (at the best SNR of
    the grid for digital links). Above it (with the resolved ``controller.accuracy_margin``,
    :func:`accuracy_margin`, added), no policy can meet the long-term accuracy target.
    """
    target = scenario.simulation.accuracy_target
    if target is None:
        return
    best, option = table.best_accuracy()
    i = int(np.argmin(best))
    if target + margin > best[i]:
        o = int(option[i])
        auto = " (auto)" if scenario.controller.accuracy_margin == "auto" else ""
        plus = f" + accuracy_margin {margin:.4g}{auto}" if margin else ""
        raise ScenarioError(
            f"{target}{plus} is above the best calibrated accuracy {best[i]:.4f} that transmitter "
            f"{spec.transmitter_ids[i]!r} can reach (encoder {spec.encoder_ids[table.encoder[i, o]]}, "
            f"K = {table.anchors[o]}, b = {table.bits[o]}): no controller can meet it",
            path="simulation.accuracy_target")


__all__ = ["AccuracyTable", "CalibrationRows", "OptionTable", "Z_975", "accuracy_margin", "check_accuracy_target",
           "interpolate_db", "option_table", "sampling_margin", "window_tasks"]
