"""Run every benchmark and write the table to benchmarks/RESULTS.md.

``python benchmarks/run_all.py [--quick]``: ``--quick`` skips the cold-training measurement
(it trains the mismatch zoo three times from an empty cache).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import markdown_table  # noqa: E402

SUITES = ("bench_latent", "bench_channel", "bench_control", "bench_network", "bench_sweep")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip cold training")
    parser.add_argument("--only", nargs="*", default=None, help="suites to run (default: all)")
    args = parser.parse_args()
    rows = []
    for name in args.only or SUITES:
        if not (HERE / f"{name}.py").exists():
            continue
        module = importlib.import_module(name)
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows += module.run(cold=not args.quick) if name == "bench_latent" else module.run()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    header = (f"# Benchmark results\n\nMeasured {datetime.date.today()} with `python benchmarks/run_all.py"
              f"{' --quick' if args.quick else ''}` on {platform.machine()}, {os.cpu_count()} CPU cores, "
              f"torch {torch.__version__} ({torch.get_num_threads()} threads), GPU: {gpu}. "
              "Values are medians of several runs; ratios are measured side by side in one run.\n\n")
    (HERE / "RESULTS.md").write_text(header + markdown_table(rows) + "\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
