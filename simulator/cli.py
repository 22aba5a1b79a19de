"""`relcomm` command line: parse, call, print. Exit 0 ok, 2 invalid input, 1 internal error."""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from simulator import __version__
from simulator.config import Scenario, default_results_dir, load_scenario
from simulator.errors import ScenarioError
from simulator.folders import check_target, claim


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other input error
        raise ScenarioError(message, path="command line")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="relcomm", description="Semantic-communication network simulator.")
    parser.add_argument("--version", action="version", version=f"relcomm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (anywhere on the line)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add_set(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                       help="override a scenario field before validation, e.g. --set controller.bits=4 or "
                       "--set transmitters[0].cpu.f_max_hz=2e9 (the value is read as YAML; repeatable)")

    def add_executor(p: argparse.ArgumentParser, default: str | None, local: str) -> None:
        p.add_argument("--executor", choices=("local", "dask"), default=default,
                       help=f"local: {local}; dask: a dask.distributed cluster")
        p.add_argument("--workers", type=int, default=None, help="worker processes (default: the usable cores)")
        p.add_argument("--scheduler", default=None, metavar="ADDR", help="dask: address of a running scheduler "
                       "(tcp://HOST:PORT); default: a LocalCluster of --workers processes")

    p = sub.add_parser("stitch", help="alignment-under-mismatch matrix of a scenario's encoders")
    p.add_argument("scenario", type=Path)
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<name>-stitch)")
    add_set(p)

    p = sub.add_parser("run", help="simulate a network scenario into a results folder")
    p.add_argument("scenario", type=Path)
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<name>)")
    add_executor(p, None, "independent cells (a server and its devices) in a process pool, merged into the "
                 "single-process results (default: one process)")
    add_set(p)

    p = sub.add_parser("sweep", help="run a scenario's sweep (grid × zip × seeds), resumable, in parallel")
    p.add_argument("scenario", type=Path)
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<name>-sweep)")
    add_executor(p, "local", "a process pool (default)")
    add_set(p)

    p = sub.add_parser("tradeoff", help="the V sweep of a lyapunov scenario on one seed, next to the baselines")
    p.add_argument("scenario", type=Path)
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<name>-tradeoff)")
    p.add_argument("--baselines", nargs="*", default=None, metavar="KIND",
                   help="baselines to run: static, max-accuracy, min-energy, greedy (default: all; none: no value)")
    p.add_argument("--no-placeholder", action="store_true",
                   help="start every run from the configured queues (no place-holder backlogs)")
    p.add_argument("--pilot-slots", type=int, default=None, help="pilot length (default 4 × simulation.slots)")
    p.add_argument("--pilot-only", action="store_true",
                   help="learn the place-holder multipliers on a pilot run and print them (nothing else runs)")
    add_set(p)

    p = sub.add_parser("frontier", help="energy per task against the delay and accuracy targets: the offline "
                       "bound's frontier, the controller and the baselines")
    p.add_argument("scenario", type=Path)
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<name>-frontier)")
    p.add_argument("--delay-targets", nargs="+", type=float, default=None, metavar="S",
                   help="delay targets of the bound's grid, seconds (default frontier.delay_targets_s, else 8 from "
                   "0.2 to 2 × simulation.delay_target_s)")
    p.add_argument("--accuracy-targets", nargs="+", type=float, default=None, metavar="A",
                   help="accuracy targets of the bound's grid (default frontier.accuracy_targets, else "
                   "simulation.accuracy_target − 0.02 … + 0.01)")
    p.add_argument("--run-delay-targets", nargs="*", type=float, default=None, metavar="S",
                   help="delay targets simulated, among --delay-targets (default: every other; none: no runs)")
    p.add_argument("--run-accuracy-targets", nargs="*", type=float, default=None, metavar="A",
                   help="accuracy targets simulated, among --accuracy-targets (default: every other)")
    p.add_argument("--baselines", nargs="*", default=None, metavar="KIND",
                   help="baselines to run: static, max-accuracy, min-energy, greedy (default: all)")
    p.add_argument("--v", type=float, default=None, help="V of the simulated controller (default frontier.v, 1e5)")
    add_executor(p, "local", "a process pool (default)")
    add_set(p)

    p = sub.add_parser("validate", help="check a scenario file without running it")
    p.add_argument("scenario", type=Path)
    add_set(p)

    sub.add_parser("schema", help="print the scenario JSON Schema")

    p = sub.add_parser("plot", help="(re)draw the plots of a results folder (a run, a stitch, a sweep or a trade-off)")
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument("--out", type=Path, default=None, help="where the PNG and PDF files go (default DIR/plots)")
    return parser


