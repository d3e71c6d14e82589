#!/usr/bin/env bash
# The dashboard's checks, in order: Debian's chromium (for the browser tests), `npm ci`,
# TypeScript (tsc --noEmit), unit tests, `next build`, then the browser tests against a real
# embedded ClickHouse (`python -m pmpipe serve`, started by the tests). Needs node >= 20.9,
# npm and the project's .venv (created here if missing). Screenshots and logs land in
# dashboard/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1

step() {
  local name=$1
  shift
  local started=$SECONDS
  echo "dashboard-test: $name"
  "$@"
  echo "dashboard-test: $name done in $((SECONDS - started)) s"
}

step "chromium" ./scripts/install-chromium.sh
[ -x .venv/bin/python ] || step "python venv" ./scripts/bootstrap.sh
cd dashboard
step "npm ci" npm ci --no-audit --no-fund
step "typecheck" npm run typecheck
step "unit tests" npm run test:unit
step "next build" npm run build
step "browser tests" npm run test:e2e
