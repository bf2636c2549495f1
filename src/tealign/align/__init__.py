"""Total Energy Alignment: ICEA (isolated-atom shifts) + AEC (atomization-energy correction)."""

from tealign.align.aec import MODELS, ScaleElementsModel, ScaleModel, make_model
from tealign.align.estimator import TotalEnergyAlignment
from tealign.align.icea import atom_energy_sums, atomization_energy, icea_shift

__all__ = ["MODELS", "ScaleElementsModel", "ScaleModel", "TotalEnergyAlignment",
           "atom_energy_sums", "atomization_energy", "icea_shift", "make_model"]
