"""Command-line overrides (``--set key.path=value``) applied to a scenario's raw data before validation.

Plain data in, plain data out: :func:`simulator.config.load_scenario` applies them and validates.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Sequence

from simulator import yamlio
from simulator.errors import ScenarioError, quoted

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|(\d+)")
# PyYAML (YAML 1.1) reads ``1e4`` as a string; on the command line it is surely a number.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def format_path(loc: tuple[str | int, ...]) -> str:
    """``('transmitters', 0, 'cpu')`` → ``transmitters[0].cpu``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Override:
    """One ``--set``: the field path (keys and list indices), the parsed value, and the text as typed."""

    loc: tuple[str | int, ...]
    value: Any
    text: str

    @property
    def path(self) -> str:
        return format_path(self.loc)


def parse_path(path: str) -> tuple[str | int, ...]:
    """``transmitters[0].cpu.f_max_hz`` or ``transmitters.0.cpu.f_max_hz`` → ``('transmitters', 0, 'cpu', 'f_max_hz')``."""
    loc: list[str | int] = []
    for part in path.split("."):
        pos, items = 0, []
        while pos < len(part):
            m = _SEGMENT.match(part, pos)
            if m is None or (m.group(1) is not None and pos > 0):
                raise ScenarioError(f"malformed field path {quoted(path)} (expected keys and indices like "
                                    "transmitters[0].cpu.f_max_hz)", path="--set")
            items.append(m.group(1) if m.group(1) is not None else int(m.group(2) or m.group(3)))
            pos = m.end()
        if not items:
            raise ScenarioError(f"malformed field path {quoted(path)} (empty key)", path="--set")
        loc.extend(items)
    if not isinstance(loc[0], str):
        raise ScenarioError(f"malformed field path {quoted(path)} (it must start with a key)", path="--set")
    return tuple(loc)


def parse_override(text: str) -> Override:
    """Parse ``KEY.PATH=VALUE``; the value is read as YAML (``8``, ``1.5e6``, ``[8, 16]``, ``{kind: static}``, ``null``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ScenarioError(f"expected KEY.PATH=VALUE, got {quoted(text)}", path="--set")
    loc = parse_path(key.strip())
    raw = raw.strip()
    if _NUMBER.fullmatch(raw):
        value: Any = float(raw)
    else:
        try:
            value = yamlio.load(raw, "--set")[0]
        except ScenarioError as exc:
            raise ScenarioError(f"invalid YAML value {quoted(raw)}: {exc.message.removeprefix('invalid YAML: ')}",
                                path=f"--set {format_path(loc)}") from None
    return Override(loc, value, text)


def apply_overrides(data: dict[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """A copy of ``data`` with every override set; missing mappings on the way are created.

    A key the scenario does not know is left for validation to reject (it knows every field,
    defaults included); here only paths that cannot be followed at all are errors: an index into
    something that is not a list, or past its end, or a key below a plain value.
    """
    out = copy.deepcopy(data)
    for ov in overrides:
        node: Any = out
        for depth, part in enumerate(ov.loc):
            where = format_path(ov.loc[:depth]) or "scenario"
            last = depth == len(ov.loc) - 1
            if isinstance(part, int):
                if not isinstance(node, list):
                    raise ScenarioError(f"{where} is not a list in the scenario file, so [{part}] cannot be "
                                        f"set (set the whole list: {where}=[...])", path=ov.path)
                if part >= len(node):
                    raise ScenarioError(f"index {part} is out of range: {where} has {len(node)} "
                                        f"item{'s' * (len(node) != 1)}", path=ov.path)
            elif not isinstance(node, dict):
                raise ScenarioError(f"{where} holds {quoted(node)}, not a mapping, so it has no key {quoted(part)}",
                                    path=ov.path)
            if last:
                node[part] = copy.deepcopy(ov.value)
            else:
                if isinstance(node, dict) and node.get(part) is None:
                    node[part] = {}
                node = node[part]
    return out


__all__ = ["Override", "format_path", "parse_path", "parse_override", "apply_overrides"]
