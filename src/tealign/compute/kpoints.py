"""Monkhorst–Pack meshes for periodic cells, fixed per crystal.

A mesh picked from a k-point density changes with the cell: strained copies of one crystal
then sit on different meshes and their energies jump by tens of meV/atom where the mesh
changes. tealign therefore picks a crystal's mesh once, from its equilibrium (reference) cell,
stores it with every frame as the info key ``kpts`` (three integers), and the GPAW backend
uses that mesh as given, never recomputing it from a strained cell.

    mesh = mesh_from_density(reference_cell, density=4.0)      # (n1, n2, n3)
    assign_fixed_meshes(frames, reference={"Si": si_cell}, group_key="crystal", density=4.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from tealign.errors import SetupError


def mesh_from_density(cell, density: float) -> tuple[int, int, int]:
    """Γ-centred mesh with at least ``density`` points per Å⁻¹ of reciprocal length.

    n_i = max(1, ceil(2π · density · |b_i|)), b = the reciprocal cell without 2π (ASE's
    ``kptdensity2monkhorstpack`` convention with ``even=False``). Units: density in Å.
    """
    from ase.geometry import Cell

    if density <= 0:
        raise SetupError(f"k-point density must be > 0 (got {density})", field="kpt_density")
    recip = Cell(np.asarray(cell, dtype=float)).reciprocal()
    lengths = np.linalg.norm(recip, axis=1)
    n = np.maximum(1, np.ceil(2 * np.pi * density * lengths - 1e-9)).astype(int)
    return int(n[0]), int(n[1]), int(n[2])


def parse_mesh(value) -> tuple[int, int, int] | None:
    """A frame's ``kpts`` info value (three positive integers, any sequence or 'n n n') or
    None when absent; ValueError when it is not three positive integers."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace("x", " ").split()
    arr = np.asarray(value).ravel()
    if arr.size != 3:
        raise ValueError(f"kpts must be three integers, got {value!r}")
    out = []
    for v in arr:
        f = float(v)
        if not np.isfinite(f) or f != int(f) or f < 1:
            raise ValueError(f"kpts must be three positive integers, got {value!r}")
        out.append(int(f))
    return out[0], out[1], out[2]


def assign_fixed_meshes(frames: Iterable, reference: Mapping[str, np.ndarray],
                        group_key: str, density: float) -> dict[str, tuple[int, int, int]]:
    """Set ``atoms.info['kpts']`` of every periodic ASE ``Atoms`` in ``frames`` to the mesh of
    its group's reference cell (``reference[atoms.info[group_key]]``); returns the meshes.

    Every frame of one group (one crystal and its strained, rattled or MD copies) gets the
    same mesh. Frames without the group key, or whose group has no reference cell, are a
    SetupError: the mesh of a strained cell is never chosen from that cell.
    """
    meshes = {g: mesh_from_density(c, density) for g, c in reference.items()}
    for i, atoms in enumerate(frames):
        if not atoms.pbc.any():
            continue
        group = atoms.info.get(group_key)
        if group not in meshes:
            raise SetupError(f"no reference cell for {group_key}={group!r}", frame=i,
                             field=group_key)
        atoms.info["kpts"] = np.array(meshes[group], dtype=int)
    return meshes