class Progress:
    """Where progress messages go: stage messages one per line on stderr; counters as a bar.

    A counter is a message that starts ``slot S/N`` (the world reports one every tenth of a
    run). On a terminal it is drawn as a bar redrawn in place; when stderr is not a terminal
    (a log file, CI, a pipe) counters are left out and only the stage messages are printed.
    ``quiet`` prints nothing.
    """

    COUNTER = re.compile(r"^slot (\d+)/(\d+)\b")
    WIDTH = 24

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = False

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        m = self.COUNTER.match(message)
        if m is not None:
            if self.tty:
                done, total = int(m.group(1)), max(1, int(m.group(2)))
                filled = min(self.WIDTH, self.WIDTH * done // total)
                self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                                  f"{100 * done // total:3d}%  {message}")
                self.stream.flush()
                self._bar = True
            return
        self.close()
        print(message, file=self.stream, flush=True)

    def close(self) -> None:
        """Erase a bar left on the terminal."""
        if self._bar:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._bar = False


def _log(quiet: bool) -> Callable[[str], None]:
    return Progress(quiet)


def _out_dir(args: argparse.Namespace, scenario, suffix: str = "") -> Path:
    """The results folder of a command (``--out``, else ``results/<outputs.dir or name><suffix>``), checked now.

    The check (:func:`simulator.folders.check_target`) runs before any work, and names what chose
    the folder; the command claims it again (locked) when it starts writing.
    """
    if args.out is not None:
        return check_target(args.out, "--out")
    field = "outputs.dir" if scenario.outputs.dir else "name"
    return check_target(default_results_dir(scenario, suffix), field)


def _cmd_stitch(args: argparse.Namespace) -> int:
    from simulator.experiment.stitch import run_stitch

    scenario = load_scenario(args.scenario, args.overrides)
    out = _out_dir(args, scenario, "-stitch")
    log = _log(args.quiet)
    try:
        summary = run_stitch(scenario, out, log)
    finally:
        log.close()
    print(f"wrote {out}/stitching.csv and {out}/plots/ in {summary['wall_s']:.1f} s")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from simulator.experiment.runner import run_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    split = _split(args, scenario)
    out = _out_dir(args, scenario)
    log = _log(args.quiet)
    try:
        s = run_scenario(scenario, out, log, split=split)
    finally:
        log.close()
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
    delay = "n/a" if s["mean_delay_s"] is None else f"{s['mean_delay_s'] * 1e3:.2f} ms"
    print(f"wrote {out}: {s['tasks_delivered']}/{s['tasks_arrived']} tasks delivered, accuracy {acc}, "
          f"mean delay {delay}, {s['avg_power_w']:.4g} W in {s['wall_s']:.1f} s")
    verdicts = [f"{name} target {'met' if s[key] else 'NOT met'}" for name, key in
                (("delay", "delay_met"), ("accuracy", "accuracy_met")) if s.get(key) is not None]
    if verdicts:
        w = s["settled"]
        print(f"settled window (from {w['from_s']:g} s): " + ", ".join(verdicts))
    return 0


def _split(args: argparse.Namespace, scenario: Scenario):
    """The split step of ``run --executor`` (None: one process), flags checked; says why a network is not split."""
    if args.executor is None:
        for flag, value in (("--workers", args.workers), ("--scheduler", args.scheduler)):
            if value is not None:
                raise ScenarioError("needs --executor local or dask", path=flag)
        return None
    from simulator.experiment.split import coupling, split_runner

    split = split_runner(args.executor, args.workers, args.scheduler)
    reason = coupling(scenario)
    if reason is not None:
        print(f"running in one process: {reason}", file=sys.stderr)
        return None
    return split


def _cmd_sweep(args: argparse.Namespace) -> int:
    from simulator.experiment.sweep import load_sweep, run_sweep

    data, scenario = load_sweep(args.scenario, args.overrides)
    out = _out_dir(args, scenario, "-sweep")
    log = _log(args.quiet)
    try:
        report = run_sweep(data, out, args.executor, args.workers, args.scheduler, log)
    finally:
        log.close()
    print(f"wrote {out}: {report.line()}")
    if report.failed:
        print(f"error: {report.failed} runs failed (their error is in runs/*/failed.json and sweep.csv); "
              "run the sweep again to retry them", file=sys.stderr)
        return 1
    return 0


def _cmd_tradeoff(args: argparse.Namespace) -> int:
    from simulator.experiment import tradeoff

    baselines = tradeoff.BASELINES if args.baselines is None else tuple(args.baselines)
    unknown = [b for b in baselines if b not in tradeoff.BASELINES]
    if unknown:
        raise ScenarioError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(tradeoff.BASELINES)}",
                            path="--baselines")
    if args.pilot_slots is not None and args.pilot_slots < 1:
        raise ScenarioError("must be a positive number of slots", path="--pilot-slots")
    scenario = load_scenario(args.scenario, args.overrides)
    out = _out_dir(args, scenario, "-tradeoff")
    log = _log(args.quiet)
    try:
        if args.pilot_only:
            if args.pilot_slots is not None:
                scenario = load_scenario(args.scenario, [*args.overrides, f"controller.pilot_slots={args.pilot_slots}"])
            lam, eta = tradeoff.learn_placeholders(scenario, log)
            log.close()
            print(f"  delay_queue_per_v: {lam:.6g}\n  accuracy_queue_per_v: {eta:.6g}")
            return 0
        rows = tradeoff.run_tradeoff(scenario, out, baselines=baselines, placeholder=not args.no_placeholder,
                                     pilot_slots=args.pilot_slots, log=log)
    finally:
        log.close()
    dyn = [r for r in rows if r["kind"] == "lyapunov"]
    met = sum(bool(r["constraints_met"]) for r in dyn)
    settled = sum(r["settled"] is True for r in dyn)
    print(f"wrote {out}/tradeoff.csv and {out}/plots/tradeoff.png: {len(rows)} runs, "
          f"{met}/{len(dyn)} values of V meet the targets (settled window, with the tolerances), "
          f"{settled}/{len(dyn)} settled")
    return 0


