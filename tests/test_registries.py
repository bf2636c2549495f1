"""The two registries (issue 29, item 3): compute backends (:mod:`tealign.compute.backends`)
and benchmarks (:mod:`tealign.bench.benchmarks`). A backend's entry drives the SPEC parser,
the missing-package line and the command line's help; a benchmark that is only a module and
an entry gets its API verb, command, run-directory file and report part."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import requires_mace

from tealign.compute.backends import BACKENDS, extras
from tealign.compute.spec import parse_spec
from tealign.errors import missing_extra

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_store_keys_of_committed_specs_do_not_move():
    """The job-store key's settings hash of the SPECs the committed stores hold: a change of
    a backend's defaults (or of how the registry assembles them) would recompute them all."""
    keys = {
        "pyscf:wb97m-d3bj/def2-tzvppd":
            "4db5abdcb42d3a5f55ea3f302a06d32094aa77fd6db900433195476280ddd183",
        "pyscf:wb97x/6-31g(d);cartesian=d":
            "7e3dbb7ed717a0fdfe74d9e57854b9b8e13567fb82aae0717a77650a929f311a",
        "gpaw:pbe/pw800":
            "7d95b5351f38d6d14dd84120191c2877de3a354c0389ba5419b499524d57aac0",
        "xtb:gfn2": "71bb85f2c9ac1edd2342d39544a664a896b217b238e62b29c27107e44e6148b6",
    }
    for text, key in keys.items():
        assert parse_spec(text).settings_key() == key, text
    # a molecule's key leaves out the settings that act on periodic cells only
    g = parse_spec("gpaw:pbe/pw800")
    assert g.settings_key(periodic=False) != g.settings_key()
    assert parse_spec("gpaw:pbe/pw800;kpt_density=6").settings_key(periodic=False) == \
        g.settings_key(periodic=False)


def test_every_backend_entry_is_complete_and_installable():
    extras_declared = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    for name, b in BACKENDS.items():
        assert b.name == name and b.run is not None
        spec = parse_spec(b.example)  # its own example parses, every default written out
        assert spec.code == name and set(b.defaults) <= set(spec.settings)
        assert b.extra in extras_declared, f"{name}: no extra [{b.extra}] in pyproject.toml"
        for module in b.modules:
            err = missing_extra(ModuleNotFoundError(name=module), extras())
            assert err is not None and f"tealign[{b.extra}]" in err.line()
    # a backend's packages are named only with the backends' table
    assert missing_extra(ModuleNotFoundError(name="tblite")) is None


def test_unknown_code_and_example_come_from_the_registry():
    with pytest.raises(Exception, match="tealign computes with " + ", ".join(BACKENDS)):
        parse_spec("nope:pbe/x")
    with pytest.raises(Exception, match="xtb has its own dispersion"):
        parse_spec("xtb:gfn2-d3bj")


TOY = textwrap.dedent('''
    import json, sys, types
    import numpy as np
    from ase import Atoms
    import tealign.bench.benchmarks as bb

    def run(calculator, output_dir, *, progress=None, points=7):
        """H2 energies on a grid of bond lengths (Å); the grid point of lowest energy."""
        from tealign.bench.calculators import get_calculator
        calc = get_calculator(calculator)
        r = np.linspace(0.55, 0.95, points)
        e = []
        for x in r:
            a = Atoms("H2", positions=[[0, 0, 0], [0, 0, x]])
            a.calc = calc
            e.append(a.get_potential_energy())
        res = {"benchmark": "dimer", "calculator": str(calculator), "n": points,
               "r_min_A": float(r[int(np.argmin(e))]), "figures": []}
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "results.json").write_text(json.dumps(res))
        return res

    mod = types.ModuleType("tealign.bench.dimer")
    mod.run = run
    sys.modules["tealign.bench.dimer"] = mod
    bb.BENCHMARKS["dimer"] = bb.Benchmark(
        "dimer", "H2 bond length on a grid", ("n", "r_min_A"),
        headline=bb.Headline("r_min_A", "H–H bond", ".3f", " Å"),
        columns=(bb.Column("r_min_A", "r at the lowest energy (Å)", ".3f"),),
        options=(bb.Option("points", int, 7, "Grid points."),))

    import tealign
    from tealign import rundir
    from tealign.report.html import build_report
    from tealign.report.sections import for_kind
    from typer.testing import CliRunner
    from tealign.cli import app

    run_dir = __import__("pathlib").Path(sys.argv[1])
    out = CliRunner().invoke(app, ["bench", "dimer", "--calculator", "xtb", "--points", "9",
                                   "-o", str(run_dir / "bench" / "dimer"), "--json"])
    assert out.exit_code == 0, out.output
    cli = json.loads(out.stdout[out.stdout.index("{"):])
    res = tealign.bench_dimer("xtb", run_dir / "api", points=9)
    saved = res.save(run_dir / "bench" / "dimer")
    report = build_report(run_dir).read_text()
    print(json.dumps({"cli": cli, "api": res.to_json(), "saved": saved.name,
                      "file": rundir.RESULT_FILES["bench_dimer"],
                      "section": for_kind("bench_dimer").sid,
                      "in_report": "H2 bond length on a grid" in report,
                      "card": "H–H bond" in report}))
''')


@requires_mace  # the generated command runs through the report, which imports the torch stack
def test_a_benchmark_is_one_module_and_one_entry(tmp_path):
    """A toy benchmark (H2's bond length with GFN2-xTB) defined only as a module and a
    registry entry: the command, the API verb, the run-directory file and the report's part
    and summary card all come from the entry."""
    pytest.importorskip("tblite", reason="the toy benchmark computes with xtb (tealign[xtb])")
    proc = subprocess.run([sys.executable, "-c", TOY, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(got["cli"]) == {"n", "r_min_A", "results"} and got["cli"]["n"] == 9
    # GFN2-xTB's H2 bond is 0.73–0.76 Å (experiment 0.741 Å): the 0.05 Å grid point nearest
    assert got["cli"]["r_min_A"] == pytest.approx(0.75, abs=0.051)
    assert got["api"]["r_min_A"] == got["cli"]["r_min_A"]
    assert got["saved"] == got["file"] == "bench_dimer.json"
    assert got["section"] == "benchmarks" and got["in_report"] and got["card"]
