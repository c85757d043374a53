#!/usr/bin/env bash
# `npm test`: type-check, lint, make sure the servers are up, then every test (unit and integration).
# Vitest also writes a JSON report to .reports/vitest.json, which .ci/run sums up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .reports
rm -f .reports/vitest.json
echo "== type-check"
bash scripts/with-node.sh tsc -p tsconfig.json
echo "== lint"
bash scripts/with-node.sh oxlint --deny-warnings
bash scripts/with-node.sh oxfmt --check
echo "== servers"
bash scripts/infra.sh up
bash scripts/ensure-chromium.sh
echo "== tests"
bash scripts/with-node.sh vitest run --reporter=default --reporter=json --outputFile.json=.reports/vitest.json "$@"
