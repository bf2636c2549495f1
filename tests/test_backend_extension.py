"""A compute backend added as one module and one registry entry (issue 29, docs/architecture.md
§3.6): the SPEC parser, ``compute atoms``, ``compute calib`` and the benchmarks' ``--calculator``
find it with no other change. The toy backend is a Lennard-Jones pair potential (ε = 0.0104
eV, σ = 3.40 Å: argon), written here as its module would be; its numbers are checked against
the pair formula, independently of ASE's implementation."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

import tealign.compute.backends.base as base
from tealign.compute import backends

EPS, SIGMA, RC = 0.0104, 3.40, 12.0  # eV, Å, Å


def _pair(r: float) -> float:
    """Lennard-Jones energy (eV) of one pair at ``r`` Å, shifted to zero at the cutoff."""
    def lj(x):
        return 4 * EPS * ((SIGMA / x) ** 12 - (SIGMA / x) ** 6)
    return lj(r) - lj(RC) if r < RC else 0.0


def run(spec, atoms, charge, multiplicity, forces, isolated_atom=False, kpts=None):
    """The toy code: ASE's LennardJones with the SPEC's ε and σ."""
    from ase.calculators.lj import LennardJones

    calc = LennardJones(epsilon=float(spec.settings["epsilon"]),
                        sigma=float(spec.settings["sigma"]), rc=float(spec.settings["rc"]))
    a = atoms.copy()
    a.calc = calc
    out = base.CalculationResult(energy=float(a.get_potential_energy()),
                                 info={"multiplicity": multiplicity or 1})
    if forces:
        out.forces = a.get_forces()
    return out


def check(functional: str, basis: str, settings: dict) -> None:
    if functional != "lj" or basis != "none":
        from tealign.errors import SetupError

        raise SetupError("the toy code computes lj/none", field="--method")


BACKEND = base.Backend(
    name="toylj", title="Toy LJ", defaults={"epsilon": EPS, "sigma": SIGMA, "rc": RC},
    extra="toylj", modules=("ase",), core="unknown", run=run, check=check,
    bench_spec="toylj:lj/none", example="toylj:lj/none")


@pytest.fixture
def registered(monkeypatch):
    """The one entry: the backend in :data:`tealign.compute.backends.BACKENDS`."""
    monkeypatch.setitem(backends.BACKENDS, BACKEND.name, BACKEND)
    return BACKEND.name


def test_a_spec_of_the_new_code_parses_and_computes(registered):
    from tealign.compute.spec import parse_spec

    spec = parse_spec("toylj:lj/none")
    assert spec.code == "toylj" and spec.settings["sigma"] == SIGMA
    r = 3.8
    res = backends.run_calculation(spec, Atoms("Ar2", positions=[[0, 0, 0], [0, 0, r]]))
    assert res.energy == pytest.approx(_pair(r), rel=1e-12)
    assert res.forces.sum(axis=0) == pytest.approx(np.zeros(3), abs=1e-12)  # Newton's third law
    with pytest.raises(Exception, match="toy code computes lj/none"):
        parse_spec("toylj:pbe/none")


def test_an_all_electron_entry_joins_the_gaussian_basis_family(registered, monkeypatch):
    """Provenance groups codes by family: an entry whose core is all-electron compares as a
    Gaussian-basis code (``gto``), one of any other core as itself."""
    import dataclasses

    from tealign.provenance import Level

    assert Level("lj", code="toylj").family == "toylj"
    monkeypatch.setitem(backends.BACKENDS, "toylj",
                        dataclasses.replace(BACKEND, core="all-electron"))
    assert Level("lj", code="toylj").family == Level("pbe", code="pyscf").family == "gto"


def test_compute_atoms_and_calib_run_the_new_code(registered, tmp_path):
    from tealign import api
    from tealign.io import read, write

    table = api.compute_atoms("toylj:lj/none", "Ar", tmp_path / "atoms.json",
                              store=tmp_path / "store")
    assert table.to_json()["energies"] == {"Ar": 0.0}  # an isolated atom has no pair
    trimer = Atoms("Ar3", positions=[[0, 0, 0], [3.7, 0, 0], [0, 3.9, 0]])
    trimer.info["mol_id"] = "ar3"
    write(tmp_path / "mols.extxyz", [trimer])
    api.compute_calib(str(tmp_path / "mols.extxyz"), ["toylj:lj/none"],
                      tmp_path / "calib.extxyz", store=tmp_path / "store")
    (got,) = read(tmp_path / "calib.extxyz", index=":")
    d = trimer.get_all_distances()
    want = _pair(d[0, 1]) + _pair(d[0, 2]) + _pair(d[1, 2])
    (key,) = [k for k in got.info if k.startswith("energy_") and "toylj" in k]
    assert got.info[key] == pytest.approx(want, rel=1e-12)


def test_the_benchmarks_take_the_new_code_as_a_calculator(registered):
    from tealign.bench.calculators import get_calculator, names

    assert "toylj" in names()
    calc = get_calculator("toylj")
    a = Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 4.0]])
    a.calc = calc
    assert a.get_potential_energy() == pytest.approx(_pair(4.0), rel=1e-12)


def test_an_export_runs_each_external_code_by_its_module_and_stops_an_unknown_one(tmp_path):
    """``run_job.sh`` has one case per external code, from its module; a job whose code has
    none stops (exit 2) and is never marked done (so an import cannot take it as run)."""
    import subprocess

    from tealign import api
    from tealign.compute.exchange import run_job_script
    from tealign.compute.external import EXTERNAL_CODES, module
    from tealign.io import write

    script = run_job_script()
    for code in EXTERNAL_CODES:
        assert f"  {code})\n" in script and module(code).CLUSTER_SCRIPT.splitlines()[0] in script
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], info={"mol_id": "H2"})
    write(tmp_path / "h2.extxyz", [h2])
    api.compute_export(str(tmp_path / "h2.extxyz"), ["orca:omol25"], tmp_path / "jobs")
    jobs = tmp_path / "jobs"
    first = (jobs / "jobs.txt").read_text().split()[0]
    (jobs / first / "CODE").write_text("newcode\n")
    proc = subprocess.run(["bash", str(jobs / "run_job.sh"), "1"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "no command for code newcode" in proc.stderr
    assert not (jobs / first / ".tealign-done").exists()
