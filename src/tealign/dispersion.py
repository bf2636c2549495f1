"""D3(BJ) dispersion: energy, forces and (periodic) stress through the ``dftd3`` library.

tealign fits, aligns and trains on dispersion-free DFT energies (docs/architecture.md §1.2).
This module computes the D3(BJ) term for a named functional's rational-damping parameters
(``wb97m``, ``pbe``, ``b3lyp``, ...) so it can be removed from a dispersion-corrected source
(:func:`remove_d3`) or added back at simulation time.

Units: input positions and cells in Å; energy in eV, forces in eV/Å, stress in eV/Å³ with
ASE's sign (stress = (1/V) ∂E/∂ε). Conversions use ``tealign.units`` (CODATA 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tealign import units
from tealign.errors import SetupError


@dataclass
class D3Result:
    """D3(BJ) of one structure: ``energy`` (eV), ``forces`` (n, 3) eV/Å, ``stress`` (3, 3)
    eV/Å³ for periodic cells (None otherwise)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None


def _param(functional: str):
    from dftd3.interface import RationalDampingParam

    try:
        return RationalDampingParam(method=functional.lower())
    except Exception as exc:  # dftd3 raises RuntimeError / DFTD3Error for unknown methods
        raise SetupError(
            f"dftd3 has no D3(BJ) parameters for functional {functional!r} ({exc})",
            field="--remove-d3",
        ) from None


def d3_bj(numbers, positions, cell=None, pbc=None, functional: str = "pbe") -> D3Result:
    """D3(BJ) energy, forces and stress of one structure.

    Parameters
    ----------
    numbers : (n,) atomic numbers
    positions : (n, 3) Å
    cell : (3, 3) Å, rows are lattice vectors (ignored unless some ``pbc``)
    pbc : (3,) bool
    functional : damping parameters to use, e.g. ``"wb97m"``, ``"pbe"``
    """
    from dftd3.interface import DispersionModel

    numbers = np.asarray(numbers, dtype=int)
    pos_bohr = np.asarray(positions, dtype=float) / units.BOHR_TO_ANGSTROM
    periodic = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
    lattice = None
    if periodic.any():
        lattice = np.asarray(cell, dtype=float) / units.BOHR_TO_ANGSTROM
    model = DispersionModel(numbers, pos_bohr, lattice=lattice,
                            periodic=periodic if periodic.any() else None)
    res = model.get_dispersion(param=_param(functional), grad=True)
    energy = float(res["energy"]) * units.HARTREE_TO_EV
    forces = -np.asarray(res["gradient"]) * units.HARTREE_PER_BOHR_TO_EV_PER_A
    stress = None
    if periodic.any():
        volume = abs(np.linalg.det(np.asarray(cell, dtype=float)))
        stress = np.asarray(res["virial"]) * units.HARTREE_TO_EV / volume
    return D3Result(energy=energy, forces=forces, stress=stress)


def d3_batch(batch, functional: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D3(BJ) for every frame of a :class:`~tealign.io.frames.FrameBatch`.

    Returns per-frame energies (n_frames,) eV, per-atom forces (n_atoms_total, 3) eV/Å and
    per-frame stress (n_frames, 3, 3) eV/Å³ (zeros for non-periodic frames).
    """
    energy = np.zeros(batch.n_frames)
    forces = np.zeros((len(batch.numbers), 3))
    stress = np.zeros((batch.n_frames, 3, 3))
    for i in range(batch.n_frames):
        a, b = batch.offsets[i], batch.offsets[i + 1]
        r = d3_bj(batch.numbers[a:b], batch.positions[a:b], batch.cell[i], batch.pbc[i],
                  functional)
        energy[i] = r.energy
        forces[a:b] = r.forces
        if r.stress is not None:
            stress[i] = r.stress
    return energy, forces, stress


def d3_marker_key(energy_key: str) -> str:
    """The per-frame flag with which tealign's compute commands mark ``energy_key``'s D3 state.

    ``tealign compute`` writes ``d3_in_energy_<label> = F`` beside ``energy_<label>``: the key
    holds the DFT energy *without* D3(BJ) (the D3 term is stored apart as
    ``d3_energy_<label>``, for adding back at simulation time).
    """
    return f"d3_in_energy_{energy_key.removeprefix('energy_')}"


def check_d3_removable(batch, energy_key: str, file: str | None = None) -> None:
    """SetupError when tealign's own provenance marks ``energy_key`` as dispersion-free.

    Removing D3 from such a key would count it twice (E_DFT − E_D3). Totals that include D3
    (SPICE's ``dft_total_energy``, OFF23) carry no such flag and pass.
    """
    from tealign.errors import SetupError

    marker = d3_marker_key(energy_key)
    flags = batch.info.get(marker)
    if flags is None:
        return
    flags = np.asarray(flags)
    has = batch.has(marker) if hasattr(batch, "has") else np.ones(len(flags), bool)
    free = [i for i in range(len(flags)) if has[i] and str(flags[i]).lower() in
            ("false", "f", "0")]
    if free:
        raise SetupError(
            f"{energy_key} is already the DFT energy without D3(BJ) ({marker} = F, written by "
            "tealign compute; its D3 term is stored apart): removing D3 again would count it "
            "twice. Drop d3_keys/remove_d3 for this source (they are for totals that include "
            "D3, e.g. SPICE/OFF23)", file=file, frame=int(free[0]), field=energy_key)


def apply_d3(batch, functional: str, energy_key: str, forces_key: str | None = None,
             stress_key: str | None = None, sign: float = -1.0):
    """Subtract (``sign=-1``) or add (``sign=+1``) D3(BJ) to a batch's energies, forces, stress.

    Returns a new batch; the D3 energy applied is recorded per frame as ``d3_energy``.
    Frames lacking a key are left unchanged for that key.
    """
    if sign < 0:
        check_d3_removable(batch, energy_key)
    out = batch.copy()
    if out.n_frames == 0:
        return out
    energy, forces, stress = d3_batch(out, functional)
    if energy_key in out.info:
        out.info[energy_key] = np.asarray(out.info[energy_key], dtype=float) + sign * energy
    if forces_key and forces_key in out.arrays:
        out.arrays[forces_key] = np.asarray(out.arrays[forces_key], dtype=float) + sign * forces
    if stress_key and stress_key in out.info:
        s = np.asarray(out.info[stress_key], dtype=float)
        if s.shape[1:] == (6,):  # Voigt xx yy zz yz xz xy
            voigt = stress[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            out.info[stress_key] = s + sign * voigt
        else:
            out.info[stress_key] = s + sign * stress.reshape(s.shape)
    out.info["d3_energy"] = energy
    out.info["d3_functional"] = np.array([functional] * out.n_frames, dtype=object)
    return out
