"""A correction that can follow bonds (issue 31, item 6), tried against TEA's single factor.

    python experiments/multidomain/bond_correction.py     # runs/bond_correction/results.json

The paper names "adaptive correction functions or machine-learning models that predict
fidelity differences" as future work. The simplest such function that stays force-consistent:

    E_at^[1] = a · E_at^[2] + Σ_{i<j} c_{Z_i Z_j} s(r_ij / R_ij)

with R_ij the sum of ASE's covalent radii and s a smooth bond count (1 below 1.1 R, a cosine
switch to 0 at 1.35 R), so the correction has continuous forces −∇ΔE (no count jumps when a
bond stretches). One c per element pair; fitted on calib-qm9's 90 molecules (the alignments'
calibration set) by ridge regression on the c with the strength chosen by 5-fold
cross-validation over molecules; a bond type the calibration set lacks (S–H, Cl–Cl, H–H, …)
gets c = 0, i.e. falls back to the single factor.

Judged where it was not fitted: the 35 held-out calib-qm9 molecules (bridge-mini/heldout-qm9)
and bridge-v2's 23 gas molecules (per-molecule residuals, reaction errors with the molecule
bootstrap of ``bridge_v2.py``). It would ship (as a registered correction model) only if it
resolves better than the single factor on both.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "runs" / "bond_correction"
ON, OFF = 1.10, 1.35  # switch of the smooth bond count, in units of the covalent-radii sum
ALPHAS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def switch(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth bond count s(q) and ds/dq, q = r / R (1 below ON, 0 above OFF, cosine between)."""
    t = np.clip((q - ON) / (OFF - ON), 0.0, 1.0)
    s = 0.5 * (1 + np.cos(np.pi * t))
    inside = (q > ON) & (q < OFF)
    ds = np.where(inside, -0.5 * np.pi * np.sin(np.pi * t) / (OFF - ON), 0.0)
    return s, ds


def pair_name(zi: int, zj: int) -> str:
    from ase.data import chemical_symbols

    a, b = sorted((int(zi), int(zj)))
    return f"{chemical_symbols[a]}-{chemical_symbols[b]}"


