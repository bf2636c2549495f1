"""No import circle inside ``tealign.io`` (issue 29): the import graph of ``src/tealign``,
built from the source with ``ast``, counting every import (at module level and inside
functions alike, since a lazy import still ties the two modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules(src: Path = SRC) -> dict[str, Path]:
    """Dotted module name → file, for every module of the ``tealign`` package."""
    out = {}
    for f in sorted((src / "tealign").rglob("*.py")):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module → the ``tealign`` modules it imports (``from P import X`` counts as an import
    of ``P.X`` where that is a module, else of ``P``)."""
    mods = _modules(src)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:  # ``import tealign.io.x as y`` → its module
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_graph_sees_imports_at_every_level():
    g = import_graph()
    # module level, inside a function, and ``from package import submodule``
    assert "tealign.io.registry" in g["tealign.io"]
    assert "tealign.io.registry" in g["tealign.io.shards"]
    assert "tealign.io.shards" in g["tealign.io.mace_h5"]  # lazily, in write_mace_h5
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_io():
    io_graph = {m: {t for t in ts if t.startswith("tealign.io")}
                for m, ts in import_graph().items() if m.startswith("tealign.io")}
    assert cycles(io_graph) == []


def test_io_imports_no_format_module_from_generic_code():
    """The registry, the shard-directory writer and the shared helpers find formats through
    the registry's hooks, never by importing a format's module."""
    formats = {"tealign.io.extxyz", "tealign.io.asedb", "tealign.io.lmdb", "tealign.io.mptrj",
               "tealign.io.mace_h5", "tealign.io.spice", "tealign.io.qm9"}
    g = import_graph()
    for generic in ("tealign.io.registry", "tealign.io.shards", "tealign.io.common",
                    "tealign.io.convert"):
        assert not g[generic] & formats, (generic, g[generic] & formats)


if __name__ == "__main__":  # list every circle of the package
    for comp in cycles(import_graph()):
        print(" ↔ ".join(comp))
