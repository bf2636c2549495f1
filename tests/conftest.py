"""Shared fixtures: the ../shared reference data (skipped with a reason when absent)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TEALIGN_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (../shared beside the checkout)")
    return SHARED_DATA


@pytest.fixture
def run_cli():
    """Run the tealign CLI in-process; returns (exit_code, stdout, stderr)."""
    from tealign.cli import app

    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


def random_frames(n: int = 6, seed: int = 0, periodic_every: int = 2):
    """Small frames with energies, forces, stress, ints, bools and strings."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        nat = int(rng.integers(1, 7))
        a = Atoms(numbers=rng.choice([1, 6, 7, 8, 14], nat), positions=rng.normal(size=(nat, 3)))
        if periodic_every and i % periodic_every:
            a.cell = np.diag(rng.uniform(4, 6, 3)) + rng.normal(size=(3, 3)) * 0.1
            a.pbc = True
            a.info["REF_stress"] = rng.normal(size=(3, 3)) * 1e-3
        a.info["REF_energy"] = float(rng.normal() * 100)
        a.arrays["REF_forces"] = rng.normal(size=(nat, 3))
        a.arrays["tags_int"] = rng.integers(-5, 5, nat)
        a.arrays["flag"] = rng.random(nat) > 0.5
        a.info["mol_id"] = f"mol {i}"
        a.info["step"] = i
        a.info["converged"] = bool(i % 3)
        a.info["dipole"] = rng.normal(size=3)
        a.info["config_type"] = "bulk" if a.pbc.any() else "molecule"
        frames.append(a)
    return frames


def xtb_molecules(n: int, names: list[str], rattle: float, seed: int = 0, groups: int = 3):
    """``n`` rattled small molecules cycling through ``names``, each with its GFN2-xTB result:
    a list of (Atoms, Result). Conformers share ``mol_id`` = "<name>_<k>", k < ``groups``."""
    from ase.build import molecule

    from tealign.compute.backends import run_calculation
    from tealign.compute.spec import parse_spec

    xtb = parse_spec("xtb:gfn2")
    out = []
    for i in range(n):
        name = names[i % len(names)]
        m = molecule(name)
        m.rattle(rattle, seed=seed + i)
        m.info["mol_id"] = f"{name}_{(i // len(names)) % groups}"
        out.append((m, run_calculation(xtb, m)))
    return out


def emt_copper(n: int, rng, spread: float, prefix: str = "Cu") -> list:
    """``n`` rattled 2-atom fcc Cu cells (lattice constant 3.6 Å ± ``spread``) with EMT
    labels on the target scale: energy_pbe, forces_pbe, stress_pbe, and mol_id."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    cells = []
    for i in range(n):
        c = bulk("Cu", "fcc", a=3.6 + spread * rng.normal()).repeat((2, 1, 1))
        c.rattle(0.03, seed=i)
        c.calc = EMT()
        c.info.update(energy_pbe=c.get_potential_energy(), stress_pbe=c.get_stress(voigt=False),
                      mol_id=f"{prefix}_{i}")
        c.arrays["forces_pbe"] = c.get_forces()
        c.calc = None
        cells.append(c)
    return cells


#: tests whose commands write LMDB or MACE HDF5 shards (merge's default output, .aselmdb, .h5):
#: they need the torch stack (mace-torch, lmdb), which the floor-Python stage of .ci/run lacks
requires_mace = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mace", "lmdb")),
    reason="needs the torch stack (mace-torch, lmdb): pip install 'tealign[mace]'")
