"""Rotated-dihedral configurations of organic-mini, appended to geometries.extxyz.

For every molecule whose QM9 minimum has a rotatable bond (a single chain bond between two
non-terminal atoms, not in a ring), the smaller side is turned about that bond by 60° (rigid
rotation, no relaxation: torsional strain as a force field would see it; staggered becomes
eclipsed for sp3–sp3 bonds). Bonds are ASE's natural radii × 1.1; every bond keeps its length
(checked). Frames with two atoms closer than 0.85 Å are left out, and so are turns that move
the molecule by less than 0.1 Å RMSD after superposition (a side that lies on or near the
axis, e.g. O=CC#N, N#CCC#N: a near-copy of the minimum). Run after
make_geometries.py; rerunning replaces the rotated-dihedral frames:

    python add_dihedrals.py   # appends 'rotated_dihedral' frames to geometries.extxyz
"""

import numpy as np

from tealign.bonds import bond_graph, kabsch_rmsd, side_of_bond
from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

ANGLES = (60.0,)
MIN_RMSD = 0.1  # Å from the minimum after superposition: below it the turn moves (almost) nothing
frames = [a for a in read_batch("geometries.extxyz").to_atoms()
          if a.info.get("sampling") != "rotated_dihedral"]


def rotate(atoms, i, j, moving, angle):
    axis = atoms.positions[j] - atoms.positions[i]
    axis /= np.linalg.norm(axis)
    t = np.radians(angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k
    out = atoms.copy()
    idx = sorted(moving)
    out.positions[idx] = (atoms.positions[idx] - atoms.positions[j]) @ rot.T + atoms.positions[j]
    return out


added = []
for a in frames:
    if a.info.get("sampling") != "qm9_minimum":
        continue
    adj = bond_graph(a, mult=1.1)  # as bench torsion: 1.0 misses C–O bonds of 1.43 Å
    best = None
    for i in range(len(a)):
        for j in adj[i]:
            if i < j and len(adj[i]) > 1 and len(adj[j]) > 1 and a.numbers[i] > 1 \
                    and a.numbers[j] > 1:
                s = side_of_bond(adj, i, j)
                if i in s:  # ring bond
                    continue
                small = s if len(s) <= len(a) - len(s) else set(range(len(a))) - s
                if len(small) > 1 and (best is None or len(small) > len(best[2])):
                    best = (i, j, small) if small == s else (j, i, small)
    if best is None:
        continue
    i, j, moving = best
    for ang in ANGLES:
        r = rotate(a, i, j, moving, ang)
        if kabsch_rmsd(r.positions, a.positions) < MIN_RMSD:
            continue  # the turning side lies (nearly) on the axis (C#C, N#CCC#N): a near-copy
        d = r.get_all_distances()
        if d[np.triu_indices(len(r), 1)].min() < 0.85:
            continue
        d0 = a.get_all_distances()
        assert all(abs(d[p, q] - d0[p, q]) < 1e-6 for p in adj for q in adj[p]), a.info
        r.info = {**a.info, "sampling": "rotated_dihedral", "dihedral_bond": f"{i}-{j}",
                  "rotation_deg": ang}
        added.append(r)
write_extxyz("geometries.extxyz", [FrameBatch.from_atoms(frames + added)])
print(f"appended {len(added)} rotated-dihedral frames; {len(frames) + len(added)} in all")