def bond_features(numbers: np.ndarray, positions: np.ndarray
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Smooth bond counts per element pair and their gradients (per pair type, (n, 3) in 1/Å)."""
    from ase.data import covalent_radii

    n = len(numbers)
    counts: dict[str, float] = {}
    grads: dict[str, np.ndarray] = {}
    for i in range(n):
        for j in range(i + 1, n):
            d = positions[j] - positions[i]
            r = float(np.linalg.norm(d))
            big_r = covalent_radii[numbers[i]] + covalent_radii[numbers[j]]
            s, ds = switch(np.array(r / big_r))
            if s == 0.0:
                continue
            k = pair_name(numbers[i], numbers[j])
            counts[k] = counts.get(k, 0.0) + float(s)
            g = grads.setdefault(k, np.zeros((n, 3)))
            dr = float(ds) / big_r * d / r  # d s / d r_j
            g[j] += dr
            g[i] -= dr
    return counts, grads


class BondCorrection:
    """y = a x + Σ_b c_b n_b(geometry): fit on (x, y, geometries), predict atomization energies
    and the correction's forces (eV/Å)."""

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = alpha

    def _design(self, feats: list[dict[str, float]], x: np.ndarray) -> np.ndarray:
        cols = [x] + [np.array([f.get(b, 0.0) for f in feats]) for b in self.bonds_]
        return np.column_stack(cols)

    def fit(self, x: np.ndarray, y: np.ndarray, feats: list[dict[str, float]]
            ) -> BondCorrection:
        self.bonds_ = sorted({b for f in feats for b in f})
        A = self._design(feats, x)
        scale = np.sqrt((A[:, 1:] ** 2).mean(axis=0)) if self.bonds_ else np.array([])
        pen = np.diag(np.r_[0.0, self.alpha * len(x) * scale ** 2])
        coef = np.linalg.solve(A.T @ A + pen, A.T @ y)
        self.a_ = float(coef[0])
        self.c_ = dict(zip(self.bonds_, coef[1:].tolist()))
        return self

    def predict(self, x: np.ndarray, feats: list[dict[str, float]]) -> np.ndarray:
        return self.a_ * np.asarray(x) + np.array(
            [sum(self.c_.get(b, 0.0) * v for b, v in f.items()) for f in feats])

    def correction_forces(self, grads: dict[str, np.ndarray], n_atoms: int) -> np.ndarray:
        """−∇ of the energy term the correction adds to E_tot^[1] = Σ E_i^[1] − y: the
        bond term enters with a minus sign, so its forces are +Σ c_b ∇n_b."""
        f = np.zeros((n_atoms, 3))
        for b, g in grads.items():
            f += self.c_.get(b, 0.0) * g
        return f


def _load(path: Path, src_table, tgt_table, source_key="energy_wb97m", target_key="energy_pbe"):
    from ase.io import read

    frames = read(path, ":")
    x, y, feats, ids, natoms = [], [], [], [], []
    for a in frames:
        sym = a.get_chemical_symbols()
        x.append(sum(src_table[s] for s in sym) - a.info[source_key])
        y.append(sum(tgt_table[s] for s in sym) - a.info[target_key])
        feats.append(bond_features(a.numbers, a.positions)[0])
        ids.append(str(a.info.get("species", a.info.get("mol_id"))))
        natoms.append(len(a))
    return np.array(x), np.array(y), feats, ids, np.array(natoms)


def cv_rmse(x, y, feats, alpha: float, k: int = 5, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    err = []
    for f in range(k):
        test = order[f::k]
        train = np.setdiff1d(order, test)
        m = BondCorrection(alpha).fit(x[train], y[train], [feats[i] for i in train])
        err.append(m.predict(x[test], [feats[i] for i in test]) - y[test])
    return float(np.sqrt(np.mean(np.concatenate(err) ** 2)))


def main() -> None:
    import sys

    sys.path.insert(0, str(HERE))
    import bridge_v2 as bv

    from tealign.io.outputs import write_json

    tables = {lab: json.loads((bv.OUT / f"atoms_{lab}.json").read_text())["energies"]
              for lab in ("wb97m", "pbe")}
    scale = json.loads((bv.OUT / "scale.alignment.json").read_text())["model"]["a"]
    calib = _load(ROOT / "datasets/calib-qm9/calib-qm9.extxyz", tables["wb97m"], tables["pbe"])
    x, y, feats = calib[0], calib[1], calib[2]
    cv = {str(al): cv_rmse(x, y, feats, al) for al in ALPHAS}
    best = min(ALPHAS, key=lambda al: cv[str(al)])
    model = BondCorrection(best).fit(x, y, feats)
    res: dict = {"alpha_cv_rmse_eV": cv, "alpha": best, "a": model.a_, "c_eV": model.c_,
                 "scale_a": scale, "switch": [ON, OFF]}
    # held-out calib-qm9 (bridge-mini/heldout-qm9: never fitted on)
    hx, hy, hf, hid, hn = _load(ROOT / "datasets/bridge-mini/heldout-qm9.extxyz",
                                tables["wb97m"], tables["pbe"])
    err_bond = (model.predict(hx, hf) - hy) / hn  # atomization-energy error per atom
    err_scale = (scale * hx - hy) / hn
    d = np.abs(err_bond) - np.abs(err_scale)
    rng = np.random.default_rng(0)
    boots = d[rng.integers(0, d.size, (bv.N_BOOT, d.size))].mean(axis=1)
    res["heldout_qm9"] = {"n": int(d.size), "mae_bond_eV_per_atom": float(np.abs(err_bond).mean()),
                          "mae_scale_eV_per_atom": float(np.abs(err_scale).mean()),
                          "diff_mean": float(d.mean()),
                          "diff_ci95": np.percentile(boots, [2.5, 97.5]).tolist()}
    # bridge-v2 gas molecules: residual δ = aligned − GPAW total = −(y_pred − y)
    bx, by, bf, bid, bn = _load(bv.DATA / "bridge-molecules.extxyz", tables["wb97m"],
                                tables["pbe"])
    delta_bond = dict(zip(bid, (-(model.predict(bx, bf) - by)).tolist()))
    delta_scale = dict(zip(bid, (-(scale * bx - by)).tolist()))
    definition = json.loads((bv.DATA / "bridge.json").read_text())
    mols = sorted(s for s, e in definition["species"].items() if e["role"] == "molecule")
    items = [[s for s in r["coefficients"] if s in mols] for r in definition["reactions"]]

    def rxn(delta):
        return np.array([sum(r["coefficients"][m] * delta[m] for m in it)
                         for r, it in zip(definition["reactions"], items)])

    e_bond, e_scale = rxn(delta_bond), rxn(delta_scale)
    w = bv.molecule_bootstrap_weights(items, mols)
    iv = bv.weighted_interval(np.abs(e_bond) - np.abs(e_scale), w)
    res["bridge_v2"] = {"residual_bond_eV": delta_bond, "residual_scale_eV": delta_scale,
                        "mae_bond": bv.weighted_interval(np.abs(e_bond), w),
                        "mae_scale": bv.weighted_interval(np.abs(e_scale), w),
                        "diff": iv,
                        "bonds_without_coefficient": sorted(
                            {b for f in bf for b in f} - set(model.c_))}
    wins = (res["heldout_qm9"]["diff_ci95"][1] < 0) and iv["hi"] < 0
    res["verdict"] = ("ships: better than the single factor on both, resolved" if wins else
                      "does not ship: not resolved better than the single factor on both "
                      "the held-out molecules and bridge-v2")
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "results.json", res)
    print(json.dumps({k: v for k, v in res.items() if k != "bridge_v2"}, indent=1))
    print(json.dumps({k: v for k, v in res["bridge_v2"].items()
                      if not k.startswith("residual")}, indent=1))


if __name__ == "__main__":
    main()
