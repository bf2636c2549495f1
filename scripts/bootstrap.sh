#!/usr/bin/env bash
# Create the virtual environment tealign runs in: system packages, torch (CPU) first, then
# tealign with every optional backend and the test tools. Idempotent.
set -euo pipefail
VENV=${1:-.venv}
PY=${2:-python3}
cd "$(dirname "$0")/.."

# System packages (Debian): libxc and OpenBLAS for GPAW's C extension.
APT_PACKAGES=(libxc-dev libopenblas-dev)
if [ ${#APT_PACKAGES[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first, the CPU build from this machine's disk, or pip pulls a multi-GB CUDA build
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
# GPAW's C sources build as C++ only with g++
CC=g++ "$VENV/bin/python" -m pip install -q -e ".[all]"
"$VENV/bin/tealign" --version
