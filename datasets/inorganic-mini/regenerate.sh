#!/usr/bin/env bash
# Regenerates datasets/inorganic-mini with tealign's own compute command (resumes from the store).
# GPAW PBE, PW 400 eV, 0.1 eV Fermi-Dirac, k-point density 4/Å⁻¹: energy, forces, stress. The
# isolated atoms use exactly the GPAW settings of calib-qm9 (same SPEC), so the target scale has
# one isolated-atom table.
set -euo pipefail
cd "$(dirname "$0")"
# resume from the committed snapshot of the job store when there is no live store
[ -d store ] || { [ -f jobs.snapshot.sqlite ] && mkdir -p store && cp jobs.snapshot.sqlite store/jobs.sqlite; } || true
[ -f geometries.extxyz ] || { ../../.venv/bin/python make_geometries.py && ../../.venv/bin/python add_md_snapshots.py; }
../../.venv/bin/tealign compute calib --molecules geometries.extxyz --seed 0 \
  --method "pbe=gpaw:pbe/pw400;vacuum=5.0;smearing=0.1" \
  --store store --workers "${WORKERS:-2}" -o inorganic-mini.extxyz
# the Si E–V reference curve for `tealign bench eos --reference-file si_ev.extxyz`
../../.venv/bin/tealign compute calib --molecules si_ev_geometries.extxyz --seed 0 --no-forces \
  --method "pbe=gpaw:pbe/pw400;vacuum=5.0;smearing=0.1" \
  --store store --workers "${WORKERS:-2}" -o si_ev.extxyz
