"""The paper's datasets at their real size: info, align and merge on 10⁵ and 10⁶ frames.

Synthetic files with the real schemas (generated once, streamed, so any size fits in memory):
  - MPtrj-shaped JSON: ``{mp_id: {frame_id: {"structure": <pymatgen Structure dict>,
    "uncorrected_total_energy", "corrected_total_energy", "energy_per_atom", "ef_per_atom",
    "e_per_atom_relaxed", "ef_per_atom_relaxed", "force", "stress" (kbar), "magmom",
    "bandgap", "mp_id"}}}``; 8–32 atoms per frame, 1–20 frames per material (MPtrj: 1.58 M
    frames of 146 k materials);
  - SPICE-shaped HDF5: one group per molecule (``atomic_numbers``, ``conformations`` in bohr,
    ``dft_total_energy`` / ``dft_total_gradient`` in hartree(/bohr),
    ``dispersion_correction_energy``, ``smiles``, ``subset``), 10–40 atoms of H C N O F S Cl,
    50 conformers per molecule.

Every stage runs ``tealign`` (the CLI, in its own process, so peak RSS is per stage): ``info``,
``align`` (onto the target scale with a synthetic alignment) and ``merge`` (MACE-ready output,
``--format lmdb`` and ``--format h5``, ``--workers``). Anchors on the same frames: mace-torch's
own ``mace_prepare_data`` (extxyz → sharded HDF5) and the ``ase.io.read`` path. The projected
wall time for MPtrj (1.58 M frames) + OFF23 (~1 M) uses the measured 10⁶-frame rates.

    python benchmarks/scale.py generate --frames 100000 --dir /tmp/scale
    python benchmarks/scale.py run --frames 100000 --dir /tmp/scale -o benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KBAR_PER_EV_A3 = 1602.176634

#: Elements of the synthetic crystals (all in the vasp-pbe-mp table) and their PBE E0s' rough
#: per-atom cohesive scale; molecules use H C N O F S Cl (all in the ωB97M table).
CRYSTAL_ELEMENTS = ["Li", "O", "Fe", "Mn", "Si", "Al", "Mg", "Na", "Cl", "S", "P", "Ti", "Co",
                    "Ni", "Cu", "Zn", "N", "F", "Ca", "K"]
MOLECULE_Z = np.array([1, 6, 7, 8, 9, 16, 17])
MOLECULE_P = np.array([0.48, 0.32, 0.07, 0.08, 0.02, 0.02, 0.01])


def _structure(rng, n: int, symbols: list[str]) -> tuple[dict, np.ndarray]:
    a = float(rng.uniform(4.0, 9.0))
    lattice = np.diag([a, a * rng.uniform(0.9, 1.1), a * rng.uniform(0.9, 1.1)])
    lattice += rng.normal(scale=0.1, size=(3, 3))
    frac = rng.uniform(size=(n, 3))
    xyz = frac @ lattice
    mags = rng.normal(scale=0.5, size=n)
    sites = [{"species": [{"element": s, "occu": 1}], "abc": f.tolist(), "xyz": p.tolist(),
              "label": s, "properties": {"magmom": float(m)}}
             for s, f, p, m in zip(symbols, frac, xyz, mags)]
    lengths = np.linalg.norm(lattice, axis=1)
    lat = {"matrix": lattice.tolist(), "pbc": [True, True, True],
           "a": float(lengths[0]), "b": float(lengths[1]), "c": float(lengths[2]),
           "alpha": 90.0, "beta": 90.0, "gamma": 90.0, "volume": float(abs(np.linalg.det(lattice)))}
    return ({"@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0,
             "lattice": lat, "properties": {}, "sites": sites}, mags)


def make_mptrj(path: Path, n_frames: int, seed: int = 0) -> dict:
    """Write an MPtrj-shaped JSON of ``n_frames`` frames (streamed, one material at a time)."""
    import orjson

    rng = np.random.default_rng(seed)
    frames = materials = atoms = 0
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(b"{")
        while frames < n_frames:
            k = min(int(rng.integers(1, 21)), n_frames - frames)
            mp_id = f"mp-{1000 + materials}"
            n = int(rng.integers(8, 33))
            kinds = rng.choice(CRYSTAL_ELEMENTS, size=int(rng.integers(1, 5)), replace=False)
            symbols = [str(s) for s in rng.choice(kinds, size=n)]
            doc = {}
            for j in range(k):
                structure, mags = _structure(rng, n, symbols)
                e = float(-4.5 * n + rng.normal())
                doc[f"{mp_id}-{j}-0"] = {
                    "structure": structure,
                    "uncorrected_total_energy": e,
                    "corrected_total_energy": e - 0.3 * n,
                    "energy_per_atom": e / n,
                    "ef_per_atom": float(rng.normal()),
                    "e_per_atom_relaxed": e / n - 0.01,
                    "ef_per_atom_relaxed": float(rng.normal()),
                    "force": rng.normal(scale=0.3, size=(n, 3)).tolist(),
                    "stress": (rng.normal(scale=5.0, size=(3, 3))).tolist(),
                    "magmom": mags.tolist() if j % 3 else None,
                    "bandgap": float(abs(rng.normal())),
                    "mp_id": mp_id,
                }
            if materials:
                fh.write(b",")
            fh.write(orjson.dumps(mp_id) + b":" + orjson.dumps(doc))
            frames += k
            atoms += k * n
            materials += 1
        fh.write(b"}")
    os.replace(tmp, path)
    return {"frames": frames, "materials": materials, "atoms": atoms,
            "bytes": path.stat().st_size}


def make_spice(path: Path, n_frames: int, seed: int = 0, per_molecule: int = 50) -> dict:
    """Write a SPICE-shaped HDF5 of ``n_frames`` conformers (50 per molecule)."""
    import h5py

    rng = np.random.default_rng(seed)
    frames = mols = atoms = 0
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as f:
        while frames < n_frames:
            k = min(per_molecule, n_frames - frames)
            n = int(rng.integers(10, 41))
            z = rng.choice(MOLECULE_Z, size=n, p=MOLECULE_P).astype(np.int16)
            g = f.create_group(f"mol{mols:07d}")
            g["atomic_numbers"] = z
            base = rng.normal(scale=2.0, size=(n, 3))
            conf = base[None] + rng.normal(scale=0.05, size=(k, n, 3))
            g["conformations"] = (conf / 0.529177210903).astype(np.float32)
            g["dft_total_energy"] = -40.0 * n + rng.normal(scale=0.01, size=k)
            g["dft_total_gradient"] = rng.normal(scale=0.01, size=(k, n, 3)).astype(np.float32)
            g["dispersion_correction_energy"] = rng.normal(scale=0.01, size=k) - 0.02
            g["formation_energy"] = rng.normal(size=k)
            g["smiles"] = [b"[C:1]([H:2])([H:3])([H:4])[O:5][H:6]"]
            g["subset"] = [b"SPICE PubChem Set 1 Single Points Dataset v1.2"]
            frames += k
            atoms += k * n
            mols += 1
    os.replace(tmp, path)
    return {"frames": frames, "molecules": mols, "atoms": atoms, "bytes": path.stat().st_size}


# ------------------------------------------------------------------------------ measuring
BIN = Path(sys.executable).with_name("tealign")
MACE_PREPARE = Path(sys.executable).with_name("mace_prepare_data")


def run_measured(cmd: list[str], env: dict | None = None, timeout: float | None = None
                 ) -> dict:
    """Run ``cmd``; wall time, peak RSS of its largest process (``wait4``) and the peak of
    the summed RSS of its whole process tree (sampled every 0.5 s; copy-on-write pages of
    forked workers count once per process, so this is an upper bound)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    ps = psutil.Process(proc.pid)
    tree_peak = 0
    import threading

    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda: out_chunks.append(proc.stdout.read())),
               threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()))]
    for r in readers:
        r.start()
    status = usage = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            procs = [ps, *ps.children(recursive=True)]
            tree_peak = max(tree_peak, sum(p.memory_info().rss for p in procs))
        except psutil.Error:
            pass
        if timeout and time.perf_counter() - t0 > timeout:
            proc.kill()
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"cmd": [str(c) for c in cmd], "exit": proc.returncode, "seconds": wall,
            "peak_rss_MB": usage.ru_maxrss / 1024, "peak_tree_rss_MB": tree_peak / 2**20,
            "stdout": "".join(out_chunks), "stderr_tail": "".join(err_chunks)[-1500:]}


