"""Calibration jobs for codes run elsewhere: ``tealign compute export`` writes one directory
per job plus a job-array script; ``tealign compute import`` reads the outputs back into the
job store, under the keys a direct run would use, and writes the calibration set.

Export builds exactly the jobs ``compute calib`` would run (every method on every molecule,
plus each element's isolated atom), so after an import ``compute calib`` with the same
molecules and methods finds every job in the store and computes none.

Layout of an export directory::

    manifest.json         source, methods, seed, forces, one entry per job
    jobs.txt              job directories, one a line (line N = array index N)
    run_job.sh            runs job N; skips a job already finished (resumable)
    submit.slurm          job-array script (SLURM, or PBS with a PBS cluster file)
    00001/ ...            the input deck (INCAR/KPOINTS/POSCAR/POTCAR.symbols, orca.inp or
                          input.json), CODE, and job.json (keys and expected settings)

Import is all or nothing: every job is read and checked first (outputs present, complete and
converged, the settings the code reports equal to the preset's) and any problem is one line
naming the job directory and the field; only when there is none is anything stored. Jobs
done in the store are left as they are, so importing twice changes nothing; a job the store
holds as failed is read and checked like any other, and its result replaces the failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ase import Atoms

from tealign.compute.external import BACKENDS, EXTERNAL_CODES, JobProblem, collect, write_job
from tealign.compute.runner import Job
from tealign.compute.spec import MethodSpec, parse_spec
from tealign.compute.store import JobStore
from tealign.errors import SetupError

#: ``run_job.sh`` around the codes' own lines: ``{commands}`` (each code's command, from its
#: module's ``CLUSTER_COMMAND``) and ``{cases}`` (its ``CLUSTER_SCRIPT``)
RUN_JOB = r"""#!/usr/bin/env bash
# Run job N of this export (N = line of jobs.txt; default: the array index of SLURM or PBS).
# A job that finished (.tealign-done) is skipped, so resubmitting the array resumes it.
{commands}
set -u
here="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
index="${{1:-${{SLURM_ARRAY_TASK_ID:-${{PBS_ARRAY_INDEX:-}}}}}}"
[ -n "$index" ] || {{ echo "run_job.sh: give the job number" >&2; exit 2; }}
job="$(sed -n "${{index}}p" "$here/jobs.txt")"
[ -n "$job" ] || {{ echo "run_job.sh: no job $index in $here/jobs.txt" >&2; exit 2; }}
cd "$here/$job" || exit 2
[ -e .tealign-done ] && exit 0
case "$(cat CODE)" in
{cases}
  *)
    echo "run_job.sh: no command for code $(cat CODE) in $job" >&2; exit 2 ;;
