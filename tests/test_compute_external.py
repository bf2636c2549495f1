"""VASP, ORCA and Psi4 (tealign.compute.external): presets against independent references,
import against ASE's own test outputs, export → a stand-in queue → import → fit (with a kill
and a resume), bad outputs as one line each, missing codes as one line, the cluster file."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule

from tealign.compute.external import JobProblem, code_command, preflight, vasp
from tealign.compute.external.common import CodeNotInstalled
from tealign.compute.spec import parse_spec
from tealign.errors import SetupError

ASE_VASP = Path(ase.__file__).parent / "test" / "testdata" / "vasp"
ASE_ORCA_TEST = Path(ase.__file__).parent / "test" / "fio" / "test_orca.py"
SRC = str(Path(__file__).resolve().parents[1] / "src")


# ----------------------------------------------------------------------------- VASP import
@pytest.mark.parametrize("name,as_file", [("OUTCAR_example_1", "OUTCAR"),
                                          ("vasprun_pstress.xml", "vasprun.xml"),
                                          ("vasprun_dfpt.xml", "vasprun.xml")])
def test_vasp_import_equals_ase_read(tmp_path, name, as_file):
    """ASE's own VASP outputs: energy, forces and stress equal ase.io.read's, and the
    settings VASP reports are read."""
    if not (ASE_VASP / name).exists():
        pytest.skip(f"{name} is not shipped with this ASE")
    shutil.copy(ASE_VASP / name, tmp_path / as_file)
    res, used, converged = vasp.read_job(tmp_path)
    ref = ase.io.read(ASE_VASP / name)
    assert converged
    assert res["energy"] == ref.get_potential_energy()
    assert np.array_equal(res["forces"], ref.get_forces())
    assert np.array_equal(res["stress"], ref.get_stress(voigt=False))
    assert res["numbers"] == ref.numbers.tolist()
    assert used["ENCUT"] > 0 and used["EDIFF"] > 0 and "ISMEAR" in used
    if as_file == "OUTCAR":  # the header of OUTCAR_example_1
        assert used["ENCUT"] == 300.0 and used["ISYM"] == 0 and used["SIGMA"] == 0.1


def test_vasp_bad_outputs_one_line_each(tmp_path):
    """Missing, half-written, unconverged, settings-mismatched: one JobProblem each."""
    with pytest.raises(JobProblem) as e:
        vasp.read_job(tmp_path)
    assert e.value.field == "vasprun.xml" and "missing" in e.value.reason
    text = (ASE_VASP / "vasprun_pstress.xml").read_text()
    (tmp_path / "vasprun.xml").write_text(text[: len(text) // 2])
    with pytest.raises(JobProblem) as e:
        vasp.read_job(tmp_path)
    assert e.value.field == "vasprun.xml" and "unreadable" in e.value.reason
    # the same run with NELM equal to its 9 electronic steps: VASP stopped, not converged
    (tmp_path / "vasprun.xml").write_text(re.sub(r'(name="NELM">)\s*60', r"\1     9", text))
    res, used, converged = vasp.read_job(tmp_path)
    assert used["_NSTEPS"] == 9 and not converged
    (tmp_path / "vasprun.xml").write_text(text)
    res, used, converged = vasp.read_job(tmp_path)
    assert converged
    problems = vasp.check_settings({"EDIFF": 1e-5, "ISMEAR": 1, "PREC": "Accurate"}, used)
    assert [p[0] for p in problems] == ["EDIFF", "PREC"]
    assert "1e-05" in problems[0][1] and "0.0001" in problems[0][1]


# ----------------------------------------------------------------------------- VASP export
def _incar(path: Path) -> dict:
    from pymatgen.io.vasp.inputs import Incar

    return dict(Incar.from_file(path))


@pytest.mark.parametrize("build", ["FeO", "NaCl", "Cu", "Co2O4Li2", "MnF2"])
def test_mptrj_incar_equals_pymatgen_mpstaticset(tmp_path, build):
    """The mptrj preset's INCAR, POTCARs and k-mesh equal pymatgen's MPStaticSet for the same
    structure (read from the POSCAR tealign wrote, so the species order is the same)."""
    pytest.importorskip("pymatgen")
    import warnings

    from pymatgen.core import Structure
    from pymatgen.io.vasp.sets import MPStaticSet

    atoms = {"FeO": lambda: bulk("FeO", "rocksalt", a=4.3) * (1, 1, 2),
             "NaCl": lambda: bulk("NaCl", "rocksalt", a=5.64),
             "Cu": lambda: bulk("Cu", "fcc", a=3.6),
             "Co2O4Li2": lambda: bulk("CoO", "rocksalt", a=4.26) * (1, 1, 2),
             "MnF2": lambda: bulk("MnF", "rocksalt", a=4.5)}[build]()
    if build == "Co2O4Li2":  # an oxide with a non-U metal too
        atoms = atoms + bulk("LiO", "rocksalt", a=4.26) * (1, 1, 2)
        atoms.positions[4:] += 1.0
        atoms.cell[2] *= 2
    spec = parse_spec("vasp:mptrj")
    expected = vasp.write_job(tmp_path, spec.settings, atoms)
    structure = Structure.from_file(tmp_path / "POSCAR")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = MPStaticSet(structure, sort_structure=False)  # the POSCAR order
        ref_incar = dict(ref.incar)
        ref_kpts = list(ref.kpoints.kpts[0])
        ref_potcars = ref.potcar_symbols
    ours = _incar(tmp_path / "INCAR")
    # ASE writes GGA = PE (the functional of the PBE POTCARs); pymatgen leaves it to POTCAR
    assert ours.pop("GGA") == "Pe" or ours.get("GGA") is None
    assert "GGA" not in ref_incar
    assert set(ours) == set(ref_incar), (set(ours) ^ set(ref_incar))
    for key, want in ref_incar.items():
        got = ours[key]
        if isinstance(want, list):
            assert np.allclose(np.asarray(got, float), np.asarray(want, float)), key
        elif isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-9), key
        elif isinstance(want, str):
            assert str(got).lower() == want.lower(), key
        else:
            assert got == want, key
    assert (tmp_path / "POTCAR.symbols").read_text().split() == ref_potcars
    assert expected["kpts"] == ref_kpts
    assert ("LDAU" in ours) == (build in ("FeO", "Co2O4Li2", "MnF2"))


@pytest.mark.skipif(importlib.util.find_spec("pymatgen") is None,
                    reason="needs pymatgen (the MP input sets): pip install pymatgen")
def test_paper_qm9vasp_equals_the_papers_settings(tmp_path):
    """TEA paper §C.1: PBE, ENCUT 400, EDIFF 1e-5, ISYM 0, PREC Accurate, ISMEAR 0,
    SIGMA 0.1, 10 Å vacuum (Γ point)."""
    atoms = molecule("CH3OH")
    spec = parse_spec("vasp:paper-qm9vasp")
    vasp.write_job(tmp_path, spec.settings, atoms)
    incar = _incar(tmp_path / "INCAR")
    stated = {"ENCUT": 400.0, "EDIFF": 1e-5, "ISYM": 0, "PREC": "Accurate", "ISMEAR": 0,
              "SIGMA": 0.1, "GGA": "Pe"}
    for key, want in stated.items():
        assert incar[key] == (pytest.approx(want) if isinstance(want, float) else want), key
    # nothing else but VASP's own defaults, written out, and NSW 0 (a single point)
    assert set(incar) - set(stated) <= {"ALGO", "NELM", "LASPH", "LREAL", "ISPIN", "NSW"}
    assert incar["ALGO"] == "Normal" and incar["NELM"] == 60 and incar["ISPIN"] == 1
    box = ase.io.read(tmp_path / "POSCAR")
    extent = atoms.positions.max(0) - atoms.positions.min(0)
    assert np.allclose(box.cell.lengths(), extent + 20.0)
    kpoints = (tmp_path / "KPOINTS").read_text().splitlines()
    assert kpoints[1].strip() == "0" and kpoints[2].strip() == "Gamma"
    assert kpoints[3].split() == ["1", "1", "1"]
    with pytest.raises(JobProblem) as e:
        vasp.write_job(tmp_path / "bulk", spec.settings, bulk("Si"))
    assert e.value.field == "kpts"


# ----------------------------------------------------------------------------- ORCA / Psi4
def test_orca_omol25_preset_equals_stated_settings(tmp_path):
    """OMol25 (Levine et al., arXiv:2505.08762): ωB97M-V/def2-TZVPD in ORCA 6 with RIJCOSX
    def2/J, DEFGRID3, no symmetry, tight SCF (THRESH 1e-12, TCUT 1e-13, 300 cycles)."""
    from tealign.compute.external import orca

    spec = parse_spec("orca:omol25")
    assert (spec.functional, spec.basis, spec.d3) == ("wb97m-v", "def2-tzvpd", None)
    orca.write_job(tmp_path, spec.settings, molecule("H2O"), charge=0, multiplicity=1)
    text = (tmp_path / "orca.inp").read_text()
    keywords = {w.lower() for w in text.splitlines()[0].lstrip("! ").split()}
    assert {"wb97m-v", "def2-tzvpd", "rijcosx", "def2/j", "defgrid3", "nousesym",
            "engrad"} <= keywords
    assert not keywords & {"d3bj", "d4", "novv10"}  # VV10 stays on, no extra dispersion
    assert re.search(r"%scf Convergence Tight MaxIter 300 THRESH 1e-12 TCUT 1e-13 end", text)
    assert re.search(r"\*xyz 0 1", text)


def test_orca_reader_on_ases_orca_sample(tmp_path):
    """ORCA output excerpts shipped in ASE's own tests (no installed package ships complete
    ORCA outputs): energy and forces equal ASE's, in tealign's CODATA 2018 units."""
    from ase.units import Bohr, Hartree

    from tealign import units
    from tealign.compute.external import orca

    if not ASE_ORCA_TEST.exists():
        pytest.skip("ASE's ORCA test module is not installed")
    src = ASE_ORCA_TEST.read_text()
    out = re.search(r'def test_read_orca_outputs\(\):\n    sample_outputfile = """\\\n(.*?)"""',
                    src, re.S).group(1)
    engrad = re.search(r'sample_engradfile = """\\\n(.*?)"""', src, re.S).group(1)
    (tmp_path / "orca.out").write_text(out)
    (tmp_path / "orca.engrad").write_text(engrad)
    res, used, converged = orca.read_job(tmp_path)
    assert converged
    assert res["energy"] == pytest.approx(-76.422436201230 * units.HARTREE_TO_EV, rel=1e-14)
    ase_forces = ase.io.orca.read_orca_engrad(str(tmp_path / "orca.engrad"))
    assert np.allclose(res["forces"] / units.HARTREE_PER_BOHR_TO_EV_PER_A,
                       ase_forces / (Hartree / Bohr), atol=1e-14)
    # without the echoed input the settings check has nothing to confirm: refused
    problems = orca.check_settings({"keywords": ["wb97m-v"]}, used)
    assert problems and problems[0][0] == "keywords"
    (tmp_path / "orca.out").write_text(out.replace("ORCA TERMINATED NORMALLY", ""))
    with pytest.raises(JobProblem) as e:
        orca.read_job(tmp_path)
    assert e.value.field == "orca.out"


def test_psi4_spice_preset_equals_stated_settings(tmp_path):
    """SPICE (Eastman et al., Sci. Data 10, 11 (2023)): ωB97M-D3(BJ)/def2-TZVPPD in Psi4,
    forces (gradient driver); the D3(BJ) part is stored apart as for every -d3bj SPEC."""
    from tealign import units
    from tealign.compute.external import psi4

    spec = parse_spec("psi4:spice")
    assert (spec.functional, spec.basis, spec.d3) == ("wb97m", "def2-tzvppd", "wb97m")
    atoms = molecule("H2O")
    psi4.write_job(tmp_path, spec.settings, atoms)
    inp = json.loads((tmp_path / "input.json").read_text())
    assert inp["model"] == {"method": "wb97m-d3bj", "basis": "def2-tzvppd"}
    assert inp["driver"] == "gradient" and inp["keywords"] == {}
    geom = np.asarray(inp["molecule"]["geometry"]).reshape(-1, 3) * units.BOHR_TO_ANGSTROM
    assert np.allclose(geom, atoms.positions, atol=1e-12)
    psi4.write_job(tmp_path / "o", spec.settings, molecule("O"), multiplicity=3)
    assert json.loads((tmp_path / "o" / "input.json").read_text())["keywords"] == {
        "reference": "uks"}


def test_energy_only_jobs_ask_for_no_gradient(tmp_path):
    """--no-forces: Psi4's energy driver and ORCA without EnGrad (half the cost or less)."""
    from tealign.compute.external import orca, psi4

    psi4.write_job(tmp_path / "p", parse_spec("psi4:spice").settings, molecule("H2O"),
                   forces=False)
    assert json.loads((tmp_path / "p" / "input.json").read_text())["driver"] == "energy"
    orca.write_job(tmp_path / "o", parse_spec("orca:omol25").settings, molecule("H2O"),
                   forces=False)
    assert "engrad" not in (tmp_path / "o" / "orca.inp").read_text().lower()


