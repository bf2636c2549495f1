#!/usr/bin/env bash
# Computes the three mini datasets in turn (each resumes from its own job store).
set -euo pipefail
cd "$(dirname "$0")"
for d in calib-qm9 inorganic-mini organic-mini; do
  echo "== $d $(date -u +%FT%TZ)"
  ( cd "$d" && ./regenerate.sh )
done
echo "== done $(date -u +%FT%TZ)"
