"""Channel-layer speed: fading draws per second and payload transmission throughput.

Run ``python benchmarks/bench_channel.py [--repeats N] [--threads T]``; prints a markdown table.
``run()`` returns the rows (keys ``name``, ``value``, ``unit``, ``note``) for
``benchmarks/run_all.py``. Each value is the work per call divided by the median wall time of
``repeats`` calls, after one untimed warm-up call.
"""

from __future__ import annotations

import argparse
from typing import Callable

import torch

from common import markdown_table, median_s

from simulator.channel.fading import gain_trace, jakes_rho
from simulator.channel.quantize import analog_awgn, dequantize, flip_bits, quantize
from simulator.rng import SeedTree

N_SLOTS, N_LINKS = 1_000_000, 8
PAYLOAD_SHAPE = (4096, 256)


def run(repeats: int = 5) -> list[dict]:
    """Measure the channel kernels; one row per kernel.

    Parameters
    ----------
    repeats : int, default 5
        Timed calls per kernel (median reported), ``>= 1``.

    Returns
    -------
    list of dict
        Keys ``name``, ``value`` (float), ``unit``, ``note``.
    """
    tree = SeedTree(0).child("bench", "channel")
    gen_np = tree.child("fading").numpy()
    gen_t = tree.child("payload").torch()
    threads = f"torch threads={torch.get_num_threads()}"
    rows = []

    draws = N_SLOTS * N_LINKS
    for name, rho in (("rayleigh gain trace, block i.i.d.", 0.0),
                      ("rayleigh gain trace, AR(1) Jakes", jakes_rho(50.0, 1e-3))):
        def draw(rho=rho):
            return gain_trace("rayleigh", N_SLOTS, N_LINKS, gen_np, rho=rho)

        seconds = median_s(draw, repeats)
        rows.append(dict(name=name, value=draws / seconds, unit="draws/s",
                         note=f"{N_SLOTS} slots x {N_LINKS} links, median of {repeats}"))

    x = torch.rand(PAYLOAD_SHAPE, generator=gen_t) * 2.0 - 1.0
    entries = x.numel()
    shape = "x".join(map(str, PAYLOAD_SHAPE))

    def digital(bits: int, ber: float) -> Callable[[], torch.Tensor]:
        return lambda: dequantize(flip_bits(quantize(x, bits, -1.0, 1.0), bits, ber, gen_t),
                                  bits, -1.0, 1.0)

    for bits, ber in ((8, 1e-3), (8, 0.25), (4, 1e-3), (32, 1e-3)):
        seconds = median_s(digital(bits, ber), repeats)
        rows.append(dict(name=f"digital payload b={bits}, BER={ber:g}", value=entries / seconds,
                         unit="entries/s",
                         note=f"quantize+flip_bits+dequantize on {shape}, {threads}"))
    per_row_ber = torch.full((PAYLOAD_SHAPE[0], 1), 1e-3)
    seconds = median_s(digital(8, per_row_ber), repeats)
    rows.append(dict(name="digital payload b=8, per-row BER=1e-3", value=entries / seconds,
                     unit="entries/s", note=f"BER tensor (batch, 1), {shape}, {threads}"))
    snr = torch.full((PAYLOAD_SHAPE[0],), 10.0)
    seconds = median_s(lambda: analog_awgn(x, snr, gen_t), repeats)
    rows.append(dict(name="analog payload (analog_awgn)", value=entries / seconds,
                     unit="entries/s", note=f"{shape} float32, per-row SNR, {threads}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(markdown_table(run(args.repeats)))


if __name__ == "__main__":
    main()
