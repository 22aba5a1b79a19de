"""`relcomm` command line: parse, call, print. Exit 0 ok, 2 invalid input, 1 internal error."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from simulator import __version__
from simulator.errors import ScenarioError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other input error
        raise ScenarioError(message, path="command line")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="relcomm", description="Semantic-communication network simulator.")
    parser.add_argument("--version", action="version", version=f"relcomm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("stitch", help="alignment-under-mismatch matrix of a scenario's encoders")
    p.add_argument("scenario", type=Path)
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<name>-stitch)")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("run", help="simulate a network scenario into a results folder")
    p.add_argument("scenario", type=Path)
    p.add_argument("--out", type=Path, default=None, help="results folder (default results/<name>)")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("validate", help="check a scenario file without running it")
    p.add_argument("scenario", type=Path)

    sub.add_parser("schema", help="print the scenario JSON Schema")
    return parser


def _log(quiet: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)
    return log


def _cmd_stitch(args: argparse.Namespace) -> int:
    from simulator.config import load_scenario
    from simulator.experiment.stitch import run_stitch

    scenario = load_scenario(args.scenario)
    out = args.out or Path("results") / f"{scenario.name}-stitch"
    summary = run_stitch(scenario, out, _log(args.quiet))
    print(f"wrote {out}/stitching.csv and {out}/plots/ in {summary['wall_s']:.1f} s")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from simulator.config import load_scenario
    from simulator.experiment.runner import run_scenario

    scenario = load_scenario(args.scenario)
    out = args.out or Path("results") / scenario.name
    s = run_scenario(scenario, out, _log(args.quiet))
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
    delay = "n/a" if s["mean_delay_s"] is None else f"{s['mean_delay_s'] * 1e3:.2f} ms"
    print(f"wrote {out}: {s['tasks_delivered']}/{s['tasks_arrived']} tasks delivered, accuracy {acc}, "
          f"mean delay {delay}, {s['avg_power_w']:.4g} W in {s['wall_s']:.1f} s")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from simulator.config import load_scenario

    scenario = load_scenario(args.scenario)
    print(f"{args.scenario}: valid scenario {scenario.name!r} ({len(scenario.encoders)} encoders)")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from simulator.config import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))
    return 0


COMMANDS = {"run": _cmd_run, "stitch": _cmd_stitch, "validate": _cmd_validate, "schema": _cmd_schema}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = _build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except ScenarioError as exc:
        if debug:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 1
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", file=sys.stderr)
        return 1
