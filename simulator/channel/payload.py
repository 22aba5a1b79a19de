"""One payload crossing the link: quantize, then uncoded bit errors or analog noise, then reconstruct."""

from __future__ import annotations

import torch

from .modulation import ber
from .quantize import FLOAT_BITS, analog_awgn, dequantize, flip_bits, quantize

MODES = ("ideal", "digital", "analog")


def transmit_payload(x: torch.Tensor, mode: str, bits: int, lo: float, hi: float,
                     snr_linear: float | torch.Tensor | None = None, modulation: str = "qpsk",
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """What the receiver reconstructs of payload rows ``x`` (relative representations).

    - ``ideal``: error-free link; the only loss is the b-bit quantizer over [lo, hi]
      (``bits = 32``: float32, nothing lost).
    - ``digital``: the b-bit codes (or float32 words) cross a binary symmetric channel whose
      crossover is the uncoded ``modulation``'s BER at the per-symbol SNR ``snr_linear``
      (:func:`~simulator.channel.modulation.ber`), then are dequantized.
    - ``analog``: entries are sent as real symbols (:func:`~simulator.channel.quantize.analog_awgn`);
      ``bits`` is ignored.

    Parameters
    ----------
    x : torch.Tensor
        (n, K) float32 payload rows.
    mode : {"ideal", "digital", "analog"}
    bits : int
        1..16, or 32 for float32.
    lo, hi : float
        Quantizer range: the similarity's known range (cosine: [-1, 1]).
    snr_linear : float or torch.Tensor, optional
        Per-symbol SNR γ (linear), scalar or one per row; required for ``digital`` and ``analog``.
    modulation : {"bpsk", "qpsk", "16qam"}
    generator : torch.Generator, optional
        Required for the noisy modes.

    Returns
    -------
    torch.Tensor
        (n, K) float32 reconstruction.
    """
    if mode not in MODES:
        raise ValueError(f"unknown transmission mode {mode!r}; known: {', '.join(MODES)}")
    if mode != "ideal" and (snr_linear is None or generator is None):
        raise ValueError(f"mode {mode!r} needs snr_linear and a generator")
    if mode == "analog":
        return analog_awgn(x.float(), snr_linear, generator)
    if mode == "ideal" and bits == FLOAT_BITS:
        return x.float()
    codes = quantize(x, bits, lo, hi)
    if mode == "digital":
        eps = torch.as_tensor(ber(torch.as_tensor(snr_linear).cpu().numpy(), modulation), dtype=torch.float64)
        codes = flip_bits(codes, bits, eps.reshape(-1, 1) if eps.dim() else eps, generator)
    return codes.float() if bits == FLOAT_BITS else dequantize(codes, bits, lo, hi)
