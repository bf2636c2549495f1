#!/usr/bin/env bash
# A real small run of tealign's features (until `tealign demo` lands): inspect QM9's first
# 200 molecules, convert them to extxyz and to MACE's sharded HDF5 with statistics.json,
# and read the result back.
set -euo pipefail
OUT=${1:-tealign-demo}
BIN="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin"
mkdir -p "$OUT"
set -x
"$BIN/tealign" e0 list
"$BIN/tealign" info qm9:200
"$BIN/tealign" convert qm9:200 -o "$OUT/qm9_200.extxyz"
"$BIN/tealign" convert "$OUT/qm9_200.extxyz" -o "$OUT/mace/train" --energy-key energy_qm9_b3lyp \
    --e0 b3lyp-6-31g2dfp
"$BIN/tealign" info "$OUT/mace/train" --json
