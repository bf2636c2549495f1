"""The user's cluster, from one small TOML file, for ``tealign compute ... --cluster FILE``
(Dask workers started as batch jobs by dask-jobqueue) and for the job-array scripts of
``tealign compute export``.

    [cluster]
    kind = "slurm"            # slurm, pbs or local (a LocalCluster on this machine)
    queue = "normal"          # partition (SLURM) or queue (PBS)
    account = "chem123"       # optional
    cores = 16                # cores per batch job
    processes = 1             # Dask worker processes per batch job
    memory = "64GB"           # per batch job
    walltime = "04:00:00"
    jobs = 8                  # batch jobs (Dask) to keep running
    prologue = ["module load vasp/6.4.2", "source ~/miniforge3/bin/activate tealign"]
    job_extra = ["--constraint=cpu"]   # extra #SBATCH / #PBS directives
    local_directory = "/tmp"  # worker scratch (optional)

Memory is a dask-jobqueue string ("64GB"); walltime HH:MM:SS.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tealign.errors import SetupError

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser as a package (tealign[cluster])
    import tomli as tomllib  # type: ignore[no-redef]

KINDS = ("slurm", "pbs", "local")


@dataclass
class ClusterConfig:
    kind: str = "slurm"
    queue: str | None = None
    account: str | None = None
    cores: int = 1
    processes: int = 1
    memory: str = "4GB"
    walltime: str = "01:00:00"
    jobs: int = 1
    prologue: list[str] = field(default_factory=list)
    job_extra: list[str] = field(default_factory=list)
    local_directory: str | None = None
    source: str = ""


def load_config(path: str | Path) -> ClusterConfig:
    """Read a cluster TOML file; SetupError naming the file and field on anything off."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SetupError("cluster file not found", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"not TOML: {exc}", file=str(path)) from None
    table = data.get("cluster")
    if not isinstance(table, dict):
        raise SetupError("needs a [cluster] table", file=str(path), field="cluster")
    known = set(ClusterConfig.__dataclass_fields__) - {"source"}
    for key in table:
        if key not in known:
            raise SetupError(f"unknown setting; known: {', '.join(sorted(known))}",
                             file=str(path), field=f"cluster.{key}")
    cfg = ClusterConfig(**table, source=str(path))
    if cfg.kind not in KINDS:
        raise SetupError(f"kind is one of {', '.join(KINDS)}, not {cfg.kind!r}",
                         file=str(path), field="cluster.kind")
    for name in ("cores", "processes", "jobs"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            raise SetupError(f"must be a positive integer, not {value!r}", file=str(path),
                             field=f"cluster.{name}")
    for name in ("prologue", "job_extra"):
        value = getattr(cfg, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SetupError("must be a list of strings", file=str(path),
                             field=f"cluster.{name}")
    parts = cfg.walltime.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise SetupError(f"walltime is HH:MM:SS, not {cfg.walltime!r}", file=str(path),
                         field="cluster.walltime")
    return cfg


def make_cluster(cfg: ClusterConfig):
    """The Dask cluster object (not yet scaled): dask-jobqueue's SLURMCluster or PBSCluster,
    or a distributed LocalCluster for ``kind = "local"``."""
    if cfg.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(n_workers=cfg.jobs * cfg.processes, threads_per_worker=1,
                            processes=True, dashboard_address=None,
                            local_directory=cfg.local_directory)
    try:
        import dask_jobqueue
    except ImportError:
        raise SetupError("dask-jobqueue is not installed: pip install 'tealign[cluster]'",
                         file=cfg.source, field="cluster.kind") from None
    common = {"cores": cfg.cores, "processes": cfg.processes, "memory": cfg.memory,
              "walltime": cfg.walltime, "job_script_prologue": list(cfg.prologue),
              "job_extra_directives": list(cfg.job_extra), "queue": cfg.queue,
              "account": cfg.account, "local_directory": cfg.local_directory,
              # one thread per worker process: the DFT codes bring their own parallelism
              "worker_extra_args": [], "scheduler_options": {"dashboard_address": None}}
    cls = dask_jobqueue.SLURMCluster if cfg.kind == "slurm" else dask_jobqueue.PBSCluster
    return cls(**common)


def job_script(cfg: ClusterConfig) -> str:
    """The batch script dask-jobqueue submits for each worker job."""
    cluster = make_cluster(cfg)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


@contextmanager
def cluster_client(path: str | Path):
    """A ``distributed.Client`` on the configured cluster, scaled to ``jobs`` batch jobs;
    closed (and the batch jobs cancelled) on exit."""
    from distributed import Client

    cfg = load_config(path)
    cluster = make_cluster(cfg)
    try:
        if cfg.kind != "local":
            cluster.scale(jobs=cfg.jobs)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def array_script(cfg: ClusterConfig | None, n_jobs: int, runner: str = "run_job.sh") -> str:
    """A SLURM (``kind = "slurm"`` or no config) or PBS job-array script running
    ``runner INDEX`` for INDEX = 1..n_jobs, with the config's queue, cores, memory, walltime,
    extra directives and prologue lines."""
    cfg = cfg or ClusterConfig()
    lines = ["#!/usr/bin/env bash"]
    if cfg.kind == "pbs":
        lines += ["#PBS -N tealign-jobs", f"#PBS -J 1-{n_jobs}",
                  f"#PBS -l select=1:ncpus={cfg.cores}:mem={cfg.memory.lower().rstrip('b')}b",
                  f"#PBS -l walltime={cfg.walltime}"]
        if cfg.queue:
            lines.append(f"#PBS -q {cfg.queue}")
        if cfg.account:
            lines.append(f"#PBS -A {cfg.account}")
        lines += [f"#PBS {x}" for x in cfg.job_extra]
        lines += ["cd \"$PBS_O_WORKDIR\"", "INDEX=$PBS_ARRAY_INDEX"]
    else:
        lines += ["#SBATCH --job-name=tealign-jobs", f"#SBATCH --array=1-{n_jobs}",
                  "#SBATCH --nodes=1", f"#SBATCH --ntasks={cfg.cores}",
                  f"#SBATCH --mem={cfg.memory.upper().rstrip('B')}",
                  f"#SBATCH --time={cfg.walltime}",
                  "#SBATCH --output=slurm-%A_%a.out"]
        if cfg.queue:
            lines.append(f"#SBATCH --partition={cfg.queue}")
        if cfg.account:
            lines.append(f"#SBATCH --account={cfg.account}")
        lines += [f"#SBATCH {x}" for x in cfg.job_extra]
        lines += ["INDEX=$SLURM_ARRAY_TASK_ID"]
    lines += list(cfg.prologue)
    lines += [f"exec bash ./{runner} \"$INDEX\"  # submitted from the export directory"]
    return "\n".join(lines) + "\n"
