#!/usr/bin/env bash
# Validates docker-compose.yml against the Compose Specification schema and lints it with
# dclint (npm, pinned in scripts/compose-lint/package-lock.json; rules in .dclintrc.yaml).
# Exits non-zero on a schema violation, an error or a warning. Needs node >= 20.19 and npm
# (the dashboard's toolchain). Usage: scripts/compose-lint.sh [COMPOSE_FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."

tool=scripts/compose-lint
if ! command -v npm >/dev/null; then
    echo "error: npm not found: install Node.js >= 20.19 (the dashboard needs it too)" >&2
    exit 2
fi
if [ ! -x "$tool/node_modules/.bin/dclint" ] || [ "$tool/package-lock.json" -nt "$tool/node_modules/.package-lock.json" ]; then
    echo "compose-lint: installing dclint (npm ci)" >&2
    npm ci --prefix "$tool" --no-audit --no-fund --loglevel=error >&2
fi

files=("$@")
if [ "${#files[@]}" -eq 0 ]; then
    files=(docker-compose.yml)
fi
echo "dclint $("$tool/node_modules/.bin/dclint" --version): ${files[*]}"
"$tool/node_modules/.bin/dclint" --config .dclintrc.yaml --max-warnings 0 --no-color "${files[@]}"
echo "dclint: ${#files[@]} compose file(s) valid and clean"