def make_alignments(work: Path) -> dict[str, Path]:
    """Two synthetic alignments fitted by tealign: ωB97M → PBE for the molecules, and PBE →
    PBE (a ≈ 0.98) for the crystals, so that every MPtrj element goes through align."""
    code = f"""
import numpy as np
from ase.data import chemical_symbols, atomic_numbers
from tealign.align import TotalEnergyAlignment
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.methods import load_table
def fit(src, tgt, elements, a, out):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(60):
        z = np.array([atomic_numbers[s] for s in rng.choice(elements, 12)])
        sym = [chemical_symbols[k] for k in z]
        x = 4.0 * len(z) * rng.uniform(0.8, 1.2)
        info = {{"e_src": sum(map(src.energy, sym)) - x,
                "e_tgt": sum(map(tgt.energy, sym)) - a * x + rng.normal() * 0.02}}
        recs.append(FrameRecord(numbers=z, positions=rng.normal(size=(12, 3)), index=i,
                                info=info))
    TotalEnergyAlignment(src, tgt).fit(FrameBatch.from_records(recs), "e_src",
                                       "e_tgt").save(out)
wb, pbe = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")
fit(wb, pbe, ["H", "C", "N", "O", "F", "S", "Cl"], 0.93, {str(work / "align_spice.json")!r})
fit(pbe, pbe, {CRYSTAL_ELEMENTS!r}, 0.98, {str(work / "align_mptrj.json")!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    return {"spice": work / "align_spice.json", "mptrj": work / "align_mptrj.json"}


def merge_toml(path: Path, sources: dict[str, Path], alignments: dict[str, Path]) -> Path:
    """A merge config: MPtrj as target-scale data, SPICE aligned ωB97M → PBE."""
    parts = ['[target]\ne0 = "vasp-pbe-mp"\nr_max = 4.5\n']
    for name, data in sources.items():
        align = '"target"' if name == "mptrj" else json.dumps(str(alignments[name]))
        parts.append(f'[[source]]\nname = "{name}"\npath = {json.dumps(str(data))}\n'
                     f'energy_key = "energy"\nforces_key = "forces"\nstress_key = "stress"\n'
                     f"alignment = {align}\nconfig_type = \"{name}\"\n")
    path.write_text("\n".join(parts))
    return path


def _frames(stage: str, res: dict) -> int | None:
    try:
        doc = json.loads(res["stdout"])
    except (json.JSONDecodeError, KeyError):
        return None
    return doc.get("frames_out", doc.get("frames"))


PARTIAL: Path | None = None


def measure(name: str, cmd: list[str], results: dict, frames: int | None = None,
            env: dict | None = None, clean: Path | None = None) -> dict:
    import shutil

    tries = [run_measured(cmd, env=env) for _ in range(REPEAT)]
    res = tries[0]
    if REPEAT > 1:  # peak RSS varies from run to run: keep every run and their median
        res["peak_rss_MB_runs"] = [t["peak_rss_MB"] for t in tries]
        res["seconds_runs"] = [t["seconds"] for t in tries]
        res["peak_rss_MB"] = statistics.median(res["peak_rss_MB_runs"])
        res["exit"] = max(t["exit"] for t in tries)
    n = frames if frames is not None else _frames(name, res)
    res["frames"] = n
    res["frames_per_s"] = n / res["seconds"] if n else None
    results[name] = {k: v for k, v in res.items() if k != "stdout" or len(v) < 4000}
    if PARTIAL is not None:  # every finished stage is kept, should a long run be cut short
        PARTIAL.write_text(json.dumps({"stages": results}, indent=2) + "\n")
    ok = "ok" if res["exit"] == 0 else f"FAILED ({res['exit']})"
    print(f"{name:<28s} {res['seconds']:8.1f} s  {res['frames_per_s'] or 0:9.0f} frames/s  "
          f"peak RSS {res['peak_rss_MB']:6.0f} MB (tree {res['peak_tree_rss_MB']:6.0f} MB)  "
          f"{ok}", flush=True)
    if res["exit"]:
        print(res["stderr_tail"], file=sys.stderr)
    if clean is not None:
        shutil.rmtree(clean, ignore_errors=True) if clean.is_dir() else clean.unlink(
            missing_ok=True)
    return res


STAGES = ("merge", "info", "align")
#: times each stage runs (``run --repeat``); its peak RSS is then the median
REPEAT = 1


def run(n: int, data: Path, work: Path, workers: int, anchors: bool, full: bool,
        stages: tuple = STAGES, datasets: tuple = ("mptrj", "spice")) -> dict:
    """The ``stages`` (merge, info, align) on the ``n``-frame files; {stage: measurement}."""
    work.mkdir(parents=True, exist_ok=True)
    files = {"mptrj": data / f"mptrj_{n}.json", "spice": data / f"spice_{n}.h5"}
    files = {k: v for k, v in files.items() if k in datasets}
    for f in files.values():
        if not f.exists():
            raise SystemExit(f"{f} missing: run `scale.py generate --frames {n}` first")
    alignments = make_alignments(work)
    results: dict = {}
    w = ["--workers", str(workers)]
    # the merges first: they are the longest stages and the acceptance's main subject, so
    # a run cut short on a busy machine still has them
    for ds, path in files.items() if "merge" in stages else ():
        toml = merge_toml(work / f"{ds}.toml", {ds: path}, alignments)
        fmts = ["lmdb", "h5"] if full else ["lmdb"]
        for fmt in fmts:
            out = work / f"merged_{ds}_{fmt}"
            measure(f"merge/{ds}/{fmt}", [BIN, "merge", toml, "-o", out, "--format", fmt, *w,
                                          "--no-extxyz", "--json"], results, clean=out)
        if full:
            out = work / f"merged_{ds}_lmdb_extxyz"
            measure(f"merge/{ds}/lmdb+extxyz", [BIN, "merge", toml, "-o", out, "--format",
                                                "lmdb", *w, "--json"], results, clean=out)
    if full and "merge" in stages:
        toml = merge_toml(work / "both.toml", files, alignments)
        out = work / "merged_both"
        measure("merge/mptrj+spice/lmdb", [BIN, "merge", toml, "-o", out, "--format", "lmdb",
                                           *w, "--no-extxyz", "--json"], results, clean=out)
    for ds, path in files.items() if "info" in stages else ():
        measure(f"info/{ds}", [BIN, "info", path, "--json"], results)
    for ds, path in files.items() if "align" in stages else ():
        out = work / f"aligned_{ds}.extxyz"
        measure(f"align/{ds}", [BIN, "align", path, "--alignment", alignments[ds], "-o", out,
                                *w, "--json"], results, clean=None if anchors else out)
    if anchors and "align" in stages:
        aligned = work / "aligned_mptrj.extxyz"
        out = work / "mace_prepare"
        measure("anchor/mace_prepare_data/mptrj",
                [MACE_PREPARE, "--train_file", aligned, "--valid_fraction", "0.1",
                 "--h5_prefix", f"{out}/", "--r_max", "4.5", "--energy_key", "REF_energy",
                 "--forces_key", "REF_forces", "--stress_key", "REF_stress",
                 "--num_process", str(workers), "--seed", "0",
                 "--E0s", str(_e0s(CRYSTAL_ELEMENTS))], results, frames=n, clean=out)
        job = ("import ase.io, json, sys; fr = ase.io.read(sys.argv[1], ':'); "
               "print(json.dumps({'frames': len(fr)}))")
        measure("anchor/ase.io.read/mptrj", [sys.executable, "-c", job, aligned], results)
        for ds in files:
            (work / f"aligned_{ds}.extxyz").unlink(missing_ok=True)
    return results


def _e0s(elements: list[str]) -> dict[int, float]:
    from ase.data import atomic_numbers

    from tealign.methods import load_table

    t = load_table("vasp-pbe-mp")
    return {atomic_numbers[s]: t.energy(s) for s in elements}


def old_merge(n: int, data: Path, work: Path, commit: str) -> dict:
    """The merge before issue 16 (json.load, in-memory concat, mace-torch's HDF5 writer in
    one process, merged.extxyz) on the same files, from a ``git archive`` of ``commit``."""

    src = work / f"tealign-{commit[:8]}"
    if not src.exists():
        src.mkdir(parents=True)
        subprocess.run(f"git -C {ROOT} archive {commit} src | tar -x -C {src}", shell=True,
                       check=True)
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    alignments = make_alignments(work)
    results: dict = {}
    for ds, path in {"mptrj": data / f"mptrj_{n}.json", "spice": data / f"spice_{n}.h5"}.items():
        toml = merge_toml(work / f"old_{ds}.toml", {ds: path}, alignments)
        out = work / f"old_merged_{ds}"
        measure(f"merge_before/{ds}/h5", [sys.executable, "-m", "tealign", "merge", toml, "-o",
                                           out, "--json"], results, env=env, clean=out)
    return results


def qm9(work: Path, workers: int, commit: str = "HEAD") -> dict:
    """All of QM9 (130,831 molecules, qm9pack's CSVs) through fit → info → align → merge with
    inorganic-mini: the alignment B3LYP/6-31G(2df,p) → GPAW PBE is fitted on calib-qm9's
    ``energy_qm9_b3lyp`` ↔ ``energy_pbe`` pairs. The bundled datasets are taken from git
    (``commit``), so a dataset being recomputed in the working tree does not change them."""
    work.mkdir(parents=True, exist_ok=True)
    files = {"calib": "datasets/calib-qm9/calib-qm9.extxyz",
             "calib_pbe": "datasets/calib-qm9/calib-qm9.atoms_pbe.json",
             "inorganic": "datasets/inorganic-mini/inorganic-mini.extxyz",
             "inorganic_pbe": "datasets/inorganic-mini/inorganic-mini.atoms_pbe.json"}
    local = {}
    for key, rel in files.items():
        local[key] = work / Path(rel).name
        blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{rel}"], check=True,
                              capture_output=True).stdout
        local[key].write_bytes(blob)
    results: dict = {}
    align = work / "qm9_alignment.json"
    measure("qm9/fit", [BIN, "fit", local["calib"], "--source-key", "energy_qm9_b3lyp",
                        "--target-key", "energy_pbe", "--source-e0", "b3lyp-6-31g2dfp",
                        "--target-e0", local["calib_pbe"], "--model", "scale", "--json", "-o",
                        align], results, frames=0)
    results["qm9/fit"]["fit"] = json.loads(results["qm9/fit"]["stdout"])
    measure("qm9/info", [BIN, "info", "qm9", "--json"], results)
    out = work / "qm9_aligned.extxyz"
    measure("qm9/align", [BIN, "align", "qm9", "--alignment", align, "--energy-key",
                          "energy_qm9_b3lyp", "-o", out, "--workers", str(workers), "--json"],
            results, clean=out)
    toml = work / "qm9_inorganic.toml"
    toml.write_text(
        f'[target]\ne0 = ["{local["calib_pbe"]}", "{local["inorganic_pbe"]}"]\nr_max = 4.5\n\n'
        f'[[source]]\nname = "qm9"\npath = "qm9"\nenergy_key = "energy_qm9_b3lyp"\n'
        f'alignment = "{align}"\nconfig_type = "qm9"\n\n'
        f'[[source]]\nname = "inorganic"\npath = "{local["inorganic"]}"\n'
        'energy_key = "energy_pbe"\nforces_key = "forces_pbe"\nstress_key = "stress_pbe"\n'
        'alignment = "target"\nconfig_type = "inorganic"\n')
    for fmt in ("lmdb", "h5"):
        out = work / f"qm9_merged_{fmt}"
        measure(f"qm9/merge+inorganic-mini/{fmt}", [BIN, "merge", toml, "-o", out, "--format",
                                                    fmt, "--workers", str(workers), "--json"],
                results, clean=out)
    return results


def machine(shared: str) -> dict:
    """The machine a run measured, with what else ran on it (``--shared``, as the user
    states it; the load average at the start is measured)."""
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": load, "shared": shared}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write the synthetic MPtrj JSON and SPICE HDF5")
    g.add_argument("--frames", type=int, nargs="+", default=[100_000, 1_000_000])
    g.add_argument("--dir", type=Path, default=Path("/tmp/scale"))
    r = sub.add_parser("run", help="info, align and merge on the generated files")
    r.add_argument("--frames", type=int, required=True)
    r.add_argument("--dir", type=Path, default=Path("/tmp/scale"))
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--anchors", action="store_true", help="mace_prepare_data, ase.io.read")
    r.add_argument("--full", action="store_true", help="also HDF5, merged.extxyz, both sources")
    r.add_argument("--before", default=None, help="commit of the merge before issue 16")
    r.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                   help="which stages to run (report merges runs of the same size)")
    r.add_argument("--datasets", nargs="+", choices=("mptrj", "spice"),
                   default=["mptrj", "spice"])
    r.add_argument("--repeat", type=int, default=1,
                   help="run each stage this many times; its peak RSS is the median")
    r.add_argument("-o", "--json-out", type=Path, required=True)
    r.add_argument("--shared", default="not stated",
                   help="what else ran on the machine meanwhile (recorded with the results)")
    q = sub.add_parser("qm9", help="all of QM9 through fit, info, align and merge")
    q.add_argument("--dir", type=Path, default=Path("/tmp/scale"))
    q.add_argument("--workers", type=int, default=2)
    q.add_argument("-o", "--json-out", type=Path, required=True)
    q.add_argument("--shared", default="not stated",
                   help="what else ran on the machine meanwhile (recorded with the results)")
    c = sub.add_parser("report", help="combine run results into one JSON with projections")
    c.add_argument("inputs", type=Path, nargs="+")
    c.add_argument("-o", "--json-out", type=Path, default=HERE / "results" / "scale.json")
    c.add_argument("--note", action="append", default=[], help="a line for the notes")
    c.add_argument("--drop", action="append", default=[],
                   help="a superseded stage to leave out (explain it in a --note)")
    args = ap.parse_args()
    if args.cmd == "generate":
        args.dir.mkdir(parents=True, exist_ok=True)
        for n in args.frames:
            for kind, fn, name in (("mptrj", make_mptrj, f"mptrj_{n}.json"),
                                   ("spice", make_spice, f"spice_{n}.h5")):
                t = time.perf_counter()
                info = fn(args.dir / name, n)
                print(kind, n, info, f"{time.perf_counter() - t:.0f} s", flush=True)
        return
    global PARTIAL
    if args.cmd in ("qm9", "run"):
        PARTIAL = args.json_out.with_name(args.json_out.stem + ".partial.json")
    if args.cmd == "qm9":
        t0 = time.perf_counter()
        doc = {"frames": "qm9", "machine": machine(args.shared), "workers": args.workers,
               "stages": qm9(args.dir / "work_qm9", args.workers)}
        doc["total_seconds"] = time.perf_counter() - t0
        doc["load_average_at_end"] = os.getloadavg()
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
        return
    if args.cmd == "run":
        work = args.dir / f"work_{args.frames}"
        doc = {"frames": args.frames, "machine": machine(args.shared),
               "workers": args.workers,
               "inputs": {"mptrj": _size(args.dir / f"mptrj_{args.frames}.json"),
                          "spice": _size(args.dir / f"spice_{args.frames}.h5")}}
        t0 = time.perf_counter()
        global REPEAT
        REPEAT = args.repeat
        doc["stages"] = run(args.frames, args.dir, work, args.workers, args.anchors, args.full,
                            tuple(args.stages), tuple(args.datasets))
        if args.before:
            doc["stages"].update(old_merge(args.frames, args.dir, work, args.before))
        doc["total_seconds"] = time.perf_counter() - t0
        doc["load_average_at_end"] = os.getloadavg()
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
        return
    report(args.inputs, args.json_out, args.note, args.drop)


def _size(p: Path) -> dict:
    return {"path": str(p), "MB": p.stat().st_size / 1e6 if p.exists() else None}


MPTRJ_FRAMES = 1_580_395
OFF23_FRAMES = 1_000_000


def report(inputs: list[Path], out: Path, notes: list[str] | None = None,
           drop: list[str] | None = None) -> None:
    """One results file: every run, the table, the projection, the acceptance checks.
    Stages named in ``drop`` (superseded measurements; say why in a note) are left out."""
    runs, others = {}, {}
    for p in inputs:
        d = json.loads(p.read_text())
        d["stages"] = {k: v for k, v in d["stages"].items() if k not in (drop or [])}
        d.setdefault("source", p.name)
        for st in d["stages"].values():
            st.setdefault("run", d["source"])
        into = runs if isinstance(d["frames"], int) else others
        key = str(d["frames"])
        if key in into:  # a later run of the same size replaces the stages it measured
            into[key] = {**into[key], "stages": {**into[key]["stages"], **d["stages"]},
                         "machines": [*into[key].get("machines", [into[key]["machine"]]),
                                      d["machine"]]}
        else:
            into[key] = d
    sizes = sorted(runs, key=int)
    table = []
    for n, d in [*((n, runs[n]) for n in sizes), *others.items()]:
        for stage, m in d["stages"].items():
            table.append({"frames": m["frames"] if not n.isdigit() else int(n), "stage": stage,
                          "seconds": round(m["seconds"], 1),
                          "frames_per_s": round(m["frames_per_s"], 1) if m["frames_per_s"]
                          else None, "peak_rss_MB": round(m["peak_rss_MB"]),
                          "peak_tree_rss_MB": round(m["peak_tree_rss_MB"]),
                          "ok": m["exit"] == 0, "run": m.get("run")})
    big = sizes[-1]
    st = runs[big]["stages"]
    proj = {}
    for fmt in ("lmdb", "h5"):
        a, b = st.get(f"merge/mptrj/{fmt}"), st.get(f"merge/spice/{fmt}")
        if a and b and a["frames_per_s"] and b["frames_per_s"]:
            s = MPTRJ_FRAMES / a["frames_per_s"] + OFF23_FRAMES / b["frames_per_s"]
            proj[f"merge_{fmt}"] = {"seconds": round(s), "hours": round(s / 3600, 2),
                                    "from": f"{big}-frame merge rates"}
    doc = {"description": __doc__.split("\n\n")[0], "notes": notes or [],
           "runs": {**runs, **others},
           "table": table,
           "projection_mptrj_plus_off23": {"mptrj_frames": MPTRJ_FRAMES,
                                           "off23_frames": OFF23_FRAMES, **proj}}
    if len(sizes) > 1:
        small = sizes[-2]
        acc = {}
        for stage, m in st.items():
            m0 = runs[small]["stages"].get(stage)
            if not m0 or stage.startswith("anchor"):
                continue
            acc[stage] = {"peak_rss_MB": [round(m0["peak_rss_MB"]), round(m["peak_rss_MB"])],
                          "growth_pct": round(100 * (m["peak_rss_MB"] / m0["peak_rss_MB"] - 1),
                                              1),
                          "below_2GB": m["peak_rss_MB"] < 2048,
                          "within_10pct": m["peak_rss_MB"] <= 1.1 * m0["peak_rss_MB"]}
        doc["acceptance_rss"] = {"sizes": [int(small), int(big)], "stages": acc}
    doc["acceptance_merge_throughput_at"] = int(big)
    doc["acceptance_merge_throughput"] = {
        stage: {"frames_per_s": round(m["frames_per_s"], 1),
                "x_vs_130_per_s": round(m["frames_per_s"] / 130.0, 1)}
        for stage, m in st.items() if stage.startswith("merge/") and m["frames_per_s"]}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for row in table:
        print(f"{row['frames'] or 0:>8d} {row['stage']:<36s} {row['seconds']:>8.1f} s "
              f"{row['frames_per_s'] or 0:>9.0f} fr/s {row['peak_rss_MB']:>6d} MB "
              f"(tree {row['peak_tree_rss_MB']:>6d})")
    print(json.dumps(doc["projection_mptrj_plus_off23"], indent=1))


if __name__ == "__main__":
    main()
