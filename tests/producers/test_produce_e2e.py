"""End to end: the simulator, the real broker (Tansu), the embedded registry, and `pmpipe
produce` as two processes (markets alone; prices, trades, books and ws together, learning the
tokens from the markets topic), stopped with SIGTERM. What landed in the topics is compared
with the simulator's ground truth (DATA_DIR/truth/*.jsonl).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pmpipe.broker import TopicSpec, ensure_topics, free_port
from pmpipe.config import Config
from pmpipe.records import to_decimal6, trade_key
from pmpipe.topics import load_topics
from tests.producers.test_pollers import KafkaEnv, registry_url

__all__ = ["registry_url"]  # the session registry shared with test_pollers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (Path(__file__).resolve().parents[2] / "producers/simulator/__main__.py").exists(),
        reason="the simulator is not there yet",
    ),
]

RUN_SECS = 12.0
SETTLE_SECS = 8.0  # a fill (or a token's book) older than this at SIGTERM must have landed
MARKETS_SETTLE_SECS = 5.0  # a market change older than this at SIGTERM must have landed
WALK_MS = 2 * 2000  # two market walks (PMPIPE_MARKETS_INTERVAL_SECS=2)
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Simulator:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def truth(self, name: str) -> list[dict[str, Any]]:
        httpx.post(self.base + "/_sim/flush", timeout=5).raise_for_status()
        path = self.data_dir / "truth" / name
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def simulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Simulator]:
    """The simulator as a subprocess; indirect parameters are extra CLI flags (faults)."""
    flags: list[str] = list(getattr(request, "param", []))
    port = free_port()
    data_dir = tmp_path / "sim"
    log = (tmp_path / "simulator.log").open("wb")
    argv = [
        sys.executable,
        "-m",
        "producers.simulator",
        "--port",
        str(port),
        "--markets",
        "12",
        "--seed",
        str(random.randrange(1, 1_000_000)),
        "--data-dir",
        str(data_dir),
        "--trade-rate",
        "4",
        "--new-market-every-secs",
        "2",
        "--resolve-market-every-secs",
        "2",
        *flags,
    ]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    sim = Simulator(port, data_dir, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(sim.base + "/_sim/status", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"simulator did not start (see {log.name})") from None
                time.sleep(0.1)
        yield sim
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def produce(env: dict[str, str], log_path: Path, *feeds: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "producers.run", *feeds]
    with log_path.open("wb") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], log_path: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(45)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"produce ignored SIGTERM (see {log_path})") from None
    assert code == 0, f"produce exited {code}:\n{log_path.read_text()[-3000:]}"


@dataclass
class Landed:
    """What the run put in the topics (the simulator's records only) and its ground truth."""

    topics: dict[str, list[dict[str, Any]]]
    truth_markets: list[dict[str, Any]]
    truth_trades: list[dict[str, Any]]
    started_ms: int  # the markets producer's first walk, about
    stopped_ms: int  # SIGTERM
    feeds_log: str
    pause_state: dict[str, Any] | None

    @property
    def tokens(self) -> set[str]:
        return {t for m in self.truth_markets for t in m["token_ids"]}

    def records(self, topic: str) -> list[dict[str, Any]]:
        tokens = self.tokens
        return [r for r in self.topics[topic] if r["token_id"] in tokens]

    def continuity(self) -> list[dict[str, Any]]:
        tokens = self.tokens
        return [
            e
            for e in self.topics["polymarket.events"]
            if e["category"] == "continuity" and set(e["token_ids"]) & tokens
        ]


def run_pipeline(
    simulator: Simulator,
    tansu_broker: str,
    registry_url: str,
    tmp_path: Path,
    *,
    run_secs: float = RUN_SECS,
    pause: bool = False,
    faults_off_after_secs: float | None = None,
    **extra_env: str,
) -> Landed:
    """Both produce processes for `run_secs`, SIGTERM (each must exit 0), then read back.

    With `pause`, the feeds process is paused (SIGUSR1) half way for a while and resumed
    (SIGUSR2), as the supervisor does around an embedded log roll. With
    `faults_off_after_secs`, the simulator's faults are switched off after that long.
    """
    config = Config.load(
        {
            "KAFKA_BOOTSTRAP_SERVERS": tansu_broker,
            "SCHEMA_REGISTRY_URL": registry_url,
            "PMPIPE_DATA_DIR": str(tmp_path),
        }
    )
    ensure_topics(
        config.kafka_client_config(),
        [TopicSpec(t.name, t.partitions, t.config) for t in load_topics()],
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": tansu_broker,
        "SCHEMA_REGISTRY_URL": registry_url,
        "PMPIPE_DATA_DIR": str(tmp_path),
        "POLYMARKET_GAMMA_URL": simulator.base + "/gamma",
        "POLYMARKET_CLOB_URL": simulator.base + "/clob",
        "POLYMARKET_DATA_URL": simulator.base + "/data",
        "POLYMARKET_WS_URL": f"ws://127.0.0.1:{simulator.port}/ws/market",
        "PMPIPE_MARKETS_INTERVAL_SECS": "2",
        "PMPIPE_PRICES_INTERVAL_SECS": "2",
        "PMPIPE_TRADES_INTERVAL_SECS": "2",
        "PMPIPE_BOOKS_INTERVAL_SECS": "2",
        "PMPIPE_TOKENS_WAIT_SECS": "3",
        "PMPIPE_HTTP_BACKOFF_MAX_SECS": "2",
        "PMPIPE_LOG_FORMAT": "text",
        **extra_env,
    }
    markets_log, feeds_log = tmp_path / "produce-markets.log", tmp_path / "produce-feeds.log"
    markets = produce(env, markets_log, "markets")
    started_ms = int(time.time() * 1000) + 1000
    time.sleep(1.0)
    feeds = produce(env, feeds_log, "prices", "trades", "books", "ws")
    pause_state = None
    try:
        if pause:
            time.sleep(run_secs / 2)
            pause_state = pause_and_resume(feeds, tmp_path / "run")
            time.sleep(run_secs / 2 - 2)
        elif faults_off_after_secs is not None:
            time.sleep(faults_off_after_secs)
            httpx.post(
                simulator.base + "/_sim/faults", json=NO_FAULTS, timeout=5
            ).raise_for_status()
            time.sleep(run_secs - faults_off_after_secs)
        else:
            time.sleep(run_secs)
        stopped_ms = int(time.time() * 1000)
    finally:
        stop(feeds, feeds_log)
        stop(markets, markets_log)
    topics = KafkaEnv(config, prefix="").read_all(
        "polymarket.markets",
        "polymarket.trades",
        "polymarket.books",
        "polymarket.prices",
        "polymarket.events",
        "polymarket.ws_raw",
        "polymarket.dlq",
        first_wait_secs=15,
        idle_secs=2.5,
    )
    return Landed(
        topics,
        simulator.truth("markets.jsonl"),
        simulator.truth("trades.jsonl"),
        started_ms,
        stopped_ms,
        feeds_log.read_text(),
        pause_state,
    )


def pause_and_resume(process: subprocess.Popen[bytes], run_dir: Path) -> dict[str, Any]:
    """SIGUSR1, wait for the state file, hold 2 s, SIGUSR2, wait for the file to go."""
    state_file = run_dir / "produce-prices-trades-books-ws.paused.json"
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 20
    while not state_file.exists():
        assert time.monotonic() < deadline, "no pause state file"
        time.sleep(0.05)
    state: dict[str, Any] = json.loads(state_file.read_text())
    time.sleep(2.0)
    process.send_signal(signal.SIGUSR2)
    while state_file.exists():
        assert time.monotonic() < deadline + 10, "the pause state file stayed after SIGUSR2"
        time.sleep(0.05)
    return state


def check_markets(landed: Landed, settle_secs: float, walk_ms: int = WALK_MS) -> None:
    """Every market open for at least `walk_ms` while we ran, and the closing state of those
    resolved during the run."""
    settled_ms = landed.stopped_ms - int(settle_secs * 1000)
    truth = landed.truth_markets
    conditions = {m["condition_id"] for m in truth}
    records = [r for r in landed.topics["polymarket.markets"] if r["condition_id"] in conditions]
    created = [m for m in truth if m["change"] == "created"]
    resolved_at = {m["condition_id"]: m["ts_ms"] for m in truth if m["change"] == "resolved"}
    # a market open for less than a walk while we ran may never be served as open to us
    early = {
        m["condition_id"]
        for m in created
        if m["ts_ms"] <= settled_ms
        and resolved_at.get(m["condition_id"], landed.stopped_ms)
        - max(m["ts_ms"], landed.started_ms)
        >= walk_ms
    }
    assert early <= {r["condition_id"] for r in records}
    assert {r["condition_id"] for r in records} <= {m["condition_id"] for m in created}
    resolved_any = {cid for cid, ts in resolved_at.items() if ts <= settled_ms}
    assert resolved_any, "the simulator resolved no market during the run"
    resolved = resolved_any & early
    # with the default window some resolved market was open long enough to be seen closing
    assert resolved or walk_ms > WALK_MS, "no market both seen open and resolved"
    assert resolved <= {r["condition_id"] for r in records if r["closed"]}


def check_trades_once(landed: Landed, settle_secs: float) -> list[dict[str, Any]]:
    """Each simulated fill settled in time is there exactly once from the Data API."""
    settled_ms = landed.stopped_ms - int(settle_secs * 1000)
    truth = landed.truth_trades
    assert all(truth_key(t) == t["trade_key"] for t in truth)
    expected = {truth_key(t) for t in truth if t["timestamp"] * 1000 <= settled_ms}
    trades = landed.records("polymarket.trades")
    polled = Counter(t["trade_key"] for t in trades if t["source"] == "data_api")
    assert expected, "no trade settled during the run"
    assert max(polled.values()) == 1
    assert expected <= set(polled), f"{len(expected - set(polled))} fills missing"
    assert set(polled) <= {t["trade_key"] for t in truth}
    return [t for t in trades if t["source"] == "ws"]


def test_produce_against_the_simulator(
    simulator: Simulator, tansu_broker: str, registry_url: str, tmp_path: Path
) -> None:
    landed = run_pipeline(simulator, tansu_broker, registry_url, tmp_path, pause=True)
    assert "hash mismatch" not in landed.feeds_log
    state = landed.pause_state
    assert state is not None and state["paused"] is True and state["flushed"] is True
    assert any(key.startswith("polymarket.ws_raw:") for key in state["next_offsets"])
    assert all(n > 0 for n in state["next_offsets"].values())
    assert "producer resumed buffered=" in landed.feeds_log
    check_markets(landed, MARKETS_SETTLE_SECS)

    # books (REST and WebSocket) and prices for every token tradable through the run
    open_tokens = tradable_tokens(landed.truth_markets, landed.stopped_ms - int(SETTLE_SECS * 1000))
    books = landed.records("polymarket.books")
    assert open_tokens <= {b["token_id"] for b in books if b["source"] == "clob"}
    assert open_tokens <= {b["token_id"] for b in books if b["source"] == "ws"}
    assert all(b["hash_ok"] for b in books if b["source"] == "clob")
    prices = landed.records("polymarket.prices")
    assert open_tokens <= {p["token_id"] for p in prices if p["source"] == "clob"}
    assert {p["kind"] for p in prices if p["source"] == "ws"} >= {"price_change"}

    ws_trades = check_trades_once(landed, SETTLE_SECS)
    assert ws_trades and {t["trade_key"] for t in ws_trades} <= {
        t["trade_key"] for t in landed.truth_trades
    }

    # the raw frames and the continuity of the WebSocket connections
    events = landed.continuity()
    ours = {e["connection_id"] for e in events}
    frames = [f for f in landed.topics["polymarket.ws_raw"] if f["connection_id"] in ours]
    assert ours and {f["connection_id"] for f in frames} == ours
    kinds = Counter(e["event_type"] for e in events)
    assert kinds["connected"] >= 1
    assert kinds["disconnected"] >= kinds["connected"]  # every connection closed on SIGTERM
    assert len(frames) > 10


NO_FAULTS = {
    "fault_429_storm": False,
    "fault_5xx": 0,
    "fault_cloudflare_403": 0,
    "fault_ws_silent_after_secs": 0,
    "fault_ws_malformed": 0,
    "fault_bad_hash": 0,
}
FAULTS = [
    "--fault-429-storm",
    "--fault-5xx=0.1",
    "--fault-cloudflare-403=0.05",
    "--fault-ws-silent-after-secs=2",
    "--fault-ws-malformed=0.05",
    "--fault-bad-hash=0.2",
]


@pytest.mark.parametrize("simulator", [FAULTS], indirect=True, ids=["faults"])
def test_produce_recovers_from_faults_and_loses_no_trade(
    simulator: Simulator, tansu_broker: str, registry_url: str, tmp_path: Path
) -> None:
    landed = run_pipeline(
        simulator,
        tansu_broker,
        registry_url,
        tmp_path,
        run_secs=RUN_SECS + 4,
        faults_off_after_secs=RUN_SECS - 2,
        PMPIPE_WS_SILENCE_SECS="1.5",
    )
    # nothing that happened under the faults is missing once they are gone; a walk under a
    # 429 storm waits out Retry-After, so a market must have been open for three walks' time
    check_markets(landed, MARKETS_SETTLE_SECS, walk_ms=3 * WALK_MS)
    check_trades_once(landed, SETTLE_SECS)

    # corrupted hashes: published all the same, and reported as continuity events
    books = [b for b in landed.records("polymarket.books") if b["source"] == "clob"]
    assert {b["hash_ok"] for b in books} == {True, False}
    open_tokens = tradable_tokens(landed.truth_markets, landed.stopped_ms - int(SETTLE_SECS * 1000))
    assert open_tokens <= {b["token_id"] for b in books}
    events = landed.continuity()
    mismatches = [e for e in events if e["event_type"] == "hash_mismatch"]
    assert len(mismatches) == sum(1 for b in books if b["hash_ok"] is False)

    # silent sockets are recycled, with their gap as data; malformed frames reach the DLQ
    kinds = Counter(e["event_type"] for e in events)
    assert kinds["silent"] >= 1 and kinds["resubscribed"] >= 1 and kinds["gap"] >= 1
    gap = next(e for e in events if e["event_type"] == "gap")
    assert gap["gap_start"] < gap["gap_end"]
    dlq = [d for d in landed.topics["polymarket.dlq"] if d["component"] == "producer:ws"]
    assert dlq and all(d["error_type"] == "parse" for d in dlq)
    assert "retrying" in landed.feeds_log  # the 429 storm, 5xx and Cloudflare pages were met


def truth_key(fill: dict[str, Any]) -> str:
    """A truth fill's key through the parsers' key function (decimal(18,6) canonical text)."""
    return trade_key(
        fill["transaction_hash"],
        fill["token_id"],
        side=fill["side"],
        price=to_decimal6(fill["price"]),
        size=to_decimal6(fill["size"]),
        occurrence=fill["occurrence"],
    )


def tradable_tokens(truth_markets: list[dict[str, Any]], settled_ms: int) -> set[str]:
    """Tokens of markets created before `settled_ms` and still open at the end."""
    latest: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, int] = {}
    for m in truth_markets:
        first_seen.setdefault(m["condition_id"], m["ts_ms"])
        latest[m["condition_id"]] = m
    return {
        t
        for cid, m in latest.items()
        if first_seen[cid] <= settled_ms and not m["closed"]
        for t in m["token_ids"]
    }
