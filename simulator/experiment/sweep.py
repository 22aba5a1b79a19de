"""`relcomm sweep`: a scenario's grid × zip × seed runs, executed in parallel, resumable, aggregated.

Runs
----
The ``sweep`` section (:class:`~simulator.config.SweepConfig`) names axes — field paths with the
values they take. The runs are the product of the grid axes and of the rows of each zip group
(in the order the file gives them), each repeated for replicates ``0 … seeds−1``. A run is fully
determined by its *resolved scenario*: the file's raw data without ``sweep``, with the run's
axis values set on it (as ``--set`` does, so inherited defaults still follow), validated, and
with ``seed`` replaced by the replicate's own seed

    seed(r) = SeedTree(point_seed).child("sweep", r).integer()

(``point_seed``: the scenario's ``seed``). Replicate r gets the same seed at every grid point —
common random numbers: the points of a trade-off curve see the same channel and traffic
realisations, so their differences are not masked by sampling noise. For example ::

    sweep:
      grid:                       # every combination: 3 × 2 points
        controller.v: [10, 100, 1000]
        simulation.accuracy_target: [0.85, 0.87]
      zip:                        # these two advance together: 2 rows
        - channel.link.distance_m: [100, 300]
          transmitters[0].traffic.rate_per_slot: [0.5, 1.0]
      seeds: 3                    # replicates of each of the 12 points: 36 runs

Results folder
--------------
::

    OUT/sweep.yaml           the sweep scenario as given, with the simulator version
    OUT/runs/<key>/          one run folder per run (DESIGN §4), key = hash of its resolved scenario
    OUT/sweep.csv            one row per run: swept values, replicate, seed, run_dir, status, summary
    OUT/sweep_summary.csv    replicate means and 95 % Student-t half-widths per grid point
    OUT/plots/tradeoff.png   energy vs delay and vs accuracy with error bars (and .pdf)
    OUT/.relcomm-results.json   the marker of a relcomm results folder (:mod:`simulator.folders`)

Resume and safety
-----------------
A run folder is published whole by the runner (staging folder + rename) and is complete when
``summary.json`` exists; such runs are skipped when the sweep starts again. ``sweep.csv`` and the
aggregate are derived state: rebuilt from the run folders at the start, rewritten atomically as
runs complete (at most once a second) and at the end. A sweep killed at any moment, even by
``kill -9``, therefore restarts with every finished run kept, every unfinished one run again
(its staging folder is removed), and none twice: the key is a function of the resolved
scenario alone. Worker processes that this sweep starts die with it (see
:mod:`~simulator.experiment.executors`), and a lock file beside OUT (``.OUT.lock``, held while the
sweep runs) keeps two writers out of one folder. OUT must be new, empty or a relcomm results
folder; anything else is refused before work.

A run that raises is recorded as failed: ``runs/<key>/failed.json`` holds its error in one line
(and ``scenario.yaml`` beside it to reproduce it), its row says ``failed``, and the sweep goes on.
Failed runs are tried again when the sweep is started again — failures that come from the
machine (memory, a killed worker) go away that way, and a deterministic failure costs one run.

Shared artifacts
----------------
Encoders, latents and receiver heads are content-addressed in ``$RELCOMM_HOME`` and shared by
every run. Before dispatching, the parent builds each distinct zoo the pending runs need (their
``data``, ``encoders``, ``anchors``, ``relative``, ``heads`` and ``device``), the receiver heads
for the anchor counts their controllers may choose, and the calibration table Ĝ when a
controller plans with it (:func:`prepare_shared`), so that N workers do not train the same
encoder at once; workers only load them. Each worker process keeps the zoo of its last run and reuses it
while the next run has the same latent sections (loading a zoo costs seconds; a short run, a
fraction of one).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from simulator import __version__  # noqa: E402
from simulator.config import (Scenario, SweepConfig, load_scenario, parse_scenario, read_yaml,  # noqa: E402
                              scenario_to_dict)
from simulator.control import anchor_options  # noqa: E402
from simulator.errors import ScenarioError  # noqa: E402
from simulator.experiment.calibration import calibration_rows  # noqa: E402
from simulator.experiment.executors import Executor, open_executor  # noqa: E402
from simulator.experiment.runner import run_scenario  # noqa: E402
from simulator.folders import claim, mark, remove_leftovers  # noqa: E402
from simulator.latent.cache import cache_key  # noqa: E402
from simulator.latent.zoo import Zoo  # noqa: E402
from simulator.network.world import ZOO_FIELDS  # noqa: E402
from simulator.overrides import Override, apply_overrides, parse_override, parse_path  # noqa: E402
from simulator.plots import tradeoff_curves  # noqa: E402
from simulator.results import write_csv, write_json, write_yaml  # noqa: E402
from simulator.rng import SeedTree  # noqa: E402

Log = Callable[[str], None]
RUN_COLUMNS = ("run", "replicate", "seed", "run_dir", "status", "error")
CSV_INTERVAL_S = 1.0


# --------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Attributes
    ----------
    index : int
        Position in the sweep (grid order, replicates innermost).
    values : dict
        Axis path → the value this run sets.
    replicate : int
    seed : int
        The run's seed (:func:`replicate_seed`).
    scenario : dict
        The resolved scenario (validated, as plain data, without ``sweep``).
    key : str
        Hash of ``scenario``: the run folder is ``runs/<key>``.
    """

    index: int
    values: dict[str, Any]
    replicate: int
    seed: int
    scenario: dict[str, Any]
    key: str

    @property
    def folder(self) -> str:
        return f"runs/{self.key}"


