#!/usr/bin/env bash
# The oracle's organic training frames at the target level: the subset of organic-mini that
# select_subset.py states, recomputed with GPAW at bridge-mini's SPEC (PBE, PW 800 eV, 5 Å of
# vacuum, 0.1 eV Fermi-Dirac; energies and forces). Rerun to resume from the job store.
set -euo pipefail
cd "$(dirname "$0")"
TARGET="pbe=gpaw:pbe/pw800;vacuum=5.0;smearing=0.1"
[ -d store ] || { [ -f jobs.snapshot.sqlite ] && mkdir -p store && cp jobs.snapshot.sqlite store/jobs.sqlite; } || true
[ -f organic-subset.extxyz ] || ../../../.venv/bin/python select_subset.py
../../../.venv/bin/tealign compute calib --molecules organic-subset.extxyz --seed 0 \
  --method "$TARGET" --store store --workers "${WORKERS:-2}" -o organic-subset-pbe.extxyz
