"""Run every benchmark and write the table to benchmarks/RESULTS.md.

``python benchmarks/run_all.py [--quick] [--only SUITE …] [--render] [--no-readme]``: ``--quick``
skips the cold-training measurement (it trains the mismatch zoo three times from an empty cache);
``--only`` reruns the named suites and keeps the others' last figures; ``--render`` runs nothing and
redraws RESULTS.md from the stored figures; ``--no-readme`` leaves README.md's tables as they are.
Every suite's rows are kept with the date and the command that measured them in
``benchmarks/results.json``; RESULTS.md is drawn from it, one table per suite, each followed by
the suite's hand-written notes, ``benchmarks/notes/SUITE.md`` when it exists (measurements made
elsewhere or by hand: a lent GPU machine, before/after comparisons, the split network), kept
verbatim whatever is rerun.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import markdown_table  # noqa: E402

from simulator.results import atomic_write_bytes  # noqa: E402

SUITES = ("bench_latent", "bench_channel", "bench_control", "bench_network", "bench_sweep", "bench_encoders",
          "bench_scale")
NOTES = HERE / "notes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip cold training")
    parser.add_argument("--only", nargs="*", default=None, choices=SUITES, help="suites to run (default: all)")
    parser.add_argument("--render", action="store_true", help="run nothing; redraw RESULTS.md from results.json")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md's benchmark tables as they are")
    args = parser.parse_args()
    store = HERE / "results.json"
    if args.render:
        args.only = []
    elif args.only == []:
        args.only = None  # --only with no suite: all of them, as before
    saved = json.loads(store.read_text()) if store.exists() and args.only is not None else {}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
               f"({torch.get_num_threads()} threads), GPU: {gpu}")
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "") + (
        f" --only {' '.join(args.only)}" if args.only else "")
    for name in SUITES if args.only is None else args.only:
        module = importlib.import_module(name)
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows = module.run(cold=not args.quick) if name == "bench_latent" else module.run()
        saved[name] = {"date": str(datetime.date.today()), "machine": machine, "command": command,
                       "rows": [{**r, "value": float(r["value"])} for r in rows]}
    if not args.render:
        atomic_write_bytes(store, (json.dumps(saved, indent=1, ensure_ascii=False) + "\n").encode())
    parts = ["# Benchmark results\n\nValues are medians of several runs; ratios are measured side by side in "
             "one run. Each suite's heading says when, how and on what it was measured.\n"]
    tables = []  # README.md gets the tables only
    for name in SUITES:
        notes = NOTES / f"{name}.md"
        if name in saved:
            suite = saved[name]
            tables.append(f"## {name}\n\n{suite['date']}, `{suite['command']}`, {suite['machine']}.\n\n"
                          + markdown_table(suite["rows"]) + "\n")
            parts.append(tables[-1])
        elif notes.exists():
            parts.append(f"## {name}\n")
        if notes.exists():
            parts.append(notes.read_text())
    atomic_write_bytes(HERE / "RESULTS.md", "\n".join(parts).encode())
    print("\n".join(parts))
    if not args.no_readme:
        update_readme("\n".join(p.replace("\n## ", "\n### ", 1) if p.startswith("## ") else p for p in tables))


README_START = "<!-- benchmark tables: written by benchmarks/run_all.py from benchmarks/RESULTS.md -->"
README_END = "<!-- end of benchmark tables -->"


def update_readme(tables: str) -> None:
    """Put the suites' tables between the README's two markers (README.md § Benchmarks)."""
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        print(f"note: {readme} lacks the benchmark markers; the tables are only in RESULTS.md", file=sys.stderr)
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    body = "\n".join(("#" + line) if line.startswith("## ") else line for line in tables.splitlines())
    atomic_write_bytes(readme, f"{head}{README_START}\n\n{body.strip()}\n\n{README_END}{tail}".encode())


if __name__ == "__main__":
    main()
