"""The WebSocket relay against a small fake of the CLOB market channel, publishing through the
real broker (Tansu) and the embedded registry; records are read back from the broker.

Covers sharding, subscription messages, PING/PONG, the silence watchdog, reconnects with their
continuity events (connected, disconnected, resubscribed, gap, silent), dynamic subscribe /
unsubscribe as the universe changes, raw frames exactly as received, and the DLQ.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from producers.market_ws import MarketWsRelay, shard_count, shard_of, subscribe_message
from producers.settings import Settings
from producers.tokens import TokenUniverse
from tests.producers.test_pollers import KafkaEnv, condition, kafka, registry_url, run, token

__all__ = ["kafka", "registry_url"]  # fixtures shared with test_pollers

FAST = Settings(
    ws_shard_size=5,
    ws_ping_secs=0.2,
    ws_pong_timeout_secs=0.8,
    ws_silence_secs=30,
    ws_backoff_max_secs=0.2,
    ws_open_timeout_secs=5,
)


@dataclass
class Socket:
    ws: ServerConnection
    tokens: set[str] = field(default_factory=set)
    received: list[Any] = field(default_factory=list)  # decoded JSON messages from the client
    sent: list[str] = field(default_factory=list)
    pings: int = 0


@dataclass
class FakeMarketChannel:
    answer_pings: bool = True
    sockets: list[Socket] = field(default_factory=list)

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None and ws.request.path == "/ws/market"
        sock = Socket(ws)
        self.sockets.append(sock)
        try:
            async for message in ws:
                if message == "PING":
                    sock.pings += 1
                    if self.answer_pings:
                        await self.send(sock, "PONG")
                    continue
                body = json.loads(message)
                sock.received.append(body)
                if body.get("type") == "market" or body.get("operation") == "subscribe":
                    new = set(body["assets_ids"]) - sock.tokens
                    sock.tokens |= new
                    if new:
                        await self.send(sock, json.dumps([book_event(t) for t in sorted(new)]))
                elif body.get("operation") == "unsubscribe":
                    sock.tokens -= set(body["assets_ids"])
        except ConnectionClosed:
            return

    async def send(self, sock: Socket, frame: str) -> None:
        sock.sent.append(frame)
        await sock.ws.send(frame)

    def open(self) -> list[Socket]:
        return [s for s in self.sockets if s.ws.state.name == "OPEN"]

    async def trade(self, token_id: str, tx: str) -> None:
        event = {
            "event_type": "last_trade_price",
            "asset_id": token_id,
            "market": "0xabc",
            "price": "0.456",
            "size": "219.217767",
            "fee_rate_bps": "0",
            "side": "BUY",
            "timestamp": str(int(time.time() * 1000)),
            "transaction_hash": tx,
        }
        for sock in self.open():
            if token_id in sock.tokens:
                await self.send(sock, json.dumps(event))

    async def drop_all(self) -> None:
        for sock in self.open():
            await sock.ws.close(1011, "dropped by the test")


def book_event(token_id: str) -> dict[str, Any]:
    return {
        "event_type": "book",
        "asset_id": token_id,
        "market": "0xabc",
        "bids": [{"price": "0.4", "size": "10"}],
        "asks": [{"price": "0.6", "size": "12"}],
        "timestamp": "1790000000000",
        "hash": "0" * 40,
    }


@asynccontextmanager
async def channel(fake: FakeMarketChannel) -> AsyncIterator[str]:
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/market"


async def until(check: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


def universe_of(markets: range) -> TokenUniverse:
    universe = TokenUniverse()
    for i in markets:
        universe.set_market(condition(i), (token(2 * i), token(2 * i + 1)))
    return universe


async def with_relay(
    url: str,
    universe: TokenUniverse,
    kafka: KafkaEnv,
    settings: Settings,
    body: Callable[[MarketWsRelay], Awaitable[None]],
) -> MarketWsRelay:
    relay = MarketWsRelay(url, kafka.publisher(), universe, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await body(relay)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return relay


# -------------------------------------------------------------------------------------------
# pure parts


def test_shards_are_stable_and_balanced() -> None:
    tokens = [token(i) for i in range(20_000)]
    shards = shard_count(len(tokens), 200)
    assert shards == 143  # 20,000 / (200 x 0.7)
    first = [shard_of(t, shards) for t in tokens]
    assert first == [shard_of(t, shards) for t in tokens]
    sizes = Counter(first)
    assert len(sizes) == shards and max(sizes.values()) <= 200
    assert shard_count(0, 200) == 1


def test_subscribe_message_shape() -> None:
    assert json.loads(subscribe_message({"2", "1"})) == {
        "assets_ids": ["1", "2"],
        "type": "market",
        "custom_feature_enabled": True,
        "initial_dump": True,
    }


# -------------------------------------------------------------------------------------------
# against the fake channel


def test_relay_shards_relays_resubscribes_and_reports_gaps(kafka: KafkaEnv) -> None:
    fake = FakeMarketChannel()
    universe = universe_of(range(6))  # 12 tokens, at most 5 per connection
    tx = "0x" + "ab" * 32

    open_at_end = 0

    async def body(relay: MarketWsRelay) -> None:
        nonlocal open_at_end
        await until(lambda: sum(len(s.tokens) for s in fake.open()) == 12, what="subscriptions")
        assert relay.shards == shard_count(12, 5) == 4
        await until(lambda: relay.counters["polymarket.books"] == 12, what="initial dump")
        firsts = [s.received[0] for s in fake.sockets]
        assert all(m["type"] == "market" and m["initial_dump"] for m in firsts)
        assert all(len(m["assets_ids"]) <= 5 for m in firsts)
        subscribed = sorted(t for m in firsts for t in m["assets_ids"])
        assert subscribed == universe.tokens()
        for conn in relay.connections():
            assert {shard_of(t, 4) for t in conn.tokens} == {conn.shard}

        await fake.trade(token(0), tx)
        sock = next(s for s in fake.open() if token(0) in s.tokens)
        await fake.send(sock, "NOT JSON {")
        await until(lambda: relay.counters["polymarket.trades"] == 1, what="trade")
        await until(lambda: relay.counters["parse_errors"] == 1, what="dlq")
        await until(lambda: min(s.pings for s in fake.open()) >= 2, what="pings")

        # the universe changes: one market resolved, one new
        universe.set_market(condition(0), ())
        universe.set_market(condition(50), (token(100), token(101)))
        await until(lambda: token(100) in {t for s in fake.open() for t in s.tokens}, what="sub")
        await until(
            lambda: token(0) not in {t for s in fake.open() for t in s.tokens}, what="unsub"
        )
        ops = [m for s in fake.sockets for m in s.received if "operation" in m]
        assert {op["operation"] for op in ops} <= {"subscribe", "unsubscribe"}
        assert sorted(
            t for op in ops if op["operation"] == "unsubscribe" for t in op["assets_ids"]
        ) == [token(0), token(1)]

        # every socket dropped: reconnect, resubscribe, gap closed by the next data
        sockets_before = len(fake.sockets)
        await fake.drop_all()
        await until(lambda: relay.counters["resubscribes"] >= relay.connection_count, what="re")
        assert len(fake.sockets) >= sockets_before + relay.connection_count
        await until(lambda: relay.counters["gaps"] >= relay.connection_count, what="gaps")
        assert sorted(t for s in fake.open() for t in s.tokens) == universe.tokens()
        open_at_end = sum(1 for c in relay.connections() if c.connected)

    async def scenario() -> None:
        async with channel(fake) as url:
            relay = await with_relay(url, universe, kafka, FAST, body)
            assert relay.connection_count == 0  # closed on stop
            assert relay.counters["disconnects"] >= 4

    run(scenario(), timeout=60)
    topics = kafka.read_all(
        "polymarket.ws_raw",
        "polymarket.books",
        "polymarket.trades",
        "polymarket.events",
        "polymarket.dlq",
    )
    frames = topics["polymarket.ws_raw"]
    sent = Counter(f for s in fake.sockets for f in s.sent)
    assert Counter(f["payload"].decode() for f in frames) == sent
    by_conn: dict[str, list[int]] = {}
    for f in frames:
        by_conn.setdefault(f["connection_id"], []).append(f["seq"])
    assert all(sorted(seqs) == list(range(len(seqs))) for seqs in by_conn.values())
    books = topics["polymarket.books"]
    assert {b["source"] for b in books} == {"ws"}
    assert {b["token_id"] for b in books} >= set(universe.tokens())
    (trade,) = topics["polymarket.trades"]
    assert (trade["source"], trade["token_id"], trade["transaction_hash"]) == ("ws", token(0), tx)
    (dead,) = topics["polymarket.dlq"]
    assert dead["component"] == "producer:ws" and dead["original_value"] == b"NOT JSON {"

    events = topics["polymarket.events"]
    kinds = Counter(e["event_type"] for e in events)
    assert kinds["connected"] >= 8 and kinds["resubscribed"] >= 4 and kinds["gap"] >= 4
    assert all(e["category"] == "continuity" and e["source"] == "pipeline" for e in events)
    gap = next(e for e in events if e["event_type"] == "gap")
    assert gap["gap_start"] is not None and gap["gap_end"] >= gap["gap_start"]
    assert gap["token_ids"] and gap["connection_id"].startswith("ws-")
    shutdown = [e for e in events if json.loads(e["detail"]).get("reason") == "shutdown"]
    assert {e["event_type"] for e in shutdown} == {"disconnected"}
    assert len(shutdown) == open_at_end >= 4


def test_silent_socket_is_detected_and_recycled(kafka: KafkaEnv) -> None:
    fake = FakeMarketChannel()
    universe = universe_of(range(1))
    settings = Settings(
        ws_shard_size=5,
        ws_ping_secs=0.2,
        ws_pong_timeout_secs=5,
        ws_silence_secs=0.8,
        ws_backoff_max_secs=0.1,
    )

    async def body(relay: MarketWsRelay) -> None:
        # only the initial dump, then PONGs and nothing else: silent
        await until(lambda: relay.counters["silences"] >= 1, what="silence")
        await until(lambda: relay.counters["resubscribes"] >= 1, what="resubscribe")

    async def scenario() -> None:
        async with channel(fake) as url:
            await with_relay(url, universe, kafka, settings, body)

    run(scenario())
    events = kafka.read("polymarket.events")
    by_conn: dict[str, list[dict[str, Any]]] = {}
    for e in events:  # in order within a connection (its events share a partition)
        by_conn.setdefault(e["connection_id"], []).append(e)
    first = min(by_conn.values(), key=lambda es: es[0]["received_ts"])
    assert [e["event_type"] for e in first] == ["connected", "silent", "disconnected"]
    silent = first[1]
    assert "no data" in json.loads(silent["detail"])["reason"]
    assert silent["gap_start"] is not None
    kinds = {e["event_type"] for e in events}
    assert {"resubscribed", "gap"} <= kinds


def test_missing_pong_kills_the_connection(kafka: KafkaEnv) -> None:
    fake = FakeMarketChannel(answer_pings=False)
    universe = universe_of(range(1))

    async def body(relay: MarketWsRelay) -> None:
        await until(lambda: relay.counters["pong_timeouts"] >= 1, what="pong timeout")
        await until(lambda: relay.counters["connects"] >= 2, what="reconnect")

    async def scenario() -> None:
        async with channel(fake) as url:
            await with_relay(url, universe, kafka, FAST, body)

    run(scenario())
    events = kafka.read("polymarket.events")
    reasons = [
        json.loads(e["detail"])["reason"] for e in events if e["event_type"] == "disconnected"
    ]
    assert any("no PONG" in reason for reason in reasons)


def test_unreachable_server_keeps_retrying(kafka: KafkaEnv) -> None:
    universe = universe_of(range(1))

    async def body(relay: MarketWsRelay) -> None:
        await asyncio.sleep(1.0)
        assert relay.counters["connects"] == 0
        assert relay.connection_count == 1

    async def scenario() -> None:
        await with_relay("ws://127.0.0.1:9/ws/market", universe, kafka, FAST, body)

    run(scenario())
    assert kafka.read("polymarket.events", first_wait_secs=1.0) == []
