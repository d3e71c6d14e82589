#!/bin/sh
# The dashboard reads CLICKHOUSE_URL / CLICKHOUSE_DB (dashboard/lib/config.ts); the pipeline
# and .env use CLICKHOUSE_HOST / _PORT / _SECURE / _DATABASE. Derive the former from the latter
# when they are not set, so one .env configures every service. Never prints the password.
set -eu

if [ -z "${CLICKHOUSE_URL:-}" ] && [ -n "${CLICKHOUSE_HOST:-}" ]; then
    case "$(printf '%s' "${CLICKHOUSE_SECURE:-false}" | tr '[:upper:]' '[:lower:]')" in
        1 | true | yes | on) scheme=https ;;
        *) scheme=http ;;
    esac
    CLICKHOUSE_URL="${scheme}://${CLICKHOUSE_HOST}:${CLICKHOUSE_PORT:-8123}"
    export CLICKHOUSE_URL
fi
if [ -z "${CLICKHOUSE_DB:-}" ] && [ -n "${CLICKHOUSE_DATABASE:-}" ]; then
    CLICKHOUSE_DB="${CLICKHOUSE_DATABASE}"
    export CLICKHOUSE_DB
fi

exec "$@"
