"""Bond graphs of molecules and the atoms on one side of a bond (for turning dihedrals)."""

from __future__ import annotations

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
