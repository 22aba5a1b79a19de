"""Place-holder backlogs of the drift-plus-penalty queues: ``auto`` resolved by a cached pilot run.

The virtual queues settle near ``Z ≈ V λ*`` and ``Y ≈ V η*`` (λ*, η* the optimal multipliers of
the delay and accuracy constraints); from empty queues that takes O(V/μ) slots, longer than a
run at large V. As in Neely's place-holder backlogs and the learning-aided drift-plus-penalty of
Huang and Neely, the queues may start at ``V λ̂`` and ``V η̂`` instead, with (λ̂, η̂) *learned on
another channel realization*: the offline bound's multipliers on a pilot run of the same
scenario with seed + 1. The steady state does not depend on the start; only the transient
shrinks.

``controller.delay_queue_per_v`` / ``accuracy_queue_per_v``:

* a number — used as given (a user's own estimate; 0 starts from empty queues);
* ``auto`` (the default) — from a pilot when ``V ≥ controller.placeholder_from_v``, else 0.

The multipliers depend on the trained zoo (through Ĝ, which differs from machine to machine:
encoders trained from the same seeds differ with threads and BLAS) and on the scenario, never
on V (the bound is computed on the channel trace, whatever the controller decides), so the
pilot's result is cached in ``$RELCOMM_HOME/cache/pilots`` under a key made of the scenario
without its V-related controller fields and of a digest of Ĝ itself: one pilot serves every V
of a sweep, and a retrained zoo gets a new one. Concurrent runs wait for one pilot (a lock in
the cache folder) instead of each running their own.

The pilot runs ``controller.pilot_slots`` slots (default 4 × ``simulation.slots``): λ̂ is an
average over the pilot's trace, and a longer pilot leaves less of its sampling noise in it.
Several transmitters share one number each (the mean of their multipliers).

One pilot for many target pairs (:func:`shared_pilot`, used by ``relcomm frontier``): the
pilot's channel, faults and arrivals come from the seed tree (seed + 1) whatever its controller
decides, and the bound's options, Ĝ and physical parameters do not depend on the targets, so
the pilots of one scenario at several (delay, accuracy) targets all see one trace and differ
only in the bound's L_max and A_min: one pilot run, and the bound on its trace at each pair,
give each pair the numbers its own pilot would (bit for bit: the same recorded trace, the same
:meth:`~simulator.control.policy.PolicyController.offline_bound`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from simulator.config import Scenario, parse_scenario, scenario_to_dict
from simulator.control.tables import accuracy_margin
from simulator.errors import ScenarioError
from simulator.latent.cache import cache_key, check_tensors
from simulator.latent.zoo import Zoo
from simulator.network.world import World

Log = Callable[[str], None]
Run = Callable[..., dict]
"""``run(scenario, out_dir, zoo=zoo)`` → summary: the runner's :func:`~simulator.experiment.runner.run_scenario`."""
PER_V = ("delay_queue_per_v", "accuracy_queue_per_v")
V_FIELDS = ("v", "v_sweep", "mu", "nu", "initial_delay_queue", "initial_accuracy_queue", *PER_V,
            "placeholder_from_v", "relearn")
"""Controller fields that do not change the pilot's multipliers (left out of its cache key): the bound
depends on the trace, the options and the targets, not on how the queues move."""


INFEASIBLE = "the pilot run's offline bound is infeasible: the targets cannot be met on its trace"


def placeholders(status: str, delay_multiplier: Any, accuracy_multiplier: Any) -> tuple[float, float] | None:
    """(λ̂, η̂) from a pilot's offline bound (its status and per-transmitter multipliers): their means;
    None when the bound is infeasible."""
    if status == "infeasible":
        return None
    return float(np.mean(delay_multiplier)), float(np.mean(accuracy_multiplier))


def wants_pilot(scenario: Scenario) -> bool:
    """Whether ``scenario``'s place-holders are ``auto`` at a V where a pilot is used (module docstring)."""
    cfg, sim = scenario.controller, scenario.simulation
    return (bool(getattr(cfg, "pilot_wanted", False)) and sim.delay_target_s is not None
            and sim.accuracy_target is not None)


def pilot_scenario(scenario: Scenario, slots: int | None = None, margin: float | None = None) -> Scenario:
    """The pilot of ``scenario``: seed + 1, ``slots`` long, empty queues, no pilot of its own, one run.

    ``margin``: the run's resolved ``accuracy_margin``, so that an ``auto`` margin (which shrinks
    with the window) gives the pilot the run's own A_min, not the longer pilot's.
    """
    data = scenario_to_dict(scenario)
    ctl = data["controller"]
    if margin is not None:
        ctl["accuracy_margin"] = margin
    data["simulation"]["slots"] = slots or ctl.get("pilot_slots") or 4 * scenario.simulation.slots
    # The bound does not depend on V; a fixed V keeps the pilot (and its cache entry) one per scenario.
    ctl.update(initial_delay_queue=0.0, initial_accuracy_queue=0.0, delay_queue_per_v=0.0,
               accuracy_queue_per_v=0.0, v=ctl["placeholder_from_v"], v_sweep=[], relearn=False)
    data["seed"] = scenario.seed + 1
    data.pop("sweep", None)
    data["outputs"] = {**data.get("outputs", {}), "plots": False}
    return parse_scenario(data)