def replicate_seed(point_seed: int, replicate: int) -> int:
    """The seed of replicate ``replicate``: ``SeedTree(point_seed).child("sweep", replicate).integer()``."""
    return SeedTree(point_seed).child("sweep", replicate).integer()


def run_key(scenario: dict[str, Any]) -> str:
    """The folder name of a run: a hash of its resolved scenario (and nothing else)."""
    return cache_key({"kind": "sweep-run", "scenario": scenario})


def axis_paths(spec: SweepConfig) -> list[str]:
    """The swept paths, grid axes first, then each zip group's, in the file's order."""
    return list(spec.grid) + [path for group in spec.zip for path in group]


def load_sweep(path: str | Path, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], Scenario]:
    """Read and validate a sweep scenario file with ``--set`` overrides (``sweep.seeds=3`` too).

    Returns the raw data (overrides applied) and the validated base scenario.
    """
    scenario = load_scenario(path, overrides)
    data, _ = read_yaml(path)
    if overrides:
        data = apply_overrides(data, [parse_override(text) for text in overrides])
    if scenario.sweep is None:
        raise ScenarioError("no sweep section: nothing to sweep (relcomm run runs a single scenario)",
                            path=str(path))
    return data, scenario


def expand(data: dict[str, Any]) -> list[SweepRun]:
    """Every run of the sweep scenario ``data`` (raw data with a ``sweep`` section), in order.

    Raises
    ------
    ScenarioError
        When a combination of axis values is invalid (each value alone was checked by the
        schema), or when two runs resolve to the same scenario.
    """
    spec = parse_scenario(data).sweep
    if spec is None:
        raise ScenarioError("no sweep section", path="sweep")
    base = {k: v for k, v in data.items() if k != "sweep"}
    axes: list[list[dict[str, Any]]] = [[{path: v} for v in values] for path, values in spec.grid.items()]
    for group in spec.zip:
        columns = list(group.items())
        axes.append([{path: values[i] for path, values in columns} for i in range(len(columns[0][1]))])
    runs: list[SweepRun] = []
    seen: dict[str, SweepRun] = {}
    for combo in itertools.product(*axes):
        values = {path: value for part in combo for path, value in part.items()}
        overrides = [Override(parse_path(path), value, f"{path}={value!r}") for path, value in values.items()]
        try:
            point = parse_scenario(apply_overrides(base, overrides))
        except ScenarioError as exc:
            raise ScenarioError(f"the run with {_describe(values)} is invalid: {exc.one_line()}", path="sweep") from None
        resolved = scenario_to_dict(point)
        for r in range(spec.seeds):
            seed = replicate_seed(point.seed, r)
            scenario = {**resolved, "seed": seed}
            run = SweepRun(len(runs), values, r, seed, scenario, run_key(scenario))
            if run.key in seen:
                raise ScenarioError(f"the runs with {_describe(seen[run.key].values)} and with {_describe(values)} "
                                    "resolve to the same scenario", path="sweep")
            seen[run.key] = run
            runs.append(run)
    return runs


