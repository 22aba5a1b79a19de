"""The registry is the one list of controller kinds: the scenario's union, its errors and the factories follow it."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from simulator.config import Scenario
from simulator.control.interface import Decision
from simulator.control.registry import DEFAULT_KIND, KINDS
from simulator.errors import ScenarioError

from .conftest import build, controller_scenario, drive, gain_trace

EXTRA = {"offline-multipliers": {"delay_multiplier": 0.01, "accuracy_multiplier": 1e-6},
         "static": {"anchors": 32, "bits": 8},
         "lyapunov": {"delay_queue_per_v": 0.0, "accuracy_queue_per_v": 0.0}}  # no pilot without a runner
"""Settings a kind cannot do without (its required fields), or that the synthetic network needs."""


def _union_tags() -> dict[str, type]:
    """Tag → model of the ``controller:`` union of the scenario schema."""
    union = Scenario.model_fields["controller"].annotation  # pydantic keeps the Discriminator in the metadata
    return {typing.get_args(member)[1].tag: typing.get_args(member)[0] for member in typing.get_args(union)}


def test_the_registrys_kinds_are_the_scenarios_controller_union():
    tags = _union_tags()
    assert list(tags) == list(KINDS)
    for kind, entry in KINDS.items():
        assert tags[kind] is entry.settings
        assert typing.get_args(entry.settings.model_fields["kind"].annotation) == (kind,)
    # `relcomm schema` offers each kind once and names them all
    schema = Scenario.model_json_schema()["properties"]["controller"]
    assert len(schema["oneOf"]) == len(KINDS) and schema["description"].endswith(", ".join(KINDS))


def test_every_kind_parses_builds_and_decides(calibration):
    gains = gain_trace(3)
    for kind, entry in KINDS.items():
        sc = controller_scenario({"kind": kind, **EXTRA.get(kind, {})})
        assert isinstance(sc.controller, entry.settings)
        ctl, spec = build(sc, calibration)
        decisions = []
        drive(ctl, spec, gains, lambda s, d: decisions.append(d))
        assert all(isinstance(d, Decision) and d.encoder.shape == (2,) for d in decisions), kind
        assert all(np.all(np.isin(d.anchors, sc.controller.anchor_options())) for d in decisions), kind


def test_a_section_without_kind_is_the_default_kind():
    sc = controller_scenario({"anchors": 32, "bits": 8})
    assert sc.controller.kind == DEFAULT_KIND


def test_an_unknown_kind_names_every_registered_one():
    with pytest.raises(ScenarioError) as info:
        controller_scenario({"kind": "nope"})
    assert info.value.path == "controller.kind"
    assert f"(known: {', '.join(KINDS)})" in str(info.value)


def test_a_kind_that_plans_with_calibration_refuses_to_build_without_it(calibration):
    sc = controller_scenario({"kind": "greedy"})
    assert sc.controller.needs_calibration
    with pytest.raises(ValueError, match="calibration"):
        build(sc, None)