esac
rc=$?
[ "$rc" -eq 0 ] && touch .tealign-done
exit "$rc"
"""


def run_job_script() -> str:
    """``run_job.sh`` of an export: one case per external code, from its module
    (``CLUSTER_COMMAND``, ``CLUSTER_SCRIPT``); a code without one stops the job (exit 2,
    not marked done)."""
    from tealign.compute.external import module

    # a code module without CLUSTER_SCRIPT has no case: its jobs stop at ``*)`` (exit 2)
    mods = {code: m for code in EXTERNAL_CODES
            if getattr(m := module(code), "CLUSTER_SCRIPT", None)}
    width = max(len(BACKENDS[c].title) for c in mods) + 2
    lead = "# The code's command: "
    commands = "\n".join((lead if k == 0 else "#".ljust(len(lead)))
                         + f"{BACKENDS[c].title:<{width}}{getattr(m, 'CLUSTER_COMMAND', '')}"
                         for k, (c, m) in enumerate(mods.items()))
    cases = "\n".join(f"  {c})\n" + "\n".join(f"    {ln}" for ln in m.CLUSTER_SCRIPT.splitlines())
                      + " ;;" for c, m in mods.items())
    return RUN_JOB.format(commands=commands, cases=cases)


def plan_jobs(molecules, specs: list[MethodSpec], forces: bool = True) -> list[Job]:
    """The jobs ``compute calib`` runs for these molecules and methods (atoms first), with
    the same store keys."""
    from ase.data import chemical_symbols

    from tealign.compute.atoms import atom_jobs

    elements = sorted({int(z) for r in molecules for z in r.numbers})
    symbols = [chemical_symbols[z] for z in elements]
    jobs: list[Job] = []
    for spec in specs:
        jobs += atom_jobs(spec, symbols)
    for spec in specs:
        for rec in molecules:
            atoms = Atoms(numbers=rec.numbers, positions=rec.positions, cell=rec.cell,
                          pbc=rec.pbc)
            jobs.append(Job(spec=spec, atoms=atoms, name=str(rec.info["mol_id"]),
                            charge=int(rec.info.get("charge", 0)), forces=forces))
    unique: dict[str, Job] = {}
    for j in jobs:
        unique.setdefault(j.key, j)
    return list(unique.values())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def export_jobs(source: str, methods: list[str], out_dir: str | Path, *, seed: int = 0,
                forces: bool = True, cluster: str | Path | None = None) -> dict:
    """Write one directory per job of ``source`` × ``methods`` into ``out_dir``; returns
    counts. Only external codes (vasp, orca, psi4) are exported."""
    from tealign.compute.calib import load_molecules
    from tealign.compute.cluster import array_script, load_config

    specs = [parse_spec(m) for m in methods]
    for spec in specs:
        if spec.code not in EXTERNAL_CODES:
            raise SetupError(f"{spec.code} runs inside tealign (compute calib); export "
                             f"writes jobs for {', '.join(EXTERNAL_CODES)}", field="--method")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise SetupError(f"method labels must differ: {labels}; name them LABEL=SPEC",
                         field="--method")
    cfg = load_config(cluster) if cluster else None
    src = source if source.startswith("qm9:") else str(Path(source).resolve())
    molecules = load_molecules(source, seed)
    jobs = plan_jobs(molecules, specs, forces)
    out = Path(out_dir)
    methods_text = [f"{s.label}={s.spec}" for s in specs]
    if (out / "manifest.json").exists():
        old = json.loads((out / "manifest.json").read_text())
        if old.get("source") != src or old.get("methods") != methods_text \
                or old.get("forces") != forces:
            raise SetupError("holds an export of other molecules or methods; choose another "
                             "directory", file=str(out))
    out.mkdir(parents=True, exist_ok=True)
    from tealign.compute.external import module

    entries, problems = [], []
    for n, job in enumerate(jobs, 1):
        name = f"{n:05d}"
        d = out / name
        if (d / "job.json").exists():  # written by an earlier export: keep (maybe run) as is
            entries.append({"dir": name, "key": job.key})
            continue
        tmp = out / f".{name}.part"
        if tmp.exists() or tmp.is_symlink():  # a half-written job of a killed export
            from tealign.io.outputs import remove_inside

            remove_inside(out, tmp)
        try:
            expected = write_job(job.spec, job.atoms, tmp, job.charge, job.multiplicity,
                                 job.isolated_atom, job.forces)
        except JobProblem as exc:
            problems.append(f"{job.name} ({job.spec.label}): field '{exc.field}': "
                            f"{exc.reason}")
            continue
        (tmp / "CODE").write_text(job.spec.code + "\n")
        for name_, text in getattr(module(job.spec.code), "JOB_FILES", {}).items():
            (tmp / name_).write_text(text)
        record = {"key": job.key, "structure": job.structure, "settings": job.settings,
                  "label": job.spec.label, "spec": job.spec.spec, "name": job.name,
                  "charge": job.charge, "multiplicity": job.multiplicity,
                  "isolated_atom": job.isolated_atom, "forces": job.forces,
                  "numbers": job.atoms.numbers.tolist(),
                  "positions": job.atoms.positions.tolist(),
                  "cell": job.atoms.cell[:].tolist(), "pbc": job.atoms.pbc.tolist(),
                  "expected": expected}
        (tmp / "job.json").write_text(json.dumps(record, indent=1))
        os.replace(tmp, d)
        entries.append({"dir": name, "key": job.key})
    if problems:
        raise SetupError(f"{len(problems)} jobs cannot be written; first: {problems[0]}",
                         file=source)
    manifest = {"source": src, "methods": methods_text,
                "labels": labels, "seed": seed, "forces": forces, "jobs": entries}
    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=1))
    _atomic_write(out / "jobs.txt", "".join(e["dir"] + "\n" for e in entries))
    _atomic_write(out / "run_job.sh", run_job_script())
    (out / "run_job.sh").chmod(0o755)
    kind = "pbs" if cfg is not None and cfg.kind == "pbs" else "slurm"
    _atomic_write(out / f"submit.{kind}", array_script(cfg, len(entries)))
    return {"directory": str(out), "jobs": len(entries), "molecules": len(molecules),
            "methods": labels, "script": str(out / f"submit.{kind}")}


def read_export(jobs_dir: Path) -> dict:
    path = jobs_dir / "manifest.json"
    if not path.exists():
        raise SetupError("no manifest.json: not a directory written by `tealign compute "
                         "export`", file=str(jobs_dir))
    return json.loads(path.read_text())


def import_jobs(jobs_dir: str | Path, store_dir: str | Path) -> dict:
    """Read every job of an export into the store at ``store_dir``; all or nothing.

    Returns counts (``imported``, ``already``: done in the store before, ``replaced_failed``:
    of those imported, how many the store held as failed; the cluster's result replaces the
    local failure). Raises SetupError with one line per bad job
    (``<dir>: field '<field>': <reason>``), the first in its message and all of them in
    ``problems``; nothing is stored then."""
    jobs_dir = Path(jobs_dir)
    manifest = read_export(jobs_dir)
    specs = {s.label: s for s in (parse_spec(m) for m in manifest["methods"])}
    with JobStore(store_dir) as store:
        keys = [e["key"] for e in manifest["jobs"]]
        status = store.statuses(keys)
        already = {k for k, st in status.items() if st == "done"}
        failed_before = {k for k, st in status.items() if st == "failed"}
        ready, problems = [], []
        for entry in manifest["jobs"]:
            if entry["key"] in already:
                continue
            d = jobs_dir / entry["dir"]
            try:
                record = json.loads((d / "job.json").read_text())
            except (OSError, json.JSONDecodeError) as exc:
                problems.append(f"{d}: field 'job.json': unreadable ({exc})")
                continue
            spec = specs[record["label"]]
            atoms = Atoms(numbers=record["numbers"], positions=record["positions"],
                          cell=record["cell"], pbc=record["pbc"])
            job = Job(spec=spec, atoms=atoms, name=record["name"], charge=record["charge"],
                      multiplicity=record["multiplicity"],
                      isolated_atom=record["isolated_atom"], forces=record["forces"])
            if job.key != record["key"]:
                problems.append(f"{d}: field 'key': the job's store key does not match its "
                                "structure and settings (edited job.json?)")
                continue
            try:
                result = collect(spec, atoms, d, record["expected"],
                                 want_forces=record["forces"] and not record["isolated_atom"])
            except JobProblem as exc:
                problems.append(f"{d}: field '{exc.field}': {exc.reason}")
                continue
            ready.append((job, result))
        if problems:
            err = SetupError(f"{len(problems)} of {len(manifest['jobs'])} jobs cannot be "
                             f"imported (nothing imported); first: {problems[0]}",
                             file=str(jobs_dir))
            err.problems = problems  # type: ignore[attr-defined]
            raise err
        for job, result in ready:
            store.put(job.key, job.structure, job.settings, job.spec.label, job.name, result,
                      None, None)  # type: ignore[arg-type]  # time unknown: run elsewhere
    return {"imported": len(ready), "already": len(already),
            "replaced_failed": sum(job.key in failed_before for job, _ in ready),
            "jobs": len(manifest["jobs"])}


def import_calib(jobs_dir: str | Path, output: str | Path, store: str | Path | None = None,
                 progress=None) -> dict:
    """Import an export into the store (default: beside ``output``) and write the
    calibration set ``output`` from it, as ``compute calib`` with the export's molecules
    and methods would (it finds every job in the store and computes none)."""
    from tealign.compute.calib import compute_calibration, load_molecules
    from tealign.compute.store import default_store

    jobs_dir, output = Path(jobs_dir), Path(output)
    manifest = read_export(jobs_dir)
    store_dir = Path(store) if store else default_store(output)
    counts = import_jobs(jobs_dir, store_dir)
    specs = [parse_spec(m) for m in manifest["methods"]]
    molecules = load_molecules(manifest["source"], manifest["seed"])
    res = compute_calibration(molecules, specs, output, store_dir, seed=manifest["seed"],
                              progress=progress, source_name=manifest["source"],
                              forces=manifest["forces"])
    return {**counts, "output": str(output), "store": str(store_dir), "frames": res.frames,
            "frames_rejected": len(res.rejects), "computed": res.stats["computed"],
            "tables": {k: str(v) for k, v in res.tables.items()},
            "rejects": [r.line() for r in res.rejects]}
