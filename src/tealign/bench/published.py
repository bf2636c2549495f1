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
