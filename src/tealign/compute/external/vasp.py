"""VASP through ASE: presets, input decks (ASE's ``Vasp`` calculator writes INCAR, KPOINTS and
POSCAR), outputs read with ``ase.io.read`` (vasprun.xml, else OUTCAR) and the settings VASP
reports that it used, checked against the preset.

Presets (``vasp:PRESET`` SPECs; every value below goes into the SPEC's settings and its store
key):

- ``mptrj``: Materials Project's GGA(+U) static calculation as pymatgen's ``MPStaticSet``
  writes it (the MPRelaxSet parameters with NSW 0, ISMEAR -5, LREAL False, LORBIT 11,
  LCHARG True; Jain et al., APL Mater. 1, 011002 (2013); MPtrj: Deng et al., Nat. Mach.
  Intell. 5, 1031 (2023)): PBE PAW (MP's POTCAR choices), ENCUT 520 eV, EDIFF 5e-5 eV per
  atom, PREC Accurate, ALGO Fast, ISPIN 2 with MP's initial moments, LASPH, NELM 100. +U:
  MP's rule, applied per structure — when the most electronegative element is O or F, the
  d states of Co, Cr, Fe, Mn, Mo, Ni, V, W get Dudarev U (LDAUTYPE 2) of 3.32, 3.7, 5.3, 3.9,
  4.38, 6.2, 3.25, 6.2 eV; otherwise plain GGA. LMAXMIX 4 with d elements (Z > 20), 6 with
  f elements (Z > 56). k-points: MP's density of 100 per Å⁻³ of reciprocal volume (pymatgen's
  ``automatic_density_by_vol`` mesh sizes), Γ-centred. The energies are *not* MP2020-
  corrected: the correction is a per-species shift of fitted formation energies, not part of
  a DFT energy, and TEA aligns raw energies.
- ``paper-qm9vasp``: the QM9VASP settings of the TEA paper (Takamoto et al., §C.1): VASP PBE,
  ENCUT 400 eV, EDIFF 1e-5 eV, ISYM 0, PREC Accurate, ISMEAR 0, SIGMA 0.1 eV, 10 Å vacuum
  around each molecule, Γ point.

Molecules and isolated atoms (non-periodic input) are centred in a box with ``vacuum`` Å on
each side and computed at Γ with Gaussian smearing (ISMEAR 0; the tetrahedron method needs a
k-mesh); isolated atoms are spin-polarised with NUPDOWN fixed at 2S and ISYM 0.

Units: energies eV (VASP's, which ASE reads unchanged), forces eV/Å, stress eV/Å³ with ASE's
sign (tension positive), as ``ase.io.read`` returns them.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from ase import Atoms

from tealign.compute.backends.base import place_in_box
from tealign.compute.external.common import CodeNotInstalled, JobProblem

COMMAND_ENV = "ASE_VASP_COMMAND"
INPUTS = ("INCAR", "KPOINTS", "POSCAR")
#: how an export's ``run_job.sh`` runs VASP in a job directory on the cluster (bash): the
#: POTCAR concatenated from ``$VASP_PP_PATH`` in POSCAR's species order, then the command
CLUSTER_COMMAND = "${TEALIGN_VASP_COMMAND:-${ASE_VASP_COMMAND:-vasp_std}}"
CLUSTER_SCRIPT = r"""if [ ! -e POTCAR ]; then
  : "${VASP_PP_PATH:?set VASP_PP_PATH to the folder holding potpaw_PBE}"
  for s in $(cat POTCAR.symbols); do cat "$VASP_PP_PATH/potpaw_PBE/$s/POTCAR"; done \
    > POTCAR.part && mv POTCAR.part POTCAR || exit 2
