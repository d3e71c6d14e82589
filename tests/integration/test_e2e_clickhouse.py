"""End to end into ClickHouse: the simulator (a subprocess on a free port, its clock sped up)
and `pmpipe up` (broker, registry, ClickHouse, the five producers and the sink) pointed at it.
After a few simulated minutes the stack waits until ClickHouse holds everything the simulator
did before a cut, is stopped (so every table is still), and the embedded ClickHouse is served
again on the same data to compare with the simulator's ground truth (DATA_DIR/truth/*.jsonl):

* every fill is in `market_trades` exactly once among the authoritative (Data API) rows, by
  the canonical trade key; the WebSocket's rows of the same fills are there too, and the
  rollups (`volume_daily`, `ohlcv_1m`, `ohlcv_1h`) add up to the truth's fills only;
* every market is in `markets` (FINAL), closed once resolved, with its event's tags (the
  events walk);
* every active token has a book in `orderbook_snapshots`.

The fault run switches the simulator's faults on (429 storms, 5xx, Cloudflare HTML 403, slow
answers, dropped and malformed WebSocket frames, corrupted book hashes), then silent sockets,
then off: no fill is lost, every silence is a `silent` row and its gap a `gap` row in
`market_events`, and every corrupted book a `hash_mismatch` row.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from pmpipe.broker import free_port
from tests.integration.stack import UpProcess
from tests.producers.test_produce_e2e import tradable_tokens, truth_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SPEED = 6.0  # simulated seconds per wall second
INTERVAL_SECS = 2  # every poller, wall seconds
WALK_MS = int(3 * INTERVAL_SECS * SPEED * 1000)  # three market walks, in simulated ms
SIM_FLAGS = [
    "--markets",
    "12",
    "--speed",
    str(SPEED),
    "--trade-rate",
    "1.5",
    "--new-market-every-secs",
    "20",
    "--resolve-market-every-secs",
    "25",
]
CATCH_UP_SECS = 240.0  # a generous bound for the stack to store what happened before the cut
HTTP_FAULTS = {
    "fault_429_storm": True,
    "fault_5xx": 0.1,
    "fault_cloudflare_403": 0.05,
    "fault_slow_secs": 0.2,
    "fault_bad_hash": 0.2,
}
WS_FAULTS = {"fault_ws_drop_every_secs": 5.0, "fault_ws_malformed": 0.05}
NO_FAULTS = {
    "fault_429_storm": False,
    "fault_5xx": 0,
    "fault_cloudflare_403": 0,
    "fault_slow_secs": 0,
    "fault_bad_hash": 0,
    "fault_ws_drop_every_secs": 0,
    "fault_ws_malformed": 0,
    "fault_ws_silent_after_secs": 0,
}


# -------------------------------------------------------------------------------------------
# the simulator and the stack


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.base + "/_sim/status", timeout=10).json()
        return body

    def faults(self, changes: dict[str, Any]) -> None:
        httpx.post(self.base + "/_sim/faults", json=changes, timeout=10).raise_for_status()

    def truth(self, name: str) -> list[dict[str, Any]]:
        if self.process.poll() is None:
            httpx.post(self.base + "/_sim/flush", timeout=10).raise_for_status()
        path = self.data_dir / "truth" / name
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_simulator(tmp_path: Path, seed: int) -> Simulator:
    port = free_port()
    data_dir = tmp_path / "sim"
    argv = [sys.executable, "-m", "producers.simulator", "--port", str(port), "--seed", str(seed)]
    argv += ["--data-dir", str(data_dir), *SIM_FLAGS]
    with (tmp_path / "simulator.log").open("wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    sim = Simulator(process, port, data_dir)
    deadline = time.monotonic() + 60
    while True:
        try:
            sim.status()
            return sim
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                sim.stop()
                raise AssertionError("the simulator did not start (simulator.log)") from None
            time.sleep(0.2)


def start_stack(tmp_path: Path, sim: Simulator, **env: str) -> UpProcess:
    up = UpProcess(
        tmp_path / "data",
        "--no-dashboard",
        env={
            "POLYMARKET_GAMMA_URL": sim.base + "/gamma",
            "POLYMARKET_CLOB_URL": sim.base + "/clob",
            "POLYMARKET_DATA_URL": sim.base + "/data",
            "POLYMARKET_WS_URL": f"ws://127.0.0.1:{sim.port}/ws/market",
            "PMPIPE_MARKETS_INTERVAL_SECS": str(INTERVAL_SECS),
            "PMPIPE_PRICES_INTERVAL_SECS": str(INTERVAL_SECS),
            "PMPIPE_TRADES_INTERVAL_SECS": str(INTERVAL_SECS),
            "PMPIPE_BOOKS_INTERVAL_SECS": str(INTERVAL_SECS),
            "PMPIPE_TOKENS_WAIT_SECS": "3",
            "PMPIPE_HTTP_BACKOFF_MAX_SECS": "2",
            **env,
        },
    ).start()
    up.wait_for(lambda line: "pmpipe up: kafka=" in line, timeout=300)
    up.wait_for(lambda line: "feed=markets cycle=1 done" in line, timeout=180)
    return up


@contextmanager
def served_clickhouse(data_dir: Path, log_path: Path) -> Iterator[Client]:
    """`pmpipe serve` on a stopped stack's data: what it stored, still."""
    port = free_port()
    argv = [sys.executable, "-m", "pmpipe", "serve", "--port", str(port)]
    argv += ["--data-dir", str(data_dir)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"pmpipe serve did not start ({log_path})") from None
                time.sleep(0.2)
        yield clickhouse_connect.get_client(host="127.0.0.1", port=port, database="polymarket")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stack_client(up: UpProcess) -> Client:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=up.clickhouse_port, database="polymarket"
    )


