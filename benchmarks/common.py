"""Shared timing and table helpers of the benchmark scripts (not part of the package)."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_s(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Median wall time of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown_table(rows: list[dict]) -> str:
    """Rows with keys name, value, unit, note as a markdown table."""
    lines = ["| benchmark | value | unit | note |", "|---|---:|---|---|"]
    lines += [f"| {r['name']} | {r['value']:.3g} | {r['unit']} | {r['note']} |" for r in rows]
    return "\n".join(lines)
