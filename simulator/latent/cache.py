"""Content-addressed on-disk cache of trained artifacts: atomic writes, verified safe loads."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from simulator.results import atomic_write_bytes

# Bump when a change to training code changes the weights an unchanged config produces.
CACHE_VERSION = 1

Payload = dict[str, Any]


class CacheEntryError(ValueError):
    """A stored entry that cannot be used; the message completes "cache file PATH …" in a notice."""


def to_stderr(message: str) -> None:
    """Print ``message`` as one line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)


def cache_key(spec: Any) -> str:
    """SHA-256 (first 24 hex digits) of the canonical JSON of ``spec`` and the cache version."""
    blob = json.dumps({"v": CACHE_VERSION, "spec": spec}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _one_line(text: object, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _names(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def check_tensor(name: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """Raise :class:`CacheEntryError` unless ``value`` is a finite tensor of this shape and dtype."""
    if not isinstance(value, torch.Tensor):
        raise CacheEntryError(f"is in the wrong format ({name} is a {type(value).__name__}, not a tensor)")
    if tuple(value.shape) != tuple(shape):
        raise CacheEntryError(f"does not fit the model ({name} has shape {tuple(value.shape)}, "
                              f"expected {tuple(shape)})")
    if value.dtype != dtype:
        raise CacheEntryError(f"does not fit the model ({name} is {value.dtype}, expected {dtype})")
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise CacheEntryError(f"does not fit the model ({name} holds NaN or infinite values)")


def check_tensors(payload: Payload, expected: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
    """Check each named tensor of ``payload`` against its expected ``(shape, dtype)``."""
    for name, (shape, dtype) in expected.items():
        if name not in payload:
            raise CacheEntryError(f"is in the wrong format (no {name!r} entry)")
        check_tensor(name, payload[name], shape, dtype)


def load_state(module: nn.Module, payload: Payload) -> None:
    """Load ``payload["state"]`` into ``module`` if it fits exactly, else raise :class:`CacheEntryError`.

    Fits means the same parameter and buffer names, shapes and dtypes as ``module.state_dict()``
    and finite values; everything is checked before anything is copied, so a refused state
    leaves ``module`` untouched.
    """
    state = payload.get("state")
    if not isinstance(state, dict):
        raise CacheEntryError("is in the wrong format (no 'state' dict)")
    own = module.state_dict()
    missing, extra = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or extra:
        parts = ([f"missing {_names(missing)}"] if missing else []) + ([f"unexpected {_names(extra)}"] if extra else [])
        raise CacheEntryError(f"does not fit the model ({'; '.join(parts)})")
    for name, ref in own.items():
        check_tensor(name, state[name], tuple(ref.shape), ref.dtype)
    module.load_state_dict(state)


class ArtifactCache:
    """Artifacts stored as ``ROOT/KIND/KEY.pt``, each with a ``KEY.sha256`` digest beside it.

    A file that cannot be read, whose digest is missing or does not match, that fails to
    unpickle with ``weights_only=True``, that is not a dict, or that ``fit`` refuses is not
    trusted: it is moved aside to ``KEY.pt.corrupt`` (replacing an older one), its path is
    recorded in ``corrupt``, ``notice`` gets one line saying what is rebuilt and why, and
    ``load`` returns None so that the caller rebuilds it. A missing file is normal and silent.

    Notice format::

        relcomm: rebuilding WHAT: cache file PATH REASON; moved aside to KEY.pt.corrupt
    """

    def __init__(self, root: Path, notice: Callable[[str], None] = to_stderr):
        self.root = Path(root)
        self.notice = notice
        self.corrupt: list[Path] = []

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def load(self, kind: str, key: str, what: str | None = None,
             fit: Callable[[Payload], None] | None = None, mmap: bool = False) -> Payload | None:
        """The stored payload, or None when it is absent or cannot be trusted (then reported).

        Parameters
        ----------
        kind, key : str
            Where the entry lives (``ROOT/KIND/KEY.pt``).
        what : str, optional
            What the entry is, for the notice (e.g. ``"head for encoder mlp-1 (K=64)"``).
        fit : callable, optional
            Called with the payload; raises :class:`CacheEntryError` when the payload does not
            fit its consumer (wrong keys, shapes, dtypes, NaN). It may load the payload into
            the consumer, e.g. ``lambda p: load_state(model, p)``.
        mmap : bool
            Map the tensors from the file instead of reading them into memory (large latent
            tables: pages are read on first touch and shared between processes). The digest is
            still checked first, streaming the file.
        """
        path = self.path(kind, key)
        try:
            payload = self._read(path, mmap)
            if payload is None:
                return None
            if fit is not None:
                fit(payload)
            return payload
        except CacheEntryError as exc:
            self._reject(path, what or f"{kind} entry {key}", str(exc))
            return None

    def _read(self, path: Path, mmap: bool = False) -> Payload | None:
        try:
            with path.open("rb") as f:
                if mmap:
                    blob, actual = None, hashlib.file_digest(f, "sha256").hexdigest()
                else:
                    blob = f.read()
                    actual = hashlib.sha256(blob).hexdigest()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheEntryError(f"cannot be read ({_one_line(exc.strerror or exc)})") from exc
        try:
            digest = path.with_suffix(".sha256").read_text().strip()
        except OSError as exc:
            raise CacheEntryError("is corrupt (its digest file is missing or unreadable)") from exc
        if digest != actual:
            raise CacheEntryError("is corrupt (digest mismatch)")
        try:
            source = path if blob is None else io.BytesIO(blob)
            payload = torch.load(source, map_location="cpu", weights_only=True, mmap=blob is None)
        except Exception as exc:  # noqa: BLE001 - whatever unpickling raises, the file is unusable
            raise CacheEntryError(f"is in the wrong format (not a weights-only torch file: "
                                  f"{_one_line(exc, 80)})") from exc
        if not isinstance(payload, dict):
            raise CacheEntryError(f"is in the wrong format (a {type(payload).__name__}, not a dict)")
        return payload

    def _reject(self, path: Path, what: str, reason: str) -> None:
        self.corrupt.append(path)
        aside = path.with_name(path.name + ".corrupt")
        try:
            # The file lives in relcomm's own cache folder; keeping one copy helps a bug report.
            path.replace(aside)
            where = f"; moved aside to {aside.name}"
        except OSError:
            where = ""
        with contextlib.suppress(OSError):
            path.with_suffix(".sha256").unlink(missing_ok=True)
        self.notice(f"relcomm: rebuilding {what}: cache file {path} {_one_line(reason)}{where}")

    def save(self, kind: str, key: str, payload: Payload) -> Path:
        path = self.path(kind, key)
        buf = io.BytesIO()
        torch.save(payload, buf)
        blob = buf.getvalue()
        # Digest first: a crash between the two writes leaves a mismatch, i.e. a rebuild.
        atomic_write_bytes(path.with_suffix(".sha256"), hashlib.sha256(blob).hexdigest().encode())
        atomic_write_bytes(path, blob)
        return path
