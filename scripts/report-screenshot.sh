#!/usr/bin/env bash
# Regenerates docs/report.png, the README's screenshot of a report:
# the report of the bundled orders-ephemeral scenario, rendered by headless
# Chromium (Debian's package: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -- report scenarios/orders-ephemeral.ron --out reports/orders-ephemeral
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" \
  --window-size=1100,1500 --screenshot=docs/report.png \
  "file://$PWD/reports/orders-ephemeral/index.html" 2>/dev/null
echo "docs/report.png written"
