"""``arch: word-bag`` — a text encoder trained here from its seed: hashed words and word pairs, averaged, then an MLP.

Tokenization: lower-case, runs of letters, digits and apostrophes are words; the tokens of a
text are its words and its adjacent word pairs (``"not good"``), each hashed (CRC-32 of its
UTF-8 bytes) into one of ``buckets − 1`` ids (0 is padding), the first ``max_tokens`` kept.
Deterministic across machines and Python runs (no salted ``hash``).

FLOPs per text: the MLP's matrix products (counted by torch) plus the embedding bag's sums,
``tokens × embed_dim`` (the model's main work on long texts, so counted although elementwise).
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec
from simulator.latent.encoders.registry import register
from simulator.schema import PositiveInt, TrainConfig

_WORD = re.compile(r"[a-z0-9']+")


def tokenize(texts: np.ndarray | list[str], buckets: int, max_tokens: int) -> np.ndarray:
    """Token ids (n, max_tokens) int64 of each text (module docstring), 0-padded."""
    out = np.zeros((len(texts), max_tokens), dtype=np.int64)
    for i, text in enumerate(texts):
        words = _WORD.findall(str(text).lower())
        tokens = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        ids = [1 + zlib.crc32(t.encode()) % (buckets - 1) for t in tokens[:max_tokens]]
        out[i, :len(ids)] = ids
    return out


@register
class WordBagSpec(EncoderSpec):
    """Hashed unigrams and bigrams → EmbeddingBag(mean) → [Linear → ReLU] × hidden → Linear(latent_dim)."""

    arch: Literal["word-bag"]
    latent_dim: int = Field(64, ge=2, le=4096)
    buckets: int = Field(32768, ge=2, le=1 << 22, description="hash buckets of the token table (0 = padding)")
    embed_dim: PositiveInt = Field(64, le=4096)
    max_tokens: PositiveInt = Field(128, le=4096, description="tokens kept per text (words, then word pairs)")
    hidden: tuple[PositiveInt, ...] = Field((256,), description="widths of the hidden layers")
    train: TrainConfig = TrainConfig(epochs=8, lr=5e-3)

    modalities = ("text",)

    def build(self, data: DataInfo) -> Encoder:
        return WordBag(self)


class WordBag(Encoder):
    """The built word-bag encoder (trained here)."""

    trained_here = True

    def __init__(self, spec: WordBagSpec):
        from simulator.latent.encoders.nets import WordBagEncoder

        self.spec = spec
        self.module = WordBagEncoder(spec.buckets, spec.embed_dim, tuple(spec.hidden), spec.latent_dim)
        self._mlp_flops: int | None = None

    @property
    def latent_dim(self) -> int:
        return self.spec.latent_dim

    def digest(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", exclude={"id"})

    def inputs(self, samples: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(tokenize(samples, self.spec.buckets, self.spec.max_tokens))

    def flops(self, samples: np.ndarray) -> np.ndarray:
        if self._mlp_flops is None:
            import torch

            from simulator.latent.encoders.nets import count_flops

            device = next(self.module.parameters()).device
            self._mlp_flops = count_flops(self.module.net, torch.zeros((1, self.spec.embed_dim), device=device))
        tokens = (tokenize(samples, self.spec.buckets, self.spec.max_tokens) > 0).sum(axis=1)
        return self._mlp_flops + tokens.astype(np.int64) * self.spec.embed_dim


__all__ = ["WordBagSpec", "WordBag", "tokenize"]
