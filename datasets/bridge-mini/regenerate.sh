#!/usr/bin/env bash
# Computes datasets/bridge-mini with tealign's own compute command (rerun to resume from the store).
# Target scale: GPAW PBE, PW 800 eV, 0.1 eV Fermi-Dirac, the SPEC of inorganic-mini and of
# calib-qm9's target; every periodic frame on its own fixed Γ-centred mesh (frame info `kpts`,
# make_geometries.py: density 3.0 Å, 1 along a slab's normal). Source level (molecules only):
# PySCF ωB97M/def2-SVP with D3(BJ) stored apart, calib-qm9's source. The cross-domain items are
# energies only (--no-forces: every item is an energy difference at fixed geometries; periodic
# frames then skip the stress and its Pulay probes).
set -euo pipefail
cd "$(dirname "$0")"
TARGET="pbe=gpaw:pbe/pw800;vacuum=5.0;smearing=0.1"
SOURCE="wb97m=pyscf:wb97m-d3bj/def2-svp"
PY=../../.venv/bin/python
TEALIGN=../../.venv/bin/tealign
# resume from the committed snapshot of the job store when there is no live store
[ -d store ] || { [ -f jobs.snapshot.sqlite ] && mkdir -p store && cp jobs.snapshot.sqlite store/jobs.sqlite; } || true
{ [ -f molecules.extxyz ] && [ -f periodic.extxyz ] && [ -f bridge.json ]; } || $PY make_geometries.py
# 1. cross-domain items. Molecules (organic domain): target and source level
$TEALIGN compute calib --molecules molecules.extxyz --seed 0 --no-forces \
  --method "$TARGET" --method "$SOURCE" --store store --workers "${WORKERS:-2}" -o bridge-molecules.extxyz
# solids, clean slabs, adsorbate–slab complexes, molecular crystals: target level only
$TEALIGN compute calib --molecules periodic.extxyz --seed 0 --no-forces \
  --method "$TARGET" --store store --workers "${WORKERS:-2}" -o bridge-periodic.extxyz
# one file for `tealign bench cross` (bridge.json beside it defines the items)
$PY make_geometries.py --combine bridge-molecules.extxyz bridge-periodic.extxyz -o bridge-mini.extxyz
# 2. molecules on the target scale. organic-mini's test split (4 molecules x 6 conformers, with
# its ωB97M energies and forces) recomputed at the target level, energies and forces
$PY make_geometries.py --select ../organic-mini/organic-mini.extxyz --split test -o organic-test.extxyz
$TEALIGN compute calib --molecules organic-test.extxyz --seed 0 \
  --method "$TARGET" --store store --workers "${WORKERS:-2}" -o organic-test-pbe.extxyz
# the 40 molecules of calib-qm9's seeded pick after its first 90 (the alignment is fitted on those
# 90), both levels, through calib-qm9's own store
$TEALIGN compute calib --molecules "qm9:130" --seed 0 --no-forces \
  --method "$TARGET" --method "$SOURCE" --store ../calib-qm9/store --workers "${WORKERS:-2}" \
  -o calib-qm9-130.extxyz
$PY make_geometries.py --select calib-qm9-130.extxyz --not-in ../calib-qm9/calib-qm9.extxyz \
  -o heldout-qm9.extxyz
rm -f calib-qm9-130.extxyz calib-qm9-130.atoms_*.json