def column(ch: Client, sql: str) -> list[Any]:
    return [row[0] for row in ch.query(sql).result_rows]


# -------------------------------------------------------------------------------------------
# what must have landed, and waiting for it


@dataclass
class Expected:
    """What the simulator did before the cut (simulated ms), from its ground truth."""

    cut_ms: int
    trades: set[str]  # canonical keys of the fills matched before the cut
    markets: set[str]  # condition ids served open to us for at least three walks
    resolved: set[str]  # of those, the ones resolved before the cut
    tokens: set[str]  # tokens of markets open at the cut (created three walks before it)

    @classmethod
    def at_cut(cls, sim: Simulator, started_ms: int, *, churn: bool = True) -> Expected:
        """With `churn` False (faults slow the walks down), only the markets still open at
        the cut are expected, not those that opened and closed between two slow walks."""
        cut_ms = int(sim.status()["sim_time_ms"])
        fills = sim.truth("trades.jsonl")
        truth_markets = sim.truth("markets.jsonl")
        assert all(truth_key(t) == t["trade_key"] for t in fills)
        trades = {t["trade_key"] for t in fills if t["match_ts_ms"] <= cut_ms}
        created = {m["condition_id"]: m["ts_ms"] for m in truth_markets if m["change"] == "created"}
        resolved_at = {
            m["condition_id"]: m["ts_ms"] for m in truth_markets if m["change"] == "resolved"
        }
        markets = {
            cid
            for cid, ts in created.items()
            if ts <= cut_ms - WALK_MS
            and resolved_at.get(cid, cut_ms) - max(ts, started_ms) >= WALK_MS
        }
        resolved = {cid for cid, ts in resolved_at.items() if ts <= cut_ms and cid in markets}
        if not churn:
            markets -= {cid for cid, ts in resolved_at.items() if ts <= cut_ms}
            resolved = set()
        tokens = tradable_tokens(
            [m for m in truth_markets if m["ts_ms"] <= cut_ms], cut_ms - WALK_MS
        )
        return cls(cut_ms, trades, markets, resolved, tokens)

    def missing(self, ch: Client) -> dict[str, int]:
        """How much of it the stack's ClickHouse does not hold yet."""
        trades = set(column(ch, "SELECT trade_key FROM market_trades WHERE source = 'data_api'"))
        markets = set(column(ch, "SELECT condition_id FROM markets FINAL"))
        closed = set(column(ch, "SELECT condition_id FROM markets FINAL WHERE closed"))
        books = set(column(ch, "SELECT DISTINCT token_id FROM orderbook_snapshots"))
        return {
            "trades": len(self.trades - trades),
            "markets": len(self.markets - markets),
            "resolved": len(self.resolved - closed),
            "books": len(self.tokens - books),
        }


