"""Semantic outcome of delivered tasks, in batches: relative projection, payload errors, receiver head.

The event loop only moves timing; what a receiver *understands* is computed here for many tasks
at once. Tasks are grouped by (tx encoder, K, b, rx encoder, coded); each group is one gather
of precomputed test-split latents, one projection (a matmul), one call of
:func:`simulator.channel.transmit_payload` per similarity block with one SNR per row (the
same channel the stitching table and the calibration Ĝ use), and one head forward pass.

Which payload errors: ``channel.mode`` ``ideal`` — quantization only; ``digital`` — the b-bit
codes cross a binary symmetric channel at the uncoded BER of the SNR the task was sent at;
``analog`` — AWGN at that SNR. A task sent in a finite-blocklength coded packet that got
through arrives error-free (quantization only), whatever the mode.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from simulator.channel import transmit_payload
from simulator.latent.zoo import Zoo


class OutcomeResolver:
    """Sets ``prediction`` and ``correct`` on delivered tasks, a batch at a time.

    A task needs the attributes ``sample`` (test-split index), ``encoder``, ``anchors``,
    ``bits``, ``rx_encoder``, ``coded`` (bool) and ``snr`` (linear SNR it was sent at).

    Parameters
    ----------
    zoo : Zoo
        Trained encoders, their test latents, projectors and heads.
    mode : {"ideal", "digital", "analog"}
    modulation : str
        For the digital BER.
    generator : torch.Generator
        Source of bit flips and noise (from the seed tree); consumed in a deterministic order.
    """

    def __init__(self, zoo: Zoo, mode: str, modulation: str, generator: torch.Generator):
        self.zoo = zoo
        self.mode = mode
        self.modulation = modulation
        self.gen = generator
        self.labels = zoo.labels("test")
        self._labels_list = self.labels.tolist()
        self._ranges: dict[tuple[str, int], list[tuple[float, float]]] = {}

    def label(self, sample: int) -> int:
        return self._labels_list[sample]

    def ranges(self, encoder: str, k: int) -> list[tuple[float, float]]:
        key = (encoder, k)
        if key not in self._ranges:
            self._ranges[key] = self.zoo.projector(encoder, k).value_ranges()
        return self._ranges[key]

    def prepare(self, encoder: str, rx_encoder: str, k: int) -> None:
        """Fit the projector and load (or train) the head now rather than inside the run."""
        self.ranges(encoder, k)
        self.zoo.relative_head(rx_encoder, k)

    def received(self, encoder: str, k: int, bits: int, coded: bool, samples: torch.Tensor,
                 snr: torch.Tensor) -> torch.Tensor:
        """(n, K·spaces) relative vectors as reconstructed by the receiver."""
        r = self.zoo.projector(encoder, k)(self.zoo.latents(encoder, "test")[samples])
        mode = "ideal" if coded or self.mode == "ideal" else self.mode
        if mode == "ideal" and bits == 32:
            return r
        blocks = r.split(k, dim=1)
        out = [transmit_payload(b, mode, bits, lo, hi, None if mode == "ideal" else snr, self.modulation,
                                None if mode == "ideal" else self.gen)
               for b, (lo, hi) in zip(blocks, self.ranges(encoder, k))]
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)

    def resolve(self, tasks: Sequence[Any]) -> None:
        """Fill in ``prediction`` and ``correct`` of every task (grouped, batched).

        Runs with one torch thread: the groups are small (a few thousand rows), so intra-op
        threads only add synchronization — and on a loaded machine their spin-waits made whole
        runs five times slower.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._resolve(tasks)
        finally:
            torch.set_num_threads(threads)

    def _resolve(self, tasks: Sequence[Any]) -> None:
        groups: dict[tuple, list] = {}
        for t in tasks:
            groups.setdefault((t.encoder, t.anchors, t.bits, t.rx_encoder, t.coded), []).append(t)
        for (encoder, k, bits, rx_encoder, coded), group in groups.items():
            samples = torch.tensor([t.sample for t in group], dtype=torch.int64)
            snr = torch.tensor([t.snr for t in group], dtype=torch.float64)
            r_hat = self.received(encoder, k, bits, coded, samples, snr)
            pred = self.zoo.classify_relative(rx_encoder, k, r_hat).tolist()
            labels = self._labels_list
            for t, p in zip(group, pred):
                t.prediction = p
                t.correct = p == labels[t.sample]


__all__ = ["OutcomeResolver"]
