"""Calibration sets: the same geometries computed with several methods (keys of
docs/architecture.md §4.3).

Molecules come from QM9 (``qm9:N``, picked reproducibly and spread over sizes and elements)
or from any file tealign reads. Every method runs on every molecule and on the isolated atoms
of every element present, through the resumable job store; the result is one extxyz with
``energy_<label>``, ``forces_<label>`` (and ``d3_energy_<label>``, ``d3_forces_<label>`` for
``-d3bj`` SPECs, ``stress_<label>`` for periodic cells), ``method_energy_<label>`` (the
SPEC: the level behind the key, read by :mod:`tealign.provenance`), ``mol_id``, ``config_type``,
``split`` and, for QM9, ``energy_qm9_b3lyp``; plus ``<stem>.atoms_<label>.json`` per method.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from tealign.compute import pulay
from tealign.compute.atoms import atom_jobs, table_from_store
from tealign.compute.backends import BACKENDS
from tealign.compute.runner import Job, run_jobs
from tealign.compute.spec import MethodSpec
from tealign.compute.store import JobStore
from tealign.dispersion import d3_marker_key
from tealign.errors import RETRY_HINT, FrameError, SetupError
from tealign.io.frames import FrameBatch, FrameRecord

QM9_HEAVY = ("C", "N", "O", "F")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tealign"


def qm9_index() -> np.ndarray:
    """(n, 6) int array: QM9 index and counts of H, C, N, O, F for every molecule (cached)."""
    from tealign.io.qm9 import qm9_csv_files

    cache = _cache_dir() / "qm9_index.npy"
    if cache.exists():
        return np.load(cache)
    rows = []
    csv.field_size_limit(1 << 24)
    for path in qm9_csv_files():
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                counts = [int(c) for c in row["Stoichiometry"].strip("[]").split(",")]
                rows.append([int(row["Index"]), *counts])
    arr = np.array(rows, dtype=np.int64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp-{os.getpid()}.npy")
    np.save(tmp, arr)
    os.replace(tmp, cache)
    return arr


def pick_qm9(n: int, seed: int = 0) -> list[int]:
    """``n`` QM9 indices, seeded, spread over heavy-atom counts and element combinations.

    Molecules are grouped by (heavy atoms, has N, has O, has F); groups are visited in a
    seeded order, one molecule each per round, until ``n`` are picked.
    """
    idx = qm9_index()
    rng = np.random.default_rng(seed)
    heavy = idx[:, 2:].sum(axis=1)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row, h in zip(idx, heavy):
        groups[(int(h), bool(row[3]), bool(row[4]), bool(row[5]))].append(int(row[0]))
    keys = sorted(groups)
    order = [keys[i] for i in rng.permutation(len(keys))]
    pools = {k: list(rng.permutation(groups[k])) for k in order}
    picked: list[int] = []
    while len(picked) < n and any(pools.values()):
        for k in order:
            if pools[k] and len(picked) < n:
                picked.append(int(pools[k].pop()))
    if len(picked) < n:
        raise SetupError(f"QM9 has only {len(picked)} molecules", field="--molecules")
    return picked


def qm9_molecules(indices: list[int]) -> list[FrameRecord]:
    """Records of the given QM9 indices (1-based, as in QM9), in that order."""
    from tealign.io.qm9 import iter_qm9_rows, row_to_record

    wanted = {i: k for k, i in enumerate(indices)}
    found: dict[int, FrameRecord] = {}
    limit = max(indices)
    for row in iter_qm9_rows(limit):
        i = int(row["Index"])
        if i in wanted:
            found[i] = row_to_record(row, wanted[i])
    return [found[i] for i in indices]


def load_molecules(source: str, seed: int = 0) -> list[FrameRecord]:
    """``qm9:N`` or a dataset path → frame records with a ``mol_id``."""
    if source.startswith("qm9:"):
        try:
            n = int(source.split(":", 1)[1])
        except ValueError:
            raise SetupError("qm9:N needs an integer N", field="--molecules") from None
        return qm9_molecules(pick_qm9(n, seed))
    from tealign.io import iter_batches

    records = []
    for batch in iter_batches(source):
        for i in range(batch.n_frames):
            rec = batch.record(i)
            rec.info.setdefault("mol_id", f"{Path(source).stem}_{rec.index}")
            records.append(rec)
    if not records:
        raise SetupError("no molecules to compute", file=source)
    return records


def _fixed_meshes(molecules: list[FrameRecord], specs: list[MethodSpec], source_name: str
                  ) -> tuple[list[tuple[int, int, int] | None], list[tuple[int, str]]]:
    """The k-point mesh of every periodic frame (None for molecules) and the frames whose
    ``kpts`` info is malformed (index, reason).

    A frame's own ``kpts`` (fixed per crystal from its equilibrium cell, see
    :mod:`tealign.compute.kpoints`) is used as given. Periodic frames without one are grouped
    by composition (the same elements and atom counts: one crystal and its strained, rattled
    or MD copies) and every frame of a group gets one mesh, chosen at the GPAW SPEC's
    ``kpt_density`` from the group's median-volume cell: a mesh is never recomputed from each
    strained cell (that made E(V) jump where the mesh changed). A warning names the groups.
    """
    import warnings

    from ase.symbols import Symbols

    from tealign.compute.kpoints import mesh_from_density, parse_mesh

    # backends with one k-point mesh per crystal (GPAW), from their kpt_density
    meshed = [s for s in specs if _meshed(s.code)]
    meshes: list[tuple[int, int, int] | None] = []
    bad: list[tuple[int, str]] = []
    missing: dict[tuple, list[int]] = {}
    for k, rec in enumerate(molecules):
        meshes.append(None)
        if not np.asarray(rec.pbc).any():
            continue
        try:
            meshes[k] = parse_mesh(rec.info.get("kpts"))
        except ValueError as exc:
            bad.append((k, str(exc)))
            continue
        if meshes[k] is None and meshed:  # grouped like the Pulay term (pulay.group_key)
            formula = Symbols(np.asarray(rec.numbers)).get_chemical_formula(mode="hill")
            missing.setdefault(formula, []).append(k)
    chosen = []
    for formula, members in missing.items():
        volumes = [abs(np.linalg.det(np.asarray(molecules[k].cell, float))) for k in members]
        median = members[int(np.argsort(volumes)[len(volumes) // 2])]
        mesh = mesh_from_density(molecules[median].cell,
                                 float(meshed[0].settings["kpt_density"]))
        for k in members:
            meshes[k] = mesh
        chosen.append(f"{len(members)} frames of {formula} → {'×'.join(map(str, mesh))}")
    if chosen:
        warnings.warn(f"{source_name}: periodic frames without 'kpts' info share one mesh per "
                      f"composition, from its median-volume cell ({'; '.join(chosen)}); set "
                      "'kpts' per frame (tealign.compute.kpoints.assign_fixed_meshes) to choose "
                      "the mesh of each crystal's equilibrium cell yourself", stacklevel=2)
    return meshes, bad


@dataclass
class CalibResult:
    frames: int
    rejects: list[FrameError]
    stats: dict
    tables: dict[str, Path]
    failed_atoms: list[str]


def compute_calibration(molecules: list[FrameRecord], specs: list[MethodSpec], output: Path,
                        store_dir: Path, workers: int = 1, scheduler=None, seed: int = 0,
                        progress=None, source_name: str = "calib",
                        forces: bool = True, retry_failed: bool = False,
                        strict: bool = False) -> CalibResult:
    """Run every method on every molecule and on the isolated atoms; write the outputs
    (``strict``: a rejected frame or a failed isolated atom is a SetupError instead, raised
    before anything is written; the store keeps every finished job either way)."""
    from tealign.io.extxyz import write_extxyz
    from tealign.io.outputs import write_rejects
    from tealign.io.splits import assign_splits

    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise SetupError(f"method labels must differ: {labels}; name them LABEL=SPEC",
                         field="--method")
    elements = sorted({int(z) for r in molecules for z in r.numbers})
    from ase.data import chemical_symbols

    symbols = [chemical_symbols[z] for z in elements]
    jobs_by_method: dict[str, list[Job]] = {}
    atom_jobs_by_method: dict[str, list[Job]] = {}
    meshes, bad_mesh = _fixed_meshes(molecules, specs, source_name)
    for spec in specs:
        atom_jobs_by_method[spec.label] = atom_jobs(spec, symbols)
        jobs_by_method[spec.label] = []
        for k, rec in enumerate(molecules):
            atoms = Atoms(numbers=rec.numbers, positions=rec.positions, cell=rec.cell,
                          pbc=rec.pbc)
            charge = int(rec.info.get("charge", 0))
            # 2S+1 from the frame (e.g. 3 for O2); absent: the lowest allowed (1 or 2)
            mult = rec.info.get("multiplicity")
            jobs_by_method[spec.label].append(
                Job(spec=spec, atoms=atoms, name=str(rec.info["mol_id"]), charge=charge,
                    multiplicity=int(mult) if mult is not None else None,
                    forces=forces,
                    kpts=meshes[k] if _meshed(spec.code) else None))
    if bad_mesh:
        bad_keys = {k for k, _ in bad_mesh}
        for spec in specs:
            jobs_by_method[spec.label] = [None if k in bad_keys else j for k, j in
                                          enumerate(jobs_by_method[spec.label])]
    # Pulay probes: two energy-only jobs per (formula, k-mesh) for GPAW stress
    probes = {spec.label: pulay.probe_jobs(spec, jobs_by_method[spec.label]) for spec in specs}
    # atoms and probes first: no frame's stress can be written without its group's probes
    all_jobs = [j for js in atom_jobs_by_method.values() for j in js] + [
        j for pr in probes.values() for pair in pr.values() for j in pair] + [
        j for js in jobs_by_method.values() for j in js if j is not None]
    with JobStore(store_dir) as store:
        stats = run_jobs(all_jobs, store, workers=workers, scheduler=scheduler,
                         progress=progress, retry_failed=retry_failed)
        tables: dict[str, Path] = {}
        atom_tables = {}
        failed_atoms: list[str] = []
        stem = output.name[: -len(output.suffix)] if output.suffix else output.name
        for spec in specs:
            table, failed = table_from_store(spec, atom_jobs_by_method[spec.label], store)
            failed_atoms += [f"{spec.label} {f}" for f in failed]
            atom_tables[spec.label] = table
            tables[spec.label] = output.with_name(f"{stem}.atoms_{spec.label}.json")
        records, rejects = [], [FrameError(source_name, k, "kpts", why) for k, why in bad_mesh]
        bad_keys = {k for k, _ in bad_mesh}
        for k, rec in enumerate(molecules):
            if k in bad_keys:
                continue
            info = dict(rec.info)
            arrays = dict(rec.arrays)
            if meshes[k] is not None:
                info["kpts"] = np.array(meshes[k], dtype=int)  # provenance: the mesh used
            bad = None
            for spec in specs:
                stored = store.get(jobs_by_method[spec.label][k].key)
                if stored is None or stored.result is None:
                    bad = (f"energy_{spec.label}",
                           f"{spec.label} failed: {stored.error if stored else 'not run'}")
                    break
                r = stored.result
                info[f"energy_{spec.label}"] = r.energy
                # provenance: the energy key is DFT without D3(BJ); D3 (if any) is stored apart
                info[d3_marker_key(f"energy_{spec.label}")] = False
                # provenance: the level behind the key (tealign.provenance reads it)
                info[f"method_energy_{spec.label}"] = spec.spec or spec.label
                if r.forces is not None:
                    arrays[f"forces_{spec.label}"] = r.forces
                if r.stress is not None:
                    info[f"stress_{spec.label}"] = r.stress
                    job = jobs_by_method[spec.label][k]
                    pair = probes[spec.label].get(pulay.group_key(job.atoms, job.kpts))
                    if pair is not None:
                        got = [store.get(p.key) for p in pair]
                        if any(g is None or g.result is None for g in got):
                            bad = (f"stress_{spec.label}", "Pulay probe failed: "
                                   + "; ".join(str(g.error if g else "not run") for g in got))
                            break
                        de = pulay.dedecut(spec, got[0].result.energy, got[1].result.energy)
                        info[f"stress_{spec.label}"] = pulay.corrected_stress(
                            r.stress, spec, de, job.atoms.get_volume())
                        info[f"pulay_dedecut_{spec.label}"] = de  # eV per eV of cutoff
                    elif "dedecut" in r.info:  # pulay_stress=fd: corrected by the backend
                        info[f"pulay_dedecut_{spec.label}"] = float(r.info["dedecut"])
                if r.d3_energy is not None:
                    info[f"d3_energy_{spec.label}"] = r.d3_energy
                    arrays[f"d3_forces_{spec.label}"] = r.d3_forces
            if bad:
                rejects.append(FrameError(source_name, k, *bad, failed=True))
                continue
            info.setdefault("config_type", "calib")
            records.append(FrameRecord(numbers=rec.numbers, positions=rec.positions,
                                       cell=rec.cell, pbc=rec.pbc, info=info, arrays=arrays,
                                       index=k))
        if strict and (rejects or failed_atoms):
            raise strict_error(rejects, failed_atoms)
        for label, table in atom_tables.items():
            table.save(tables[label])
        batch = FrameBatch.from_records(records)
        if batch.n_frames:
            # a frame that arrives with a split keeps it (a test split recomputed at another
            # level, species meant for training); the others get one drawn per molecule
            split = assign_splits(batch.info["mol_id"], seed)
            if "split" in batch.info:
                given = batch.has("split")
                split[given] = batch.info["split"][given]
                batch.missing.pop("split", None)
            batch.info["split"] = split
        write_extxyz(output, [batch])
        write_rejects(output, rejects)
    return CalibResult(frames=batch.n_frames, rejects=rejects, stats=stats, tables=tables,
                       failed_atoms=failed_atoms)


def strict_error(rejects: list[FrameError], failed_atoms: list[str]) -> SetupError:
    """The ``--strict`` error: the first failed calculation (a frame's, else an isolated
    atom's, all of which are named) ending with the way out, else the first rejected frame;
    the count of the others beside it."""
    failed = [r for r in rejects if r.failed]
    more = len(rejects) + len(failed_atoms) - 1
    tail = f" ({more} more; without --strict each is listed)" if more else ""
    if failed:
        r = failed[0]
        return SetupError(f"{r.reason}; {RETRY_HINT}{tail}", file=r.file, frame=r.frame,
                          field=r.field)
    if failed_atoms:
        more = len(rejects)
        return SetupError(f"isolated atom failed: {', '.join(failed_atoms)}; {RETRY_HINT}"
                          + (f" ({more} rejected frames besides)" if more else ""),
                          field="--method")
    r = rejects[0]
    return SetupError(f"{r.reason}{tail}", file=r.file, frame=r.frame, field=r.field)


def _meshed(code: str) -> bool:
    """Whether ``code`` takes one k-point mesh per crystal from tealign (GPAW); the external
    codes' presets (:mod:`tealign.compute.external`) choose their own."""
    return code in BACKENDS and BACKENDS[code].kpoint_mesh