@pytest.mark.skipif(importlib.util.find_spec("pymatgen") is None,
                    reason="needs pymatgen (the MP input sets): pip install pymatgen")
def test_vasp_collect_equals_ase_read_and_refuses_other_settings(tmp_path):
    """A job directory holding ASE's NaCl vasprun.xml: collect() returns what ase.io.read
    gives, in the job's atom order; a preset asking other settings is refused by field."""
    from tealign.compute.external import collect

    shutil.copy(ASE_VASP / "vasprun_dfpt.xml", tmp_path / "vasprun.xml")
    ref = ase.io.read(ASE_VASP / "vasprun_dfpt.xml")
    spec = parse_spec("vasp:mptrj")
    res = collect(spec, ref, tmp_path, {"incar": {}, "sort": list(range(len(ref)))})
    assert res.energy == ref.get_potential_energy()
    assert np.array_equal(res.forces, ref.get_forces())
    assert np.array_equal(res.stress, ref.get_stress(voigt=False))
    assert res.info["settings_used"]["ENCUT"] == 400.0 and res.info["preset"] == "mptrj"
    # the same atoms listed in the other order: forces come back in the job's order
    swapped = ref[[1, 0]]
    res2 = collect(spec, swapped, tmp_path, {"incar": {}, "sort": [1, 0]})
    assert np.array_equal(res2.forces, ref.get_forces()[[1, 0]])
    with pytest.raises(JobProblem) as e:  # not the atoms of this job
        collect(spec, swapped, tmp_path, {"incar": {}, "sort": [0, 1]})
    assert e.value.field == "atoms"
    with pytest.raises(JobProblem) as e:  # VASP's k-mesh (3x3x3 in this run) is checked too
        collect(spec, ref, tmp_path, {"incar": {}, "sort": [0, 1], "kpts": [4, 4, 4]})
    assert e.value.field == "KPOINTS" and "3x3x3" in e.value.reason
    expected = vasp.write_job(tmp_path / "deck", spec.settings, ref)
    with pytest.raises(JobProblem) as e:
        collect(spec, ref, tmp_path, expected)
    assert e.value.field == "ENCUT" and "520" in e.value.reason and "400" in e.value.reason


