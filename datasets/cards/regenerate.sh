#!/usr/bin/env bash
# Rebuilds the alignment cards shipped in src/tealign/data/cards/ (issue 28 items 4-5) from the
# committed calibration files: datasets/calib-public (source levels), datasets/calib-qm9 and
# datasets/bridge-mini/heldout-qm9.extxyz (GPAW PBE/PW800 target). Seconds on one core.
# Reads datasets/target-transfer/transfer.json and datasets/charged-ions/charged.json when they
# exist (their fields are null in the cards otherwise): rerun after they land.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
PYTHONPATH=src "$PY" datasets/cards/make_cards.py
