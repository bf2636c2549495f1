"""Reference-calculation backends behind one small interface, and their registry.

    result = run_calculation(spec, atoms, charge=0, multiplicity=None)

returns a :class:`CalculationResult` with the DFT (or xTB) energy in eV, forces in eV/Å
and, for periodic cells, stress in eV/Å³ (ASE sign); when the SPEC asks for ``-d3bj`` the D3(BJ)
term is computed by :mod:`tealign.dispersion` and returned separately. SCF failures raise
:class:`CalculationFailed` with the reason (a frame error for the caller, not a crash).

Each backend is one module of this package (:mod:`.pyscf`, :mod:`.gpaw`, :mod:`.xtb`)
defining a :class:`~tealign.compute.backends.base.Backend` (``BACKEND``: its settings with
their defaults, the optional extra that installs it, its SPEC checks, ``run`` and, where
the benchmarks may use it as ``--calculator NAME``, the SPEC they compute with), listed once
in :data:`BACKENDS`. The codes run outside tealign (VASP, ORCA, Psi4:
:mod:`tealign.compute.external`) are entries of the same registry, marked ``external`` and
parsing their ``code:PRESET`` SPECs themselves (``parse``); :func:`registry` lists them all.
Backend modules import only :mod:`.base`, never this registry. The SPEC parser
(:mod:`tealign.compute.spec`), the missing-package message (:func:`extras`), the command
line's help and the benchmarks' calculators (:mod:`tealign.bench.calculators`) look backends
up here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tealign.compute.backends import gpaw, pyscf, xtb
from tealign.compute.backends.base import (
    Backend,
    CalculationFailed,
    CalculationResult,
    Spec,
)
from tealign.compute.backends.pyscf import (  # noqa: F401 (public names of this module)
    PYSCF_XC,
    cartesian_d_orthogonalizer,
    gaussian_pople_shells,
)
from tealign.compute.backends.xtb import XTB_METHODS  # noqa: F401
from tealign.deprecation import renamed
from tealign.errors import SetupError

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["BACKENDS", "Backend", "CalculationFailed", "CalculationResult", "extras", "get",
           "registry", "run_calculation"]

#: ``Result``: the former name of :class:`CalculationResult` (deprecated)
__getattr__ = renamed(__name__, {"Result": "CalculationResult"})

#: Every backend tealign runs in its own process, by the code a SPEC names, in the order help
#: texts list them.
BACKENDS: dict[str, Backend] = {b.name: b for b in (pyscf.BACKEND, gpaw.BACKEND, xtb.BACKEND)}


def registry() -> dict[str, Backend]:
    """Every code a SPEC may name: :data:`BACKENDS`, then the external codes' entries
    (:data:`tealign.compute.external.BACKENDS`, imported on first use)."""
    from tealign.compute.external import BACKENDS as external

    return {**BACKENDS, **external}


def get(code: str) -> Backend:
    """The registry entry of ``code``; SetupError (field ``--method``) naming the backends
    tealign runs itself."""
    try:
        return registry()[code]
    except KeyError:
        raise SetupError(f"unknown code {code!r}; tealign computes with "
                         f"{', '.join(BACKENDS)}", field="--method") from None


def extras() -> dict[str, str]:
    """Import name → the tealign extra that installs it, for every backend's packages."""
    return {m: b.extra for b in BACKENDS.values() for m in b.modules}


def bench_specs() -> dict[str, str]:
    """``--calculator`` names the benchmarks accept for a backend → the SPEC they run."""
    return {b.name: b.bench_spec for b in BACKENDS.values() if b.bench_spec}


def run_calculation(spec: Spec, atoms: Atoms, charge: int = 0,
                    multiplicity: int | None = None, forces: bool = True,
                    isolated_atom: bool = False,
                    kpts: tuple[int, int, int] | None = None) -> CalculationResult:
    """Compute one structure with ``spec``; energies eV, forces eV/Å, stress eV/Å³.

    ``multiplicity`` (2S+1) defaults to the lowest allowed (1 or 2). ``isolated_atom`` marks a
    single atom: spin-polarised with that multiplicity, GPAW in a slightly anisotropic box,
    no forces. ``kpts`` is the fixed Γ-centred mesh of a periodic cell (GPAW); without it the
    mesh comes from the SPEC's ``kpt_density`` applied to this cell. Stress comes with forces
    (``forces=True``); for GPAW it includes the Pulay term only with ``pulay_stress=fd``: with
    the default ``formula`` the backend returns GPAW's fixed-basis stress and
    :func:`tealign.compute.calib.compute_calibration` adds the term per (formula, mesh) group
    (:mod:`tealign.compute.pulay`).
    """
    _log_call(spec, atoms)
    backend = registry().get(spec.code)
    if backend is None:  # parse_spec guards this
        raise CalculationFailed(f"unknown code {spec.code}")
    if backend.external:  # run outside tealign (D3 included)
        return backend.run(spec, atoms, charge, multiplicity, forces, isolated_atom, kpts)
    res = backend.run(spec, atoms, charge, multiplicity, forces and not isolated_atom,
                      isolated_atom, kpts)
    if spec.d3 is not None:
        from tealign.dispersion import d3_bj

        d3 = d3_bj(atoms.numbers, atoms.positions, atoms.cell[:], atoms.pbc, spec.d3)
        res.d3_energy = d3.energy
        res.d3_forces = d3.forces
        res.d3_stress = d3.stress
    return res


def _log_call(spec: Spec, atoms: Atoms) -> None:
    """Append one line per backend call to $TEALIGN_CALL_LOG (used to prove resume works)."""
    path = os.environ.get("TEALIGN_CALL_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{spec.label} {atoms.get_chemical_formula()} "
                     f"{atoms.info.get('job_key', '')}\n")