def wait_until_held(
    ch: Client,
    expected: Expected,
    also: Callable[[Client], bool] = lambda ch: True,
    tail: Callable[[], str] = lambda: "",
) -> None:
    """Poll a running pipeline's ClickHouse until it holds `expected` (bounded, generously);
    `tail` says what the pipeline logged last when it does not."""
    deadline = time.monotonic() + CATCH_UP_SECS
    missing: dict[str, int] = {}
    while time.monotonic() < deadline:
        missing = expected.missing(ch)
        if not any(missing.values()) and also(ch):
            return
        time.sleep(2)
    raise AssertionError(
        f"the pipeline did not store what happened before the cut: {missing}\n{tail()}"
    )


def wait_until_stored(
    up: UpProcess, expected: Expected, also: Callable[[Client], bool] = lambda ch: True
) -> None:
    """The same for `pmpipe up`'s ClickHouse."""
    wait_until_held(stack_client(up), expected, also, lambda: "\n".join(up.lines[-40:]))


# -------------------------------------------------------------------------------------------
# the checks on the still tables


def check_trades(ch: Client, expected: Expected, fills: list[dict[str, Any]]) -> None:
    """Each fill once from the Data API; the rollups count exactly those."""
    truth = {t["trade_key"]: t for t in fills}
    polled = Counter(column(ch, "SELECT trade_key FROM market_trades WHERE source = 'data_api'"))
    assert expected.trades, "no fill before the cut"
    assert max(polled.values()) == 1, "a Data API fill was stored twice"
    assert expected.trades <= set(polled), f"{len(expected.trades - set(polled))} fills lost"
    assert set(polled) <= set(truth), "a stored fill the simulator never made"
    ws = Counter(column(ch, "SELECT trade_key FROM market_trades WHERE source = 'ws'"))
    assert set(ws) <= set(truth)
    assert len(set(ws) & set(polled)) > 0, "no fill came from both sources"

    stored = [truth[key] for key in polled]
    volume = sum((Decimal(t["size"]) for t in stored), Decimal(0))
    notional = sum((Decimal(t["price"]) * Decimal(t["size"]) for t in stored), Decimal(0))
    for table in ("volume_daily", "ohlcv_1m", "ohlcv_1h"):
        row = ch.query(
            f"SELECT sumMerge(volume), sumMerge(notional), countMerge(trades) FROM {table}"
        ).result_rows[0]
        assert (Decimal(row[0]), Decimal(row[1]), row[2]) == (volume, notional, len(stored)), table
    # per token and day as well: the WebSocket rows of the same fills add nothing
    daily = {
        (token, str(day)): Decimal(v)
        for token, day, v in ch.query(
            "SELECT token_id, day, sumMerge(volume) FROM volume_daily GROUP BY token_id, day"
        ).result_rows
    }
    truth_daily: dict[tuple[str, str], Decimal] = {}
    for t in stored:
        day = time.strftime("%Y-%m-%d", time.gmtime(t["timestamp"]))
        key = (t["token_id"], day)
        truth_daily[key] = truth_daily.get(key, Decimal(0)) + Decimal(t["size"])
    assert daily == truth_daily