fi
${TEALIGN_VASP_COMMAND:-${ASE_VASP_COMMAND:-vasp_std}} > vasp.stdout 2> vasp.stderr"""


def command() -> str:
    """The shell command that runs VASP in a job directory (``$ASE_VASP_COMMAND`` or
    ``$VASP_COMMAND``); :class:`CodeNotInstalled` when VASP or its POTCARs are not set up."""
    cmd = os.environ.get("ASE_VASP_COMMAND") or os.environ.get("VASP_COMMAND")
    if not cmd:
        raise CodeNotInstalled("VASP is not set up here: set ASE_VASP_COMMAND (e.g. "
                               "'mpirun vasp_std') and VASP_PP_PATH, or run it elsewhere "
                               "with `tealign compute export`")
    if not os.environ.get("VASP_PP_PATH"):
        raise CodeNotInstalled("VASP_PP_PATH is not set: ASE needs it to write POTCAR "
                               "(the folder holding potpaw_PBE)")
    return cmd

#: MP's U values (eV) on the d states, keyed by the structure's most electronegative element
#: (pymatgen MPRelaxSet.yaml; Jain et al., Phys. Rev. B 84, 045115 (2011)).
MP_U = {"O": {"Co": 3.32, "Cr": 3.7, "Fe": 5.3, "Mn": 3.9, "Mo": 4.38, "Ni": 6.2, "V": 3.25,
              "W": 6.2}}
MP_U["F"] = dict(MP_U["O"])
#: MP's initial magnetic moments (μB) of neutral elements; every other element starts at 0.6.
MP_MAGMOM = {"Ce": 5.0, "Co": 0.6, "Cr": 5.0, "Eu": 10.0, "Fe": 5.0, "Mn": 5.0, "Mo": 5.0,
             "Ni": 5.0, "V": 5.0, "W": 5.0}
#: MP's PAW PBE POTCAR per element where it is not the plain one (pymatgen MPRelaxSet.yaml).
MP_POTCAR = {
    "Ba": "_sv", "Be": "_sv", "Ca": "_sv", "Cr": "_pv", "Cs": "_sv", "Cu": "_pv", "Dy": "_3",
    "Er": "_3", "Fe": "_pv", "Ga": "_d", "Ge": "_d", "Hf": "_pv", "Ho": "_3", "In": "_d",
    "K": "_sv", "Li": "_sv", "Lu": "_3", "Mg": "_pv", "Mn": "_pv", "Mo": "_pv", "Na": "_pv",
    "Nb": "_pv", "Nd": "_3", "Ni": "_pv", "Os": "_pv", "Pb": "_d", "Pm": "_3", "Pr": "_3",
    "Rb": "_sv", "Re": "_pv", "Rh": "_pv", "Ru": "_pv", "Sc": "_sv", "Sm": "_3", "Sn": "_d",
    "Sr": "_sv", "Ta": "_pv", "Tb": "_3", "Tc": "_pv", "Ti": "_pv", "Tl": "_d", "Tm": "_3",
    "V": "_pv", "W": "_pv", "Y": "_sv", "Yb": "_2", "Zr": "_sv",
}

PRESETS: dict[str, dict] = {
    "mptrj": {
        "functional": "pbe", "basis": "pw520",
        "settings": {"encut": 520.0, "ediff_per_atom": 5e-5, "ediff": None, "prec": "Accurate",
                     "algo": "Fast", "ismear": -5, "sigma": 0.05, "ispin": 2, "lasph": True,
                     "lreal": False, "nelm": 100, "isym": None, "hubbard": "mp",
                     "magmom": "mp", "potcars": "mp", "kpt_reciprocal_density": 100.0,
                     "vacuum": 10.0},
        "source": "Materials Project GGA(+U) static (pymatgen MPStaticSet)",
    },
    "paper-qm9vasp": {
        "functional": "pbe", "basis": "pw400",
        "settings": {"encut": 400.0, "ediff_per_atom": None, "ediff": 1e-5, "prec": "Accurate",
                     "algo": "Normal", "ismear": 0, "sigma": 0.1, "ispin": 1, "lasph": False,
                     "lreal": False, "nelm": 60, "isym": 0, "hubbard": "none",
                     "magmom": "none", "potcars": "plain", "kpt_reciprocal_density": None,
                     "vacuum": 10.0},
        "source": "TEA paper §C.1 (QM9VASP: VASP 5.4.4, PBE, ENCUT 400, EDIFF 1e-5, ISYM 0, "
                  "PREC Accurate, ISMEAR 0, SIGMA 0.1, 10 Å vacuum)",
    },
}


def _electronegativity(symbol: str) -> float:
    from pymatgen.core import Element

    return float(Element(symbol).X)


def hubbard_u(symbols: list[str]) -> dict[str, float]:
    """MP's +U (eV) per element of a structure: non-empty only when its most electronegative
    element is O or F (pymatgen ranks by Pauling electronegativity)."""
    species = sorted(set(symbols), key=_electronegativity)
    table = MP_U.get(species[-1], {})
    return {el: table[el] for el in species if el in table}


def mp_mesh(atoms: Atoms, density: float) -> tuple[int, int, int]:
    """k-mesh sizes of MP's ``reciprocal_density`` rule: ``density`` points per Å⁻³ of
    reciprocal volume (2π included), spread as n_i = floor(max((N a b c)^(1/3) / l_i, 1))."""
    lengths = atoms.cell.lengths()
    recip_volume = (2 * math.pi) ** 3 / atoms.get_volume()
    kppa = density * recip_volume * len(atoms)
    if abs(math.floor(kppa ** (1 / 3) + 0.5) ** 3 - kppa) < 1:
        kppa += kppa * 0.01
    mult = (kppa / len(atoms) * float(np.prod(lengths))) ** (1 / 3)
    return tuple(int(math.floor(max(mult / a, 1))) for a in lengths)  # type: ignore[return-value]


def incar_parameters(settings: dict, atoms: Atoms, multiplicity: int | None = None,
                     isolated_atom: bool = False) -> tuple[dict, Atoms]:
    """ASE ``Vasp`` keyword arguments for one structure and the structure to write (a molecule
    or atom boxed in vacuum). Raises :class:`JobProblem` for what the preset cannot do."""
    s = settings
    work = atoms.copy()
    periodic = bool(atoms.pbc.any())
    symbols = work.get_chemical_symbols()
    params: dict = {"xc": "PBE", "encut": float(s["encut"]), "prec": s["prec"],
                    "algo": s["algo"], "ismear": int(s["ismear"]), "sigma": float(s["sigma"]),
                    "lasph": bool(s["lasph"]), "lreal": bool(s["lreal"]), "nelm": int(s["nelm"]),
                    "nsw": 0}
    if s["ediff"] is not None:
        params["ediff"] = float(s["ediff"])
    else:
        params["ediff"] = float(s["ediff_per_atom"]) * len(work)
    if s["isym"] is not None:
        params["isym"] = int(s["isym"])
    if s["potcars"] == "mp":
        params["setups"] = {el: MP_POTCAR[el] for el in set(symbols) if el in MP_POTCAR}
        params.update(lorbit=11, lwave=False, lcharg=True)
    spin = int(s["ispin"])
    if not periodic:
        place_in_box(work, s["vacuum"], isolated_atom)
        params.update(kpts=(1, 1, 1), gamma=True, ismear=0)
    else:
        density = s["kpt_reciprocal_density"]
        if density is None:
            raise JobProblem("kpts", "this preset is for molecules (Γ point in a vacuum box); "
                             "periodic cells need a k-mesh rule")
        params.update(kpts=mp_mesh(work, float(density)), gamma=True)
    mult = multiplicity or 1
    if isolated_atom or mult != 1:
        spin = 2
        params["nupdown"] = mult - 1
        params["isym"] = 0
        moments = np.zeros(len(work))
        moments[0] = mult - 1
        work.set_initial_magnetic_moments(moments)
    elif spin == 2 and s["magmom"] == "mp":
        work.set_initial_magnetic_moments([MP_MAGMOM.get(el, 0.6) for el in symbols])
    params["ispin"] = spin
    if s["hubbard"] == "mp" and periodic:
        u = hubbard_u(symbols)
        if u:
            params.update(ldau=True, ldautype=2, ldauprint=1, ldau_luj={
                el: {"L": 2 if el in u else 0, "U": u.get(el, 0.0), "J": 0.0}
                for el in set(symbols)})
    if s["potcars"] == "mp" and any(z > 20 for z in work.numbers):
        params["lmaxmix"] = 6 if any(z > 56 for z in work.numbers) else 4
    return params, work


def expected_incar(params: dict, atoms_sorted: Atoms, species: list[str]) -> dict:
    """The INCAR keys (upper case) VASP should report back for ``params``, for the check."""
    exp = {k.upper(): v for k, v in params.items()
           if k not in ("xc", "setups", "kpts", "gamma", "ldau_luj")}
    if "ldau_luj" in params:
        luj = params["ldau_luj"]
        exp["LDAUU"] = [luj[el]["U"] for el in species]
    return exp


def write_job(directory: Path, settings: dict, atoms: Atoms, charge: int = 0,
              multiplicity: int | None = None, isolated_atom: bool = False,
              forces: bool = True) -> dict:
    """Write INCAR, KPOINTS, POSCAR and POTCAR.symbols (the POTCARs to concatenate; ASE writes
    POTCAR itself when ``$VASP_PP_PATH`` holds them) into ``directory``; returns what the job
    record needs: the expected INCAR and the atom order (VASP groups atoms by species). VASP
    computes forces and stress with every SCF, so ``forces`` changes nothing here."""
    import os

    from ase.calculators.vasp import Vasp
    from ase.io.vasp import write_vasp

    if charge:
        raise JobProblem("charge", "charged cells are not written by the VASP presets "
                         "(set NELECT by hand)")
    params, work = incar_parameters(settings, atoms, multiplicity, isolated_atom)
    have_pp = bool(os.environ.get("VASP_PP_PATH"))

    class _Deck(Vasp):  # INCAR/KPOINTS/POSCAR without POTCAR files when none are installed
        def _build_pp_list(self, *args, **kwargs):
            return super()._build_pp_list(*args, **kwargs) if have_pp else []

    calc = _Deck(directory=str(directory), **params)
    calc.initialize(work)
    directory.mkdir(parents=True, exist_ok=True)
    calc.write_incar(work, directory=str(directory))
    calc.write_kpoints(atoms=work, directory=str(directory))
    write_vasp(str(directory / "POSCAR"), calc.atoms_sorted, symbol_count=calc.symbol_count,
               direct=True)
    species = [sym for sym, _ in calc.symbol_count]
    setups = params.get("setups", {})
    (directory / "POTCAR.symbols").write_text(
        "\n".join(f"{el}{setups.get(el, '')}" for el in species) + "\n")
    if have_pp:
        calc.write_potcar(directory=str(directory))
    return {"incar": expected_incar(params, calc.atoms_sorted, species),
            "sort": [int(i) for i in calc.sort], "kpts": list(params["kpts"]),
            "cell": work.cell[:].tolist(), "positions": work.positions.tolist()}


# ----------------------------------------------------------------------------- reading
def _xml_value(elem) -> object:
    text = (elem.text or "").strip()
    kind = elem.get("type", "float")
    if elem.tag == "v":
        return [_scalar(t, kind) for t in text.split()]
    return _scalar(text, kind)


def _scalar(text: str, kind: str):
    if kind == "logical":
        return text.upper().startswith(("T", ".T"))
    if kind == "int":
        return int(text)
    if kind == "string":
        return text
    try:
        return float(text)
    except ValueError:
        return text


def vasprun_settings(path: Path) -> dict:
    """Every parameter VASP reports in vasprun.xml's ``<parameters>`` (effective values,
    defaults included) overlaid by its echoed ``<incar>``, keys upper case; plus ``_NSTEPS``:
    electronic steps of the last ionic step."""
    root = ET.parse(path).getroot()
    used: dict = {}
    params = root.find("parameters")
    if params is not None:
        for elem in params.iter():
            if elem.tag in ("i", "v") and elem.get("name"):
                used[elem.get("name").upper()] = _xml_value(elem)
    incar = root.find("incar")
    if incar is not None:
        for elem in incar:
            if elem.get("name"):
                used[elem.get("name").upper()] = _xml_value(elem)
    if "ENCUT" not in used and "ENMAX" in used:  # <parameters> names the cutoff ENMAX
        used["ENCUT"] = used["ENMAX"]
    divisions = root.find("kpoints/generation/v[@name='divisions']")
    if divisions is not None:
        used["_KPTS"] = [int(float(x)) for x in (divisions.text or "").split()]
    calcs = root.findall("calculation")
    used["_NSTEPS"] = len(calcs[-1].findall("scstep")) if calcs else 0
    return used


_OUTCAR_KEYS = {"PREC": str, "ENCUT": float, "NELM": int, "EDIFF": float, "ISMEAR": int,
                "SIGMA": float, "ISPIN": int, "ISYM": int, "LREAL": str, "LASPH": str,
                "IBRION": int, "NSW": int, "ALGO": str, "NUPDOWN": float}


def outcar_settings(path: Path) -> dict:
    """The parameters OUTCAR prints in its header (``KEY = value``), keys upper case."""
    used: dict = {}
    text = path.read_text(errors="replace")
    for key, kind in _OUTCAR_KEYS.items():
        m = re.search(rf"(?:^|;)\s*{key}\s*=\s*([^\s;]+)", text, re.M)
        if m:
            raw = m.group(1)
            try:
                used[key] = kind(float(raw)) if kind is int else kind(raw)
            except ValueError:
                used[key] = raw
    return used


def read_job(directory: Path) -> tuple[dict, dict, bool]:
    """(results, settings used, SCF converged) of one finished VASP job: results as
    ``ase.io.read`` gives them (energy = ASE's ``energy``, extrapolated to σ→0, and
    ``free_energy`` eV; forces eV/Å in POSCAR order; stress eV/Å³, 3×3). vasprun.xml is
    read when present, else OUTCAR. Raises :class:`JobProblem` naming the file at fault."""
    import ase.io

    vasprun, outcar = directory / "vasprun.xml", directory / "OUTCAR"
    if vasprun.exists():
        source = vasprun
        try:
            used = vasprun_settings(vasprun)
            atoms = ase.io.read(vasprun, index=-1)
        except Exception as exc:  # ET.ParseError and whatever ASE's reader raises
            raise JobProblem("vasprun.xml", f"unreadable ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'truncated'}); "
                             "the run crashed or is still writing") from None
        converged = used["_NSTEPS"] < int(used.get("NELM", 60))
    elif outcar.exists():
        source = outcar
        try:
            atoms = ase.io.read(outcar, index=-1, format="vasp-out")
        except Exception as exc:
            raise JobProblem("OUTCAR", f"unreadable ({type(exc).__name__}: {exc})") from None
        used = outcar_settings(outcar)
        converged = _outcar_converged(outcar.read_text(errors="replace"))
    else:
        raise JobProblem("vasprun.xml", "missing (no vasprun.xml or OUTCAR: the job did not "
                         "run or crashed before its first SCF step)")
    calc = atoms.calc
    if calc is None or "energy" not in calc.results:
        raise JobProblem(source.name, "holds no final energy (crashed run)")
    res = {"energy": float(calc.results["energy"]),
           "free_energy": float(calc.results.get("free_energy", np.nan)),
           "forces": np.asarray(calc.results["forces"]) if "forces" in calc.results else None,
           "stress": (atoms.get_stress(voigt=False) if "stress" in calc.results else None),
           "source": source.name, "numbers": atoms.numbers.tolist()}
    return res, used, converged


def _outcar_converged(text: str) -> bool:
    """VASP 6 prints why the SCF loop stopped; VASP 5 is converged when the last ionic step's
    electronic steps stayed below NELM."""
    exits = re.findall(r"aborting loop (because EDIFF is reached|EDIFF was not reached)", text)
    if exits:
        return exits[-1].startswith("because")
    nelm = re.search(r"^\s+NELM\s*=\s*(\d+)", text, re.M)
    steps = re.findall(r"Iteration\s+\d+\(\s*(\d+)\)", text)
    return bool(nelm and steps) and int(steps[-1]) < int(nelm.group(1))


_TOL = {"ENCUT": 1e-6, "EDIFF": 1e-12, "SIGMA": 1e-8}


def check_settings(expected: dict, used: dict) -> list[tuple[str, str]]:
    """(field, why) for every expected INCAR key that VASP reports with another value; keys
    VASP did not report are skipped (OUTCAR prints only some)."""
    problems = []
    for key, want in expected.items():
        if key not in used:
            continue
        got = used[key]
        if isinstance(want, bool):
            ok = str(got).upper().lstrip(".").startswith("T") == want \
                if isinstance(got, str) else bool(got) == want
        elif isinstance(want, (int, float)) and not isinstance(want, bool):
            try:
                ok = abs(float(got) - float(want)) <= _TOL.get(key, 1e-9) * max(
                    1.0, abs(float(want)))
            except (TypeError, ValueError):
                ok = False
        elif isinstance(want, list):
            try:
                ok = np.allclose(np.asarray(got, float), np.asarray(want, float), atol=1e-6)
            except (TypeError, ValueError):
                ok = False
        else:
            ok = str(got).strip().lower()[:6] == str(want).strip().lower()[:6]
        if not ok:
            problems.append((key, f"VASP used {key}={got!r}, the preset asks {want!r}"))
    return problems + _unrequested_physics(expected, used)


#: INCAR keys that change the energy when set, with the value that means "off" (every preset
#: here is plain PBE(+U) without dispersion or hybrid exchange). PSTRESS is not among them: it
#: shifts the reported stress by a set pressure, not the energy
_OFF = {"IVDW": 0, "LHFCALC": False, "LUSE_VDW": False}


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().upper().lstrip(".").startswith("T")
    return bool(value)


def _unrequested_physics(expected: dict, used: dict) -> list[tuple[str, str]]:
    """(field, why) for physics the preset did not ask for but VASP reports: another
    functional (GGA other than PE or the POTCAR's default, any METAGGA), +U on a preset
    without it, dispersion or hybrid exchange."""
    problems = []
    gga = str(used.get("GGA", "--")).strip().upper()
    if gga not in ("PE", "--", ""):
        problems.append(("GGA", f"VASP used GGA={used['GGA']!r}, the preset is PBE (GGA = PE)"))
    meta = str(used.get("METAGGA", "--")).strip().upper()
    if meta not in ("--", "", "NONE"):
        problems.append(("METAGGA", f"VASP used METAGGA={used['METAGGA']!r}, the preset is "
                                    "PBE (no meta-GGA)"))
    if "LDAUU" not in expected and _truthy(used.get("LDAU", False)):
        problems.append(("LDAU", "VASP used +U (LDAU = .TRUE.), the preset asks none for "
                                 "this structure"))
    for key, off in _OFF.items():
        if key in expected or key not in used:
            continue
        got = used[key]
        on = _truthy(got) if isinstance(off, bool) else _number(got) != off
        if on:
            problems.append((key, f"VASP used {key}={got!r}, the preset does not set it "
                                  f"(off: {off!r})"))
    return problems


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
