"""`pmpipe up`: children supervised, restarted after SIGKILL, stopped in order by Ctrl-C."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import clickhouse_connect
import httpx
import psutil
import pytest
from confluent_kafka.admin import AdminClient

from tests.integration.stack import UpProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _topics(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def _partitions(bootstrap: str) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {name: len(t.partitions) for name, t in topics.items() if name.startswith("polymarket.")}


def test_stack_survives_sigkill_of_each_child_and_stops_cleanly(tmp_path: Path) -> None:
    up = UpProcess(tmp_path / "data", "--feeds", "", "--no-sink").start()
    try:
        up.wait_for(lambda line: "pmpipe up: kafka=" in line, timeout=90)
        assert "polymarket.trades" in _topics(up.bootstrap)
        # one partition per topic (PMPIPE_EMBEDDED_PARTITIONS): one sink, one insert stream each
        assert set(_partitions(up.bootstrap).values()) == {1}
        subjects = httpx.get(f"http://127.0.0.1:{up.registry_port}/subjects").json()
        assert "polymarket.trades-value" in subjects
        ch = clickhouse_connect.get_client(host="127.0.0.1", port=up.clickhouse_port)
        ch.command(
            "INSERT INTO polymarket.market_events (event_type, category, source, "
            "source_ts, received_ts) VALUES ('connected', 'continuity', 'pipeline', "
            "now64(3), now64(6))"
        )
        before = psutil.Process(up.proc.pid).children(recursive=True)  # type: ignore[union-attr]

        # ClickHouse: restarted, data persisted on disk
        mark = up.mark()
        os.kill(up.child_pid("serve"), signal.SIGKILL)
        up.wait_for(lambda line: "restarting clickhouse" in line, since=mark)
        up.wait_for(lambda line: "ready clickhouse" in line, since=mark)
        ch = clickhouse_connect.get_client(host="127.0.0.1", port=up.clickhouse_port)
        assert ch.command("SELECT count() FROM polymarket.market_events") == 1

        # registry: restarted with its subjects (persisted in the data dir)
        mark = up.mark()
        os.kill(up.child_pid(" registry "), signal.SIGKILL)
        up.wait_for(lambda line: "restarting registry" in line, since=mark)
        up.wait_for(lambda line: "ready registry" in line, since=mark)
        subjects = httpx.get(f"http://127.0.0.1:{up.registry_port}/subjects").json()
        assert "polymarket.trades-value" in subjects

        # broker: restarted as a new incarnation; the controller recreates the topics
        mark = up.mark()
        os.kill(up.child_pid("tansu broker"), signal.SIGKILL)
        up.wait_for(lambda line: "restarting broker" in line, since=mark)
        up.wait_for(lambda line: "topics recreated" in line, since=mark, timeout=60)
        assert "polymarket.trades" in _topics(up.bootstrap)
        pids = {p.pid for p in before} | {p.pid for p in up.descendants()}
    finally:
        code = up.stop()
    assert code == 0
    time.sleep(0.5)
    alive = [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], f"left behind: {alive}"
    order = [line for line in up.lines if "stopped " in line and "exit_code" in line]
    assert [o.split("stopped ")[1].split()[0] for o in order][-1] == "clickhouse", order
