#!/usr/bin/env bash
# Charged-molecule check (issue 28, item 6): 15 small closed-shell ions of H C N O F
# (make_ions.py; GFN2-xTB geometries) at the SPICE source level, PySCF ωB97M/def2-TZVPPD
# (D3(BJ) stored apart), and at PySCF PBE/def2-QZVPP, the Gaussian-basis PBE that stands in
# for the target (calib-public/pbe-qzvpp.extxyz has the 44 neutral molecules at both levels).
# Energies only; resumable: store/ is seeded from the committed jobs.snapshot.sqlite (every
# job of this set; else from ../calib-public's, which holds the neutral atoms at both levels).
#   then: python analyse.py  ->  charged.json
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-../../.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ ! -d store ]; then
  mkdir -p store
  if [ -f jobs.snapshot.sqlite ]; then cp jobs.snapshot.sqlite store/jobs.sqlite
  else cp ../calib-public/jobs.snapshot.sqlite store/jobs.sqlite; fi
fi
[ -f ions.extxyz ] || $PY make_ions.py
$PY -m tealign compute calib --molecules ions.extxyz --no-forces --store store \
  --method "wb97m=pyscf:wb97m-d3bj/def2-tzvppd" -o ions-wb97m.extxyz
$PY -m tealign compute calib --molecules ions.extxyz --no-forces --store store \
  --method "pbe=pyscf:pbe/def2-qzvpp" -o ions-pbe.extxyz
$PY analyse.py
