"""ORCA through ASE: the ``omol25`` preset, input files written by ASE's ORCA writer
(``ase.io.orca.write_orca``), outputs read by ASE's ORCA readers (``orca.out`` for the
energy, ``orca.engrad`` for the gradient) and the keywords ORCA echoes, checked against the
preset.

``omol25``: OMol25's level (Levine et al., arXiv:2505.08762; ORCA 6): ωB97M-V/def2-TZVPD with
VV10 non-local correlation included, RIJCOSX with def2/J, DEFGRID3, no symmetry, SCF
``Convergence Tight`` with THRESH 1e-12 and TCUT 1e-13, at most 300 SCF cycles (the keywords
of fairchem's OMol25 ORCA recipe, ``fairchem.data.omol.orca.calc``). OMol25 used a def2-TZVPD
file shipped with fairchem (``%basis GTOName "def2-tzvpd.bas"``); this preset uses ORCA's
built-in def2-TZVPD, which the docs flag as the one difference (put the file beside each job
and add the block through ``;basis_file=def2-tzvpd.bas`` to match it exactly).

Units: ORCA prints hartree and hartree/bohr; ASE's readers convert with ASE's (CODATA 2014)
constants, which tealign undoes and redoes with its own (CODATA 2018): energies eV, forces eV/Å.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ase import Atoms

from tealign.compute.external.common import CodeNotInstalled, JobProblem

COMMAND_ENV = "ASE_ORCA_COMMAND"
INPUTS = ("orca.inp",)
#: how an export's ``run_job.sh`` runs ORCA in a job directory on the cluster (bash)
CLUSTER_COMMAND = "${ASE_ORCA_COMMAND:-orca} (full path: ORCA needs it for MPI)"
CLUSTER_SCRIPT = '"${ASE_ORCA_COMMAND:-orca}" orca.inp > orca.out 2> orca.err'


def command() -> str:
    """The shell command that runs ORCA in a job directory (``$ASE_ORCA_COMMAND`` or ``orca``
    on the PATH); :class:`CodeNotInstalled` when there is neither."""
    exe = os.environ.get("ASE_ORCA_COMMAND") or shutil.which("orca")
    if exe:
        return f"{exe} orca.inp > orca.out"
    raise CodeNotInstalled("ORCA is not set up here: set ASE_ORCA_COMMAND to the full path "
                           "of the orca binary (ORCA needs it for parallel runs), or run it "
                           "elsewhere with `tealign compute export`")

PRESETS: dict[str, dict] = {
    "omol25": {
        "functional": "wb97m-v", "basis": "def2-tzvpd",
        "settings": {"keywords": "wB97M-V def2-TZVPD RIJCOSX def2/J NoUseSym DIIS NOSOSCF "
                                 "NormalConv DEFGRID3",
                     "scf_convergence": "Tight", "scf_maxiter": 300, "thresh": 1e-12,
                     "tcut": 1e-13, "basis_file": ""},
        "source": "OMol25 (Levine et al., arXiv:2505.08762): wB97M-V/def2-TZVPD in ORCA 6, "
                  "RIJCOSX def2/J, DEFGRID3, tight SCF (fairchem OMol25 ORCA recipe)",
    },
}


def input_parameters(settings: dict, charge: int, multiplicity: int,
                     forces: bool = True) -> dict:
    """``ase.io.orca.write_orca`` parameters: the simple-input line (with EnGrad when forces
    are wanted, so ORCA writes the gradient) and the blocks."""
    s = settings
    blocks = [f"%scf Convergence {s['scf_convergence']} MaxIter {int(s['scf_maxiter'])} "
              f"THRESH {float(s['thresh']):.0e} TCUT {float(s['tcut']):.0e} end"]
    if s.get("basis_file"):
        blocks.append(f'%basis GTOName "{s["basis_file"]}" end')
    return {"orcasimpleinput": s["keywords"] + (" EnGrad" if forces else ""),
            "orcablocks": "\n".join(blocks),
            "charge": int(charge), "mult": int(multiplicity)}


def write_job(directory: Path, settings: dict, atoms: Atoms, charge: int = 0,
              multiplicity: int | None = None, isolated_atom: bool = False,
              forces: bool = True) -> dict:
    """Write ``orca.inp`` (Å coordinates) into ``directory``; returns the expected keywords."""
    from ase.io.orca import write_orca

    mult = multiplicity or 1 + (int(atoms.numbers.sum()) - charge) % 2
    if atoms.pbc.any():
        raise JobProblem("pbc", "ORCA computes molecules; this frame is periodic")
    params = input_parameters(settings, charge, mult, forces and not isolated_atom)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "orca.inp", "w") as fd:
        write_orca(fd, atoms, params)
    return {"keywords": sorted(k.lower() for k in params["orcasimpleinput"].split()),
            "scf_convergence": settings["scf_convergence"].lower(),
            "scf_maxiter": int(settings["scf_maxiter"]), "charge": int(charge), "mult": mult}


def echoed_settings(text: str) -> dict:
    """What ORCA echoes of its input (``|  n> ...`` lines): simple keywords, SCF convergence
    and MaxIter, charge and multiplicity."""
    lines = [m.group(1) for m in re.finditer(r"^\|\s*\d+>\s?(.*)$", text, re.M)]
    keywords = sorted(w.lower() for ln in lines if ln.lstrip().startswith("!")
                      for w in ln.strip().lstrip("!").split())
    body = " ".join(lines)
    used: dict = {"keywords": keywords}
    if m := re.search(r"convergence\s+(\w+)", body, re.I):
        used["scf_convergence"] = m.group(1).lower()
    if m := re.search(r"maxiter\s+(\d+)", body, re.I):
        used["scf_maxiter"] = int(m.group(1))
    if m := re.search(r"\*\s*xyz\s+(-?\d+)\s+(\d+)", body, re.I):
        used["charge"], used["mult"] = int(m.group(1)), int(m.group(2))
    if m := re.search(r"Program Version\s+(\S+)", text):
        used["version"] = m.group(1)
    return used


def read_job(directory: Path) -> tuple[dict, dict, bool]:
    """(results, settings used, SCF converged) of one ORCA job: energy eV, forces eV/Å."""
    import ase.io
    from ase.units import Bohr, Hartree

    from tealign import units

    out = directory / "orca.out"
    if not out.exists():
        raise JobProblem("orca.out", "missing (the job did not run)")
    text = out.read_text(errors="replace")
    used = echoed_settings(text)
    converged = "SCF NOT CONVERGED" not in text.upper() and not re.search(
        r"SCF (?:has )?not converged", text, re.I)
    if "ORCA TERMINATED NORMALLY" not in text:
        if not converged:
            return {}, used, False
        raise JobProblem("orca.out", "ORCA did not terminate normally (crashed or still "
                         "running)")
    try:
        atoms = ase.io.read(out, index=-1, format="orca-output")
    except Exception as exc:
        raise JobProblem("orca.out", f"unreadable ({type(exc).__name__}: {exc})") from None
    energy_ha = atoms.get_potential_energy() / Hartree
    res = {"energy": energy_ha * units.HARTREE_TO_EV, "forces": None, "stress": None,
           "source": "orca.out", "numbers": atoms.numbers.tolist()}
    engrad = directory / "orca.engrad"
    if engrad.exists():
        from ase.io.orca import read_orca_engrad

        forces = read_orca_engrad(str(engrad)) / (Hartree / Bohr)  # back to hartree/bohr
        res["forces"] = forces * units.HARTREE_PER_BOHR_TO_EV_PER_A
    return res, used, converged


def check_settings(expected: dict, used: dict) -> list[tuple[str, str]]:
    """(field, why) for each expected setting ORCA echoes with another value."""
    problems = []
    for key, want in expected.items():
        if key not in used:
            problems.append((key, f"orca.out does not echo {key}"))
            continue
        got = used[key]
        if key == "keywords":
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            if missing or extra:
                problems.append((key, f"ORCA ran '! {' '.join(got)}'; the preset asks "
                                 f"'! {' '.join(want)}'"))
        elif got != want:
            problems.append((key, f"ORCA used {key}={got!r}, the preset asks {want!r}"))
    return problems
