"""Content-addressed on-disk cache of trained artifacts: atomic writes, verified safe loads."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from simulator.results import atomic_write_bytes

# Bump when a change to training code changes the weights an unchanged config produces.
CACHE_VERSION = 1


def cache_key(spec: Any) -> str:
    """SHA-256 (first 24 hex digits) of the canonical JSON of ``spec`` and the cache version."""
    blob = json.dumps({"v": CACHE_VERSION, "spec": spec}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class ArtifactCache:
    """Artifacts stored as ``ROOT/KIND/KEY.pt``, each with a ``KEY.sha256`` digest beside it.

    A file whose digest does not match, that fails to unpickle with ``weights_only=True``, or
    that lacks its digest is treated as absent (and reported through ``corrupt``), so a damaged
    cache makes the caller rebuild the artifact instead of trusting it.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.corrupt: list[Path] = []

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def load(self, kind: str, key: str) -> dict[str, Any] | None:
        path = self.path(kind, key)
        digest_path = path.with_suffix(".sha256")
        if not path.exists():
            return None
        try:
            blob = path.read_bytes()
            if digest_path.read_text().strip() != hashlib.sha256(blob).hexdigest():
                raise ValueError("digest mismatch")
            payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            if not isinstance(payload, dict):
                raise ValueError("not a dict")
            return payload
        except Exception:  # noqa: BLE001 - any failure means the file cannot be trusted
            self.corrupt.append(path)
            return None

    def save(self, kind: str, key: str, payload: dict[str, Any]) -> Path:
        path = self.path(kind, key)
        buf = io.BytesIO()
        torch.save(payload, buf)
        blob = buf.getvalue()
        # Digest first: a crash between the two writes leaves a mismatch, i.e. a rebuild.
        atomic_write_bytes(path.with_suffix(".sha256"), hashlib.sha256(blob).hexdigest().encode())
        atomic_write_bytes(path, blob)
        return path
