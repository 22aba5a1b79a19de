"""The encoder zoo of a scenario: trained (or cached) encoders, their latents, anchors and heads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from simulator.config import Scenario
from simulator.data import Dataset, Splits, load_dataset, make_splits, relcomm_home
from simulator.latent.anchors import select_anchors
from simulator.latent.cache import ArtifactCache, cache_key, check_tensors, load_state, to_stderr
from simulator.errors import ScenarioError
from simulator.latent.encoders import DataInfo, Encoder, EncoderSpec
from simulator.latent.encoders.nets import CosineClassifier
from simulator.latent.heads import relative_head
from simulator.latent.relative import RelativeProjector
from simulator.latent.training import batched_apply, fit_classifier, init_weights, resolve_device
from simulator.rng import SeedTree

Log = Callable[[str], None]


@dataclass
class TrainedEncoder:
    """An encoder with its absolute (cosine) head, FLOP counts and the latents of every sample.

    ``latents_train`` covers the whole official training set (train and validation splits,
    indexed like ``Dataset.x_train``); ``latents_test`` the whole official test set (holdout and
    test splits, indexed like ``Dataset.x_test``). ``flops_test`` holds the FLOPs of encoding
    each sample of the test split (indexed like ``Zoo.latents(id, "test")``: the samples the
    network draws tasks from); ``flops`` is their mean, rounded (the same for every sample of an
    image family).
    """

    cfg: EncoderSpec
    key: str
    encoder: Encoder
    head: CosineClassifier
    flops: int
    latents_train: torch.Tensor
    latents_test: torch.Tensor
    trained_now: bool = False
    flops_test: np.ndarray | None = None

    @property
    def id(self) -> str:
        return self.cfg.id

    @property
    def latent_dim(self) -> int:
        return int(self.latents_train.shape[1])


def data_info(dataset: Dataset) -> DataInfo:
    """What an encoder family may know of ``dataset``."""
    shape = tuple(dataset.x_train.shape[1:]) if dataset.modality == "image" else ()
    return DataInfo(dataset.name, dataset.modality, shape, dataset.n_classes, len(dataset.x_train), len(dataset.x_test),
                    dataset.fingerprint)


def encoder_spec(encoder: Encoder, cfg: EncoderSpec, dataset: Dataset, scenario: Scenario,
                 device: torch.device) -> dict:
    """Everything that determines an encoder's trained weights, or a frozen encoder's probe head (not its id)."""
    spec = {"kind": "encoder", "dataset": dataset.name, "data": dataset.fingerprint,
            "validation_fraction": scenario.data.validation_fraction, "split_seed": scenario.data.split_seed,
            "encoder": encoder.digest(), "device": device.type}
    if not encoder.trained_here:  # only its probe is trained: from the spec's seed, with the heads' budget
        spec.update(probe_seed=cfg.seed, probe_train=scenario.heads.train.model_dump(mode="json"))
    return spec


def latents_spec(encoder: Encoder, dataset: Dataset, device: torch.device) -> dict:
    """Everything that determines a frozen encoder's latents (the split does not)."""
    return {"kind": "latents", "dataset": dataset.name, "data": dataset.fingerprint, "encoder": encoder.digest(),
            "device": device.type}


def _check_modality(cfg: EncoderSpec, index: int, dataset: Dataset) -> None:
    if dataset.modality not in cfg.modalities:
        raise ScenarioError(f"family {cfg.arch!r} encodes {' or '.join(cfg.modalities)} samples; dataset "
                            f"{dataset.name!r} holds {dataset.modality}", path=f"encoders[{index}].arch")


