"""The registry of controller kinds: ``kind`` → settings model and factory, and the scenario's union."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, Sequence, Union

from pydantic import Discriminator, Tag

from simulator.control.interface import Controller, ControllerSettings, NetworkSpec

if TYPE_CHECKING:
    from simulator.config import Scenario

Factory = Callable[["Scenario", NetworkSpec, "Sequence[Any] | None"], Controller]
"""``factory(scenario, spec, calibration) → controller``; ``calibration`` holds the Ĝ rows
(:func:`simulator.experiment.calibration.calibration_rows`) or None when the kind needs none."""


@dataclass(frozen=True)
class ControllerKind:
    """One registered kind: its ``controller:`` settings model and the factory that builds it."""

    settings: type[ControllerSettings]
    factory: Factory


KINDS: dict[str, ControllerKind] = {}
"""Every registered kind, keyed by ``controller.kind``, in registration order."""

DEFAULT_KIND = "static"
"""The kind of a ``controller:`` section that names none."""


def register(settings: type[ControllerSettings]) -> Callable[[Factory], Factory]:
    """Decorator of a kind's factory (a class or function); the kind is the single value of ``settings.kind``."""
    (kind,) = typing.get_args(settings.model_fields["kind"].annotation)

    def decorate(factory: Factory) -> Factory:
        if kind in KINDS and KINDS[kind].settings is not settings:
            raise ValueError(f"controller kind {kind!r} is registered twice")
        KINDS[kind] = ControllerKind(settings, factory)
        return factory
    return decorate


def _kind(value: Any) -> str:
    kind = value.get("kind", DEFAULT_KIND) if isinstance(value, dict) else getattr(value, "kind", DEFAULT_KIND)
    return kind if isinstance(kind, str) else repr(kind)


def settings_union() -> Any:
    """The type of the ``controller:`` section: a union of the registered kinds, chosen by ``kind``."""
    members = tuple(Annotated[entry.settings, Tag(kind)] for kind, entry in KINDS.items())
    return Annotated[Union[members], Discriminator(_kind)]  # type: ignore[valid-type]


def build_controller(scenario: Scenario, spec: NetworkSpec, calibration: Sequence[Any] | None = None) -> Controller:
    """The controller the scenario's ``controller.kind`` names.

    ``calibration``: the Ĝ rows (:func:`simulator.experiment.calibration.calibration_rows`),
    needed by every kind whose settings say ``needs_calibration``.
    """
    settings = scenario.controller
    if settings.needs_calibration and calibration is None:
        raise ValueError(f"controller.kind {settings.kind} needs the calibration table (calibration rows)")
    return KINDS[settings.kind].factory(scenario, spec, calibration)


def anchor_options(scenario: Scenario) -> tuple[int, ...]:
    """Every K the scenario's controller may choose (the world prepares a head for each)."""
    return scenario.controller.anchor_options()


__all__ = ["ControllerKind", "KINDS", "DEFAULT_KIND", "register", "settings_union", "build_controller",
           "anchor_options"]
