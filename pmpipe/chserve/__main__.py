"""`python -m pmpipe.chserve --port 8123 --data-dir data/clickhouse` (password from
$CLICKHOUSE_PASSWORD, never from argv where `ps` would show it)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pmpipe.chserve.server import DEFAULT_HOST, DEFAULT_PORT, run
from pmpipe.errors import PipelineError
from pmpipe.log import setup_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pmpipe.chserve",
        description="Serve chdb (embedded ClickHouse) over ClickHouse's HTTP interface.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--user", default=os.environ.get("CLICKHOUSE_USER", "default"))
    parser.add_argument("--pool-size", type=int, default=4)
    args = parser.parse_args(argv)
    setup_logging("clickhouse")
    try:
        run(
            args.host,
            args.port,
            args.data_dir,
            user=args.user,
            password=os.environ.get("CLICKHOUSE_PASSWORD", ""),
            pool_size=args.pool_size,
        )
    except PipelineError as e:
        logging.getLogger("pmpipe.chserve").error("clickhouse failed to start: %s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
