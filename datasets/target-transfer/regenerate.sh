#!/usr/bin/env bash
# Target-transfer check (issue 28, item 3): GPAW PBE/PW800 atomization energies vs PySCF
# PBE/def2-QZVPP, and the isolated atoms' spin/symmetry state in GPAW, PySCF and the MP table.
# Inputs (committed): datasets/calib-qm9 and datasets/bridge-mini/heldout-qm9.extxyz (GPAW,
# tealign compute, SPEC gpaw:pbe/pw800;vacuum=5.0;smearing=0.1), datasets/calib-public/
# pbe-qzvpp.* (PySCF, SPEC pyscf:pbe/def2-qzvpp), src/tealign/data/e0/vasp-pbe-mp.json.
# 1. atom states (about 10 CPU-minutes on one core; resumes from atom_states.json, delete it
#    to recompute everything)
# 2. the analysis: transfer.json (seconds)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-../../.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
nice -n 10 $PY atom_states.py gpaw pyscf
$PY analyse.py
