"""Latent layer speed: cold zoo training, warm `relcomm stitch`, relative projection vs matmul.

Run ``python benchmarks/bench_latent.py [--skip-cold] [--repeats N]``; prints a markdown table.
``run()`` returns the rows for ``benchmarks/run_all.py``.

* Cold training trains the four encoders of ``scenarios/mismatch.yaml`` and their heads in an
  empty cache (a fresh ``RELCOMM_HOME``), as a user's first ``relcomm stitch`` does.
* Warm stitch runs the whole ``relcomm stitch`` command (process start, data load, cached
  encoders and heads, the test-split matrix and the bits/SNR curves, plots) against the cache
  the cold run filled; the calibration table is cached too after the first run.
* Projection throughput compares ``RelativeProjector`` (cosine, with and without centring)
  with a plain ``X @ Aᵀ`` of the same shape and dtype (float32, and bfloat16 against a bfloat16
  matmul), measured side by side in the same process; ``--projection-only --devices cuda cpu``
  runs just these rows (``benchmarks/gpu_check.sh`` does, on a lent GPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import markdown_table, median_s

from simulator.latent.relative import RelativeProjector
from simulator.rng import SeedTree

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "mismatch.yaml"


def _stitch(home: Path, out: Path) -> float:
    env = {**os.environ, "RELCOMM_HOME": str(home)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simulator", "stitch", str(SCENARIO), "--out", str(out), "--quiet"],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _train_only(home: Path) -> float:
    code = ("import time; from simulator.config import load_scenario; from simulator.latent.zoo import Zoo;"
            f"sc=load_scenario({str(SCENARIO)!r}); t=time.perf_counter(); z=Zoo.build(sc, log=lambda m: None);"
            "[z.relative_head(e, k) for e in z.encoders for k in sc.stitching.anchors];"
            "print(time.perf_counter()-t)")
    env = {**os.environ, "RELCOMM_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def projection_rows(device: str, repeats: int, dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.bfloat16)
                    ) -> list[dict]:
    """Projection vs a plain matmul of the same dtype, timed alternately so that load hits both alike.

    The plain matmul is ``x @ aᵀ`` with x and the anchors in ``dtype`` (a bfloat16 result for
    bfloat16); the projection gets the same x and returns the same dtype (for bfloat16 it keeps
    bfloat16 through its matmul).
    """
    rows = []
    gen = SeedTree(0).child("bench", "projection").torch()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for n, d, k in ((65536, 64, 256), (65536, 128, 512), (16384, 1024, 1024)):
        x32 = torch.randn(n, d, generator=gen).to(device)
        a32 = torch.randn(k, d, generator=gen).to(device)
        for dtype in dtypes:
            x, a = x32.to(dtype), a32.to(dtype)
            name = "" if dtype == torch.float32 else f", {str(dtype).removeprefix('torch.')}"
            for center in (False, True):
                proj = RelativeProjector.fit(a32, ["cosine"], center).to(device)
                ratios, proj_s = [], []
                for _ in range(repeats):
                    plain = median_s(lambda: (x @ a.T, sync()), 3)
                    ours = median_s(lambda: (proj(x), sync()), 3)
                    ratios.append(plain / ours)
                    proj_s.append(ours)
                rows.append(dict(name=f"latent.projection[{device}{name}, cosine{', centred' if center else ''}, "
                                      f"{n}x{d} vs {k} anchors]",
                                 value=statistics.median(ratios), unit="x matmul speed",
                                 note=f"{n * k / statistics.median(proj_s):.3g} similarities/s; median of {repeats} "
                                      f"alternating pairs against a plain {str(dtype).removeprefix('torch.')} "
                                      f"matmul; torch threads={torch.get_num_threads()}"))
    return rows


def run(repeats: int = 5, cold: bool = True, cold_repeats: int = 3) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if cold:
            times = [_train_only(tmp / f"home-{i}") for i in range(cold_repeats)]
            rows.append(dict(name="latent.cold_training[mismatch zoo]", value=sorted(times)[len(times) // 2],
                             unit="s", note=f"4 encoders + 24 heads from an empty cache; median of {cold_repeats}; "
                                           f"runs: {', '.join(f'{t:.0f}' for t in times)} s"))
            home = tmp / "home-0"
        else:
            home = Path(os.environ.get("RELCOMM_HOME", Path.home() / ".cache" / "relcomm"))
        _stitch(home, tmp / "first")  # fills the calibration cache when needed
        warm = [_stitch(home, tmp / f"warm-{i}") for i in range(3)]
        rows.append(dict(name="latent.warm_stitch[mismatch]", value=sorted(warm)[1], unit="s",
                         note=f"whole `relcomm stitch` command, cached zoo; median of 3; "
                              f"runs: {', '.join(f'{t:.1f}' for t in warm)} s"))
    rows += projection_rows("cpu", repeats)
    if torch.cuda.is_available():
        rows += projection_rows("cuda", repeats)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true", help="use the existing cache; no cold training")
    parser.add_argument("--projection-only", action="store_true", help="only the projection-vs-matmul rows")
    parser.add_argument("--devices", nargs="+", default=["cpu"], help="devices of the projection-only rows")
    args = parser.parse_args()
    if args.projection_only:
        print(markdown_table([row for device in args.devices for row in projection_rows(device, args.repeats)]),
              flush=True)
        return
    print(markdown_table(run(args.repeats, cold=not args.skip_cold)))


if __name__ == "__main__":
    main()
