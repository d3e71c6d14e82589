"""The whole embedded stack on the simulator: /metrics and /health answer, SIGKILLed producers
and the sink come back and the stack carries on, and no log line ever shows the password."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import clickhouse_connect
import httpx
import pytest

from pmpipe.broker import free_port
from tests.integration.stack import UpProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "s3cr3t-Pa55word-never-logged"


def _rows(port: int, table: str, where: str = "1") -> int:
    ch = clickhouse_connect.get_client(host="127.0.0.1", port=port, password=PASSWORD)
    sql = f"SELECT count() FROM polymarket.{table} WHERE {where}"
    return int(ch.query(sql).result_rows[0][0])


def _wait_rows(port: int, table: str, more_than: int, timeout: float = 90, where: str = "1") -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(port, table, where)
        if rows > more_than:
            return rows
        time.sleep(1)
    raise AssertionError(f"{table} did not grow past {more_than}")


def test_metrics_health_restarts_and_no_secret_in_logs(tmp_path: Path) -> None:
    metrics = free_port()
    while True:  # a free block of 6 ports: sink + five producers
        if all(_free(metrics + i) for i in range(6)):
            break
        metrics = free_port()
    up = UpProcess(
        tmp_path / "data",
        "--simulate",
        "--markets",
        "10",
        "--no-dashboard",
        env={"CLICKHOUSE_PASSWORD": PASSWORD, "PMPIPE_METRICS_PORT": str(metrics)},
    ).start()
    try:
        up.wait_for(lambda line: "pmpipe up: kafka=" in line, timeout=120)
        # the trades poller's own rows (the WebSocket's can land first): it has produced
        _wait_rows(up.clickhouse_port, "market_trades", 0, where="source = 'data_api'")
        trades = _rows(up.clickhouse_port, "market_trades")

        health = httpx.get(f"http://127.0.0.1:{metrics}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["checks"] == {"broker": True, "registry": True, "clickhouse": True}
        body = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10).text
        assert 'pmpipe_stat{component="sink"' in body
        producer_metrics = httpx.get(f"http://127.0.0.1:{metrics + 3}/metrics", timeout=10).text
        assert 'pmpipe_records_produced_total{topic="polymarket.trades"}' in producer_metrics
        assert httpx.get(f"http://127.0.0.1:{metrics + 3}/health", timeout=10).status_code == 200

        for child in ("sink", "produce-trades"):
            mark = up.mark()
            os.kill(up.supervised_pid(child), signal.SIGKILL)
            up.wait_for_text(f"restarting {child}", since=mark)
            up.wait_for_text(f"ready {child}", since=mark)
        trades = _wait_rows(up.clickhouse_port, "market_trades", trades)
        ch = clickhouse_connect.get_client(
            host="127.0.0.1", port=up.clickhouse_port, password=PASSWORD
        )
        dup = ch.command(
            "SELECT count() - uniqExact(trade_key) FROM polymarket.market_trades "
            "WHERE source = 'data_api'"
        )
        assert dup == 0, "a data_api fill was stored twice"
    finally:
        code = up.stop()
    assert code == 0
    leaked = [line for line in up.lines if PASSWORD in line]
    assert leaked == [], leaked[:3]
    assert len(up.lines) > 100


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
