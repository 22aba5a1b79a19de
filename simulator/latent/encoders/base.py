"""The encoder interface: a family's config model (one per ``arch``) and the encoder it builds.

A family is one module of this package: a pydantic model subclassing :class:`EncoderSpec`
with ``arch: Literal["<name>"]``, whose :meth:`~EncoderSpec.build` returns an :class:`Encoder`,
registered with :func:`simulator.latent.encoders.registry.register`. Family modules import
only light things at module level (pydantic, numpy); torch and model packages are imported
when an encoder is built, so that reading a scenario stays fast.

Two kinds of encoder:

* **trained here** (``trained_here = True``): :attr:`Encoder.module` is a fresh ``nn.Module``
  that the zoo trains from the spec's seed, as a classifier through a cosine head;
  :meth:`Encoder.inputs` turns dataset samples into its input tensor.
* **frozen** (pretrained, or embeddings computed elsewhere): :meth:`Encoder.embed` maps samples
  to latents; nothing is ever fine-tuned. The zoo caches the latents and fits only the
  receiver-side heads (an absolute cosine probe and the relative heads) on the training split.

Compute cost: :meth:`Encoder.flops` gives the FLOPs of encoding each sample (they differ per
sample for text). Convention everywhere: FLOPs of matrix products, convolutions and attention,
2 per multiply-accumulate, as ``torch.utils.flop_counter.FlopCounterMode`` counts them (attention
on PyTorch's math kernel: the fused CPU kernel has no FLOP formula and would count as zero);
elementwise work (biases, activations, norms, softmax, pooling) is not counted (0.15 % of the
MLP's and 1.4 % of the CNN's total, measured when this convention was adopted).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
from pydantic import Field

from simulator.schema import Strict

Log = Callable[[str], None]

ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"


@dataclass(frozen=True)
class DataInfo:
    """What a family may know of the dataset when it builds an encoder.

    Attributes
    ----------
    name : str
        Dataset name (``fashion-mnist``, ``rotten-tomatoes``, …).
    modality : str
        ``image`` or ``text``.
    sample_shape : tuple of int
        Shape of one image sample (C, H, W); ``()`` for text.
    n_classes : int
    n_train, n_test : int
        Number of samples of the official training set (train + validation) and test set.
    fingerprint : str
        Digest of the dataset's content.
    """

    name: str
    modality: str
    sample_shape: tuple[int, ...]
    n_classes: int
    n_train: int
    n_test: int
    fingerprint: str


class Encoder(ABC):
    """A built encoder of one family (see the module docstring)."""

    trained_here: ClassVar[bool] = False

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """Width d of the latents."""

    @abstractmethod
    def digest(self) -> dict[str, Any]:
        """Everything that determines the latents beyond the dataset (config, model files' hashes): the cache key."""

    @abstractmethod
    def flops(self, samples: np.ndarray) -> np.ndarray:
        """FLOPs of encoding each sample (module docstring's convention), int64 of shape (n,)."""

    # trained here
    module: Any = None
    """The network to train (``nn.Module``), for families trained here."""

    def inputs(self, samples: np.ndarray) -> Any:
        """The module's input tensor for ``samples`` (trained-here families)."""
        raise NotImplementedError(f"{type(self).__name__} is not trained here")

    # frozen
    def embed(self, samples: np.ndarray, device: Any, log: Log) -> Any:
        """Latents (n, d) float32 on the CPU for ``samples`` (frozen families)."""
        raise NotImplementedError(f"{type(self).__name__} is trained here: run its module")

    def embed_indexed(self, split: str, samples: np.ndarray, device: Any, log: Log) -> Any:
        """Latents of a whole split, in dataset order (``split``: ``train`` or ``test``).

        Defaults to :meth:`embed`; a family whose latents are keyed by sample position (the
        ``embeddings`` family) overrides it.
        """
        return self.embed(samples, device, log)


class EncoderSpec(Strict):
    """Fields every encoder family shares; each family adds its own (and ``arch``)."""

    id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    arch: str
    seed: int = Field(0, ge=0, description="seed of its initialisation and data order (trained here), "
                      "or of its probe head (frozen)")

    modalities: ClassVar[tuple[str, ...]] = ("image",)
    """Dataset modalities this family can encode."""

    @property
    def label(self) -> str:
        """A short human description for progress messages."""
        return self.arch

    def build(self, data: DataInfo) -> Encoder:
        """The encoder this spec describes, for a dataset like ``data`` (raise ``ScenarioError`` if unusable)."""
        raise NotImplementedError


__all__ = ["DataInfo", "Encoder", "EncoderSpec", "ID_PATTERN", "Log"]
