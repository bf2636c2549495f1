"""Single-point energies of many structures: batched through mace-torch for MACE models,
one call per structure otherwise, through the calculator
:mod:`tealign.bench.calculators` builds for the name (optionally with D3(BJ) added)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tealign.io.frames import FrameBatch

#: vacuum (Å) on each side of a molecule boxed for a calculator that needs a cell (CHGNet)
MOLECULE_VACUUM = 10.0


def single_points(calculator: str, batch: FrameBatch, d3: str | None = None,
                  batched: bool = True, batch_size: int = 16, progress=None,
                  dtype: str | None = None) -> np.ndarray:
    """Energy (eV) of every frame of ``batch`` with the named calculator.

    MACE models run ``batch_size`` structures per forward pass without autograd; on a 2-core
    CPU, 8–16 small molecules per pass were fastest (bigger batches outgrow the caches:
    ``benchmarks/batched_inference.py --batch-size``). ``dtype`` ("float32"/"float64")
    converts a MACE model's weights (None keeps the file's); other calculators ignore it.
    """
    if Path(calculator).exists() and batched:
        from tealign.evaluate import load_model, predict

        model = load_model(calculator, dtype=dtype)
        energies = predict(model, batch, batch_size=batch_size, compute_stress=False,
                           compute_forces=False).energy
    else:
        from tealign.bench.calculators import get_calculator, needs_cell

        calc = get_calculator(calculator)
        boxed = needs_cell(calculator)
        energies = np.empty(batch.n_frames)
        for i, atoms in enumerate(batch.to_atoms()):
            if boxed and not atoms.pbc.any():
                # a calculator of periodic structures only (CHGNet): a molecule goes into a
                # cubic box with MOLECULE_VACUUM on each side, far beyond its graph cutoff
                # (CHGNet: 6 Å)
                atoms.center(vacuum=MOLECULE_VACUUM)
                atoms.cell = np.eye(3) * atoms.cell.lengths().max()
                atoms.center()
                atoms.pbc = True
            atoms.calc = calc
            energies[i] = atoms.get_potential_energy()
            if progress:
                progress(i + 1)
    if d3 and d3 != "none":
        from tealign.dispersion import d3_batch

        energies = energies + d3_batch(batch, d3)[0]
    return np.asarray(energies, dtype=float)
