"""The registry of encoder families: ``arch`` → config model, and the scenario's discriminated union."""

from __future__ import annotations

import typing
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from simulator.latent.encoders.base import EncoderSpec

FAMILIES: dict[str, type[EncoderSpec]] = {}
"""Every registered family's config model, keyed by its ``arch``."""


def register(spec: type[EncoderSpec]) -> type[EncoderSpec]:
    """Class decorator: register a family by the single value of its ``arch: Literal[...]`` field."""
    (arch,) = typing.get_args(spec.model_fields["arch"].annotation)
    if arch in FAMILIES and FAMILIES[arch] is not spec:
        raise ValueError(f"encoder family {arch!r} is registered twice")
    FAMILIES[arch] = spec
    return spec


def _arch(value: Any) -> str | None:
    return value.get("arch") if isinstance(value, dict) else getattr(value, "arch", None)


def spec_union() -> Any:
    """The type of one ``encoders:`` entry: a union of the registered families, chosen by ``arch``."""
    members = tuple(Annotated[spec, Tag(arch)] for arch, spec in FAMILIES.items())
    return Annotated[Union[members], Discriminator(_arch)]  # type: ignore[valid-type]


__all__ = ["FAMILIES", "register", "spec_union"]
