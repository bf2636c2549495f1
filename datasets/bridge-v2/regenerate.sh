#!/usr/bin/env bash
# Computes datasets/bridge-v2 with tealign's own compute command (rerun to resume from store/).
# Adsorption items join once relax_adsorbates.py has relaxed a complex and its slab (rerun
# make_geometries.py, then this script: only the new frames are computed).
# The levels are bridge-mini's (see its regenerate.sh): target GPAW PBE PW800 (0.1 eV
# Fermi-Dirac, 5 Å vacuum, each solid on its fixed Γ-centred mesh `kpts`), source PySCF
# ωB97M/def2-SVP with D3(BJ) stored apart (molecules only). The bridge items are energy
# differences at fixed geometries (the adsorption complexes and slabs relaxed beforehand by
# relax_adsorbates.py); the adsorption frames and the training frames are computed with forces
# (and stress where periodic). The store starts from bridge-mini's snapshot, so its
# 7 molecules, 10 solids and isolated atoms are not recomputed.
set -euo pipefail
cd "$(dirname "$0")"
TARGET="pbe=gpaw:pbe/pw800;vacuum=5.0;smearing=0.1"
SOURCE="wb97m=pyscf:wb97m-d3bj/def2-svp"
PY=../../.venv/bin/python
TEALIGN=../../.venv/bin/tealign
if [ ! -d store ]; then
  mkdir -p store
  if [ -f jobs.snapshot.sqlite ]; then cp jobs.snapshot.sqlite store/jobs.sqlite
  else cp ../bridge-mini/jobs.snapshot.sqlite store/jobs.sqlite; fi
fi
{ [ -f molecules.extxyz ] && [ -f periodic.extxyz ] && [ -f bridge.json ]; } || $PY make_geometries.py
$TEALIGN compute calib --molecules molecules.extxyz --seed 0 --no-forces \
  --method "$SOURCE" --method "$TARGET" --store store --workers "${WORKERS:-2}" -o bridge-molecules.extxyz
$TEALIGN compute calib --molecules periodic.extxyz --seed 0 --no-forces \
  --method "$TARGET" --store store --workers "${WORKERS:-2}" -o bridge-periodic.extxyz
# the relaxed adsorbate–slab complexes and their slabs (make_geometries.py writes them once
# relax_adsorbates.py has relaxed them), with forces: each pose's residual force is checked.
# --retry-failed: a store may hold adsorption jobs that failed before a fix (the NaF(001)
# slab's three, refused by GPAW's symmetry analysis before the backend ran such a cell
# without its point group)
ADS=()
if [ -f adsorption.extxyz ]; then
  $TEALIGN compute calib --molecules adsorption.extxyz --seed 0 --retry-failed \
    --method "$TARGET" --store store --workers "${WORKERS:-2}" -o bridge-adsorption.extxyz
  ADS=(bridge-adsorption.extxyz)
fi
$PY ../bridge-mini/make_geometries.py --combine bridge-molecules.extxyz bridge-periodic.extxyz \
  "${ADS[@]}" -o bridge-v2.extxyz
$PY ../snapshot.py  # the live store into jobs.snapshot.sqlite (SQLite online backup)
# training frames of every bridge species (make_training_frames.py): molecules at the source
# level, solids at the target level, with forces (and stress, through GPAW's Pulay probes)
{ [ -f training-molecules.extxyz ] && [ -f training-solids.extxyz ]; } || $PY make_training_frames.py
$TEALIGN compute calib --molecules training-molecules.extxyz --seed 0 \
  --method "$SOURCE" --store store --workers "${WORKERS:-2}" -o training-molecules-wb97m.extxyz
$PY ../snapshot.py  # the live store into jobs.snapshot.sqlite (SQLite online backup)
$TEALIGN compute calib --molecules training-solids.extxyz --seed 0 \
  --method "$TARGET" --store store --workers "${WORKERS:-2}" -o training-solids-pbe.extxyz
$PY ../snapshot.py  # the live store into jobs.snapshot.sqlite (SQLite online backup)
# the molecule training frames at the target level too, for the oracle variant (its organic
# data recomputed with GPAW)
$TEALIGN compute calib --molecules training-molecules.extxyz --seed 0 \
  --method "$TARGET" --store store --workers "${WORKERS:-2}" -o training-molecules-pbe.extxyz
$PY ../snapshot.py  # the live store into jobs.snapshot.sqlite (SQLite online backup)
