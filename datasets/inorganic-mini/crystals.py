"""The crystals of inorganic-mini: ASE structure type and experimental lattice constant.

Lattice constants in Å (experimental, zero-point corrected: the cubic_crystals.csv figures that
ship as tealign package data). ``equilibrium_cell(name)`` is the unstrained 2-atom cell every
configuration of that crystal is made from (primitive diamond/zincblende/rocksalt cells; fcc
and bcc metals as a 2-atom cell), and the cell its k-point mesh is chosen from.
"""

from ase.build import bulk

CRYSTALS = {  # name: (ase structure, a in Å)
    "Si": ("diamond", 5.421), "C": ("diamond", 3.553), "Ge": ("diamond", 5.644),
    "SiC": ("zincblende", 4.346), "GaAs": ("zincblende", 5.637),
    "NaCl": ("rocksalt", 5.565), "LiF": ("rocksalt", 3.972), "MgO": ("rocksalt", 4.188),
}
#: Left out of the target-scale data for now (the first inorganic-mini had them at a k-point
#: density of 2.5 Å⁻¹): at 0.1 eV Fermi-Dirac smearing their energy is not within 1 meV/atom
#: of the densest mesh before ~10×19×19 points per 2-atom cell (Al: −3.7528, −3.7187, −3.7353,
#: −3.7365, −3.7358 eV/atom at densities 2.5–7.0; kpoint_convergence.py, GPAW PW800), which
#: costs tens of minutes per strained, symmetry-free cell on one core.
METALS = {"Al": ("fcc", 4.019), "Cu": ("fcc", 3.595), "Li": ("bcc", 3.451),
          "Na": ("bcc", 4.207)}


def random_strain(rng):
    """A strain tensor of the configurations: ±4 % normal and ±2 % shear, uniform (two draws
    from ``rng``, a numpy Generator: the normal components, then the shear ones)."""
    import numpy as np

    eps = np.diag(rng.uniform(-0.04, 0.04, 3))
    shear = rng.uniform(-0.02, 0.02, 3)
    eps[0, 1] = eps[1, 0] = shear[0]
    eps[0, 2] = eps[2, 0] = shear[1]
    eps[1, 2] = eps[2, 1] = shear[2]
    return eps


def equilibrium_cell(name: str):
    structure, a = {**CRYSTALS, **METALS}[name]
    if structure in ("fcc", "bcc"):
        return bulk(name, structure, a=a, cubic=False).repeat((2, 1, 1))
    return bulk(name, structure, a=a)
