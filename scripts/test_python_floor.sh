#!/usr/bin/env bash
# The test suite under the oldest Python that pyproject.toml's requires-python admits.
# This machine's torch is a CPU wheel built for one Python only, so the floor environment has
# no torch stack (mace-torch, GPAW, CHGNet): the tests that need it skip, every other test runs.
# Usage: bash scripts/test_python_floor.sh [VENV]   (default .venv-floor)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-floor}
PY=$(python3 scripts/check_python_floor.py --print-interpreter)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test,d3,xtb,pyscf,qm9,dask]"
"$VENV/bin/python" -c "import sys; print('floor tests on Python', sys.version.split()[0])"
# tests that need the torch stack but do not skip without it (they call a command whose
# output format or model needs mace-torch); every test that guards itself skips on its own
NEEDS_TORCH=(
  "tests/test_bad_input.py::test_setup_errors_one_line_exit_2[table lacks element]"
  tests/test_bad_input.py::test_setup_error_writes_nothing
  tests/test_bench_bounded.py::test_torch_threads_from_flag_env_and_cores
  tests/test_bench_reactions.py::test_bench_reactions_cli
  tests/test_kill_and_fuzz.py::test_sigkill_merge_leaves_nothing_and_rerun_cleans_up
  tests/test_mace_h5.py
  tests/test_pretrained.py
  tests/test_target_scale_physics.py::test_merge_counts_d3_once
)
deselect=()
if ! "$VENV/bin/python" -c "import torch, mace" 2>/dev/null; then
  for t in "${NEEDS_TORCH[@]}"; do deselect+=(--deselect "$t"); done
  echo "no torch stack under this Python: ${#NEEDS_TORCH[@]} torch-stack tests deselected"
fi
TEALIGN_DATA_DIR=${TEALIGN_DATA_DIR:-$(cd .. && pwd)/shared/data} \
    "$VENV/bin/python" -m pytest -q -ra "${deselect[@]}" tests
