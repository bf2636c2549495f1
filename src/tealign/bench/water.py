"""Liquid water O–O radial distribution (paper Fig. 3d).

64 H2O at 1 g/cm³ (cubic box 12.42 Å), relaxed from a lattice start, then NVT Langevin at
300 K with 0.5 fs steps, D3(BJ) added (``--d3``: PBE parameters by default for MACE/CHGNet
models, none for xTB, which has its own dispersion); the O–O RDF over the second half of the
run is compared for r in [2, 6] Å (half the box) with the X-ray experiment (Skinner et al.
2013) and TIP3P/TIP4P runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from tealign import rundir as rd
from tealign.io.outputs import write_json

BOX_A = 12.42
N_WATER = 64
R_RANGE = (2.0, 6.0)
TIMESTEP_FS = 0.5
REFERENCE_CURVES = ("tip3p", "tip4p")


def default_d3(calculator: str) -> str:
    """D3(BJ) of PBE for MACE/CHGNet models; none for xTB (it has its own dispersion)."""
    from tealign.bench.calculators import own_dispersion

    return "none" if own_dispersion(calculator) else "pbe"


def n_steps(ps: float, timestep_fs: float = TIMESTEP_FS) -> int:
    """MD steps of a ``ps`` picosecond run."""
    return int(round(ps * 1000 / timestep_fs))


def load_references(data: Path | None = None, warn=None) -> dict:
    """The O–O g(r) curves to compare with: ``exp`` (registry ``water-exp``, or ``data``;
    a setup error when missing) and the TIP3P/TIP4P runs where found (``warn`` is called
    with the name and the reason of each one that is not)."""
    from tealign.bench import registry
    from tealign.errors import SetupError

    exp = np.load(registry.locate("water-exp", data))
    refs = {"exp": (exp["r_OO"], exp["g_OO"])}
    for name in REFERENCE_CURVES:
        try:
            d = np.load(registry.locate(f"water-{name}"))
            refs[name] = (d["r_OO"], d["g_OO"])
        except SetupError as exc:
            if warn:
                warn(name, exc.message)
    return refs


def water_box(seed: int = 0) -> Atoms:
    """64 randomly oriented water molecules on a 4×4×4 lattice in a 12.42 Å cube (1 g/cm³)."""
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    h2o = molecule("H2O")
    h2o.positions -= h2o.get_center_of_mass()
    spacing = BOX_A / 4
    numbers, positions = [], []
    for i in range(4):
        for j in range(4):
            for k in range(4):
                rot = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
                centre = (np.array([i, j, k]) + 0.5) * spacing + rng.normal(scale=0.1, size=3)
                positions.extend(h2o.positions @ rot.T + centre)
                numbers.extend(h2o.numbers)
    return Atoms(numbers=numbers, positions=positions, cell=[BOX_A] * 3, pbc=True)


def rdf_oo(frames: list[np.ndarray], cell: float, r_max: float, nbins: int = 300
           ) -> tuple[np.ndarray, np.ndarray]:
    """O–O g(r) averaged over frames of O positions (minimum image, cubic box)."""
    edges = np.linspace(0.0, r_max, nbins + 1)
    hist = np.zeros(nbins)
    n = len(frames[0])
    for pos in frames:
        d = pos[:, None, :] - pos[None, :, :]
        d -= cell * np.round(d / cell)
        r = np.sqrt((d**2).sum(-1))[np.triu_indices(n, 1)]
        hist += np.histogram(r, bins=edges)[0]
    rho = n / cell**3
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / (len(frames) * n / 2 * rho * shell)
    return 0.5 * (edges[1:] + edges[:-1]), g


def compare(r, g, r_ref, g_ref, lo=R_RANGE[0], hi=R_RANGE[1]) -> float:
    """RMSD of g(r) against a reference on the reference's grid within [lo, hi] Å."""
    m = (r_ref >= lo) & (r_ref <= hi)
    return float(np.sqrt(np.mean((np.interp(r_ref[m], r, g) - g_ref[m]) ** 2)))