def check_markets_and_books(
    ch: Client, expected: Expected, truth_markets: list[dict[str, Any]], *, churn: bool = True
) -> None:
    rows = ch.query("SELECT condition_id, closed, event_id, tags FROM markets FINAL").result_rows
    stored = {cid: (closed, event_id, tuple(tags)) for cid, closed, event_id, tags in rows}
    assert expected.markets <= set(stored)
    assert set(stored) <= {m["condition_id"] for m in truth_markets}
    if churn:
        assert expected.resolved, "the simulator resolved no market before the cut"
    assert all(stored[cid][0] for cid in expected.resolved)
    event_of = {m["condition_id"]: m["event_id"] for m in truth_markets}
    assert all(event_id == event_of[cid] for cid, (_, event_id, _) in stored.items())
    assert all("all" in stored[cid][2] for cid in expected.markets), "tags: the events walk"
    clob = set(column(ch, "SELECT DISTINCT token_id FROM orderbook_snapshots WHERE source='clob'"))
    ws = set(column(ch, "SELECT DISTINCT token_id FROM orderbook_snapshots WHERE source = 'ws'"))
    assert expected.tokens and expected.tokens <= clob and expected.tokens <= ws


# -------------------------------------------------------------------------------------------
# the tests


def test_e2e_every_fill_market_and_book_in_clickhouse(tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, seed=4242)
    up: UpProcess | None = None
    try:
        up = start_stack(tmp_path, sim)
        started_ms = int(sim.status()["sim_time_ms"])  # after the first market walk
        time.sleep(25)  # two and a half simulated minutes
        expected = Expected.at_cut(sim, started_ms)
        wait_until_stored(up, expected)
        assert up.stop() == 0
    finally:
        if up is not None and up.proc is not None and up.proc.poll() is None:
            up.stop()
        sim.stop()
    fills, truth_markets = sim.truth("trades.jsonl"), sim.truth("markets.jsonl")
    with served_clickhouse(tmp_path / "data", tmp_path / "serve.log") as ch:
        check_trades(ch, expected, fills)
        check_markets_and_books(ch, expected, truth_markets)
        hashes = column(ch, "SELECT DISTINCT hash_ok FROM orderbook_snapshots WHERE source='clob'")
        assert hashes == [True]


def test_e2e_faults_recovered_without_losing_a_fill(tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, seed=777)
    up: UpProcess | None = None
    try:
        up = start_stack(tmp_path, sim, PMPIPE_WS_SILENCE_SECS="1.5")
        started_ms = int(sim.status()["sim_time_ms"])
        sim.faults(HTTP_FAULTS | WS_FAULTS)  # every fault at once
        time.sleep(16)
        sim.faults({"fault_ws_drop_every_secs": 0, "fault_ws_silent_after_secs": 2.0})
        time.sleep(10)  # silent sockets (the HTTP faults still on)
        sim.faults(NO_FAULTS)
        expected = Expected.at_cut(sim, started_ms, churn=False)  # fills made under faults

        def socket_recycled(ch: Client) -> bool:
            kinds = set(column(ch, "SELECT DISTINCT event_type FROM market_events"))
            return {"silent", "gap", "resubscribed", "hash_mismatch"} <= kinds

        wait_until_stored(up, expected, socket_recycled)
        assert up.stop() == 0
        log = "\n".join(up.lines)
    finally:
        if up is not None and up.proc is not None and up.proc.poll() is None:
            up.stop()
        sim.stop()
    assert "retrying" in log  # the 429 storm, 5xx, Cloudflare pages were met
    fills, truth_markets = sim.truth("trades.jsonl"), sim.truth("markets.jsonl")
    with served_clickhouse(tmp_path / "data", tmp_path / "serve.log") as ch:
        check_trades(ch, expected, fills)
        check_markets_and_books(ch, expected, truth_markets, churn=False)

        events = ch.query(
            "SELECT event_type, count(), countIf(gap_start < gap_end) FROM market_events "
            "WHERE category = 'continuity' GROUP BY event_type"
        ).result_rows
        kinds = {kind: (n, ordered) for kind, n, ordered in events}
        assert kinds["silent"][0] >= 1 and kinds["resubscribed"][0] >= 1
        assert kinds["gap"][0] >= 1 and kinds["gap"][1] == kinds["gap"][0]
        assert kinds["connected"][0] >= 3  # dropped and silent sockets came back
        assert kinds["disconnected"][0] >= 2
        bad_books = column(
            ch, "SELECT count() FROM orderbook_snapshots WHERE source = 'clob' AND NOT hash_ok"
        )
        assert bad_books[0] > 0 and kinds["hash_mismatch"][0] == bad_books[0]
