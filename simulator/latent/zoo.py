"""The encoder zoo of a scenario: trained (or cached) encoders, their latents, anchors and heads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from simulator.config import EncoderConfig, Scenario
from simulator.data import Dataset, Splits, load_dataset, make_splits, relcomm_home
from simulator.latent.anchors import select_anchors
from simulator.latent.cache import ArtifactCache, cache_key, check_tensors, load_state, to_stderr
from simulator.latent.encoders import CosineClassifier, build_encoder, count_flops
from simulator.latent.heads import relative_head
from simulator.latent.relative import RelativeProjector
from simulator.latent.training import batched_apply, fit_classifier, init_weights, resolve_device
from simulator.rng import SeedTree

Log = Callable[[str], None]


@dataclass
class TrainedEncoder:
    """An encoder with its absolute (cosine) head, FLOP count and the latents of every sample.

    ``latents_train`` covers the whole official training set (train and validation splits,
    indexed like ``Dataset.x_train``); ``latents_test`` the test set.
    """

    cfg: EncoderConfig
    key: str
    encoder: nn.Module
    head: CosineClassifier
    flops: int
    latents_train: torch.Tensor
    latents_test: torch.Tensor
    trained_now: bool = False

    @property
    def id(self) -> str:
        return self.cfg.id


def encoder_spec(cfg: EncoderConfig, dataset: Dataset, scenario: Scenario, device: torch.device) -> dict:
    """Everything that determines an encoder's weights (its id is only a name, so it is left out)."""
    return {"kind": "encoder", "dataset": dataset.name, "data": dataset.fingerprint,
            "validation_fraction": scenario.data.validation_fraction, "split_seed": scenario.data.split_seed,
            "encoder": cfg.model_dump(mode="json", exclude={"id"}), "device": device.type}


def train_encoder(cfg: EncoderConfig, dataset: Dataset, splits: Splits, scenario: Scenario,
                  device: torch.device, cache: ArtifactCache, log: Log = to_stderr) -> TrainedEncoder:
    """Load the encoder from the cache or train it from its own seed, then compute all latents.

    A cached encoder or latents entry that does not fit this configuration is reported by the
    cache and rebuilt like a missing one.
    """
    key = cache_key(encoder_spec(cfg, dataset, scenario, device))
    encoder = build_encoder(cfg, dataset.image_shape)
    head = CosineClassifier(cfg.latent_dim, dataset.n_classes)
    model = nn.Sequential(encoder, head)
    stored = cache.load("encoders", key, f"encoder {cfg.id}", lambda p: load_state(model, p))
    trained_now = stored is None
    if trained_now:
        seeds = SeedTree(cfg.seed).child("encoder")
        init_weights(model, seeds.child("init").torch())
        idx = splits.train
        if cfg.train.subset is not None and cfg.train.subset < len(idx):
            idx = np.sort(seeds.child("subset").numpy().choice(idx, cfg.train.subset, replace=False))
        x = torch.from_numpy(dataset.x_train[idx])
        y = torch.from_numpy(dataset.y_train[idx])
        replacing = " to replace its corrupt cache entry" if cache.path("encoders", key) in cache.corrupt else ""
        log(f"training encoder {cfg.id} ({cfg.arch}, latent {cfg.latent_dim}, seed {cfg.seed}, "
            f"{len(idx)} samples, {cfg.train.epochs} epochs){replacing}")
        fit_classifier(model, x, y, cfg.train, seeds.child("order").torch(), device)
        cache.save("encoders", key, {"state": {k: v.cpu() for k, v in model.state_dict().items()}})
    model.to(device).eval()
    shapes = {"train": ((len(dataset.x_train), cfg.latent_dim), torch.float32),
              "test": ((len(dataset.x_test), cfg.latent_dim), torch.float32)}
    latents = cache.load("latents", key, f"latents of encoder {cfg.id}", lambda p: check_tensors(p, shapes))
    if latents is None:
        latents = {"train": batched_apply(encoder, torch.from_numpy(dataset.x_train), device),
                   "test": batched_apply(encoder, torch.from_numpy(dataset.x_test), device)}
        cache.save("latents", key, latents)
    return TrainedEncoder(cfg, key, encoder, head, count_flops(encoder, dataset.image_shape),
                          latents["train"], latents["test"], trained_now)