def _cell(value: Any) -> Any:
    """An axis value as a CSV cell: scalars as they are, lists and mappings as compact JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _describe(values: dict[str, Any], width: int = 48) -> str:
    def short(cell: Any) -> str:
        text = str(cell)
        return text if len(text) <= width else text[: width - 1] + "…"

    return ", ".join(f"{path} = {short(_cell(v))}" for path, v in values.items()) or "no axis values"


# --------------------------------------------------------------------------- shared artifacts


def zoo_signature(scenario: Scenario) -> tuple:
    """The sections a zoo is built from: two scenarios with equal signatures share one zoo."""
    return (scenario.device,) + tuple(getattr(scenario, name) for name in ZOO_FIELDS)


def prepare_shared(scenarios: list[Scenario], log: Log) -> int:
    """Build, once, what ``scenarios`` will load from the cache: zoos, receiver heads, Ĝ tables.

    For each distinct zoo: the heads of every receiver for every K its controller may choose
    (:func:`~simulator.control.registry.anchor_options`), and the calibration table when a
    controller plans with it (``needs_calibration``, as the runner does). Returns the
    number of distinct zoos. Whatever is missed here is built by the first run that needs it;
    cache writes are atomic, so two workers building the same artifact only waste time.
    """
    groups: dict[tuple, list[Scenario]] = {}
    for sc in scenarios:
        groups.setdefault(zoo_signature(sc), []).append(sc)
    for members in groups.values():
        zoo = Zoo.build(members[0], log=log)
        heads = sorted({(rx.encoder, k) for sc in members for rx in sc.receivers for k in anchor_options(sc)})
        for encoder_id, k in heads:
            zoo.relative_head(encoder_id, k)
        if any(sc.controller.needs_calibration for sc in members):
            calibration_rows(zoo, log)
    return len(groups)


class _ZooMemo:
    """The zoo of this worker process's last run, kept while the next run has the same signature."""

    def __init__(self) -> None:
        self.signature: tuple | None = None
        self.zoo: Zoo | None = None
        self._lock = threading.Lock()  # a dask worker may run tasks in several threads

    def get(self, scenario: Scenario) -> Zoo:
        signature = zoo_signature(scenario)
        with self._lock:
            if self.zoo is None or signature != self.signature:
                self.zoo = None  # free the old one before building the next
                self.zoo = Zoo.build(scenario, log=lambda _m: None)
                self.signature = signature
            return self.zoo


# Process-local by design: one per worker process, never shared or written across processes.
_WORKER_ZOO = _ZooMemo()


def warm_worker(scenario: dict[str, Any]) -> int:
    """Load the zoo of ``scenario`` into this worker process, as its first run would; return the pid.

    For timing sweeps without the workers' start-up (``client.run(warm_worker, scenario)``).
    """
    import torch

    torch.set_num_threads(1)
    _WORKER_ZOO.get(parse_scenario(scenario))
    return os.getpid()


