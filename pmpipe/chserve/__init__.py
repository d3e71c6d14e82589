"""The embedded ClickHouse: chdb served over ClickHouse's HTTP interface (`pmpipe serve`).

`run(host, port, data_dir, ...)` serves until SIGINT/SIGTERM; `make_app(data_dir, ...)` builds
the aiohttp application. Run standalone with
`python -m pmpipe.chserve --port 8123 --data-dir data/clickhouse`.
"""

from pmpipe.chserve.server import DEFAULT_HOST, DEFAULT_PORT, make_app, run, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "make_app", "run", "serve"]