@dataclass
class Zoo:
    """All trained parts of a scenario's latent layer, built once and shared by every consumer."""

    scenario: Scenario
    dataset: Dataset
    splits: Splits
    anchors: np.ndarray
    encoders: dict[str, TrainedEncoder]
    device: torch.device
    cache: ArtifactCache
    log: Log = to_stderr
    _projectors: dict = field(default_factory=dict, repr=False)
    _heads: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, scenario: Scenario, log: Log = to_stderr, cache: ArtifactCache | None = None) -> "Zoo":
        """Train or load every encoder and its latents, and draw the anchors.

        ``log`` gets progress messages. A cache entry that has to be rebuilt because it is
        corrupt or does not fit is announced by the cache's own ``notice`` (one line on stderr
        by default), whatever ``log`` does with progress.
        """
        device = resolve_device(scenario.device)
        dataset = load_dataset(scenario.data.dataset)
        splits = make_splits(dataset, scenario.data.validation_fraction,
                             SeedTree(scenario.data.split_seed).child("data"))
        cache = cache or ArtifactCache(relcomm_home() / "cache")
        encoders = {cfg.id: train_encoder(cfg, dataset, splits, scenario, device, cache, log)
                    for cfg in scenario.encoders}
        a = scenario.anchors
        anchors = select_anchors(a.strategy, a.count, splits.train, dataset.x_train, dataset.y_train,
                                 SeedTree(a.seed).child("anchors"))
        return cls(scenario, dataset, splits, anchors, encoders, device, cache, log)

    # ----------------------------------------------------------------- look-ups
    def latents(self, encoder_id: str, split: str) -> torch.Tensor:
        """Latents of one split: ``train``, ``validation`` or ``test``."""
        enc = self.encoders[encoder_id]
        if split == "test":
            return enc.latents_test
        return enc.latents_train[torch.from_numpy(getattr(self.splits, split))]

    def labels(self, split: str) -> torch.Tensor:
        if split == "test":
            return torch.from_numpy(self.dataset.y_test)
        return torch.from_numpy(self.dataset.y_train[getattr(self.splits, split)])

    def anchor_latents(self, encoder_id: str, k: int) -> torch.Tensor:
        """(k, d) latents of the first k anchors in this encoder's space."""
        return self.encoders[encoder_id].latents_train[torch.from_numpy(self.anchors[:k])]

    def projector(self, encoder_id: str, k: int) -> RelativeProjector:
        key = (encoder_id, k)
        if key not in self._projectors:
            rel = self.scenario.relative
            self._projectors[key] = RelativeProjector.fit(self.anchor_latents(encoder_id, k), rel.similarity,
                                                          rel.center)
        return self._projectors[key]

    def relative_head(self, rx_id: str, k: int) -> nn.Module:
        """The receiver's head for k anchors, trained on its own relative representations (train split)."""
        if (rx_id, k) in self._heads:
            return self._heads[(rx_id, k)]
        enc, sc = self.encoders[rx_id], self.scenario
        spec = {"kind": "head", "encoder": enc.key, "relative": sc.relative.model_dump(mode="json"),
                "head": sc.heads.model_dump(mode="json"), "k": k,
                "anchors": hashlib.sha256(self.anchors[:k].tobytes()).hexdigest()}
        key = cache_key(spec)
        n_spaces = len(sc.relative.similarity)
        head = relative_head(k, n_spaces, sc.heads.hidden, self.dataset.n_classes)
        stored = self.cache.load("heads", key, f"head for encoder {rx_id} (K={k})", lambda p: load_state(head, p))
        if stored is None:
            seeds = SeedTree(enc.cfg.seed).child("head", k)
            init_weights(head, seeds.child("init").torch())
            r = self.projector(rx_id, k)(self.latents(rx_id, "train"))
            fit_classifier(head, r, self.labels("train"), sc.heads.train, seeds.child("order").torch(), self.device)
            self.cache.save("heads", key, {"state": {n: v.cpu() for n, v in head.state_dict().items()}})
        head.to(self.device).eval()
        self._heads[(rx_id, k)] = head
        return head

    # ----------------------------------------------------------------- inference
    def classify_relative(self, rx_id: str, k: int, r: torch.Tensor) -> torch.Tensor:
        """Predicted labels of relative vectors ``r`` (n, k·spaces) by the receiver's head."""
        head = self.relative_head(rx_id, k)
        return batched_apply(lambda b: head(b).argmax(1), r, self.device)

    def classify_absolute(self, rx_id: str, z: torch.Tensor) -> torch.Tensor:
        """Predicted labels of latents ``z`` (n, d_rx) by the receiver's absolute head."""
        head = self.encoders[rx_id].head
        return batched_apply(lambda b: head(b).argmax(1), z, self.device)

    def native_accuracy(self, rx_id: str, split: str) -> float:
        pred = self.classify_absolute(rx_id, self.latents(rx_id, split))
        return float((pred == self.labels(split)).float().mean())


__all__ = ["TrainedEncoder", "Zoo", "train_encoder"]