def _calibration_digest(calibration: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for row in calibration:
        h.update(repr(row).encode())
    return h.hexdigest()


def pilot_key(pilot: Scenario, calibration: Sequence[Any]) -> str:
    """Cache key of a pilot: its scenario without V-related fields, and a digest of Ĝ."""
    data = scenario_to_dict(pilot)
    for name in ("name", "outputs", "sweep", "frontier"):
        data.pop(name, None)
    for name in V_FIELDS:
        data["controller"].pop(name, None)
    return cache_key({"kind": "pilot", "scenario": data, "calibration": _calibration_digest(calibration)})


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive, blocking ``flock`` on ``path`` (a file in relcomm's own cache folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def pilot_multipliers(scenario: Scenario, zoo: Zoo, calibration: Sequence[Any], run: Run,
                      log: Log = lambda _m: None, slots: int | None = None) -> tuple[float, float, bool]:
    """(λ̂, η̂, from_cache): the offline bound's multipliers on the pilot of ``scenario`` (module docstring).

    ``run`` simulates the pilot (the runner passes its own ``run_scenario``). Raises
    :class:`ScenarioError` when the pilot's bound is infeasible (the targets cannot be met on its
    trace).
    """
    pilot = pilot_scenario(scenario, slots, accuracy_margin(scenario, calibration))
    key = pilot_key(pilot, calibration)
    cache = zoo.cache
    shapes = {"multipliers": ((2,), torch.float64)}
    with _locked(cache.path("pilots", key).with_suffix(".lock")):
        stored = cache.load("pilots", key, "pilot multipliers", lambda p: check_tensors(p, shapes))
        if stored is not None:
            lam, eta = stored["multipliers"].tolist()
            return lam, eta, True
        log(f"pilot run (seed {pilot.seed}, {pilot.simulation.slots} slots) for the place-holder backlogs")
        with tempfile.TemporaryDirectory(prefix="relcomm-pilot-") as tmp:
            summary = run(pilot, Path(tmp) / "pilot", zoo=zoo)
        bound = summary.get("offline_bound") or {"status": "infeasible"}
        learned = placeholders(bound["status"], bound.get("delay_multiplier"), bound.get("accuracy_multiplier"))
        if learned is None:
            raise ScenarioError(INFEASIBLE, path="simulation")
        lam, eta = learned
        cache.save("pilots", key, {"multipliers": torch.tensor([lam, eta], dtype=torch.float64)})
    return lam, eta, False


def shared_pilot(scenarios: Sequence[Scenario], zoo: Zoo, calibration: Sequence[Any],
                 log: Log = lambda _m: None) -> list[tuple[float, float] | None]:
    """(λ̂, η̂) of each of ``scenarios`` (one scenario at several targets) from one pilot run (module docstring).

    The numbers :func:`pilot_multipliers` gives each (without its cache); None where the pilot's
    bound is infeasible at that scenario's targets. Raises ``ValueError`` when the pilots differ
    in more than their targets and accuracy margins.
    """
    if not scenarios:
        return []
    margins = [accuracy_margin(s, calibration) for s in scenarios]
    pilots = [pilot_scenario(s, margin=m) for s, m in zip(scenarios, margins)]

    def untargeted(pilot: Scenario) -> dict:
        data = scenario_to_dict(pilot)
        data["simulation"].pop("delay_target_s")
        data["simulation"].pop("accuracy_target")
        data["controller"].pop("accuracy_margin")
        return data

    first = untargeted(pilots[0])
    if any(untargeted(p) != first for p in pilots[1:]):
        raise ValueError("one pilot serves scenarios that differ only in their targets")
    pilot = pilots[0]
    log(f"pilot run (seed {pilot.seed}, {pilot.simulation.slots} slots) for the place-holder backlogs of "
        f"{len(pilots)} target pairs")
    world = World(pilot, zoo, calibration)
    with tempfile.TemporaryDirectory(prefix="relcomm-pilot-") as tmp:
        world.run(Path(tmp) / "pilot")
    out = []
    for p, margin in zip(pilots, margins):
        # the targets as a pilot's controller forms them: L_max and accuracy_target + its margin
        bound = world.controller.offline_bound(p.simulation.delay_target_s, p.simulation.accuracy_target + margin)
        out.append(placeholders(bound.status, bound.delay_multiplier, bound.accuracy_multiplier))
    return out


def resolve_placeholders(scenario: Scenario, zoo: Zoo, calibration: Sequence[Any] | None, run: Run,
                         log: Log = lambda _m: None) -> tuple[Scenario, dict[str, Any] | None]:
    """``scenario`` with ``auto`` place-holders replaced by numbers, and a record for ``summary.json``.

    The record: ``source`` (``scenario``, ``pilot``, ``cached pilot`` or ``none below
    placeholder_from_v``), the two values per unit V and, from a pilot, its seed and slots.
    None for controllers without place-holders.
    """
    cfg = scenario.controller
    if not all(hasattr(cfg, f) for f in PER_V):
        return scenario, None
    values = {f: getattr(cfg, f) for f in PER_V}
    record: dict[str, Any] = {"source": "scenario"}
    if "auto" in values.values():
        if wants_pilot(scenario):
            lam, eta, cached = pilot_multipliers(scenario, zoo, calibration or [], run, log)
            pilot = pilot_scenario(scenario)
            record = {"source": "cached pilot" if cached else "pilot", "pilot_seed": pilot.seed,
                      "pilot_slots": pilot.simulation.slots}
            learned = {"delay_queue_per_v": lam, "accuracy_queue_per_v": eta}
        else:
            record = {"source": "none below placeholder_from_v"}
            learned = dict.fromkeys(PER_V, 0.0)
        values = {f: learned[f] if v == "auto" else v for f, v in values.items()}
        data = scenario_to_dict(scenario)
        data["controller"].update(values)
        scenario = parse_scenario(data)
    record.update(values)
    return scenario, record


__all__ = ["resolve_placeholders", "pilot_multipliers", "pilot_scenario", "pilot_key", "wants_pilot", "shared_pilot",
           "placeholders", "INFEASIBLE"]
