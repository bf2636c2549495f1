"""The layers of ``src/tealign`` (issue 29): the command line over the API over the library,
no import circle, no import upwards. Read from the source with ``ast`` (every import counts,
lazy ones too), through the import graph of ``tests/test_architecture_imports.py``."""

from __future__ import annotations

from test_architecture_imports import cycles, import_graph

#: What the thin command line may import besides its own modules: the API, and the core
#: modules every layer shares (errors, units, the key names) and the package (its version).
CLI_ALLOWED = {"tealign", "tealign.api", "tealign.errors", "tealign.keys", "tealign.units"}

#: The layers above the library: the package's lazy re-exports, the API, the command line.
TOP = {"tealign", "tealign.__main__", "tealign.api"}

#: The modules of the benchmark layer the report may read: declarative tables that compute
#: nothing (the benchmark registry, the dataset registry, the paper's published numbers).
BENCH_TABLES = {"tealign.bench.benchmarks", "tealign.bench.registry",
                "tealign.bench.published"}


def _is_cli(module: str) -> bool:
    return module == "tealign.cli" or module.startswith("tealign.cli.")


def _below_api(module: str) -> bool:
    return module not in TOP and not _is_cli(module)


GRAPH = import_graph()


def test_cli_imports_only_the_api_and_the_core():
    bad = {m: sorted(t for t in ts if not _is_cli(t) and t not in CLI_ALLOWED)
           for m, ts in GRAPH.items() if _is_cli(m)}
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_no_import_circle_at_all():
    assert cycles(GRAPH) == []


def _upward() -> dict[str, list[str]]:
    return {m: sorted(t for t in ts if t == "tealign.api" or _is_cli(t))
            for m, ts in GRAPH.items() if _below_api(m)
            if any(t == "tealign.api" or _is_cli(t) for t in ts)}


def test_no_module_below_the_api_imports_the_api_or_the_cli():
    """The library (io, align, compute, bench, train, report, merge, methods, ...) never
    reaches up."""
    assert _upward() == {}


def test_report_sections_read_no_benchmark_code():
    """The report's sections read results files and the benchmark layer's declarative tables
    (:data:`BENCH_TABLES`), never a benchmark's code."""
    bad = {m: sorted(t for t in ts if t.startswith("tealign.bench") and t not in BENCH_TABLES)
           for m, ts in GRAPH.items() if m.startswith("tealign.report")}
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_api_reaches_the_report_through_its_public_entry():
    assert not {t for t in GRAPH["tealign.api"] if t.startswith("tealign.report.")}


def test_align_pipeline_writes_through_the_io_registry():
    """``align.pipeline`` writes shards through ``tealign.io``'s public functions, not
    ``io.shards``."""
    assert "tealign.io.shards" not in GRAPH["tealign.align.pipeline"]


def test_compute_backends_import_no_registry():
    """Backend modules (in-process and external codes) import the shared
    ``compute.backends.base``, never the registry or the SPEC parser that reads it."""
    backend_modules = [m for m in GRAPH if m.startswith(("tealign.compute.backends.",
                                                         "tealign.compute.external"))]
    assert "tealign.compute.external.vasp" in backend_modules
    for m in backend_modules:
        assert not GRAPH[m] & {"tealign.compute.backends", "tealign.compute.spec"}, m


def test_external_codes_are_entries_of_the_backend_registry():
    """VASP, ORCA and Psi4 sit in the one backend registry beside the in-process backends;
    ``BACKENDS`` (what the help and the unknown-code message list) stays in-process."""
    from tealign.compute.backends import BACKENDS, get, registry
    from tealign.compute.spec import parse_spec

    codes = registry()
    assert list(codes)[:len(BACKENDS)] == list(BACKENDS)
    for code in ("vasp", "orca", "psi4"):
        entry = get(code)
        assert entry.external and entry.parse is not None and code not in BACKENDS
        assert parse_spec(entry.example).code == code
    assert not any(b.external or b.parse for b in BACKENDS.values())


def _reaches_up(tree) -> list[str]:
    """What a module's source reaches above the library by name rather than by an import of
    ``tealign.api``/``tealign.cli``: the package's lazy API names (``from tealign import fit``),
    ``importlib.import_module("tealign.api...")``, ``sys.modules["tealign..."]``."""
    import ast

    import tealign

    api_names = {n for n, (mod, _) in tealign._EXPORTS.items() if mod == "tealign.api"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tealign" and not node.level:
            found += [f"from tealign import {a.name}" for a in node.names
                      if a.name in api_names or a.name.startswith("bench_")]
        elif isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) \
                and node.args[0].value.startswith(("tealign.api", "tealign.cli")):
            found.append(f"call with {node.args[0].value!r}")
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str) \
                and ast.unparse(node.value) == "sys.modules" \
                and node.slice.value.split(".")[0] == "tealign":
            found.append(f"sys.modules[{node.slice.value!r}]")
    return found


def test_the_one_call_time_reach_up_is_the_deprecated_align_shim():
    """Imports are not the only way up. Below the API, no module names the API's verbs through
    the package, ``import_module`` or ``sys.modules``, but one: ``tealign.align``'s deprecated
    call shim (calling the subpackage runs ``tealign.align_file``, for one release)."""
    import ast
    from pathlib import Path

    from test_architecture_imports import _modules

    found = {m: hits for m, path in _modules().items() if _below_api(m)
             if (hits := _reaches_up(ast.parse(Path(path).read_text())))}
    assert found == {"tealign.align": ['sys.modules[\'tealign\']']}


def test_the_reach_up_check_sees_each_way_up():
    import ast

    for code in ("from tealign import fit", "import importlib\n"
                 "importlib.import_module('tealign.api')", "import sys\nsys.modules['tealign']",
                 "from tealign import bench_lattice"):
        assert _reaches_up(ast.parse(code)), code
    assert not _reaches_up(ast.parse("from tealign import keys\nimport tealign.io"))
