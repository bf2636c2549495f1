#!/usr/bin/env bash
# Regenerates datasets/inorganic-mini with tealign's own compute command (resumes from the store).
# Target scale: GPAW PBE, PW 800 eV, 0.1 eV Fermi-Dirac: energy, forces, stress. The stress carries
# the Pulay term (pulay_stress=formula, tealign's default: two energy-only SCFs at 800 ± 25 eV
# per crystal and mesh give dE/dE_cut, applied to every frame of that crystal with its own
# volume), since GPAW's plane-wave stress is the fixed-basis derivative and GPAW 26.7 ignores
# dedecut.
# k-points: one Γ-centred mesh per crystal, chosen once from its equilibrium cell at the density
# that converges its energy to 1 meV/atom (kpoint_convergence.py → kpoints.json), stored as the
# frame info `kpts` of every configuration (make_geometries.py) and never recomputed from a
# strained cell. Isolated atoms: the same SPEC as calib-qm9's target (one table per scale).
set -euo pipefail
cd "$(dirname "$0")"
SPEC="pbe=gpaw:pbe/pw800;vacuum=5.0;smearing=0.1"
# resume from the committed snapshot of the job store when there is no live store
[ -d store ] || { [ -f jobs.snapshot.sqlite ] && mkdir -p store && cp jobs.snapshot.sqlite store/jobs.sqlite; } || true
# 40 equilibrium/strained/rattled + 23 MD frames (8 crystals); the CHGNet MD is not rerun when the file exists
[ -f geometries.extxyz ] || { ../../.venv/bin/python make_geometries.py && ../../.venv/bin/python add_md_snapshots.py; }
# bridge-mini's solids and clean slabs as training frames (split=train, their own meshes)
grep -q 'mol_id=bridge_' geometries.extxyz || ../../.venv/bin/python add_bridge_species.py
[ -f kpoints.json ] || ../../.venv/bin/python kpoint_convergence.py --spec "$SPEC" --workers "${WORKERS:-2}"
../../.venv/bin/python set_meshes.py
# the Si E–V reference curve for `tealign bench eos --reference-file si_ev.extxyz` (one mesh)
../../.venv/bin/tealign compute calib --molecules si_ev_geometries.extxyz --seed 0 --no-forces \
  --method "$SPEC" --store store --workers "${WORKERS:-2}" -o si_ev.extxyz
../../.venv/bin/tealign compute calib --molecules geometries.extxyz --seed 0 \
  --method "$SPEC" --store store --workers "${WORKERS:-2}" -o inorganic-mini.extxyz
# ±0.5 % strained copies of two frames per crystal: −dE/dε against the stress labels (tests)
../../.venv/bin/tealign compute calib --molecules stress_check_geometries.extxyz --seed 0 \
  --method "$SPEC" --store store --workers "${WORKERS:-2}" -o stress_check.extxyz
# the in-distribution test set (make_indist_test.py: the training crystals at an unseen strain,
# 900 K and 300 K; SiC, the held-out family, left out); the CHGNet MD is not rerun when the file exists
[ -f indist_test_geometries.extxyz ] || ../../.venv/bin/python make_indist_test.py
../../.venv/bin/tealign compute calib --molecules indist_test_geometries.extxyz --seed 0 \
  --method "$SPEC" --store store --workers "${WORKERS:-2}" -o indist_test.extxyz
