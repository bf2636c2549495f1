"""Does the neutral-atom TEA hold for ions? (issue 28 item 6) -> charged.json

The AEC factor ``a`` is fitted (tealign's ``scale`` model, neutral isolated atoms) on the 44
neutral QM9 molecules computed at both levels in ../calib-public: source PySCF
ωB97M/def2-TZVPPD (calib-spice.extxyz), target PySCF PBE/def2-QZVPP (pbe-qzvpp.extxyz).
The neutral held-out error is the RMSE of leave-one-out predictions (refit without the
molecule), over the neutrals of the ions' size (at most as many heavy atoms). The same ``a``
and the same neutral-atom tables then predict each ion's target energy,
E_tgt = Σ E0_tgt − a (Σ E0_src − E_src); the ion's error is prediction − computed
PBE/def2-QZVPP energy (eV). All energies are DFT without D3(BJ).
"""

from pathlib import Path

import numpy as np
from ase.io import read

from tealign.methods import load_table

HERE = Path(__file__).parent
PUB = HERE.parent / "calib-public"


def _sums(frames, table) -> np.ndarray:
    return np.array([sum(table.energy(s) for s in a.get_chemical_symbols()) for a in frames])


def _fit_a(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope through the origin (tealign's ``scale`` model: y = a x)."""
    return float(x @ y / (x @ x))


def main() -> None:
    src_t = load_table(str(PUB / "calib-spice.atoms_wb97m.json"))
    tgt_t = load_table(str(PUB / "pbe-qzvpp.atoms_pbe.json"))
    # the ions' own atom tables must equal the neutral set's (same settings, same store keys)
    for mine, ref in ((HERE / "ions-wb97m.atoms_wb97m.json", src_t),
                      (HERE / "ions-pbe.atoms_pbe.json", tgt_t)):
        t = load_table(str(mine))
        worst = max(abs(t.energies[s] - ref.energies[s]) for s in t.energies)
        assert worst < 1e-6, f"{mine.name} differs from the neutral set's atoms by {worst} eV"
    pbe = {a.info["mol_id"]: a for a in read(PUB / "pbe-qzvpp.extxyz", ":")}
    wb = {a.info["mol_id"]: a for a in read(PUB / "calib-spice.extxyz", ":")
          if a.info["mol_id"] in pbe}
    ids = sorted(pbe)
    neutral = [pbe[i] for i in ids]
    e_src = np.array([wb[i].info["energy_wb97m"] for i in ids])
    e_tgt = np.array([pbe[i].info["energy_pbe"] for i in ids])
    s_src, s_tgt = _sums(neutral, src_t), _sums(neutral, tgt_t)
    x, y = s_src - e_src, s_tgt - e_tgt
    a = _fit_a(x, y)
    loo = np.array([y[k] - _fit_a(np.delete(x, k), np.delete(y, k)) * x[k]
                    for k in range(len(x))])
    n_at = np.array([len(m) for m in neutral])
    heavy = np.array([int((m.numbers > 1).sum()) for m in neutral])

    ions_src = {a_.info["mol_id"]: a_ for a_ in read(HERE / "ions-wb97m.extxyz", ":")}
    ions_tgt = {a_.info["mol_id"]: a_ for a_ in read(HERE / "ions-pbe.extxyz", ":")}
    names = [n for n in ions_src if n in ions_tgt]
    rows = []
    for n in names:
        s, t = ions_src[n], ions_tgt[n]
        pred = _sums([s], tgt_t)[0] - a * (_sums([s], src_t)[0] - s.info["energy_wb97m"])
        err = float(pred - t.info["energy_pbe"])
        rows.append({"name": n, "formula": s.get_chemical_formula(), "n_atoms": len(s),
                     "charge": int(s.info["charge"]), "error_eV": round(err, 4)})
    errs = np.array([r["error_eV"] for r in rows])
    ion_atoms = np.array([r["n_atoms"] for r in rows])
    ion_heavy = max(int((ions_src[n].numbers > 1).sum()) for n in names)

    def rms(v) -> float:
        return float(np.sqrt(np.mean(np.asarray(v) ** 2)))

    # neutrals of the ions' size (as many heavy atoms at most) are the fair comparison: the
    # error of an alignment grows with the molecule
    small = heavy <= ion_heavy
    rmse, rmse_atom = rms(errs), rms(errs / ion_atoms)
    neu_small, neu_small_atom = rms(loo[small]), rms(loo[small] / n_at[small])
    by_sign = {q: rms(errs[[r["charge"] == q for r in rows]])
               for q in (-1, 1) if any(r["charge"] == q for r in rows)}
    ratio_mol, ratio_atom = rmse / neu_small, rmse_atom / neu_small_atom
    policy = "reject" if ratio_atom > 2.0 else "support"
    out = {
        "n_ions": len(rows),
        "ions": rows,
        "rmse_eV_per_molecule": round(rmse, 4),
        "neutral_heldout_rmse_eV": round(neu_small, 4),
        "policy": policy,
        "command": "datasets/charged-ions/regenerate.sh (tealign compute calib on ions.extxyz "
                   "with pyscf:wb97m-d3bj/def2-tzvppd and pyscf:pbe/def2-qzvpp; analyse.py)",
        "notes": (
            f"Source PySCF wB97M/def2-TZVPPD (D3 apart), target PySCF PBE/def2-QZVPP (the "
            f"Gaussian-basis PBE whose gap to GPAW PW800 is measured on neutrals elsewhere). "
            f"a = {a:.5f} fitted (scale model, y = a x) on {len(ids)} neutral QM9 molecules "
            f"of ../calib-public; ions use the same a and NEUTRAL isolated-atom tables. "
            f"neutral_heldout_rmse_eV is the leave-one-out RMSE of the {int(small.sum())} "
            f"neutrals with at most {ion_heavy} heavy atoms (the ions' size); over all "
            f"{len(ids)} neutrals (1-9 heavy atoms) it is {rms(loo):.4f} eV. Per molecule the "
            f"ions' RMSE is {ratio_mol:.1f}x the size-matched neutrals'; per atom "
            f"{rmse_atom:.4f} vs {neu_small_atom:.4f} eV/atom ({ratio_atom:.1f}x): ions have "
            f"few H atoms, so per molecule hides a larger error per bond. Largest ion errors: "
            + ", ".join(f"{r['name']} {r['error_eV']:+.2f} eV" for r in
                        sorted(rows, key=lambda r: -abs(r["error_eV"]))[:3])
            + f"; largest size-matched neutral {np.max(np.abs(loo[small])):.2f} eV. "
              "Ion RMSE by charge: "
            + ", ".join(f"{q:+d}: {v:.4f} eV" for q, v in by_sign.items())
            + ". Policy rule: reject by default when the per-atom ratio exceeds 2 "
              "(--allow-charged keeps ions and states this error). Only H C N O F ions; "
              "metal counter-ions (SPICE's Na+, ...) are not measured. Geometries GFN2-xTB "
              "(make_ions.py)."),
        "a": round(a, 6),
        "rmse_eV_per_atom": round(rmse_atom, 4),
        "neutral_heldout_rmse_eV_per_atom": round(neu_small_atom, 4),
        "neutral_heldout_n": int(small.sum()),
        "neutral_heldout_rmse_eV_all": round(rms(loo), 4),
        "rmse_eV_by_charge": {str(q): round(v, 4) for q, v in by_sign.items()},
    }
    from tealign.io.outputs import write_json

    write_json(HERE / "charged.json", out)
    for r in rows:
        print(f"{r['name']:15s} {r['formula']:8s} {r['charge']:+d}  {r['error_eV']:+.4f} eV")
    print(f"a = {a:.5f}; ions RMSE {rmse:.4f} eV, {rmse_atom:.4f} eV/atom (n={len(rows)}); "
          f"size-matched neutral LOO RMSE {neu_small:.4f} eV, {neu_small_atom:.4f} eV/atom "
          f"(n={int(small.sum())}); all neutrals {rms(loo):.4f} eV; policy {policy}")


if __name__ == "__main__":
    main()
