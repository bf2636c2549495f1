"""`tealign align` throughput and memory on large extxyz files, against ASE doing the same job.

For each size (default 100,000 and 1,000,000 frames of ~20 atoms with energy and forces) it
generates a file, fits a small alignment (wb97m-d3bj-def2-tzvppd → vasp-pbe-mp), and times
``tealign align`` as a subprocess (peak RSS from ``wait4``). On the smallest size it also runs
the same job with ``ase.io.read`` + the same transform (numpy, per frame) + ``ase.io.write``
and reports the speed ratio. Targets (issue 3): ratio ≥ 10×, peak RSS < 1 GB at 1,000,000
frames and within 10 % of the 100,000-frame value.

    python benchmarks/align_throughput.py                 # 1e5 and 1e6 frames
    python benchmarks/align_throughput.py --sizes 20000   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from io_throughput import generate  # noqa: E402

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).with_name("tealign")

ASE_JOB = r"""
import json, sys, time
import numpy as np
import ase.io
from ase.calculators.singlepoint import SinglePointCalculator
t0 = time.perf_counter()
d = json.load(open(ALIGNMENT))
a = d["model"]["a"]
src = d["source_table"]["energies"]; tgt = d["target_table"]["energies"]
frames = ase.io.read(PATH, ":")
for atoms in frames:
    syms = atoms.get_chemical_symbols()
    e = atoms.get_potential_energy(); f = atoms.get_forces()
    s_src = sum(src[s] for s in syms); s_tgt = sum(tgt[s] for s in syms)
    e_new = s_tgt - a * (s_src - e)
    atoms.calc = SinglePointCalculator(atoms, energy=e_new, forces=a * f)
    atoms.info["orig_energy"] = e
    atoms.arrays["orig_forces"] = f
ase.io.write(OUT, frames)
print(json.dumps({"frames": len(frames), "seconds": time.perf_counter() - t0}))
"""


def run_measured(cmd: list[str]) -> tuple[float, float, str, float]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB, stdout, CPU seconds).

    CPU seconds (user + system, the command's reaped worker processes included) stay
    comparable on a loaded machine, where wall times mostly measure the other jobs."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read()
    err = proc.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f"{cmd[0]} failed ({code}):\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def make_alignment(path: Path) -> None:
    code = f"""
import numpy as np
from ase.data import chemical_symbols
from tealign.align import TotalEnergyAlignment
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.methods import load_table
wb, pbe = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")
rng = np.random.default_rng(0)
recs = []
for i in range(50):
    z = rng.choice([1, 6, 7, 8], 12)
    sym = [chemical_symbols[k] for k in z]
    x = 4.0 * len(z) * rng.uniform(0.8, 1.2)
    info = {{"e_src": sum(map(wb.energy, sym)) - x, "e_tgt": sum(map(pbe.energy, sym)) - 0.93 * x}}
    recs.append(FrameRecord(numbers=z, positions=rng.normal(size=(12, 3)), index=i, info=info))
tea = TotalEnergyAlignment(wb, pbe).fit(FrameBatch.from_records(recs), "e_src", "e_tgt")
tea.save({str(path)!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--skip-ase", action="store_true")
    ap.add_argument("--json-out", type=Path, default=HERE / "results" / "align_throughput.json")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tealign-align-"))
    work.mkdir(parents=True, exist_ok=True)
    alignment = work / "alignment.json"
    make_alignment(alignment)
    results: dict = {"sizes": {}}
    for n in sorted(args.sizes):
        path = work / f"bench_{n}.extxyz"
        if not path.exists():
            t = time.perf_counter()
            generate(path, n)
            print(f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
        out = work / f"aligned_{n}.extxyz"
        wall, rss, stdout, cpu = run_measured([str(BIN), "align", str(path), "--alignment",
                                               str(alignment), "-o", str(out), "--json"])
        frames = json.loads(stdout)["frames_out"]
        r = {"frames": frames, "seconds": wall, "frames_per_s": frames / wall,
             "cpu_seconds": cpu, "peak_rss_MB": rss, "input_MB": path.stat().st_size / 1e6}
        results["sizes"][str(n)] = r
        print(f"tealign align {n:>9d} frames: {wall:7.1f} s  {r['frames_per_s']:9.0f} frames/s  "
              f"peak RSS {rss:6.0f} MB")
        out.unlink()
    smallest = str(min(args.sizes))
    if not args.skip_ase:
        path = work / f"bench_{smallest}.extxyz"
        job = ASE_JOB.replace("ALIGNMENT", repr(str(alignment))).replace(
            "PATH", repr(str(path))).replace("OUT", repr(str(work / "ase_out.extxyz")))
        wall, rss, stdout, cpu = run_measured([sys.executable, "-c", job])
        frames = json.loads(stdout.strip().splitlines()[-1])["frames"]
        results["ase"] = {"frames": frames, "seconds": wall, "frames_per_s": frames / wall,
                          "cpu_seconds": cpu, "peak_rss_MB": rss}
        ratio = results["sizes"][smallest]["frames_per_s"] / results["ase"]["frames_per_s"]
        results["speedup_vs_ase"] = ratio
        results["speedup_vs_ase_cpu"] = cpu / results["sizes"][smallest]["cpu_seconds"]
        print(f"ase.io.read + transform + ase.io.write {frames} frames: {wall:.1f} s  "
              f"peak RSS {rss:.0f} MB  →  tealign is {ratio:.1f}x faster "
              f"({results['speedup_vs_ase_cpu']:.1f}x in CPU time)")
    sizes = sorted(int(s) for s in results["sizes"])
    if len(sizes) > 1:
        lo, hi = results["sizes"][str(sizes[0])], results["sizes"][str(sizes[-1])]
        results["rss_growth"] = hi["peak_rss_MB"] / lo["peak_rss_MB"] - 1
        print(f"peak RSS {sizes[-1]} vs {sizes[0]} frames: {100 * results['rss_growth']:+.1f} %")
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
