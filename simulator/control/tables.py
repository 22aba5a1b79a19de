"""Option and accuracy tables: every transmitter's discrete options, what each costs, and its Ĝ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from simulator.control.interface import NetworkSpec
from simulator.errors import ScenarioError

if TYPE_CHECKING:
    from simulator.config import Scenario


class AccuracyTable:
    """Ĝ(tx encoder, rx encoder, K, b [, SNR]) from the calibration rows (relative method).

    The rows (:func:`simulator.experiment.calibration.calibration_rows`) hold the relative
    stitching accuracy on the *validation* split, measured through the real pipeline: ``ideal``
    rows through quantization alone, ``digital`` rows also through bit flips at the uncoded BER
    of each SNR of ``stitching.snr_db``.

    SNR lookup (:func:`interpolate_db`): linear interpolation in dB between the calibrated grid
    points, clamped to the end values outside the grid (no extrapolation: below the grid the
    lowest point's accuracy, above it the highest's).

    Parameters
    ----------
    rows : sequence of StitchRow
    """

    def __init__(self, rows: Sequence[Any]):
        self._ideal: dict[tuple, float] = {}
        curves: dict[tuple, list[tuple[float, float]]] = {}
        for r in rows:
            if r.method != "relative":
                continue
            key = (r.tx, r.rx, int(r.anchors), int(r.bits))
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


def check_accuracy_target(scenario: Scenario, spec: NetworkSpec, table: OptionTable) -> None:
    """Raise a :class:`ScenarioError` when some device cannot reach ``simulation.accuracy_target``.

    Reachable means: the highest calibrated Ĝ among the device's options (at the best SNR of
    the grid for digital links). Above it (with ``controller.accuracy_margin`` added), no
    policy can meet the long-term accuracy target.
    """
    target = scenario.simulation.accuracy_target
    if target is None:
        return
    margin = scenario.controller.accuracy_margin
    best, option = table.best_accuracy()
    i = int(np.argmin(best))
    if target + margin > best[i]:
        o = int(option[i])
        plus = f" + accuracy_margin {margin}" if margin else ""
        raise ScenarioError(
            f"{target}{plus} is above the best calibrated accuracy {best[i]:.4f} that transmitter "
            f"{spec.transmitter_ids[i]!r} can reach (encoder {spec.encoder_ids[table.encoder[i, o]]}, "
            f"K = {table.anchors[o]}, b = {table.bits[o]}): no controller can meet it",
            path="simulation.accuracy_target")


__all__ = ["AccuracyTable", "OptionTable", "interpolate_db", "option_table", "check_accuracy_target"]
