"""The one way to reach ClickHouse: clickhouse-connect over HTTP(S).

The embedded endpoint (`pmpipe serve`, chdb) and ClickHouse Cloud (HTTPS 8443) are reached
identically, from CLICKHOUSE_HOST/PORT/USER/PASSWORD/DATABASE/SECURE.
"""

from __future__ import annotations

from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from pmpipe.config import Config
from pmpipe.errors import PipelineError


def make_client(config: Config, *, database: str | None = "", **settings: Any) -> Client:
    """A client for the configured ClickHouse. `database=""` means config.clickhouse_database,
    None means no default database (for creating it)."""
    db = config.clickhouse_database if database == "" else database
    try:
        return clickhouse_connect.get_client(
            host=config.clickhouse_host,
            port=config.clickhouse_port,
            username=config.clickhouse_user,
            password=config.clickhouse_password,
            secure=config.clickhouse_secure,
            database=db or None,
            connect_timeout=10,
            send_receive_timeout=300,
            settings=settings or None,
        )
    except (ClickHouseError, OSError) as e:
        # never print the password; the URL we print has no credentials
        raise PipelineError(
            f"cannot reach ClickHouse at {config.clickhouse_url}: {_first_line(e)}",
            component="clickhouse",
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