@pytest.mark.skipif(importlib.util.find_spec("pymatgen") is None,
                    reason="needs pymatgen (the MP input sets): pip install pymatgen")
def test_vasp_job_script_builds_potcar_and_import_names_the_setting(tmp_path, run_cli):
    """The VASP branch of run_job.sh: POTCAR concatenated from $VASP_PP_PATH in POSCAR's
    species order, the command from TEALIGN_VASP_COMMAND (here a stand-in that leaves ASE's
    NaCl vasprun.xml, computed with other settings); import refuses it, naming ENCUT."""
    read = ase.io.read(ASE_VASP / "vasprun_dfpt.xml")
    ref = ase.Atoms(read.numbers, positions=read.positions, cell=read.cell, pbc=True,
                    info={"mol_id": "NaCl"})
    ase.io.write(tmp_path / "nacl.extxyz", [ref], format="extxyz")
    jobs = tmp_path / "jobs"
    code, _, err = run_cli("compute", "export", tmp_path / "nacl.extxyz", "--method",
                           "vasp:mptrj", "-o", jobs)
    assert code == 0, err
    pp = tmp_path / "pp"
    for sym in ("Na_pv", "Cl"):
        (pp / "potpaw_PBE" / sym).mkdir(parents=True)
        (pp / "potpaw_PBE" / sym / "POTCAR").write_text(f"PAW_PBE {sym}\n")
    names = (jobs / "jobs.txt").read_text().split()
    crystal = next(n for n in names if json.loads((jobs / n / "job.json").read_text())[
        "name"] == "NaCl")
    env = {**os.environ, "VASP_PP_PATH": str(pp),
           "TEALIGN_VASP_COMMAND": f"cp {ASE_VASP / 'vasprun_dfpt.xml'} vasprun.xml"}
    for i in range(1, len(names) + 1):
        subprocess.run(["bash", str(jobs / "run_job.sh"), str(i)], env=env, check=True)
    assert (jobs / crystal / "POTCAR").read_text() == "PAW_PBE Na_pv\nPAW_PBE Cl\n"
    code, _, err = run_cli("compute", "import", jobs, "-o", tmp_path / "out.extxyz")
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("tealign: error:")]
    assert len(lines) == len(names)  # the atoms' jobs got a crystal's output: refused too
    assert sum(f"{jobs / crystal}: field 'ENCUT': VASP used ENCUT=400.0, the preset asks "
               "520.0" in ln for ln in lines) == 1, err


