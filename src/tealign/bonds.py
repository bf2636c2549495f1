"""Bond graphs of molecules, the atoms on one side of a bond (for turning dihedrals), and the
RMSD of two conformers after superposition."""

from __future__ import annotations

import numpy as np
from ase import Atoms


def bond_graph(atoms: Atoms, mult: float = 1.0) -> dict[int, set[int]]:
    """Neighbours of every atom: bonded when closer than the sum of ASE's natural (covalent)
    radii times ``mult``."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=mult))
    adj: dict[int, set[int]] = {k: set() for k in range(len(atoms))}
    for a, b in zip(i, j):
        adj[int(a)].add(int(b))
    return adj


def side_of_bond(adj: dict[int, set[int]], i: int, j: int) -> set[int]:
    """Atoms reachable from ``j`` without crossing the bond i–j (``j`` included). The result
    holds ``i`` exactly when the bond is in a ring."""
    seen, todo = {j}, [j]
    while todo:
        k = todo.pop()
        for m in adj[k]:
            if m not in seen and not (k == j and m == i):
                seen.add(m)
                todo.append(m)
    return seen


def kabsch_rmsd(p: np.ndarray, q: np.ndarray) -> float:
    """RMSD (Å) between two conformers with the same atom order after optimal superposition
    (translation and proper rotation; Kabsch's SVD)."""
    a = np.asarray(p, dtype=float) - np.mean(p, axis=0)
    b = np.asarray(q, dtype=float) - np.mean(q, axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    return float(np.sqrt(np.mean(np.sum((a @ rot - b) ** 2, axis=1))))
