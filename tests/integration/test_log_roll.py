"""The embedded broker's log roll under produce load: broker memory drops back, producers and
the sink carry on, nothing is lost or doubled (every synthetic trade key lands exactly once)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import clickhouse_connect
import pytest

from tests.integration.stack import UpProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLL_BYTES = 60_000_000


def test_log_roll_under_load_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = UpProcess(
        data,
        "--feeds",
        "",
        "--loadgen",
        "1500",
        "--loadgen-raw-bytes",
        "1000",
        "--loadgen-seconds",
        "45",
        env={"PMPIPE_EMBEDDED_BROKER_ROLL_BYTES": str(ROLL_BYTES)},
    ).start()
    try:
        up.wait_for(lambda line: "pmpipe up: kafka=" in line, timeout=120)
        rolled = up.wait_for(lambda line: "broker log rolled" in line, timeout=120)
        before, after = (int(x) for x in re.findall(r"rss_(?:before|after)=(\d+)", rolled))
        assert before >= ROLL_BYTES
        # a fresh Tansu measures 11-30 MB depending on the machine's load
        assert after < before * 0.6, rolled
        report = data / "run" / "loadgen.report.json"
        deadline = time.monotonic() + 120
        while not report.exists():
            assert time.monotonic() < deadline, "loadgen did not finish"
            time.sleep(0.5)
        produced = json.loads(report.read_text())
        assert produced["failed"] == 0
        assert produced["produced"] > 40_000
        ch = clickhouse_connect.get_client(host="127.0.0.1", port=up.clickhouse_port)
        deadline = time.monotonic() + 120
        while True:
            rows, keys = ch.query(
                "SELECT count(), uniqExact(trade_key) FROM polymarket.market_trades "
                "WHERE trade_key LIKE 'loadgen|%'"
            ).result_rows[0]
            frames = ch.command("SELECT count() FROM polymarket.ws_raw_frames")
            done = rows >= produced["produced"] and frames >= produced["produced"]
            if done or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert keys == produced["produced"], "lost trades"
        assert rows == keys, "doubled trades"
        assert frames == produced["produced"], "lost or doubled raw frames"
    finally:
        code = up.stop()
    assert code == 0
