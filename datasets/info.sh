#!/usr/bin/env bash
# Writes datasets/INFO.md: `tealign info` of every dataset and energy key (rerun after regenerating).
set -euo pipefail
cd "$(dirname "$0")"
TEALIGN=../.venv/bin/tealign
{
  echo "# \`tealign info\` of the mini datasets"
  echo
  echo "Written by \`datasets/info.sh\` ($(git rev-parse --short HEAD 2>/dev/null || echo unknown))."
  for entry in calib-qm9/calib-qm9.extxyz:energy_pbe calib-qm9/calib-qm9.extxyz:energy_wb97m \
      calib-qm9/calib-qm9.extxyz:energy_qm9_b3lyp organic-mini/organic-mini.extxyz:energy_wb97m \
      inorganic-mini/inorganic-mini.extxyz:energy_pbe inorganic-mini/si_ev.extxyz:energy_pbe \
      inorganic-mini/stress_check.extxyz:energy_pbe; do
    file=${entry%%:*} key=${entry##*:}
    [ -f "$file" ] || { echo; echo "## $file: not computed yet"; continue; }
    echo
    echo "## \`tealign info datasets/$file --energy-key $key\`"
    echo
    echo '```'
    COLUMNS=100 "$TEALIGN" info "$file" --energy-key "$key"
    echo '```'
  done
} > INFO.md.tmp && mv INFO.md.tmp INFO.md
echo "wrote datasets/INFO.md"