def train_encoder(cfg: EncoderSpec, dataset: Dataset, splits: Splits, scenario: Scenario,
                  device: torch.device, cache: ArtifactCache, log: Log = to_stderr) -> TrainedEncoder:
    """Build an encoder of ``cfg``'s family and give it latents for every sample, from the cache when there.

    Trained here: load the network from the cache or train it from its own seed, then compute
    all latents. Frozen: compute (or load) its latents once, then fit its absolute cosine probe
    on the training split. A cached entry that does not fit is reported by the cache and rebuilt
    like a missing one.
    """
    encoder = cfg.build(data_info(dataset))
    key = cache_key(encoder_spec(encoder, cfg, dataset, scenario, device))
    head = CosineClassifier(encoder.latent_dim, dataset.n_classes)
    seeds = SeedTree(cfg.seed).child("encoder")
    trained_now = False
    if encoder.trained_here:
        model = nn.Sequential(encoder.module, head)
        stored = cache.load("encoders", key, f"encoder {cfg.id}", lambda p: load_state(model, p))
        trained_now = stored is None
        if trained_now:
            init_weights(model, seeds.child("init").torch())
            idx = splits.train
            subset = cfg.train.subset  # every family trained here has a training budget
            if subset is not None and subset < len(idx):
                idx = np.sort(seeds.child("subset").numpy().choice(idx, subset, replace=False))
            x = encoder.inputs(dataset.x_train[idx])
            y = torch.from_numpy(dataset.y_train[idx])
            replacing = " to replace its corrupt cache entry" if cache.path("encoders", key) in cache.corrupt else ""
            log(f"training encoder {cfg.id} ({cfg.label}, latent {encoder.latent_dim}, seed {cfg.seed}, "
                f"{len(idx)} samples, {cfg.train.epochs} epochs){replacing}")
            fit_classifier(model, x, y, cfg.train, seeds.child("order").torch(), device)
            cache.save("encoders", key, {"state": {k: v.cpu() for k, v in model.state_dict().items()}})
        model.to(device).eval()
        latents_key = key
    else:
        latents_key = cache_key(latents_spec(encoder, dataset, device))
    shapes = {"train": ((len(dataset.x_train), encoder.latent_dim), torch.float32),
              "test": ((len(dataset.x_test), encoder.latent_dim), torch.float32)}
    latents = cache.load("latents", latents_key, f"latents of encoder {cfg.id}", lambda p: check_tensors(p, shapes),
                         mmap=True)
    if latents is None:
        if encoder.trained_here:
            latents = {split: batched_apply(encoder.module, encoder.inputs(getattr(dataset, f"x_{split}")), device)
                       for split in ("train", "test")}
        else:
            log(f"embedding {len(dataset.x_train) + len(dataset.x_test)} samples with encoder {cfg.id} ({cfg.label})")
            latents = {split: encoder.embed_indexed(split, getattr(dataset, f"x_{split}"), device, log).float()
                       for split in ("train", "test")}
            check_tensors(latents, shapes)
            # counting a pretrained model's FLOPs loads it: kept beside its latents
            latents["flops_test"] = torch.from_numpy(encoder.flops(dataset.x_test))
        cache.save("latents", latents_key, latents)
    if not encoder.trained_here:
        stored = cache.load("heads", key, f"probe head of encoder {cfg.id}", lambda p: load_state(head, p))
        if stored is None:
            init_weights(head, seeds.child("probe").torch())
            z = latents["train"][torch.from_numpy(splits.train)]
            fit_classifier(head, z, torch.from_numpy(dataset.y_train[splits.train]), scenario.heads.train,
                           seeds.child("probe-order").torch(), device)
            cache.save("heads", key, {"state": {k: v.cpu() for k, v in head.state_dict().items()}})
        head.to(device).eval()
    stored_flops = latents.get("flops_test")
    if isinstance(stored_flops, torch.Tensor) and stored_flops.shape == (len(dataset.x_test),):
        flops_test = stored_flops.numpy().astype(np.int64)
    else:
        flops_test = encoder.flops(dataset.x_test)
    if not splits.test_is_whole:
        flops_test = flops_test[splits.test]
    return TrainedEncoder(cfg, key, encoder, head, int(round(float(flops_test.mean()))) if len(flops_test) else 0,
                          latents["train"], latents["test"], trained_now, flops_test)


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
    _test_latents: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, scenario: Scenario, log: Log = to_stderr, cache: ArtifactCache | None = None) -> "Zoo":
        """Train or load every encoder and its latents, and draw the anchors.

        ``log`` gets progress messages. A cache entry that has to be rebuilt because it is
        corrupt or does not fit is announced by the cache's own ``notice`` (one line on stderr
        by default), whatever ``log`` does with progress.
        """
        device = resolve_device(scenario.device)
        dataset = load_dataset(scenario.data.dataset, scenario.data.max_train, scenario.data.max_test)
        d = scenario.data
        try:
            splits = make_splits(dataset, d.validation_fraction, SeedTree(d.split_seed).child("data"),
                                 d.holdout_fraction if d.calibration == "holdout" else None)
        except ValueError as exc:
            raise ScenarioError(str(exc), path="data.holdout_fraction") from None
        cache = cache or ArtifactCache(relcomm_home() / "cache")
        for i, cfg in enumerate(scenario.encoders):
            _check_modality(cfg, i, dataset)
        encoders = {cfg.id: train_encoder(cfg, dataset, splits, scenario, device, cache, log)
                    for cfg in scenario.encoders}
        a = scenario.anchors
        if dataset.modality != "image" and a.strategy in ("kmeans", "farthest"):
            raise ScenarioError(f"{a.strategy!r} works in the input space all agents share, which only images have; "
                                "for text use 'random' or 'stratified'", path="anchors.strategy")
        anchors = select_anchors(a.strategy, a.count, splits.train, dataset.x_train, dataset.y_train,
                                 SeedTree(a.seed).child("anchors"))
        return cls(scenario, dataset, splits, anchors, encoders, device, cache, log)

    # ----------------------------------------------------------------- look-ups
    @property
    def calibration_split(self) -> str:
        """The split Ĝ is measured on (``data.calibration``): ``validation`` or ``holdout``."""
        return self.scenario.data.calibration

    def split_fields(self, split: str) -> dict:
        """What determines ``split``'s samples beyond the encoders' cache keys, for keys of cached results.

        Empty for ``train``, ``validation`` and a ``test`` split that is the whole test set (so
        keys made before the holdout existed stay valid); the holdout's fraction and seed for
        ``holdout`` and for the ``test`` split left beside it.
        """
        if split in ("train", "validation") or self.splits.test_is_whole:
            return {}
        d = self.scenario.data
        return {"holdout_fraction": d.holdout_fraction, "holdout_seed": d.split_seed}

    def latents(self, encoder_id: str, split: str) -> torch.Tensor:
        """Latents of one split: ``train``, ``validation``, ``holdout`` or ``test``.

        The test split's (when a holdout is cut from the test set) and the holdout's are gathered
        once and kept: the network reads the test split's every slot.
        """
        enc = self.encoders[encoder_id]
        if split == "test" and self.splits.test_is_whole:
            return enc.latents_test
        if split in ("test", "holdout"):
            key = (encoder_id, split)
            if key not in self._test_latents:
                self._test_latents[key] = enc.latents_test[torch.from_numpy(getattr(self.splits, split))]
            return self._test_latents[key]
        return enc.latents_train[torch.from_numpy(getattr(self.splits, split))]

    def labels(self, split: str) -> torch.Tensor:
        """Labels of one split (as :meth:`latents`), int64."""
        if split == "test" and self.splits.test_is_whole:
            return torch.from_numpy(self.dataset.y_test)
        if split in ("test", "holdout"):
            return torch.from_numpy(self.dataset.y_test[getattr(self.splits, split)])
        return torch.from_numpy(self.dataset.y_train[getattr(self.splits, split)])

    def anchor_latents(self, encoder_id: str, k: int) -> torch.Tensor:
        """(k, d) latents of the first k anchors in this encoder's space."""
        return self.encoders[encoder_id].latents_train[torch.from_numpy(self.anchors[:k])]

    def projector(self, encoder_id: str, k: int) -> RelativeProjector:
        key = (encoder_id, k)
        if key not in self._projectors:
            rel = self.scenario.relative
            self._projectors[key] = RelativeProjector.fit(self.anchor_latents(encoder_id, k), rel.similarity,
                                                          rel.center, rel.standardize)
        return self._projectors[key]

    def relative_head(self, rx_id: str, k: int) -> nn.Module:
        """The receiver's head for k anchors, trained on its own relative representations (train split)."""
        if (rx_id, k) in self._heads:
            return self._heads[(rx_id, k)]
        enc, sc = self.encoders[rx_id], self.scenario
        spec = {"kind": "head", "encoder": enc.key, "relative": sc.relative.cache_fields(),
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
