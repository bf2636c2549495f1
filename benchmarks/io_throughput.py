"""Dataset I/O throughput: tealign's extxyz reader and MACE HDF5 writer vs ``ase.io.read``.

Generates an extxyz file of N frames (~20 atoms each, energy and forces), then measures, each
in its own subprocess so peak RSS is per task:
  - tealign_read:   stream the file with tealign.io.extxyz.iter_extxyz (columnar batches)
  - tealign_to_mace: stream it into MACE sharded HDF5 (mace-torch's writer)
  - ase_read:       ase.io.read(path, ":")
  - libatoms_extxyz_read: the libAtoms ``extxyz`` package's C parser (if installed), which
    tealign does not use: it holds integers as int32, stops at the first broken frame
    instead of resynchronising, reads no .gz, and read 30 of 65 files of tealign's
    ASE-derived corpus (tests/test_ase_corpus.py) as ase.io.read does (tealign: 65)
Prints a table and writes JSON (default benchmarks/results/io_throughput.json).

    python benchmarks/io_throughput.py --frames 100000
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

import numpy as np

HERE = Path(__file__).resolve().parent


def generate(path: Path, n_frames: int, seed: int = 0) -> None:
    """Write n_frames of 16-24 random CHNO atoms with energy and forces (ASE-style columns)."""
    rng = np.random.default_rng(seed)
    symbols = np.array(["H", "C", "N", "O"])
    with open(path, "w") as fh:
        for _ in range(n_frames // 1000 + 1):
            chunk = []
            for _ in range(min(1000, n_frames)):
                n = int(rng.integers(16, 25))
                sym = symbols[rng.integers(0, 4, n)]
                data = np.concatenate([rng.normal(size=(n, 3)) * 3, rng.normal(size=(n, 3))],
                                      axis=1)
                chunk.append(f"{n}\nProperties=species:S:1:pos:R:3:forces:R:3 "
                             f"energy={rng.normal() * 10 - 2000:.10f} pbc=\"F F F\"\n")
                rows = [f"{s:<2} " + " ".join(f"{x:15.8f}" for x in row)
                        for s, row in zip(sym, data)]
                chunk.append("\n".join(rows) + "\n")
            n_frames -= min(1000, n_frames)
            fh.write("".join(chunk))
            if n_frames <= 0:
                break


TASKS = {
    "tealign_read": """
from tealign.io.extxyz import iter_extxyz
n = 0
for b in iter_extxyz(PATH):
    n += b.n_frames
""",
    "tealign_to_mace": """
from tealign.io.extxyz import iter_extxyz
from tealign.io.mace_h5 import write_mace_h5
from tealign.keys import Keys
n = write_mace_h5(iter_extxyz(PATH), OUT, keys=Keys())
""",
    "ase_read": """
import ase.io
n = len(ase.io.read(PATH, ":"))
""",
    # the libAtoms reference implementation (C parser; PyPI `extxyz`), when installed
    "libatoms_extxyz_read": """
import extxyz
n = sum(1 for _ in extxyz.iread_dicts(PATH))
""",
}


def run_task(name: str, path: Path, out: Path) -> dict:
    code = (
        "import json, resource, time\n"
        f"PATH = {str(path)!r}\nOUT = {str(out)!r}\n"
        "t0 = time.perf_counter()\n"
        + TASKS[name]
        + "\nwall = time.perf_counter() - t0\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps({'frames': n, 'seconds': wall, 'peak_rss_MB': rss}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["frames_per_s"] = result["frames"] / result["seconds"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=None, help="where to put the generated file")
    ap.add_argument("--json-out", type=Path, default=HERE / "results" / "io_throughput.json")
    ap.add_argument("--skip-ase", action="store_true")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tealign-io-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"bench_{args.frames}.extxyz"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.frames)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    results = {}
    import importlib.util

    for name in TASKS:
        if name == "ase_read" and args.skip_ase:
            continue
        if name == "libatoms_extxyz_read" and importlib.util.find_spec("extxyz") is None:
            continue
        results[name] = run_task(name, path, work / "mace_shards")
        r = results[name]
        print(f"{name:16s} {r['frames']:>9d} frames  {r['seconds']:8.2f} s  "
              f"{r['frames_per_s']:10.0f} frames/s  peak RSS {r['peak_rss_MB']:8.0f} MB")
    summary = {
        "frames": args.frames,
        "file_MB": path.stat().st_size / 1e6,
        "results": results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if "ase_read" in results:
        summary["read_speedup_vs_ase"] = (
            results["tealign_read"]["frames_per_s"] / results["ase_read"]["frames_per_s"]
        )
        print(f"tealign read / ase.io.read = {summary['read_speedup_vs_ase']:.1f}x")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
