"""Inner-core energy alignment (ICEA): isolated-atom sums, vectorised over frames.

ICEA (paper eq. 3): E_tot^[1] ≈ Σ_i (E_i^[1] − E_i^[2]) + E_tot^[2], i.e. shift each source
total energy by the summed isolated-atom differences of its atoms. The atomization energy
(eq. 1) is E_at = Σ_i E_i − E_tot. All energies in eV.
"""

from __future__ import annotations

import numpy as np

from tealign.methods import IsolatedAtomTable


def atom_energy_sums(numbers: np.ndarray, frame_of_atom: np.ndarray, n_frames: int,
                     table: IsolatedAtomTable) -> np.ndarray:
    """Σ_i E_i over the atoms of each frame (eV), (n_frames,)."""
    lut = table.by_number()
    out = np.zeros(n_frames)
    np.add.at(out, frame_of_atom, lut[numbers])
    return out


def icea_shift(numbers: np.ndarray, frame_of_atom: np.ndarray, n_frames: int,
               source: IsolatedAtomTable, target: IsolatedAtomTable) -> np.ndarray:
    """Σ_i (E_i^target − E_i^source) per frame (eV): what ICEA adds to a source total."""
    return (atom_energy_sums(numbers, frame_of_atom, n_frames, target)
            - atom_energy_sums(numbers, frame_of_atom, n_frames, source))

