"""The package's import graph: no cycles among modules, and every import points down the layers of DESIGN §3.

``cli → experiment → network → control → channel, latent → data → config, rng, errors``; ``plots``
reads result files only. Imports are read with :mod:`ast` from the source (module level, inside
functions, and under ``if TYPE_CHECKING:``), so a lazy import cannot hide a violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import simulator

PACKAGE = Path(simulator.__file__).parent

LAYERS = (
    ("cli", "__main__"),
    ("experiment",),
    ("network",),
    ("control",),
    ("channel", "latent"),
    ("data",),
    ("config", "overrides", "schema", "rng", "errors", "yamlio", "results", "folders", "__init__"),
)
"""Top-level parts of ``simulator`` from the top layer down; a module may import its own layer and those below."""

PLOTS = ("plots", "plots_frontier")
"""The figure modules (``plots`` and one module per driver's figure, e.g. ``plots_frontier``)."""
PLOTS_MAY_IMPORT = {"results", "yamlio", "errors", "__init__", *PLOTS}
"""The figure modules draw from result files: they may import only the file helpers (and each other)."""

EXCEPTIONS = {
    ("simulator.config", "simulator.latent.encoders"): "the scenario's encoders: union is built from the family "
                                                       "registry (the families import only simulator.schema)",
    ("simulator.config", "simulator.control.kinds"): "the scenario's controller: union is built from the kind "
                                                     "registry (the kinds import simulator.config for types only)",
    ("simulator.config", "simulator.control.registry"): "the default controller kind",
}
"""Upward imports that DESIGN §3 allows: the schema composes the plug-ins' own config models."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported simulator module, runs at import or call time) for every import in the module's source.

    ``from a import b`` names the module ``a.b`` when that is a module, else ``a``; a relative
    import is resolved against the module's package. Imports under ``if TYPE_CHECKING:`` never
    run (False).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out = []
    for node in ast.walk(tree):
        runs = id(node) not in typing_only
        if isinstance(node, ast.Import):
            out += [(alias.name, runs) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in MODULES else base, runs))
    return [(m, runs) for m, runs in out if m == "simulator" or m.startswith("simulator.")]


def _edges() -> list[tuple[str, str, bool, bool]]:
    """(importer, imported, runs, named) over the package.

    An import of ``a.b.c`` names ``a.b.c`` (``named``) and also runs the packages ``a.b`` and ``a``
    first (their ``__init__``), which count for cycles but not for the layer direction.
    """
    edges = set()
    for name, path in MODULES.items():
        for target, runs in _imports(name, path):
            if target in MODULES and target != name:
                edges.add((name, target, runs, True))
            parts = target.split(".")
            for n in range(2, len(parts)):
                parent = ".".join(parts[:n])
                if parent in MODULES and parent != name and not name.startswith(parent + "."):
                    edges.add((name, parent, runs, False))
    return sorted(edges)


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    part = _part(module)
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module}: add {part!r} to a layer of LAYERS (or to plots' rule)")


def test_every_import_points_down_the_layers():
    wrong = []
    for src, dst, _, named in _edges():
        if not named or (src, dst) in EXCEPTIONS:
            continue
        if _part(src) in PLOTS:
            if _part(dst) not in PLOTS_MAY_IMPORT:
                wrong.append(f"{src} → {dst} (plots reads result files only)")
        elif _part(dst) in PLOTS:
            if _layer(src) > LAYERS.index(("experiment",)):
                wrong.append(f"{src} → {dst}")
        elif _layer(dst) < _layer(src):
            wrong.append(f"{src} → {dst}")
    assert not wrong, "imports against DESIGN §3's direction:\n" + "\n".join(wrong)


def test_the_documented_exceptions_are_still_needed():
    used = {(s, d) for s, d, _, named in _edges() if named}
    assert set(EXCEPTIONS) <= used, f"no longer imported (remove from EXCEPTIONS): {set(EXCEPTIONS) - used}"


def test_no_import_cycles():
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for src, dst, runs, _ in _edges():
        if runs:
            graph[src].add(dst)
    # Tarjan's strongly connected components: every component of more than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_the_graph_reader_sees_lazy_and_relative_imports():
    edges = {(s, d) for s, d, _, _ in _edges()}
    assert ("simulator.cli", "simulator.experiment.runner") in edges  # imported inside a function
    assert ("simulator.channel", "simulator.channel.fading") in edges  # from .fading import …
    assert ("simulator.experiment.runner", "simulator.network") in edges  # the parent package runs first


def test_latent_and_channel_never_import_simpy():
    for name, path in MODULES.items():
        if _part(name) in ("latent", "channel"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
            assert not any(m == "simpy" or m.startswith("simpy.") for m in names), name