def _cmd_frontier(args: argparse.Namespace) -> int:
    from simulator.experiment import frontier

    scenario = load_scenario(args.scenario, args.overrides)
    plan = frontier.frontier_plan(scenario, delay_targets=args.delay_targets, accuracy_targets=args.accuracy_targets,
                                  run_delay_targets=args.run_delay_targets,
                                  run_accuracy_targets=args.run_accuracy_targets, baselines=args.baselines, v=args.v)
    out = _out_dir(args, scenario, "-frontier")
    log = _log(args.quiet)
    try:
        report = frontier.run_frontier(scenario, out, plan, executor=args.executor, workers=args.workers,
                                       scheduler=args.scheduler, log=log)
    finally:
        log.close()
    controller_rows = report.controller_rows()
    ctl = [r for r in controller_rows if r.get("optimality_gap") is not None]
    gaps = f", the controller's largest gap to the bound {max(r['optimality_gap'] for r in ctl):+.2%}" if ctl else ""
    print(f"wrote {out}/frontier.csv and {out}/plots/frontier.png: {report.feasible}/{report.pairs} target pairs "
          f"feasible, {report.runs} runs ({report.failed} failed){gaps}, in {report.wall_s:.0f} s ({report.executor})")
    unsettled = [r for r in controller_rows if r.get("settled") is False]
    if unsettled:
        pairs = ", ".join(f"{r['delay_target_s'] * 1e3:.4g} ms / {r['accuracy_target']:g}" for r in unsettled)
        print(f"the controller did not settle at {len(unsettled)} target pair(s) ({pairs}): its queues were still "
              f"moving, so its energy there is a transient's; a longer run settles them "
              f"(--set simulation.slots=N, now {scenario.simulation.slots})")
    return 1 if report.failed else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    print(f"{args.scenario}: valid scenario {scenario.name!r} ({len(scenario.encoders)} encoders)")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(Scenario.model_json_schema(), indent=2))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from simulator import plots

    folder = args.folder
    if not folder.is_dir():
        raise ScenarioError("no such folder", path=str(folder))
    frontier = (folder / "frontier.csv").is_file()
    if not frontier and plots.results_kind(folder) == "unknown":
        raise ScenarioError("not a results folder: expected summary.json and slots.csv (relcomm run), "
                            "stitching.csv (relcomm stitch), sweep_summary.csv (relcomm sweep), tradeoff.csv "
                            "or frontier.csv", path=str(folder))
    out = args.out or folder / "plots"
    with claim(out, "plots", field="--out" if args.out else None, inside_results=True) as target:
        if frontier:  # its figure module imports plots, so plots cannot dispatch to it
            from simulator.plots_frontier import frontier_figure

            written = [frontier_figure(folder / "frontier.csv", Path(target.in_place()) / "frontier.png")]
        else:
            written = plots.plot_folder(folder, target.in_place())
    where = written[0].parent if written else folder
    print(f"wrote {len(written)} plot{'s' * (len(written) != 1)} to {where}/ (PNG and PDF): {', '.join(p.stem for p in written)}")
    return 0


COMMANDS = {"run": _cmd_run, "sweep": _cmd_sweep, "tradeoff": _cmd_tradeoff, "frontier": _cmd_frontier,
            "stitch": _cmd_stitch,
            "validate": _cmd_validate, "schema": _cmd_schema, "plot": _cmd_plot}


GLOBAL_FLAGS = ("--debug", "--quiet")
"""Flags accepted anywhere on the command line, before or after the subcommand."""


def _split_global(argv: list[str]) -> tuple[list[str], set[str]]:
    """``argv`` without the :data:`GLOBAL_FLAGS` (up to a ``--``), and the flags that were there."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = {a for a in argv[:end] if a in GLOBAL_FLAGS}
    return [a for i, a in enumerate(argv) if i >= end or a not in GLOBAL_FLAGS], flags


def main(argv: Sequence[str] | None = None) -> int:
    argv, flags = _split_global(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in flags
    try:
        args = _build_parser().parse_args(argv)
        args.debug, args.quiet = debug, "--quiet" in flags
        return COMMANDS[args.command](args)
    except ScenarioError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 1
        if debug:
            traceback.print_exc()
            return 1
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", file=sys.stderr)
        return 1
