"""Seeded training and batched inference of encoders and heads (no global RNG)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from simulator.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (error if absent) or ``auto`` (CUDA when present, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from simulator.errors import ScenarioError

        raise ScenarioError("CUDA was requested but torch sees no GPU; use 'auto' or 'cpu'", path="device")
    return torch.device(name)


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every parameter from ``generator`` (Kaiming-uniform weights, zero biases).

    Torch's own initialisers draw from the global RNG; this keeps each model's weights a
    function of its seed alone.
    """
    with torch.no_grad():
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, nn.Parameter) and weight.dim() >= 2:
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
            elif isinstance(weight, nn.Parameter):
                nn.init.ones_(weight)
            bias = getattr(module, "bias", None)
            if isinstance(bias, nn.Parameter):
                nn.init.zeros_(bias)


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
                   generator: torch.Generator, device: torch.device,
                   progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` (inputs → logits) with AdamW and a cosine learning-rate schedule.

    Parameters
    ----------
    model : nn.Module
        Maps a batch of inputs to class logits; trained in place on ``device``.
    x, y : torch.Tensor
        Training inputs (n, …) float32 and labels (n,) int64, on the CPU.
    cfg : TrainConfig
        Epochs, batch size, learning rate, weight decay.
    generator : torch.Generator
        CPU generator for the data order.

    Returns
    -------
    list of float
        Mean training loss of each epoch.
    """
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(x)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)
    x_dev, y_dev = x.to(device), y.to(device)
    losses = []
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=generator).to(device)
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(model(x_dev[idx]), y_dev[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
        if progress is not None:
            progress(epoch, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def batched_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device,
                  batch_size: int = 8192) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches on ``device``; the result comes back on the CPU."""
    outs = [fn(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


@torch.no_grad()
def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose argmax equals the label."""
    return float((logits.argmax(dim=1) == y).float().mean()) if len(y) else float("nan")
