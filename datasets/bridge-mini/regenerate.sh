#!/usr/bin/env bash
# Computes datasets/bridge-mini with tealign's own compute command (rerun to resume from the store).
# Target scale: GPAW PBE, PW 800 eV, 0.1 eV Fermi-Dirac, the SPEC of inorganic-mini and of
# calib-qm9's target; every periodic frame on its own fixed Γ-centred mesh (frame info `kpts`,
# make_geometries.py: density 3.0 Å, 1 along a slab's normal). Source level (molecules only):
# PySCF ωB97M/def2-SVP with D3(BJ) stored apart, calib-qm9's source. Energies only (--no-forces:
# every item is an energy difference at fixed geometries; periodic frames then skip the stress
# and its Pulay probes).
set -euo pipefail
cd "$(dirname "$0")"
TARGET="pbe=gpaw:pbe/pw800;vacuum=5.0;smearing=0.1"
SOURCE="wb97m=pyscf:wb97m-d3bj/def2-svp"
# resume from the committed snapshot of the job store when there is no live store
[ -d store ] || { [ -f jobs.snapshot.sqlite ] && mkdir -p store && cp jobs.snapshot.sqlite store/jobs.sqlite; } || true
{ [ -f molecules.extxyz ] && [ -f periodic.extxyz ] && [ -f bridge.json ]; } || ../../.venv/bin/python make_geometries.py
# molecules (organic domain): target and source level
../../.venv/bin/tealign compute calib --molecules molecules.extxyz --seed 0 --no-forces \
  --method "$TARGET" --method "$SOURCE" --store store --workers "${WORKERS:-2}" -o bridge-molecules.extxyz
# solids, clean slabs, adsorbate–slab complexes, molecular crystals: target level only
../../.venv/bin/tealign compute calib --molecules periodic.extxyz --seed 0 --no-forces \
  --method "$TARGET" --store store --workers "${WORKERS:-2}" -o bridge-periodic.extxyz
# one file for `tealign bench cross` (bridge.json beside it defines the items)
../../.venv/bin/python make_geometries.py --combine bridge-molecules.extxyz bridge-periodic.extxyz \
  -o bridge-mini.extxyz