def test_spec_parsing_and_overrides():
    a, b = parse_spec("vasp:mptrj;encut=600"), parse_spec("vasp:mptrj;encut=600.0")
    assert a.settings_key() == b.settings_key() != parse_spec("vasp:mptrj").settings_key()
    assert a.basis == "pw600" and a.method.core == "paw"
    for bad, word in (("vasp:mp", "presets"), ("orca:omol25;grid=4", "unknown"),
                      ("castep:pbe", "unknown code")):
        with pytest.raises(SetupError, match=word):
            parse_spec(bad)


# ----------------------------------------------------------------------------- direct runs
@pytest.mark.parametrize("code,needle", [("vasp", "ASE_VASP_COMMAND"),
                                         ("orca", "ASE_ORCA_COMMAND"),
                                         ("psi4", "psi4 Python module")])
def test_missing_code_is_one_line(monkeypatch, code, needle):
    for var in ("ASE_VASP_COMMAND", "VASP_COMMAND", "ASE_ORCA_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "fakepsi4" not in p])
    if code == "psi4" and __import__("importlib").util.find_spec("psi4") is not None:
        pytest.skip("psi4 is installed here")
    with pytest.raises(CodeNotInstalled) as e:
        code_command(code)
    assert needle in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SetupError) as e:  # before any job runs: nothing stored as failed
        preflight({code})
    assert e.value.field == "--method" and needle in e.value.line()