def run(calculator, outdir: Path, ps: float = 2.0, d3: str | None = "pbe",
        timestep_fs: float = TIMESTEP_FS, seed: int = 0, references: dict | None = None,
        progress=None, prerelax_fmax: float = 0.1, prerelax_steps: int = 300) -> dict:
    """Run the MD and write ``results.json`` and ``water_rdf.png`` into ``outdir``.

    The starting box is relaxed (FIRE, fixed cell, to ``prerelax_fmax`` eV/Å or
    ``prerelax_steps`` steps) before the velocities are drawn. Relaxation and MD pass every
    geometry through the runaway guard (``tealign.bench.runaway``: non-finite values, a
    neighbour count over 3 × the start's) before the calculator sees it; a box that runs away
    is listed under ``skipped`` with the reason and no RDF is computed.
    """
    from tealign.bench.calculators import get_calculator, model_r_max
    from tealign.bench.runaway import GuardedCalculator, Runaway, RunawayGuard

    atoms = water_box(seed)
    r_cut = model_r_max(calculator)
    atoms.calc = GuardedCalculator(get_calculator(calculator, d3=d3),
                                   RunawayGuard(atoms, cutoff=r_cut))
    res = {"benchmark": "water", "calculator": str(calculator), "d3": d3 or "none",
           "ps": ps, "timestep_fs": timestep_fs, "steps": n_steps(ps, timestep_fs),
           "skipped": []}
    try:
        res.update(_simulate(atoms, ps, timestep_fs, seed, progress, prerelax_fmax,
                             prerelax_steps))
    except Runaway as exc:
        res["skipped"].append({"name": "water box", "reason": f"runaway: {exc.reason}"})
        res.update({"peak_r_A": None, "peak_g": None, "rmsd_vs_exp": None,
                    "mean_temperature_K": None, "r_A": [], "g_OO": []})
        outdir.mkdir(parents=True, exist_ok=True)
        _plot(None, None, references or {}, str(calculator), outdir / "water_rdf.png")
        res["figures"] = ["water_rdf.png"]
        write_json(outdir / rd.RESULTS_FILE, res)
        return res
    r, g = np.array(res["r_A"]), np.array(res["g_OO"])
    refs = references or {}
    for name, (rr, gg) in refs.items():
        res[f"rmsd_vs_{name}"] = compare(r, g, rr, gg)
    res["rmsd_vs_exp"] = res.get("rmsd_vs_exp")
    outdir.mkdir(parents=True, exist_ok=True)
    _plot(r, g, refs, str(calculator), outdir / "water_rdf.png")
    res["figures"] = ["water_rdf.png"]
    write_json(outdir / rd.RESULTS_FILE, res)
    return res


def _simulate(atoms, ps, timestep_fs, seed, progress, prerelax_fmax, prerelax_steps) -> dict:
    """Pre-relaxation, NVT run and RDF (raises ``Runaway``)."""
    from ase import units as ase_units  # ASE's MD integrator works in its own time unit
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta
    from ase.optimize import FIRE

    # the lattice start sits far above the liquid's potential energy: relaxing it first keeps
    # that energy from turning into heat faster than the thermostat removes it
    relax = FIRE(atoms, logfile=None)
    relax.run(fmax=prerelax_fmax, steps=prerelax_steps)
    e_relaxed_per_molecule = float(atoms.get_potential_energy()) / N_WATER
    rng = np.random.default_rng(seed)
    atoms.set_constraint(FixCom())  # no drift of the whole box
    thermalize_momenta(atoms, temperature_K=300, rng=rng)
    # friction 0.01 fs⁻¹ (ASE takes it in its own inverse time unit): ~100 fs coupling, so the
    # lattice start relaxes to 300 K well inside the discarded first half
    dyn = Langevin(atoms, timestep_fs * ase_units.fs, temperature_K=300,
                   friction=0.01 / ase_units.fs, fixcm=False, rng=rng)
    n_steps = int(round(ps * 1000 / timestep_fs))
    oxygens = atoms.numbers == 8
    frames, temps = [], []
    every = 10
    for step in range(1, n_steps + 1):
        dyn.run(1)
        if step > n_steps // 2 and step % every == 0:
            frames.append(atoms.positions[oxygens].copy())
            temps.append(atoms.get_temperature())
        if progress:
            progress(step)
    r, g = rdf_oo(frames, BOX_A, BOX_A / 2)
    m = (r >= R_RANGE[0]) & (r <= R_RANGE[1])
    peak = int(np.argmax(np.where(m, g, -np.inf)))
    return {"frames_in_rdf": len(frames),
            "prerelax_steps": int(relax.nsteps), "prerelax_fmax_eV_per_A": prerelax_fmax,
            "prerelaxed_energy_eV_per_molecule": e_relaxed_per_molecule,
            "mean_temperature_K": float(np.mean(temps)) if temps else None,
            "peak_r_A": float(r[peak]), "peak_g": float(g[peak]),
            "r_A": r.tolist(), "g_OO": g.tolist()}


def _plot(r, g, refs, label, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    styles = {"exp": ("k-", "experiment (Skinner 2013)"), "tip3p": ("C1--", "TIP3P"),
              "tip4p": ("C2--", "TIP4P")}
    for name, (rr, gg) in refs.items():
        st, lab = styles.get(name, ("--", name))
        ax.plot(rr, gg, st, lw=1.2, label=lab)
    if r is not None:
        ax.plot(r, g, "C0-", lw=1.8, label=Path(label).name)
    else:
        ax.set_title(f"{Path(label).name}: stopped (runaway)", fontsize=9)
    ax.set_xlim(*R_RANGE)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g$_{OO}$(r)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=130)
    plt.close(fig)
