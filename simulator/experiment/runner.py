"""`relcomm run`: one network scenario → one results directory (DESIGN §4).

The directory holds ``scenario.yaml`` (resolved, with seed and version), ``slots.csv``,
``tasks.csv`` and ``summary.json``. Everything is written into a hidden staging folder beside
the target and swapped into place at the end, so a directory that exists is complete;
``summary.json`` is the last file written into it.

``wall_s`` in ``summary.json`` is the wall time of the simulation itself (the event loop and the
outcome batches; not building or loading the encoder zoo). It is the only field that differs
between two runs of the same scenario and seed: compare summaries with
:func:`comparable_summary`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from simulator import __version__
from simulator.config import Scenario, scenario_to_dict
from simulator.experiment.stitch import publish_dir
from simulator.latent.zoo import Zoo
from simulator.network.world import RunCounts, World
from simulator.results import write_json, write_yaml

NONDETERMINISTIC_KEYS = ("wall_s",)


class ConservationError(RuntimeError):
    """Tasks were lost or invented: arrived ≠ delivered + dropped + pending."""


def check_conservation(counts: RunCounts) -> None:
    """Raise :class:`ConservationError` unless ``arrived = delivered + dropped + pending``."""
    if counts.arrived != counts.delivered + counts.dropped + counts.pending:
        raise ConservationError(f"task conservation violated: arrived {counts.arrived} != delivered "
                                f"{counts.delivered} + dropped {counts.dropped} + pending {counts.pending}")


def comparable_summary(summary: dict) -> dict:
    """The summary without the fields that legitimately change between identical runs (``wall_s``)."""
    return {k: v for k, v in summary.items() if k not in NONDETERMINISTIC_KEYS}


def run_scenario(scenario: Scenario, out_dir: Path, log: Callable[[str], None] = lambda _m: None,
                 zoo: Zoo | None = None) -> dict:
    """Build (or reuse) the zoo, simulate the network, and publish the results directory.

    Parameters
    ----------
    scenario : Scenario
    out_dir : Path
        Results directory; replaced as a whole when it exists.
    log : callable
        Progress messages.
    zoo : Zoo, optional
        A zoo built for the same latent sections (tests and benchmarks share one).

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    zoo = zoo if zoo is not None else Zoo.build(scenario, log=log)
    world = World(scenario, zoo)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        write_yaml(staging / "scenario.yaml", {**scenario_to_dict(scenario), "version": __version__})
        log(f"simulating {scenario.simulation.slots} slots of {scenario.simulation.slot_s} s: "
            f"{len(scenario.transmitters)} transmitters, {len(scenario.receivers)} receivers")
        t0 = time.perf_counter()
        summary = world.run(staging, log)
        wall = time.perf_counter() - t0
        counts = summary.pop("counts")
        check_conservation(counts)
        summary["wall_s"] = wall
        write_json(staging / "summary.json", summary)
        publish_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


__all__ = ["run_scenario", "check_conservation", "comparable_summary", "ConservationError",
           "NONDETERMINISTIC_KEYS"]
