#!/usr/bin/env bash
# Regenerates datasets/organic-mini with tealign's own compute command (resumes from the store).
# PySCF ωB97M-D3(BJ)/def2-SVP (VV10 off), density fitting: energy and forces, D3(BJ) energy and
# forces stored apart (d3_energy_wb97m, d3_forces_wb97m) — the OFF23 stand-in.
set -euo pipefail
cd "$(dirname "$0")"
# resume from the committed snapshot of the job store when there is no live store
[ -d store ] || { [ -f jobs.snapshot.sqlite ] && mkdir -p store && cp jobs.snapshot.sqlite store/jobs.sqlite; } || true
[ -f geometries.extxyz ] || { ../../.venv/bin/python make_geometries.py && ../../.venv/bin/python add_dihedrals.py; }
# the gas molecules of bridge-mini's cross-domain items, as training frames (split=train)
grep -q 'mol_id=bridge_' geometries.extxyz || ../../.venv/bin/python add_bridge_species.py
../../.venv/bin/tealign compute calib --molecules geometries.extxyz --seed 0 \
  --method "wb97m=pyscf:wb97m-d3bj/def2-svp" \
  --store store --workers "${WORKERS:-2}" -o organic-mini.extxyz
