"""Psi4 through QCSchema: the ``spice`` preset, jobs written as QCSchema ``AtomicInput`` JSON
(the MolSSI schema Psi4 reads natively, ``psi4.schema_wrapper.run_qcschema``) and read back
from the ``AtomicResult`` JSON Psi4 returns — with the model, keywords, Psi4 version and SCF
iteration count it reports, checked against the preset.

``spice``: SPICE's level (Eastman et al., Sci. Data 10, 11 (2023); the QCFractal
specification ``spice_default``): ωB97M-D3(BJ)/def2-TZVPPD in Psi4 (1.4.1 for SPICE 1, the
TEA paper's QM9Psi4 used 1.9), gradient driver, Psi4's default keywords (density-fitted SCF).
The D3(BJ) term Psi4 adds is taken out of the energy and forces and stored apart, as for every
``-d3bj`` SPEC in tealign (energy = ``DFT FUNCTIONAL TOTAL ENERGY``; the D3(BJ) term is
tealign's own dftd3 value, checked against Psi4's ``DISPERSION CORRECTION ENERGY``).

Units: QCSchema carries bohr and hartree; geometries go out and gradients come back with
tealign's CODATA 2018 constants: energies eV, forces eV/Å.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms

from tealign import units
from tealign.compute.external.common import CodeNotInstalled, JobProblem

COMMAND_ENV = "psi4"  # the psi4 Python module (conda install psi4), not an environment variable
INPUTS = ("input.json",)
RUNNER = ("import json, psi4; r = psi4.schema_wrapper.run_qcschema(json.load(open("
          "'input.json'))); open('result.json.part', 'w').write(r.json()); "
          "import os; os.replace('result.json.part', 'result.json')")
#: how an export's ``run_job.sh`` runs Psi4 in a job directory on the cluster (bash), and the
#: file it runs, written into every job directory
CLUSTER_COMMAND = "${TEALIGN_PSI4_PYTHON:-python} (a Python where `import psi4` works)"
CLUSTER_SCRIPT = '${TEALIGN_PSI4_PYTHON:-python} -c "$(cat RUNNER.py)" > psi4.stdout 2> psi4.stderr'
JOB_FILES = {"RUNNER.py": RUNNER + "\n"}


def command() -> str:
    """The shell command that runs Psi4 in a job directory (this Python with :data:`RUNNER`);
    :class:`CodeNotInstalled` when the psi4 module does not import here."""
    import importlib.util
    import shlex
    import sys

    if importlib.util.find_spec("psi4") is None:
        raise CodeNotInstalled("Psi4 is not installed here: the psi4 Python module must "
                               "import (conda install -c conda-forge psi4), or run it "
                               "elsewhere with `tealign compute export`")
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(RUNNER)}"

PRESETS: dict[str, dict] = {
    "spice": {
        "functional": "wb97m-d3bj", "basis": "def2-tzvppd",
        "settings": {"method": "wb97m-d3bj", "basis_set": "def2-tzvppd", "keywords": {}},
        "source": "SPICE (Eastman et al., Sci. Data 10, 11 (2023)): wB97M-D3BJ/def2-TZVPPD in "
                  "Psi4, QCFractal spec spice_default",
    },
}


def write_job(directory: Path, settings: dict, atoms: Atoms, charge: int = 0,
              multiplicity: int | None = None, isolated_atom: bool = False,
              forces: bool = True) -> dict:
    """Write ``input.json`` (QCSchema AtomicInput, geometry in bohr) into ``directory``: the
    gradient driver, or the energy driver for energy-only jobs and isolated atoms."""
    if atoms.pbc.any():
        raise JobProblem("pbc", "Psi4 computes molecules; this frame is periodic")
    mult = multiplicity or 1 + (int(atoms.numbers.sum()) - charge) % 2
    keywords = dict(settings["keywords"])
    if mult != 1:
        keywords.setdefault("reference", "uks")
    driver = "gradient" if forces and not isolated_atom else "energy"
    payload = {
        "schema_name": "qcschema_input", "schema_version": 1, "driver": driver,
        "model": {"method": settings["method"], "basis": settings["basis_set"]},
        "keywords": keywords,
        "molecule": {"schema_name": "qcschema_molecule", "schema_version": 2,
                     "symbols": atoms.get_chemical_symbols(),
                     "geometry": (atoms.positions / units.BOHR_TO_ANGSTROM).ravel().tolist(),
                     "molecular_charge": float(charge), "molecular_multiplicity": mult,
                     "fix_com": True, "fix_orientation": True},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "input.json").write_text(json.dumps(payload, indent=1))
    return {"method": settings["method"].lower(), "basis": settings["basis_set"].lower(),
            "keywords": {k.lower(): v for k, v in keywords.items()}, "driver": driver,
            "charge": float(charge), "mult": mult}


def read_job(directory: Path) -> tuple[dict, dict, bool]:
    """(results, settings used, SCF converged): energy (DFT without D3, eV), forces (DFT
    without D3, eV/Å) and Psi4's D3(BJ) energy (eV) under ``psi4_dispersion``."""
    path = directory / "result.json"
    if not path.exists():
        raise JobProblem("result.json", "missing (the job did not run)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise JobProblem("result.json", f"half-written or not JSON ({exc})") from None
    model = data.get("model", {})
    used = {"method": str(model.get("method", "")).lower(),
            "basis": str(model.get("basis", "")).lower(),
            "keywords": {k.lower(): v for k, v in (data.get("keywords") or {}).items()},
            "driver": data.get("driver"),
            "charge": float(data.get("molecule", {}).get("molecular_charge", 0.0)),
            "mult": int(data.get("molecule", {}).get("molecular_multiplicity", 1)),
            "version": (data.get("provenance") or {}).get("version")}
    if not data.get("success", False):
        message = str((data.get("error") or {}).get("error_message", "")).strip()
        if "converge" in message.lower():
            return {}, used, False
        raise JobProblem("result.json", "Psi4 failed: "
                         + (message.splitlines()[-1] if message else "no error message"))
    qcvars = {k.upper(): v for k, v in (data.get("extras", {}).get("qcvars") or {}).items()}
    total = float(data["properties"]["return_energy"])
    disp = float(qcvars.get("DISPERSION CORRECTION ENERGY", 0.0))
    energy = float(qcvars.get("DFT FUNCTIONAL TOTAL ENERGY", total - disp))
    grad = (np.asarray(data["return_result"], dtype=float).reshape(-1, 3)
            if data.get("driver") == "gradient" else None)
    symbols = data.get("molecule", {}).get("symbols", [])
    from ase.data import atomic_numbers

    res = {"energy": energy * units.HARTREE_TO_EV,
           "total_forces": None if grad is None else -grad
           * units.HARTREE_PER_BOHR_TO_EV_PER_A,
           "psi4_dispersion": disp * units.HARTREE_TO_EV, "forces": None, "stress": None,
           "source": "result.json", "numbers": [atomic_numbers[s.capitalize()]
                                                for s in symbols] or None}
    return res, used, True


def check_settings(expected: dict, used: dict) -> list[tuple[str, str]]:
    """(field, why) for each expected setting Psi4 reports with another value."""
    return [(key, f"Psi4 used {key}={used.get(key)!r}, the preset asks {want!r}")
            for key, want in expected.items() if used.get(key) != want]
