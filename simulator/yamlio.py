"""YAML from users, read safely: no Python tags, bounded nesting, bounded alias expansion.

A scenario file is small, but YAML lets a small file describe a huge or deep value: nine levels
of nine-fold aliases (``&a [*b, *b, …]``) stand for 9⁹ ≈ 387 million values in 4.5 KB, and
10,000 nested brackets overflow the recursive composer. Both are refused here, before anything
is built from the document:

* nesting deeper than :data:`MAX_DEPTH` mappings/sequences — counted on the parser's event
  stream, which is iterative, so the check itself cannot overflow;
* a document whose value, with every alias expanded, holds more than :data:`MAX_VALUES` nodes,
  or an alias that refers to the collection it is inside (a recursive value) — counted on the
  node graph with one visit per node, so a bomb is measured without being expanded.

Aliases within the budget are fine (a shared block of settings reused by several agents).
"""

from __future__ import annotations

from typing import Any

import yaml

from simulator.errors import ScenarioError

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted (a scenario needs about 6)."""

MAX_VALUES = 100_000
"""Most nodes (keys, values and items, aliases expanded) a document may stand for."""

_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _yaml_error(exc: yaml.YAMLError, source: str) -> ScenarioError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ScenarioError(f"invalid YAML: {problem}", path=source, line=mark.line + 1 if mark else None)


def _check_depth(text: str, source: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise ScenarioError(f"nested deeper than {MAX_DEPTH} levels; not a scenario", path=source,
                                    line=event.start_mark.line + 1)
        elif isinstance(event, _CLOSE):
            depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def expanded_size(node: yaml.Node, limit: int = MAX_VALUES) -> int:
    """Number of nodes ``node`` stands for with every alias expanded (stops counting past ``limit``).

    Each distinct node is visited once (sizes are memoized by identity), so the cost is linear
    in the document, not in its expansion. Raises ``ValueError`` on a recursive alias.
    """
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        if done:
            on_path.discard(key)
            size[key] = min(limit + 1, 1 + sum(size[id(c)] for c in _children(current)))
            continue
        if key in size:
            continue
        if key in on_path:
            raise ValueError("an alias refers to the collection it is inside (a recursive value)")
        on_path.add(key)
        stack.append((current, True))
        for child in _children(current):
            if id(child) in on_path:
                raise ValueError("an alias refers to the collection it is inside (a recursive value)")
            if id(child) not in size:
                stack.append((child, False))
    return size[id(node)]


def load(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document safely; return its value and its node tree (for line numbers).

    Raises :class:`~simulator.errors.ScenarioError` (one line, naming ``source`` and the line)
    for invalid YAML, Python or other unknown tags, nesting beyond :data:`MAX_DEPTH`, and alias
    expansion beyond :data:`MAX_VALUES` or recursive aliases.
    """
    try:
        _check_depth(text, source)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None, None
        try:
            total = expanded_size(node)
        except ValueError as exc:
            raise ScenarioError(f"{exc}; not a scenario", path=source, line=node.start_mark.line + 1) from None
        if total > MAX_VALUES:
            raise ScenarioError(f"aliases (*name) expand it to more than {MAX_VALUES:,} values; not a scenario",
                                path=source)
        return yaml.SafeLoader("").construct_document(node), node
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None


__all__ = ["load", "expanded_size", "MAX_DEPTH", "MAX_VALUES"]
