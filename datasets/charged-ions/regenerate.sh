#!/usr/bin/env bash
# Charged-molecule check (issue 28, item 6): 15 small closed-shell ions of H C N O F
# (make_ions.py; GFN2-xTB geometries) at the SPICE source level, PySCF ωB97M/def2-TZVPPD
# (D3(BJ) stored apart), and at PySCF PBE/def2-QZVPP, the Gaussian-basis PBE that stands in
# for the target (calib-public/pbe-qzvpp.extxyz has the 44 neutral molecules at both levels).
# The neutral atoms' energies come from the calib-public job store (same keys), so they are
# not recomputed when its snapshot seeds ours. Energies only; resumable (store/).
#   then: python analyse.py  ->  charged.json
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-../../.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -d store ] || { mkdir -p store && cp ../calib-public/jobs.snapshot.sqlite store/jobs.sqlite; }
[ -f ions.extxyz ] || $PY make_ions.py
$PY -m tealign compute calib --molecules ions.extxyz --no-forces --store store \
  --method "wb97m=pyscf:wb97m-d3bj/def2-tzvppd" -o ions-wb97m.extxyz
$PY -m tealign compute calib --molecules ions.extxyz --no-forces --store store \
  --method "pbe=pyscf:pbe/def2-qzvpp" -o ions-pbe.extxyz
$PY analyse.py