def execute_run(scenario: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """The job a worker runs: simulate one resolved scenario into ``run_dir``.

    Returns ``{"status": "ok", "wall_s": …}`` or ``{"status": "failed", "error": "<one line>"}``;
    never raises for a failure of the run itself.
    """
    import torch

    torch.set_num_threads(1)  # per calling thread (dask runs tasks in a thread of its own)
    t0 = time.perf_counter()
    try:
        sc = parse_scenario(scenario)
        run_scenario(sc, Path(run_dir), zoo=_WORKER_ZOO.get(sc))
    except Exception as exc:  # noqa: BLE001 - recorded in failed.json, the sweep goes on
        return {"status": "failed", "error": _one_line(exc), "wall_s": time.perf_counter() - t0}
    return {"status": "ok", "wall_s": time.perf_counter() - t0}


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


# --------------------------------------------------------------------------- state on disk


def run_state(run_dir: Path) -> tuple[str, dict[str, Any] | None]:
    """``("ok", summary)``, ``("failed", failed.json)`` or ``("pending", None)`` from the folder."""
    summary = run_dir / "summary.json"
    if summary.exists():
        try:
            return "ok", json.loads(summary.read_text())
        except (OSError, ValueError):
            return "pending", None  # unreadable: run it again (publication replaces the folder)
    failed = run_dir / "failed.json"
    if failed.exists():
        try:
            return "failed", json.loads(failed.read_text())
        except (OSError, ValueError):
            return "failed", {"error": "failed.json is unreadable"}
    return "pending", None


def record_failure(run: SweepRun, run_dir: Path, error: str) -> None:
    """Write ``failed.json`` (and the resolved ``scenario.yaml``) unless the run did complete."""
    if (run_dir / "summary.json").exists():
        return
    mark(run_dir, "run")  # a later attempt may replace it
    write_yaml(run_dir / "scenario.yaml", {**run.scenario, "version": __version__})
    write_json(run_dir / "failed.json", {"error": " ".join(error.split()), "run": run.index, "seed": run.seed,
                                         "values": {p: _cell(v) for p, v in run.values.items()},
                                         "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def run_row(run: SweepRun, status: str, record: dict[str, Any] | None) -> dict[str, Any]:
    """The ``sweep.csv`` row of a run: ids, swept values, status, and the summary's scalar fields.

    Fields of the summary's sections (``settled``, ``controller_stats``, ``offline_bound``) come one
    level down as ``section.field``; lists and deeper sections (``per_agent``) are left out.
    """
    row: dict[str, Any] = {"run": run.index, **{p: _cell(v) for p, v in run.values.items()},
                           "replicate": run.replicate, "seed": run.seed, "run_dir": run.folder,
                           "status": status, "error": (record or {}).get("error") if status == "failed" else None}
    if status == "ok" and record:
        for key, value in record.items():
            if isinstance(value, dict):  # one level down, as "section.field" (settled, controller_stats, …)
                row.update({f"{key}.{k}": v for k, v in value.items() if _is_scalar(v)})
            elif key not in row and _is_scalar(value):
                row[key] = value
    return row


def _columns(axes: list[str], rows: list[dict[str, Any]]) -> list[str]:
    fixed = ["run", *axes, *RUN_COLUMNS[1:]]
    extra = dict.fromkeys(k for row in rows for k in row if k not in fixed)
    return fixed + list(extra)


def write_sweep_csv(path: Path, axes: list[str], rows: list[dict[str, Any]]) -> Path:
    """``sweep.csv``: one row per run, in run order (written atomically)."""
    return write_csv(path, _columns(axes, rows), rows)


def aggregate(axes: list[str], rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Replicate means with 95 % confidence intervals, one row per grid point.

    For each numeric summary field m (booleans count as 0/1): ``m_mean`` over the point's
    completed runs where m is defined, and ``m_ci95`` = t₀.₉₇₅,ₙ₋₁ · s / √n (Student t with
    n − 1 degrees of freedom, s the sample standard deviation), the half-width of the
    interval; empty when n = 1.

    Returns
    -------
    columns, rows
    """
    fixed = set(axes) | set(RUN_COLUMNS)
    metrics = list(dict.fromkeys(k for row in rows if row["status"] == "ok" for k, v in row.items()
                                 if k not in fixed and isinstance(v, (bool, int, float))))
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[a] for a in axes)].append(row)
    out = []
    for point, members in groups.items():
        ok = [r for r in members if r["status"] == "ok"]
        agg: dict[str, Any] = {**dict(zip(axes, point)), "runs": len(members), "ok": len(ok),
                               "failed": sum(r["status"] == "failed" for r in members)}
        for m in metrics:
            values = np.array([float(r[m]) for r in ok if isinstance(r.get(m), (bool, int, float))])
            agg[f"{m}_mean"], agg[f"{m}_ci95"] = mean_ci95(values)
        out.append(agg)
    columns = [*axes, "runs", "ok", "failed"] + [f"{m}_{s}" for m in metrics for s in ("mean", "ci95")]
    return columns, out


def mean_ci95(values: np.ndarray) -> tuple[float | None, float | None]:
    """(mean, half-width of the 95 % Student-t interval); ``None`` for what n cannot give."""
    n = len(values)
    if n == 0:
        return None, None
    mean = float(values.mean())
    if n == 1:
        return mean, None
    return mean, float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepReport:
    """What one invocation of :func:`run_sweep` did."""

    out_dir: Path
    runs: int
    skipped: int
    completed: int
    failed: int
    wall_s: float
    executor: str
    run_s: float = 0.0
    """Seconds from the first dispatch to the last outcome (no preparation, start-up or tables)."""

    def line(self) -> str:
        return (f"{self.runs} runs: {self.skipped} already done, {self.completed} completed now, "
                f"{self.failed} failed, in {self.wall_s:.1f} s ({self.executor})")


def _clean_stale(out_dir: Path) -> None:
    """Remove what a killed sweep left half-written: its runs' staging folders and temporary files.

    Called with the sweep folder locked; only marked or empty staging folders and relcomm's own
    temporary files (``.NAME.*.tmp`` of :func:`~simulator.results.atomic_write_bytes`) go.
    """
    runs = out_dir / "runs"
    remove_leftovers(runs)
    for path in list(out_dir.glob(".*.tmp")) + list(runs.glob("*/.*.tmp")):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def write_outputs(out_dir: Path, axes: list[str], rows: list[dict[str, Any]]) -> None:
    """``sweep.csv``, ``sweep_summary.csv`` and the trade-off plot, from the rows."""
    write_sweep_csv(out_dir / "sweep.csv", axes, rows)
    columns, agg = aggregate(axes, rows)
    write_csv(out_dir / "sweep_summary.csv", columns, agg)
    if any(r["status"] == "ok" for r in rows):
        tradeoff_curves(out_dir / "sweep_summary.csv", out_dir / "plots" / "tradeoff.png")


def run_sweep(data: dict[str, Any], out_dir: Path, executor: Executor | str = "local", workers: int | None = None,
              scheduler: str | None = None, log: Log = lambda _m: None) -> SweepReport:
    """Run every pending run of the sweep scenario ``data`` into ``out_dir``; resume what exists.

    Parameters
    ----------
    data : dict
        Raw scenario data with a ``sweep`` section (:func:`load_sweep`).
    out_dir : Path
    executor : {"local", "dask"} or Executor
        A name (the executor is started and stopped here, only if a run is pending) or an
        executor already entered (kept running, e.g. to reuse warm workers).
    workers, scheduler
        For a named executor: worker processes; dask scheduler address.
    log : callable
        Progress messages.
    """
    t0 = time.perf_counter()
    runs = expand(data)
    axes = axis_paths(parse_scenario(data).sweep)
    owned = isinstance(executor, str)
    ex = open_executor(executor, workers, scheduler) if owned else executor  # checks the flags now
    with claim(out_dir, "sweep") as target:  # checked and locked before any work
        out_dir = target.in_place()
        _clean_stale(out_dir)
        write_yaml(out_dir / "sweep.yaml", {**data, "version": __version__})
        rows, todo = [], []
        for run in runs:
            status, record = run_state(out_dir / run.folder)
            rows.append(run_row(run, status, record))
            if status != "ok":
                todo.append(run)
        foreign = ({p.name for p in (out_dir / "runs").iterdir() if not p.name.startswith(".")} - {r.key for r in runs}
                   if (out_dir / "runs").exists() else set())  # hidden: locks and staging, not runs
        if foreign:
            log(f"{len(foreign)} run folders in {out_dir / 'runs'} are not runs of this sweep (left alone)")
        skipped = len(runs) - len(todo)
        seeds = parse_scenario(data).sweep.seeds
        log(f"sweep of {len(runs)} runs ({len(runs) // seeds} points × {seeds} seeds): "
            f"{skipped} already done, {len(todo)} to run")
        write_sweep_csv(out_dir / "sweep.csv", axes, rows)
        completed = failed = 0
        run_s = 0.0
        if todo:
            n_zoos = prepare_shared([parse_scenario(r.scenario) for r in todo], log)
            log(f"shared artifacts ready ({n_zoos} zoo{'s' * (n_zoos != 1)}); dispatching {len(todo)} runs")
            by_key = {r.key: r for r in todo}
            jobs = [(r.key, execute_run, (r.scenario, str(out_dir / r.folder))) for r in todo]
            if owned:
                ex.__enter__()
            try:
                last_write = t_dispatch = time.monotonic()
                for key, outcome in ex.run(jobs):
                    run = by_key[key]
                    run_dir = out_dir / run.folder
                    if isinstance(outcome, BaseException):
                        outcome = {"status": "failed", "error": f"the worker failed: {_one_line(outcome)}"}
                    if outcome["status"] != "ok":
                        record_failure(run, run_dir, outcome["error"])
                    status, record = run_state(run_dir)
                    rows[run.index] = run_row(run, status, record)
                    completed += status == "ok"
                    failed += status != "ok"
                    log(f"[{completed + failed}/{len(todo)}] {run.folder} {status}: {_describe(run.values)}, "
                        f"replicate {run.replicate}" + (f" — {record.get('error')}" if status == "failed" else ""))
                    run_s = time.monotonic() - t_dispatch
                    if time.monotonic() - last_write >= CSV_INTERVAL_S:
                        write_sweep_csv(out_dir / "sweep.csv", axes, rows)
                        last_write = time.monotonic()
            finally:
                if owned:
                    ex.__exit__(None, None, None)
        # The final tables come from the folders alone, like a fresh start would see them.
        rows = [run_row(run, *run_state(out_dir / run.folder)) for run in runs]
        write_outputs(out_dir, axes, rows)
    return SweepReport(out_dir, len(runs), skipped, completed, failed, time.perf_counter() - t0, ex.description, run_s)


__all__ = ["SweepRun", "SweepReport", "expand", "load_sweep", "run_sweep", "execute_run", "warm_worker", "replicate_seed",
           "run_key", "axis_paths", "run_state", "run_row", "aggregate", "mean_ci95",
           "prepare_shared", "zoo_signature", "write_outputs", "write_sweep_csv"]
