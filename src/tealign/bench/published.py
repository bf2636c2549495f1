"""Published figures from the TEA / MACE-Osaka24 paper (Shiota et al., arXiv:2412.13088),
printed beside the user's numbers. They were computed on the paper's own reference data
(CCSD(T) biaryl profiles, Transition1x, VASP PBE lattice constants), not on ours."""

#: Table I: MAE of barrier heights for 78 biaryl torsions (kcal/mol).
TORSION_BARRIER_MAE_KCAL = {
    "MACE-OFF23-large": 0.403, "MACE-Osaka24-large": 0.457, "MACE-OFF23-small": 0.598,
    "MACE-Osaka24-small": 0.695, "GFN2-xTB": 0.898, "MACE-MP-0-large": 1.909,
    "SO3LR": 2.451, "MACE-MP-0-small": 3.386,
}
#: Table II: MAE on 10,073 Transition1x reactions (eV): (reaction energy, barrier).
TRANSITION1X_MAE_EV = {
    "MACE-Osaka24-large": (0.404, 0.265), "MACE-Osaka24-small": (0.457, 0.336),
    "MACE-OFF23-large": (0.711, 0.436), "MACE-OFF23-small": (0.672, 0.544),
    "MACE-MP-0-large": (0.937, 0.519), "MACE-MP-0-small": (1.333, 0.686),
}
LABEL = "published (paper, its own reference data)"
#: Table III: lattice-constant MAE vs VASP PBE (Å).
LATTICE_MAE_A = {
    "MACE-MP-0-small": 0.012, "MACE-MP-0-large": 0.016, "MACE-Osaka24-large": 0.018,
    "MACE-Osaka24-small": 0.020, "M3GNet-MPF2021.2.8": 0.021,
}
#: Table IV: lattice-constant MAE by structure type (Å); the paper's "4H" is 4H-SiC.
LATTICE_MAE_BY_STRUCTURE_A = {
    "M3GNet-MPF2021.2.8": {"4H": 0.0143, "bcc": 0.0701, "diamond": 0.0100, "fcc": 0.0200,
                           "rocksalt": 0.0111, "zincblende": 0.0017},
    "MACE-MP-0-small": {"4H": 0.0036, "bcc": 0.3453, "diamond": 0.0047, "fcc": 0.0096,
                        "rocksalt": 0.0036, "zincblende": 0.0153},
    "MACE-MP-0-large": {"4H": 0.0042, "bcc": 0.2153, "diamond": 0.0031, "fcc": 0.0179,
                        "rocksalt": 0.0108, "zincblende": 0.0205},
    "MACE-Osaka24-small": {"4H": 0.0002, "bcc": 0.1536, "diamond": 0.0020, "fcc": 0.0118,
                           "rocksalt": 0.0113, "zincblende": 0.0049},
    "MACE-Osaka24-large": {"4H": 0.0033, "bcc": 0.1423, "diamond": 0.0029, "fcc": 0.0156,
                           "rocksalt": 0.0100, "zincblende": 0.0031},
}
#: Fig. 4 / section IV.A: RMSE (eV) of QM9 total energies after ICEA only and after ICEA+AEC,
#: and R² (after ICEA, after ICEA+AEC), target PBE/PW (VASP, 400 eV).
FIG4_RMSE_EV = {
    "PBE/TZP (ADF) → PBE/PW (VASP)": {"icea": 0.326, "tea": 0.099, "r2_icea": 0.999,
                                       "r2_tea": 0.999},
    "ωB97M-D3(BJ)/def2-TZVPPD (Psi4) → PBE/PW (VASP)": {"icea": 4.202, "tea": 0.839,
                                                        "r2_icea": 0.904, "r2_tea": 0.997},
}
