"""Hostile YAML: bounded nesting and alias expansion, refused in one line before anything is built."""

from __future__ import annotations

import tracemalloc

import pytest
import yaml

from simulator import yamlio
from simulator.errors import ScenarioError


def alias_bomb(levels: int, fan: int = 9) -> str:
    """``levels`` levels of ``fan``-fold aliases: a short text standing for fan**levels values."""
    lines = [f"l0: &l0 [{', '.join(['x'] * fan)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


def test_aliases_within_the_budget_are_kept():
    text = "base: &b {bandwidth_hz: 1.0e6, fading: rayleigh}\nlinks: [*b, *b, *b]\n"
    data, node = yamlio.load(text, "s.yaml")
    assert data["links"] == [data["base"]] * 3 and node is not None


def test_expanded_size_counts_every_alias_without_expanding():
    node = yaml.compose(alias_bomb(4, 3))
    # l_i stands for 1 + 3·size(l_{i-1}) nodes (a sequence and its items); l0 = 1 + 3; keys and the
    # top mapping add 1 + 5 keys.
    sizes = [4]
    for _ in range(4):
        sizes.append(1 + 3 * sizes[-1])
    assert yamlio.expanded_size(node) == 1 + 5 + sum(sizes)


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_alias_bomb_is_refused_without_expanding_it():
    text = alias_bomb(9)  # 9^9 ≈ 387 million values in under 1 KB

    def refuse():
        with pytest.raises(ScenarioError, match="expand it to more than 100,000 values") as info:
            yamlio.load(text, "bomb.yaml")
        assert "\n" not in info.value.one_line() and len(info.value.one_line()) < 200

    # Refusing costs what composing the document's ~100 nodes costs (parse events stream; the size
    # walk keeps one number per node), not the 9^9 references an expansion would hold: at most
    # twice the composer's own peak, a margin for the memo and the event pass.
    assert _peak_bytes(refuse) <= 2 * _peak_bytes(lambda: yaml.compose(text, Loader=yaml.SafeLoader))


def test_a_recursive_alias_is_refused():
    with pytest.raises(ScenarioError, match="recursive"):
        yamlio.load("a: &a [1, *a]\n", "loop.yaml")


@pytest.mark.parametrize("text", [
    "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "a: " + "{x: " * 10_000 + "1" + "}" * 10_000 + "\n",
    "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
])
def test_deep_nesting_is_refused_at_its_line(text):
    with pytest.raises(ScenarioError, match=f"nested deeper than {yamlio.MAX_DEPTH} levels") as info:
        yamlio.load(text, "deep.yaml")
    assert info.value.line is not None


def test_nesting_at_the_limit_is_accepted():
    depth = yamlio.MAX_DEPTH
    data, _ = yamlio.load("[" * depth + "]" * depth, "ok.yaml")
    for _ in range(depth - 1):
        data = data[0]
    assert data == []


@pytest.mark.parametrize("text, expect", [
    ("a: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ("a: [1, 2\n", "invalid YAML"),
    ("", None),
])
def test_tags_and_syntax(text, expect):
    if expect is None:
        assert yamlio.load(text, "x.yaml") == (None, None)
    else:
        with pytest.raises(ScenarioError, match=expect):
            yamlio.load(text, "x.yaml")
