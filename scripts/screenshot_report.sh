#!/usr/bin/env bash
# Screenshot of a report in headless Chromium (the README's picture):
#   bash scripts/screenshot_report.sh tealign-demo/report.html docs/report.png
set -euo pipefail
REPORT=$(realpath "$1"); OUT=${2:-docs/report.png}
mkdir -p "$(dirname "$OUT")"
PROFILE=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$PROFILE" --window-size=1280,${HEIGHT:-2600} --screenshot="$OUT" \
  "file://$REPORT" 2>/dev/null
rm -rf "$PROFILE"
echo "wrote $OUT"