# ----------------------------------------------------------------------------- stand-in queue
FAKE_PSI4 = '''
"""Stand-in for Psi4 in tests: EMT energies and forces plus tealign's D3(BJ), returned the way
Psi4's run_qcschema returns them. FAKE_PSI4_LOG: one line per call; FAKE_PSI4_DIE_AT=N: the
N-th call kills its whole process group (a node lost mid-job)."""
import json, os, signal


class _Result:
    def __init__(self, data):
        self.data = data

    def json(self):
        return json.dumps(self.data)


class schema_wrapper:
    @staticmethod
    def run_qcschema(inp):
        import numpy as np
        from ase import Atoms
        from ase.calculators.emt import EMT
        from tealign import units
        from tealign.dispersion import d3_bj

        log = os.environ["FAKE_PSI4_LOG"]
        with open(log, "a") as fh:
            fh.write(os.getcwd() + "\\n")
        calls = len(open(log).read().splitlines())
        if str(calls) == os.environ.get("FAKE_PSI4_DIE_AT"):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        mol = inp["molecule"]
        pos = np.asarray(mol["geometry"]).reshape(-1, 3) * units.BOHR_TO_ANGSTROM
        atoms = Atoms(mol["symbols"], positions=pos)
        atoms.calc = EMT()
        e = atoms.get_potential_energy() / units.HARTREE_TO_EV
        g = -atoms.get_forces() / units.HARTREE_PER_BOHR_TO_EV_PER_A
        d3 = d3_bj(atoms.numbers, atoms.positions, None, None, "wb97m")
        e_d3 = d3.energy / units.HARTREE_TO_EV
        g = g - d3.forces / units.HARTREE_PER_BOHR_TO_EV_PER_A
        if os.environ.get("FAKE_PSI4_UNCONVERGED") and len(pos) > 1:
            return _Result({"success": False, "model": inp["model"], "driver": inp["driver"],
                            "keywords": inp["keywords"], "molecule": mol,
                            "error": {"error_type": "execution_error",
                                      "error_message": "SCFConvergenceError: SCF iterations "
                                                       "did not converge."}})
        return _Result({"success": True, "driver": inp["driver"], "model": inp["model"],
                        "keywords": inp["keywords"], "molecule": mol,
                        "provenance": {"creator": "stand-in", "version": "0"},
                        "properties": {"return_energy": e + e_d3},
                        "return_result": g.ravel().tolist(),
                        "extras": {"qcvars": {"DFT FUNCTIONAL TOTAL ENERGY": e,
                                              "DISPERSION CORRECTION ENERGY": e_d3,
                                              "DFT TOTAL ENERGY": e + e_d3}}})
'''

FAKE_QUEUE = '''
import os, subprocess, sys
jobs = sys.argv[1]
n = len(open(os.path.join(jobs, "jobs.txt")).read().split())
for i in range(1, n + 1):  # a job array, one task after the other, through the same script
    subprocess.run(["bash", "submit.slurm"], cwd=jobs, check=False,
                   env={**os.environ, "SLURM_ARRAY_TASK_ID": str(i)})
'''


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """A fake psi4 module and the environment the job script runs it in."""
    fake = tmp_path / "fakepsi4"
    (fake / "psi4").mkdir(parents=True)
    (fake / "psi4" / "__init__.py").write_text(FAKE_PSI4)
    log = tmp_path / "psi4_calls.log"
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{SRC}",
           "TEALIGN_PSI4_PYTHON": sys.executable, "FAKE_PSI4_LOG": str(log),
           "OMP_NUM_THREADS": "1"}
    (tmp_path / "queue.py").write_text(FAKE_QUEUE)
    return {"env": env, "log": log, "fake": fake, "queue": tmp_path / "queue.py"}


def _molecules(path: Path) -> Path:
    frames = []
    for name in ("H2O", "NH3", "CH4", "C2H6", "CH3OH", "HCN", "C2H4", "H2CO"):
        a = molecule(name)
        a.info["mol_id"] = name
        frames.append(a)
    ase.io.write(path, frames, format="extxyz")
    return path


