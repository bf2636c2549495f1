"""Codes tealign does not run in its own process — VASP, ORCA and Psi4 — behind one interface.

A SPEC names a code and one of its presets, ``vasp:mptrj``, ``vasp:paper-qm9vasp``,
``orca:omol25``, ``psi4:spice``, optionally with ``;key=value`` overrides of the preset's
settings (``vasp:mptrj;encut=600``). Each code module (:mod:`.vasp`, :mod:`.orca`,
:mod:`.psi4`) has ``PRESETS``, ``write_job`` (the input deck, through ASE's writers or
QCSchema), ``read_job`` (results through ASE's readers or QCSchema, the settings the code
reports it used, SCF convergence), ``check_settings`` and ``command`` (how it runs here), and
one entry in :data:`BACKENDS` at the end of this file (its entry of the backend registry,
:func:`tealign.compute.backends.registry`).

The same two halves serve both ways of running: :func:`run_external` writes a job into a
scratch directory, runs the code there and reads it back (direct runs, when the code is
installed where tealign runs); :mod:`tealign.compute.exchange` writes them for a batch queue
and reads them back later.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
from ase import Atoms

from tealign.compute.backends.base import (
    Backend,
    CalculationFailed,
    CalculationResult,
    key_values,
    option_value,
)
from tealign.compute.external.common import CodeNotInstalled, JobProblem

__all__ = ["BACKENDS", "EXTERNAL_CODES", "CORE", "CodeNotInstalled", "JobProblem", "module",
           "preset", "parse_external", "write_job", "collect", "run_external", "code_command"]


def module(code: str) -> ModuleType:
    """The module of an external code: ``tealign.compute.external.<code>``, for a code of
    :data:`BACKENDS` (KeyError otherwise)."""
    import importlib

    if code not in BACKENDS:
        raise KeyError(code)
    return importlib.import_module(f"{__name__}.{code}")


def preset(code: str, name: str) -> dict:
    """The preset ``name`` of ``code``: functional, basis, settings, source."""
    return module(code).PRESETS[name]


def parse_external(code: str, rest: str, options: list[str]) -> tuple[str, str, str | None,
                                                                      dict]:
    """``code:PRESET[;key=value...]`` → (functional, basis, d3, settings); settings hold the
    preset name and every preset setting, overrides applied. SetupError on anything off."""
    from tealign.errors import SetupError

    presets = module(code).PRESETS
    name = rest.strip().lower()
    if name not in presets:
        raise SetupError(f"{code} presets: {', '.join(presets)} (not {name!r}); e.g. "
                         f"{code}:{next(iter(presets))}", field="--method")
    p = presets[name]
    settings = {"preset": name, **json.loads(json.dumps(p["settings"]))}
    for k, v in key_values(options):
        if k not in p["settings"] or k == "keywords" and code == "psi4":
            raise SetupError(f"unknown {code}:{name} setting {k!r}; known: "
                             f"{', '.join(sorted(p['settings']))}", field="--method")
        value = None if v.lower() == "none" else option_value(v)
        if isinstance(p["settings"][k], float) and isinstance(value, int) \
                and not isinstance(value, bool):
            value = float(value)  # 450 and 450.0 are one setting (and one store key)
        settings[k] = value
    functional = p["functional"]
    d3 = None
    if functional.endswith("-d3bj"):
        functional = functional[: -len("-d3bj")]
        d3 = functional
    basis = p["basis"]
    if code == "vasp":
        basis = f"pw{float(settings['encut']):g}"
    return functional, basis, d3, settings


def write_job(spec, atoms: Atoms, directory: Path, charge: int = 0,
              multiplicity: int | None = None, isolated_atom: bool = False,
              forces: bool = True) -> dict:
    """Write one job's input deck into ``directory``; returns the code's expectations (the
    settings to check at import, VASP's atom order)."""
    return module(spec.code).write_job(Path(directory), spec.settings, atoms, charge,
                                       multiplicity, isolated_atom, forces)


def collect(spec, atoms: Atoms, directory: Path, expected: dict, want_forces: bool = True):
    """Read one finished job back as a
    :class:`~tealign.compute.backends.CalculationResult` (energy eV, forces eV/Å in
    ``atoms``' order, stress eV/Å³ for periodic cells, D3(BJ) apart for ``-d3bj``
    presets); info holds the code, preset and the settings the code reports it used.
    Raises :class:`JobProblem` for a missing or crashed output, an unconverged SCF or a
    setting that differs from the preset."""
    mod = module(spec.code)
    res, used, converged = mod.read_job(Path(directory))
    if not converged:
        raise JobProblem("scf", "SCF did not converge (" + _why_unconverged(spec.code, used)
                         + ")")
    check = {k: v for k, v in expected.items() if k not in ("sort", "kpts", "cell",
                                                           "positions")}
    if spec.code == "vasp":
        check = expected["incar"]
    problems = mod.check_settings(check, used)
    if spec.code == "vasp" and "_KPTS" in used and expected.get("kpts") is not None \
            and list(used["_KPTS"]) != list(expected["kpts"]):
        problems.append(("KPOINTS", f"VASP used a {'x'.join(map(str, used['_KPTS']))} mesh, "
                         f"the preset asks {'x'.join(map(str, expected['kpts']))}"))
    if problems:
        raise JobProblem(*problems[0])
    numbers = np.asarray(atoms.numbers)
    forces = res.get("forces")
    if spec.code == "vasp" and "sort" in expected:
        resort = np.argsort(np.asarray(expected["sort"]))
        got_numbers = np.asarray(res["numbers"])[resort]
        if forces is not None:
            forces = np.asarray(forces)[resort]
    else:
        got_numbers = np.asarray(res["numbers"]) if res.get("numbers") is not None else numbers
    if len(got_numbers) != len(numbers) or not np.array_equal(got_numbers, numbers):
        raise JobProblem("atoms", f"the output holds {len(got_numbers)} atoms "
                         f"({_formula(got_numbers)}), the job {len(numbers)} "
                         f"({_formula(numbers)}): outputs of another job")
    info = {"code": spec.code, "preset": spec.settings.get("preset"),
            "settings_used": _json_safe({k: v for k, v in used.items()
                                         if not k.startswith("_")}),
            "output": res.get("source")}
    if "free_energy" in res and np.isfinite(res["free_energy"]):
        info["free_energy"] = float(res["free_energy"])  # eV, VASP's F (σ ≠ 0)
    out = CalculationResult(energy=float(res["energy"]), info=info)
    if want_forces and not isolated_atom_like(atoms):
        out.forces = forces
    if want_forces and not isolated_atom_like(atoms) and forces is None \
            and res.get("total_forces") is None:
        raise JobProblem("forces", f"{res.get('source')} holds no forces (ORCA: orca.engrad "
                         "missing; VASP: a run without them)")
    if atoms.pbc.any() and res.get("stress") is not None and want_forces:
        out.stress = np.asarray(res["stress"])
    if spec.d3 is not None:
        from tealign.dispersion import d3_bj

        d3 = d3_bj(atoms.numbers, atoms.positions, atoms.cell[:], atoms.pbc, spec.d3)
        out.d3_energy, out.d3_forces, out.d3_stress = d3.energy, d3.forces, d3.stress
        if "psi4_dispersion" in res:
            if abs(res["psi4_dispersion"] - d3.energy) > 1e-4:
                raise JobProblem("dispersion", f"Psi4's D3(BJ) is {res['psi4_dispersion']:.6f}"
                                 f" eV, tealign's {d3.energy:.6f} eV for {spec.d3}: another "
                                 "damping or parameter set")
            if want_forces and res.get("total_forces") is not None:
                out.forces = res["total_forces"] - d3.forces
    return out


def isolated_atom_like(atoms: Atoms) -> bool:
    return len(atoms) == 1 and not atoms.pbc.any()


def _why_unconverged(code: str, used: dict) -> str:
    if code == "vasp":
        return f"{used.get('_NSTEPS', '?')} electronic steps reached NELM={used.get('NELM')}"
    return "the code says so"


def _formula(numbers) -> str:
    from ase.symbols import Symbols

    return Symbols(np.asarray(numbers, dtype=int)).get_chemical_formula()


def _json_safe(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


# ----------------------------------------------------------------------------- direct runs
def code_command(code: str) -> str:
    """The shell command that runs ``code`` in a job directory (its module's ``command()``);
    :class:`CodeNotInstalled` (one line naming what to set) when it is not installed here."""
    return module(code).command()


def preflight(codes) -> None:
    """SetupError (one line, exit 2) when a code that jobs still need is not installed here —
    raised before any job runs, so the store never records it as a failed job."""
    from tealign.errors import SetupError

    for code in sorted(set(codes) & set(EXTERNAL_CODES)):
        try:
            code_command(code)
        except CodeNotInstalled as exc:
            raise SetupError(str(exc), field="--method") from None


def run_external(spec, atoms: Atoms, charge: int = 0, multiplicity: int | None = None,
                 forces: bool = True, isolated_atom: bool = False, kpts=None):
    """Run one structure with an installed external code in a scratch directory (under
    ``$TEALIGN_SCRATCH`` or the system's temp) and read it back: the backend entry of
    ``vasp``, ``orca`` and ``psi4``. Units and failures as :func:`collect`; a job that cannot
    be read raises :class:`~tealign.compute.backends.CalculationFailed`."""
    command = code_command(spec.code)
    with tempfile.TemporaryDirectory(prefix=f"tealign-{spec.code}-",
                                     dir=os.environ.get("TEALIGN_SCRATCH")) as tmp:
        work = Path(tmp)
        try:
            expected = write_job(spec, atoms, work, charge, multiplicity, isolated_atom,
                                 forces)
        except JobProblem as exc:
            raise CalculationFailed(f"{spec.code}: {exc.field}: {exc.reason}") from None
        proc = subprocess.run(command, shell=True, cwd=work, capture_output=True, text=True)
        try:
            return collect(spec, atoms, work, expected, want_forces=forces)
        except JobProblem as exc:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or [""]
            raise CalculationFailed(f"{spec.code} (exit {proc.returncode}): {exc.field}: "
                                    f"{exc.reason} {tail[0]}".strip()) from None


def _entry(name: str, title: str, core: str, example: str) -> Backend:
    """The backend-registry entry of an external code (no extra: the code is installed apart;
    no defaults: each preset holds its settings)."""
    return Backend(name=name, title=title, defaults={}, extra="", modules=(), core=core,
                   run=run_external, parse=parse_external, external=True, example=example)


#: The external codes' entries of the backend registry
#: (:func:`tealign.compute.backends.registry`): each code's module (:func:`module`) holds its
#: ``PRESETS``, ``write_job``, ``read_job`` and ``check_settings``.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    _entry("vasp", "VASP", "paw", "vasp:mptrj"),
    _entry("orca", "ORCA", "all-electron", "orca:omol25"),
    _entry("psi4", "Psi4", "all-electron", "psi4:spice"),
)}
EXTERNAL_CODES = tuple(BACKENDS)
#: the core treatment of each code's presets (Method.core)
CORE = {name: b.core for name, b in BACKENDS.items()}
