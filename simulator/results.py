"""Atomic writers for result files (CSV, JSON, YAML) shared by every command."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

import yaml


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """A file to write ``path`` through, so that readers see either the old file or the whole new one.

    Writes go to a temporary file beside ``path`` (``.NAME.*.tmp``, made here), which is synced and
    renamed over ``path`` when the block ends, or removed if it raises. ``mode`` and ``kwargs`` as
    for :func:`open` (``"w"``, ``newline=""``, ``buffering=…`` to stream text).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    with atomic_open(path) as fh:
        fh.write(data)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows (dicts keyed by ``columns``) as CSV; ``None`` becomes an empty cell."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write_bytes(Path(path), buf.getvalue().encode())
    return Path(path)


def write_json(path: Path, data: Any) -> Path:
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    return Path(path)


def write_yaml(path: Path, data: Any) -> Path:
    atomic_write_bytes(Path(path), yaml.safe_dump(data, sort_keys=False).encode())
    return Path(path)


PAIR_RENAMES = {"tx": "tx_encoder", "rx": "rx_encoder"}
"""Old names of the encoder-pair columns: ``stitching.csv``, ``retrieval.csv`` and the cached
calibration rows called the transmitter's and the receiver's encoders ``tx`` and ``rx`` before
they took the names ``tasks.csv`` and ``slots.csv`` use."""


def current_names(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with any old encoder-pair column name (:data:`PAIR_RENAMES`) replaced by today's."""
    return {PAIR_RENAMES.get(k, k): v for k, v in row.items()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_pair_csv(path: Path) -> list[dict[str, str]]:
    """A ``stitching.csv`` or ``retrieval.csv``, read under today's column names (older files too)."""
    return [current_names(r) for r in read_csv(path)]