def _queue(standin, jobs: Path, **extra) -> int:
    proc = subprocess.run([sys.executable, str(standin["queue"]), str(jobs)],
                          env={**standin["env"], **extra}, start_new_session=True)
    return proc.returncode


def _rows(store: Path) -> list:
    import sqlite3

    with sqlite3.connect(store / "jobs.sqlite") as db:
        return db.execute("SELECT * FROM jobs ORDER BY key").fetchall()


def test_export_queue_import_fit_with_kill_and_resume(tmp_path, run_cli, standin):
    """export → a stand-in SLURM array (the same submit.slurm and run_job.sh) killed at its
    5th job → import refuses (one line per missing job, nothing stored) → the array
    resubmitted (finished jobs skipped) → import → compute calib finds every psi4 job in
    the store (only xTB computed) → fit xTB → stand-in."""
    from tealign.io import read_batch

    calib = _molecules(tmp_path / "mols.extxyz")
    jobs = tmp_path / "jobs"
    code, out, err = run_cli("compute", "export", calib, "--method", "spice=psi4:spice",
                             "-o", jobs, "--json")
    assert code == 0, err
    n_jobs = json.loads(out)["jobs"]
    assert n_jobs == 8 + 4  # the molecules and the isolated H, C, N, O
    script = (jobs / "submit.slurm").read_text()
    assert "#SBATCH --array=1-12" in script and "run_job.sh" in script
    assert len((jobs / "jobs.txt").read_text().split()) == n_jobs

    # the array, killed while running its 5th job
    assert _queue(standin, jobs, FAKE_PSI4_DIE_AT="5") != 0
    done = sorted(p.parent.name for p in jobs.glob("*/.tealign-done"))
    assert len(done) == 4
    store = tmp_path / "calib.extxyz.store"
    code, _, err = run_cli("compute", "import", jobs, "-o", tmp_path / "calib.extxyz")
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("tealign: error:")]
    assert len(lines) == n_jobs - 4, err
    assert all("field 'result.json': missing" in ln for ln in lines)
    from tealign.compute.store import JobStore

    with JobStore(store) as s:
        assert s.count() == {}  # nothing imported

    # resubmitted: the four finished jobs are not run again
    calls_before = standin["log"].read_text().splitlines()
    assert _queue(standin, jobs) == 0
    calls = standin["log"].read_text().splitlines()[len(calls_before):]
    assert len(calls) == n_jobs - 4 and not set(calls) & set(calls_before[:4])

    code, out, err = run_cli("compute", "import", jobs, "-o", tmp_path / "calib.extxyz",
                             "--json")
    assert code == 0, err
    r = json.loads(out)
    assert (r["imported"], r["already"], r["computed"], r["frames"]) == (n_jobs, 0, 0, 8)
    b = read_batch(tmp_path / "calib.extxyz")
    # the stored energy is the DFT part (Psi4's total minus its D3), D3 stored apart
    from ase.calculators.emt import EMT

    a = molecule("CH4")
    a.calc = EMT()
    k = b.info["mol_id"].tolist().index("CH4")
    assert b.info["energy_spice"][k] == pytest.approx(a.get_potential_energy(), abs=1e-9)
    assert b.info["d3_energy_spice"][k] < 0
    frame = ase.io.read(tmp_path / "calib.extxyz", index=k)
    assert np.allclose(frame.arrays["forces_spice"], a.get_forces(), atol=1e-8)

    # importing twice changes nothing
    before = _rows(store)
    code, out, err = run_cli("compute", "import", jobs, "-o", tmp_path / "calib2.extxyz",
                             "--store", store, "--json")
    assert code == 0 and json.loads(out)["imported"] == 0, err
    assert _rows(store) == before and len(before) == n_jobs

    # compute calib with the export's method and xTB: the psi4 jobs come from the store
    code, out, err = run_cli("compute", "calib", "--molecules", calib, "--method", "xtb:gfn2",
                             "--method", "spice=psi4:spice", "-o",
                             tmp_path / "both.extxyz", "--store", store, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["failed"] == 0 and r["computed"] == 8 + 4  # xTB only
    code, out, err = run_cli("fit", tmp_path / "both.extxyz",
                             "--source-key", "energy_xtb_gfn2",
                             "--target-key", "energy_spice",
                             "--source-e0", tmp_path / "both.atoms_xtb_gfn2.json",
                             "--target-e0", tmp_path / "both.atoms_spice.json",
                             "-o", tmp_path / "alignment.json", "--bootstrap", "20",
                             "--folds", "2", "--json")
    assert code == 0, err
    assert json.loads((tmp_path / "alignment.json").read_text())


def _exported_and_run(tmp_path: Path, run_cli, standin, names: tuple[str, ...]) -> Path:
    """The G2 molecules ``names`` exported for the stand-in Psi4 and run by the stand-in
    queue; the jobs directory."""
    calib = tmp_path / "mols.extxyz"
    frames = [molecule(n) for n in names]
    for f, n in zip(frames, names):
        f.info["mol_id"] = n
    ase.io.write(calib, frames, format="extxyz")
    jobs = tmp_path / "jobs"
    assert run_cli("compute", "export", calib, "--method", "spice=psi4:spice", "-o",
                   jobs)[0] == 0
    assert _queue(standin, jobs) == 0
    return jobs


def test_import_refuses_bad_jobs_one_line_each(tmp_path, run_cli, standin):
    """A missing output, a half-written one, an unconverged SCF and a setting that differs
    from the preset: one line each naming the job directory and the field; nothing stored."""
    jobs = _exported_and_run(tmp_path, run_cli, standin, ("H2O", "NH3", "CH4", "H2"))
    names = (jobs / "jobs.txt").read_text().split()  # atoms H, C, N, O first, then molecules
    records = {n: json.loads((jobs / n / "job.json").read_text()) for n in names}
    by_mol = {r["name"]: n for n, r in records.items()}
    (jobs / by_mol["H2O"] / "result.json").unlink()
    text = (jobs / by_mol["NH3"] / "result.json").read_text()
    (jobs / by_mol["NH3"] / "result.json").write_text(text[: len(text) // 2])
    data = json.loads((jobs / by_mol["CH4"] / "result.json").read_text())
    data["model"]["basis"] = "def2-svp"
    (jobs / by_mol["CH4"] / "result.json").write_text(json.dumps(data))
    unconverged = jobs / by_mol["H2"]
    (unconverged / ".tealign-done").unlink()
    (unconverged / "result.json").unlink()
    subprocess.run(["bash", str(jobs / "run_job.sh"), str(names.index(by_mol["H2"]) + 1)],
                   env={**standin["env"], "FAKE_PSI4_UNCONVERGED": "1"}, check=False)
    code, _, err = run_cli("compute", "import", jobs, "-o", tmp_path / "out.extxyz")
    assert code == 2
    lines = sorted(ln for ln in err.splitlines() if ln.startswith("tealign: error:"))
    assert len(lines) == 4, err
    want = {by_mol["H2O"]: "field 'result.json': missing",
            by_mol["NH3"]: "field 'result.json': half-written",
            by_mol["CH4"]: "field 'basis': Psi4 used basis='def2-svp'",
            by_mol["H2"]: "field 'scf': SCF did not converge"}
    for job_dir, needle in want.items():
        assert sum(f"{jobs / job_dir}: {needle}" in ln for ln in lines) == 1, (needle, err)
    assert not (tmp_path / "out.extxyz").exists()
    from tealign.compute.store import JobStore

    with JobStore(tmp_path / "out.extxyz.store") as s:
        assert s.count() == {}


def test_direct_run_through_the_store(tmp_path, run_cli, standin, monkeypatch):
    """The code installed where tealign runs (here the stand-in psi4): compute calib runs it
    in scratch directories through the resumable store; the keys are those of an import."""
    monkeypatch.syspath_prepend(str(standin["fake"]))
    monkeypatch.setenv("FAKE_PSI4_LOG", str(standin["log"]))
    monkeypatch.setenv("PYTHONPATH", standin["env"]["PYTHONPATH"])
    calib = tmp_path / "mols.extxyz"
    a = molecule("H2O")
    a.info["mol_id"] = "H2O"
    ase.io.write(calib, [a], format="extxyz")
    out = tmp_path / "direct.extxyz"
    code, stdout, err = run_cli("compute", "calib", "--molecules", calib, "--method",
                                "psi4:spice", "-o", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["computed"] == 3 and json.loads(stdout)["failed"] == 0
    jobs = tmp_path / "jobs"
    assert run_cli("compute", "export", calib, "--method", "psi4:spice", "-o", jobs)[0] == 0
    keys = {e["key"] for e in json.loads((jobs / "manifest.json").read_text())["jobs"]}
    from tealign.compute.store import JobStore

    with JobStore(out.with_name(out.name + ".store")) as s:
        assert s.statuses() == dict.fromkeys(keys, "done")


# ----------------------------------------------------------------------------- cluster
CLUSTER = """
[cluster]
kind = "{kind}"
queue = "normal"
account = "chem123"
cores = 16
processes = 1
memory = "64GB"
walltime = "04:00:00"
jobs = 2
prologue = ["module load vasp/6.4.2", "source ~/miniforge3/bin/activate tealign"]
job_extra = ["--constraint=cpu"]
"""


def test_cluster_file_to_dask_jobqueue_script(tmp_path):
    pytest.importorskip("dask_jobqueue")
    from tealign.compute.cluster import array_script, job_script, load_config

    path = tmp_path / "slurm.toml"
    path.write_text(CLUSTER.format(kind="slurm"))
    script = job_script(load_config(path))
    for line in ("#SBATCH -p normal", "#SBATCH -A chem123", "#SBATCH --cpus-per-task=16",
                 "#SBATCH -t 04:00:00", "#SBATCH --constraint=cpu", "module load vasp/6.4.2",
                 "source ~/miniforge3/bin/activate tealign"):
        assert line in script, (line, script)
    assert re.search(r"#SBATCH --mem=(59G|60G|64G)", script)
    assert re.search(r"distributed\.cli\.dask_worker|dask[- ]worker", script)
    path.write_text(CLUSTER.format(kind="pbs"))
    pbs = job_script(load_config(path))
    assert "#PBS -q normal" in pbs and "walltime=04:00:00" in pbs
    arr = array_script(load_config(path), 7)
    assert "#PBS -J 1-7" in arr and "module load vasp/6.4.2" in arr
    path.write_text(CLUSTER.format(kind="slurm").replace("cores = 16", "cores = 0"))
    with pytest.raises(SetupError) as e:
        load_config(path)
    assert e.value.field == "cluster.cores" and str(path) in e.value.line()


def test_compute_with_a_local_cluster_file(tmp_path, run_cli):
    """--cluster with kind = local: the jobs run on a distributed LocalCluster."""
    pytest.importorskip("distributed")
    path = tmp_path / "local.toml"
    path.write_text('[cluster]\nkind = "local"\njobs = 1\n')
    code, out, err = run_cli("compute", "atoms", "--elements", "H,O", "--method", "xtb:gfn2",
                             "-o", tmp_path / "atoms.json", "--cluster", path, "--json")
    assert code == 0, err
    assert json.loads(out)["computed"] == 2


def test_vasp_physics_the_preset_did_not_ask_for_is_refused():
    """Another functional, dispersion, hybrid exchange or +U reported by VASP but absent from
    the preset are refused by field; VASP's defaults for them pass."""
    from tealign.compute.external.vasp import check_settings

    want = {"ENCUT": 400.0}
    quiet = {"ENCUT": 400.0, "GGA": "--", "METAGGA": "--", "IVDW": 0, "LHFCALC": False,
             "LDAU": False, "PSTRESS": 0.0}
    assert check_settings(want, quiet) == []
    assert check_settings(want, {**quiet, "GGA": "PE"}) == []
    loud = {**quiet, "GGA": "PS", "IVDW": 11, "LHFCALC": True, "LDAU": True,
            "METAGGA": "SCAN"}
    assert sorted(f for f, _ in check_settings(want, loud)) == sorted(
        ["GGA", "IVDW", "LHFCALC", "LDAU", "METAGGA"])
    assert check_settings({"ENCUT": 400.0, "LDAUU": [5.3, 0.0]},
                          {**quiet, "LDAU": True, "LDAUU": [5.3, 0.0]}) == []


def test_import_replaces_a_failure_the_store_held(tmp_path, run_cli, standin):
    """A job that failed locally (held as failed in the store) and then ran on the cluster:
    import stores the cluster's result in its place, counts it, and the calibration set has
    every frame; a job done in the store is not imported again."""
    from tealign.compute.store import JobStore

    jobs = _exported_and_run(tmp_path, run_cli, standin, ("H2O", "NH3"))
    names = (jobs / "jobs.txt").read_text().split()
    records = {json.loads((jobs / n / "job.json").read_text())["name"]:
               json.loads((jobs / n / "job.json").read_text()) for n in names}
    store = tmp_path / "out.extxyz.store"
    with JobStore(store) as s:  # H2O's job failed here before it ran on the cluster
        r = records["H2O"]
        s.put(r["key"], r["structure"], r["settings"], r["label"], r["name"], None,
              "local crash", 1.0)
    code, out, err = run_cli("compute", "import", jobs, "-o", tmp_path / "out.extxyz",
                             "--json")
    assert code == 0, err
    res = json.loads(out)
    assert (res["imported"], res["already"], res["replaced_failed"]) == (len(names), 0, 1)
    assert (res["frames"], res["frames_rejected"]) == (2, 0)
    with JobStore(store) as s:
        assert s.count() == {"done": len(names)}
    code, out, err = run_cli("compute", "import", jobs, "-o", tmp_path / "out2.extxyz",
                             "--store", store)
    assert code == 0, err
    assert f"imported 0 jobs ({len(names)} were in the store)" in " ".join(err.split())
