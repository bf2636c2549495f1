"""Run calculation jobs through the store: in process, on local worker processes, or on a Dask
cluster. Finished jobs are skipped; each result is committed as soon as it arrives."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ase import Atoms

from tealign.compute.backends import CalculationFailed, CalculationResult, run_calculation
from tealign.compute.spec import MethodSpec
from tealign.compute.store import JobStore, job_key, structure_hash
from tealign.deprecation import renamed

#: ``Result``: the former name of :class:`~tealign.compute.backends.CalculationResult` here
#: (deprecated).
__getattr__ = renamed(__name__, {"Result": "CalculationResult"})


@dataclass
class Job:
    """One structure at one method."""

    spec: MethodSpec
    atoms: Atoms
    name: str = ""
    charge: int = 0
    multiplicity: int | None = None
    isolated_atom: bool = False
    forces: bool = True
    kpts: tuple[int, int, int] | None = None  # fixed Monkhorst–Pack mesh of a periodic cell
    structure: str = field(init=False)
    settings: str = field(init=False)  # the settings hash for this structure (periodic or not)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.structure = structure_hash(self.atoms, self.charge, self.multiplicity,
                                        self.isolated_atom, self.kpts)
        self.settings = self.spec.settings_key(periodic=bool(self.atoms.pbc.any()))
        self.key = job_key(self.structure, self.settings
                           + ("" if self.forces or self.isolated_atom else ":energy-only"))


def execute(job: Job) -> tuple[str, CalculationResult | None, str | None, float]:
    """Run one job; never raises: failures come back as (key, None, reason, seconds)."""
    t0 = time.perf_counter()
    atoms = job.atoms.copy()
    atoms.info["job_key"] = job.key
    try:
        res = run_calculation(job.spec, atoms, charge=job.charge,
                              multiplicity=job.multiplicity, isolated_atom=job.isolated_atom,
                              forces=job.forces, kpts=job.kpts)
        return job.key, res, None, time.perf_counter() - t0
    except CalculationFailed as exc:
        return job.key, None, str(exc), time.perf_counter() - t0
    except Exception as exc:  # any backend error is a per-job failure, recorded with its reason
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return job.key, None, last, time.perf_counter() - t0


def run_jobs(jobs: Sequence[Job], store: JobStore, workers: int = 1,
             scheduler: str | None = None,
             progress: Callable[[int, int], None] | None = None,
             retry_failed: bool = False) -> dict:
    """Run every job the store has not finished; returns counts (``jobs``, ``skipped``:
    found in the store, ``failed_kept``: of those, held as failed and not run again,
    ``computed``, ``failed``: of those computed).

    A job the store holds as failed is not run again unless ``retry_failed`` (after its
    cause is fixed); a retried job's new result replaces the failure.

    ``workers`` > 1 uses a local process pool; ``scheduler`` (a Dask scheduler address, or a
    ``distributed.Client``) submits to a Dask cluster instead. ``progress(done, total)`` is
    called after every job.
    """
    unique: dict[str, Job] = {}
    for j in jobs:
        unique.setdefault(j.key, j)
    status = store.statuses(list(unique))
    finished = {k for k, st in status.items() if st == "done" or not retry_failed}
    todo = [j for k, j in unique.items() if k not in finished]
    total = len(unique)
    done = len(finished)
    kept = sum(status[k] == "failed" for k in finished)
    stats = {"jobs": total, "skipped": len(finished), "failed_kept": kept, "computed": 0,
             "failed": 0}
    if progress:
        progress(done, total)

    def record(key, res, err, seconds):
        nonlocal done
        job = unique[key]
        store.put(key, job.structure, job.settings, job.spec.label, job.name,
                  res, err, seconds)
        done += 1
        stats["computed"] += 1
        stats["failed"] += res is None
        if progress:
            progress(done, total)

    if not todo:
        return stats
    from tealign.compute.external import preflight

    preflight({j.spec.code for j in todo})  # an external code not installed here: exit 2
    if scheduler is not None:
        from distributed import Client, as_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = client.map(execute, todo, pure=False)
            for fut in as_completed(futures):
                record(*fut.result())
        finally:
            if client is not scheduler:
                client.close()
    elif workers > 1:
        import os
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # one thread per worker process: the backends' BLAS/OpenMP would oversubscribe
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        from tealign.workers import init_worker

        with ProcessPoolExecutor(max_workers=workers, initializer=init_worker()) as pool:
            futures = [pool.submit(execute, j) for j in todo]
            for fut in as_completed(futures):
                record(*fut.result())
    else:
        for j in todo:
            record(*execute(j))
    return stats
