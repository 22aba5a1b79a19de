"""``arch: embeddings`` — latents computed elsewhere (any model), read from a ``.npy`` or ``.npz`` file.

Accepted layouts (rows are float16/32/64, converted to float32):

* ``.npy`` of shape (n_train + n_test, d): the official training set's samples in dataset
  order, then the test set's;
* ``.npz`` with arrays ``train`` (n_train, d) and ``test`` (n_test, d), in dataset order;
* ``.npz`` with ``latents`` (m, d) and ``ids`` (m,) strings ``train/<index>`` or
  ``test/<index>``, in any order, naming every sample exactly once.

The file is checked (dimensions, dtype, row count, finite values, ids complete and unique)
with one-line errors naming the encoder and the file. A relative ``path`` is relative to the
working folder. Its FLOPs per sample are what the scenario says (``flops_per_sample``): the
file cannot tell what its model cost.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simulator.errors import DataError
from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec, Log
from simulator.latent.encoders.registry import register


@register
class EmbeddingsSpec(EncoderSpec):
    """Precomputed latents of every dataset sample, from a file (module docstring)."""

    arch: Literal["embeddings"]
    path: str = Field(min_length=1, max_length=4096, description="the .npy or .npz file")
    flops_per_sample: float = Field(ge=0.0, description="FLOPs the model that made them spends per sample")

    modalities = ("image", "text")

    def build(self, data: DataInfo) -> Encoder:
        return Embeddings(self, data)


class Embeddings(Encoder):
    """The file's latents, checked against the dataset when the encoder is built."""

    def __init__(self, spec: EmbeddingsSpec, data: DataInfo):
        self.spec, self.data = spec, data
        self.path = Path(spec.path)
        self._latents = self._read()

    def _fail(self, problem: str) -> DataError:
        return DataError(problem, path=f"encoder {self.spec.id}: {self.path}")

    def _read(self) -> dict[str, np.ndarray]:
        n = {"train": self.data.n_train, "test": self.data.n_test}
        try:
            blob = self.path.read_bytes()
        except OSError as exc:
            raise self._fail(f"cannot read the embeddings file ({exc.strerror or exc})") from None
        self._sha256 = hashlib.sha256(blob).hexdigest()
        try:
            loaded = np.load(self.path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise self._fail(f"not a .npy or .npz file of numbers ({' '.join(str(exc).split())[:120]})") from None
        if isinstance(loaded, np.ndarray):
            parts = {"train": loaded[:n["train"]], "test": loaded[n["train"]:]}
            self._check(loaded, n["train"] + n["test"], "the array")
        else:
            with loaded:
                names = set(loaded.files)
                if {"train", "test"} <= names:
                    parts = {s: loaded[s] for s in ("train", "test")}
                    for s in parts:
                        self._check(parts[s], n[s], f"array {s!r}")
                elif {"latents", "ids"} <= names:
                    parts = self._by_id(loaded["latents"], loaded["ids"], n)
                else:
                    raise self._fail(f"an .npz needs arrays 'train' and 'test', or 'latents' and 'ids'; "
                                     f"it has {', '.join(sorted(names)) or 'none'}")
        width = {p.shape[1] for p in parts.values()}
        if len(width) != 1:
            raise self._fail(f"train and test rows differ in width ({sorted(width)})")
        return {s: np.ascontiguousarray(p, dtype=np.float32) for s, p in parts.items()}

    def _check(self, arr: np.ndarray, rows: int, what: str) -> None:
        if arr.ndim != 2 or arr.shape[1] < 1:
            raise self._fail(f"{what} must be 2-D (samples × latent width), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise self._fail(f"{what} must hold floating-point numbers, got {arr.dtype}")
        if len(arr) != rows:
            raise self._fail(f"{what} has {len(arr)} rows; the dataset {self.data.name!r} needs {rows}")
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(axis=1).sum())
            raise self._fail(f"{what} holds NaN or infinite values in {bad} rows")

    def _by_id(self, latents: np.ndarray, ids: np.ndarray, n: dict[str, int]) -> dict[str, np.ndarray]:
        self._check(latents, len(ids), "array 'latents'")
        if ids.ndim != 1 or len(ids) != n["train"] + n["test"]:
            raise self._fail(f"'ids' must name each of the {n['train'] + n['test']} samples once, has {len(ids)}")
        out = {s: np.empty((n[s], latents.shape[1]), dtype=latents.dtype) for s in n}
        seen = {s: np.zeros(n[s], dtype=bool) for s in n}
        for row, key in enumerate(ids.astype(str)):
            split, _, index = key.partition("/")
            if split not in n or not index.isdigit() or int(index) >= n[split]:
                raise self._fail(f"id {key[:40]!r} is not train/<index> or test/<index> within the dataset")
            if seen[split][int(index)]:
                raise self._fail(f"id {key[:40]!r} appears twice")
            seen[split][int(index)] = True
            out[split][int(index)] = latents[row]
        return out

    @property
    def latent_dim(self) -> int:
        return int(self._latents["train"].shape[1])

    def digest(self) -> dict[str, Any]:
        return {"arch": "embeddings", "sha256": self._sha256, "flops_per_sample": self.spec.flops_per_sample}

    def flops(self, samples: np.ndarray) -> np.ndarray:
        return np.full(len(samples), round(self.spec.flops_per_sample), dtype=np.int64)

    def embed_indexed(self, split: str, samples: np.ndarray, device: Any, log: Log) -> Any:
        import torch

        return torch.from_numpy(self._latents[split])


__all__ = ["EmbeddingsSpec", "Embeddings"]
