"""The embedded broker SIGKILLed while the whole stack runs on the simulator (not a planned
log roll): the supervisor restarts it as a new incarnation, the controller recreates the
topics, producers resume against it without forgetting what they emitted, the sink follows the
new log, and data keeps landing in ClickHouse with no trade stored twice."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import clickhouse_connect
import pytest

from tests.integration.stack import UpProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INTERVALS = {
    "PMPIPE_MARKETS_INTERVAL_SECS": "10",
    "PMPIPE_PRICES_INTERVAL_SECS": "2",
    "PMPIPE_TRADES_INTERVAL_SECS": "2",
    "PMPIPE_BOOKS_INTERVAL_SECS": "3",
}


def _newer_rows(port: int, table: str, since: datetime, where: str = "1") -> int:
    ch = clickhouse_connect.get_client(host="127.0.0.1", port=port)
    return int(
        ch.query(
            f"SELECT count() FROM polymarket.{table} WHERE received_ts > {{t:DateTime64(6)}}"
            f" AND {where}",
            parameters={"t": since},
        ).result_rows[0][0]
    )


def _wait_newer(
    port: int, table: str, since: datetime, where: str = "1", timeout: float = 150
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _newer_rows(port, table, since, where)
        if rows > 0:
            return rows
        time.sleep(1)
    raise AssertionError(f"no {table} rows received after {since.isoformat()} ({where})")


def test_broker_sigkill_with_sink_and_producers_running(tmp_path: Path) -> None:
    up = UpProcess(
        tmp_path / "data", "--simulate", "--markets", "10", "--no-dashboard", env=INTERVALS
    ).start()
    try:
        up.wait_for_text("pmpipe up: kafka=", timeout=120)
        start = datetime.now(UTC)
        _wait_newer(up.clickhouse_port, "market_trades", start, "source = 'data_api'")
        _wait_newer(up.clickhouse_port, "market_prices", start)

        mark = up.mark()
        os.kill(up.child_pid("tansu broker"), signal.SIGKILL)
        up.wait_for_text("broker restarted as a new incarnation", timeout=60, since=mark)
        crashed = datetime.now(UTC)

        # Everything flows again: polled trades, prices, books, and the WebSocket relay.
        _wait_newer(up.clickhouse_port, "market_trades", crashed, "source = 'data_api'")
        _wait_newer(up.clickhouse_port, "market_prices", crashed)
        _wait_newer(up.clickhouse_port, "orderbook_snapshots", crashed)
        _wait_newer(up.clickhouse_port, "market_prices", crashed, "source = 'ws'")

        ch = clickhouse_connect.get_client(host="127.0.0.1", port=up.clickhouse_port)
        doubled = ch.command(
            "SELECT count() - uniqExact(trade_key) FROM polymarket.market_trades "
            "WHERE source = 'data_api'"
        )
        assert doubled == 0, "a fill was stored twice across the broker crash"
        volume = ch.command(
            "SELECT toString(sum(size)) FROM polymarket.market_trades WHERE source = 'data_api'"
        )
        rolled = ch.command("SELECT toString(sumMerge(volume)) FROM polymarket.volume_daily")
        assert str(volume) == str(rolled), "volume_daily counts the fills once"
        restarted = [line for line in up.lines[mark:] if "restarting produce-" in line]
        assert restarted == [], f"producers were restarted (and lost their memory): {restarted}"
    finally:
        code = up.stop()
    assert code == 0
