#!/usr/bin/env bash
# Trains some of the experiment's variants on the lent GPU machine, all at once, from the
# merged data that `run.py --merge-only` wrote here; each training is the command Run.train
# would run, with --device cuda. Each run directory comes back as $OUT/<variant>_<seed>.tar.gz as
# soon as its training ends (a call cut short keeps the finished ones; at most 8 come back);
# unpack them in experiments/multidomain/runs and `run.py --variants ... --seeds ...` evaluates
# them. Seen once on an H200 (2026-11-26): four trainings side by side (small-cpu, 200 epochs,
# 213–380 frames) were not done after 500 s, so give each call a small set.
#   bash experiments/multidomain/oracle/train_on_device.sh PRESET EPOCHS VARIANT:SEED ...
# Needs mace-torch 0.3.16 and its pins importable (the device has torch: carry the rest as
# wheels in .whl, see /work/.library/device/README.md).
set -uo pipefail
preset=$1 epochs=$2
shift 2
cd "$(dirname "$0")/../runs"
n=$#
pids=()
for vs in "$@"; do
  v=${vs%%:*} seed=${vs##*:}
  dir=$v/train; [ "$seed" = 1 ] || dir=$v/train_seed$seed
  mkdir -p "$dir"
  printf '{"preset": "%s", "epochs": %s}' "$preset" "$epochs" > "$dir/requested.json"
  cmd=(python3 -m tealign train --preset "$preset" --data "$v/merged" -o "$dir" --device cuda
       --epochs "$epochs" --json)
  [ "$seed" = 1 ] || cmd+=(--seed "$seed")
  (
    t0=$(date +%s.%N)
    "${cmd[@]}" > "$dir/device_stdout.json" 2> "$dir/device_stderr.log"
    rc=$?
    t1=$(date +%s.%N)
    dev=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
    python3 - "$dir" "$t0" "$t1" "$rc" "$dev" "$((n - 1))" "${cmd[*]:3}" <<'PY'
import json, sys
d, t0, t1, rc, dev, beside, cmd = sys.argv[1:]
json.dump({"wall_s": float(t1) - float(t0), "exit": int(rc), "device": dev,
           "beside": int(beside), "command": "tealign " + cmd},
          open(f"{d}/device_wall.json", "w"))
PY
    tar czf "${OUT:-/tmp}/${v}_${seed}.tar.gz" --exclude=checkpoints "$dir"
    echo "$vs exit $rc in $(python3 -c "print(round($t1-$t0))") s"
  ) &
  pids+=($!)
done
wait "${pids[@]}"
for vs in "$@"; do
  v=${vs%%:*} seed=${vs##*:}
  dir=$v/train; [ "$seed" = 1 ] || dir=$v/train_seed$seed
  tail -3 "$dir/device_stderr.log"
done
