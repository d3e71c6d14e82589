"""The pollers (markets, prices, books, trades) against a small fake of Polymarket's REST
hosts, publishing through the real broker (Tansu) and the embedded schema registry into
topics of each test's own; the records are read back from the broker.

Also: the trades dedup, the token universe and its topic follower, and the cycle runner.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from pmpipe.avro import AvroCodec
from pmpipe.broker import TopicSpec, ensure_topics
from pmpipe.config import Config
from pmpipe.errors import ConfigError
from pmpipe.kafka import RecordProducer, consumer_config
from pmpipe.records import Trade
from pmpipe.registry.server import RegistryThread
from pmpipe.topics import MARKETS, TRADES, Topic, get_topic, load_topics
from producers.books import BooksFeed
from producers.http import LimitTotals, PolymarketHttp
from producers.markets import MarketsFeed
from producers.parsing.book_hash import book_hash
from producers.prices import PricesFeed
from producers.settings import Settings
from producers.state import CycleProgress, Publisher, run_periodic
from producers.tokens import MarketsTopicFollower, TokenUniverse
from producers.trades import TradeDedup, TradesFeed, load_recent_trade_keys

SETTINGS = Settings(http_timeout_secs=5, http_max_retries=2, http_backoff_max_secs=0.1)


def run(coro: Coroutine[Any, Any, None], timeout: float = 60) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def token(i: int) -> str:
    return str(10**76 + i * 7919)


def condition(i: int) -> str:
    return "0x" + f"{i:064x}"


# -------------------------------------------------------------------------------------------
# Kafka: the real broker, topics of the test's own


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with RegistryThread(tmp_path_factory.mktemp("registry")) as registry:
        yield registry.url


@dataclass
class KafkaEnv:
    """Topics `<prefix>polymarket.*` on the session broker, and reading them back."""

    config: Config
    prefix: str
    producers: list[RecordProducer] = field(default_factory=list)

    def topic(self, name: str) -> Topic:
        base = get_topic(name)
        return Topic(self.prefix + name, base.schema_name, base.key_field, base.partitions)

    def publisher(self) -> Publisher:
        codec = AvroCodec(self.config.schema_registry_config())
        producer = RecordProducer(self.config, f"test-{self.prefix}", codec, max_buffered=10_000)
        self.producers.append(producer)
        return Publisher(producer, max_buffered=10_000, topics=self.topic)

    def flush(self) -> None:
        for producer in self.producers:
            assert producer.flush(15) == 0
            assert sum(producer.failed.values()) == 0

    def read(self, name: str, first_wait_secs: float = 6.0) -> list[dict[str, Any]]:
        return self.read_all(name, first_wait_secs=first_wait_secs)[name]

    def read_all(
        self, *names: str, first_wait_secs: float = 6.0, idle_secs: float = 0.7
    ) -> dict[str, list[dict[str, Any]]]:
        """Every record of some topics, decoded, in partition order (until idle_secs without
        any; a partition's first fetch can lag the others')."""
        self.flush()
        topics = {self.topic(name).name: name for name in names}
        codec = AvroCodec(self.config.schema_registry_config(), auto_register=False)
        consumer = Consumer(consumer_config(self.config, f"read-{uuid.uuid4().hex[:8]}"))
        consumer.assign(
            [
                TopicPartition(self.topic(name).name, p, OFFSET_BEGINNING)
                for name in names
                for p in range(self.topic(name).partitions)
            ]
        )
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        started = last = time.monotonic()
        got = False
        try:
            while True:
                now = time.monotonic()
                if (got and now - last > idle_secs) or (
                    not got and now - started > first_wait_secs
                ):
                    break
                for msg in consumer.consume(500, 0.1):
                    value = msg.value()
                    assert msg.error() is None and value is not None, msg.error()
                    topic = msg.topic() or ""
                    out[topics[topic]].append(codec.decode(topic, value))
                    got, last = True, time.monotonic()
        finally:
            consumer.close()
        return out


@pytest.fixture
def kafka(tansu_broker: str, registry_url: str, tmp_path: Path) -> Iterator[KafkaEnv]:
    config = Config.load(
        {
            "KAFKA_BOOTSTRAP_SERVERS": tansu_broker,
            "SCHEMA_REGISTRY_URL": registry_url,
            "PMPIPE_DATA_DIR": str(tmp_path),
        }
    )
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    ensure_topics(
        config.kafka_client_config(),
        [TopicSpec(prefix + t.name, t.partitions, {}) for t in load_topics()],
    )
    env = KafkaEnv(config, prefix)
    yield env
    for producer in env.producers:
        producer.close(5)
    env.producers.clear()
    gc.collect()  # librdkafka handles go now, not after the session broker stopped


# -------------------------------------------------------------------------------------------
# a fake of Polymarket's REST hosts


def gamma_market(i: int, *, closed: bool = False, question: str | None = None) -> dict[str, Any]:
    return {
        "id": str(1000 + i),
        "question": question or f"Will thing {i} happen?",
        "conditionId": condition(i),
        "slug": f"thing-{i}",
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["0.41", "0.59"]',
        "clobTokenIds": json.dumps([token(2 * i), token(2 * i + 1)]),
        "active": True,
        "closed": closed,
        "archived": False,
        "acceptingOrders": not closed,
        "enableOrderBook": True,
        "negRisk": False,
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "volumeNum": 1234.5,
        "endDate": "2026-12-31T00:00:00Z",
        "updatedAt": "2026-11-26T10:30:01.123456Z",
    }


def raw_book(token_id: str, market: str, i: int) -> dict[str, Any]:
    book = {
        "market": market,
        "asset_id": token_id,
        "timestamp": str(1_790_000_000_000 + i),
        "hash": "",
        "bids": [{"price": ".40", "size": "100"}, {"price": "0.41", "size": "25.5"}],
        "asks": [{"price": "0.6", "size": "10"}, {"price": "0.45", "size": "7"}],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
        "last_trade_price": "0.43",
    }
    book["hash"] = book_hash(book)
    return book


def encode_cursor(offset: int) -> str:
    return base64.b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    return int(json.loads(base64.b64decode(cursor))["o"]) if cursor else 0


@dataclass
class FakePolymarket:
    markets: list[dict[str, Any]] = field(default_factory=list)
    books: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)  # newest first
    gamma_page_clamp: int = 7  # the server clamps `limit` (short pages are not the end)
    trades_page_clamp: int = 1000
    v2: bool = True
    requests: list[tuple[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gamma/markets/keyset", self.keyset)
        for path in ("/prices", "/midpoints", "/spreads", "/books"):
            app.router.add_post("/clob" + path, self.clob)
        app.router.add_get("/data/v2/trades", self.trades_v2)
        app.router.add_get("/data/trades", self.trades_v1)
        return app

    async def keyset(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.query_string))
        closed = request.query.get("closed") == "true"
        wanted = set(request.query.getall("condition_ids", []))
        rows = [
            m
            for m in self.markets
            if m["closed"] == closed and (not wanted or m["conditionId"] in wanted)
        ]
        start = decode_cursor(request.query.get("after_cursor"))
        size = min(int(request.query.get("limit", 20)), self.gamma_page_clamp)
        page = rows[start : start + size]
        body: dict[str, Any] = {"markets": page}
        if start + size < len(rows):
            body["next_cursor"] = encode_cursor(start + size)
        return web.json_response(body)

    async def clob(self, request: web.Request) -> web.Response:
        body = await request.json()
        path = request.path.removeprefix("/clob")
        self.requests.append((path, len(body)))
        assert len(body) <= 500, f"{path}: {len(body)} items"
        ids = [item["token_id"] for item in body]
        if path == "/prices":
            out: dict[str, Any] = {}
            for item in body:
                value = 0.45 if item["side"] == "BUY" else 0.41
                out.setdefault(item["token_id"], {})[item["side"]] = value
            return web.json_response(out)
        if path == "/midpoints":
            return web.json_response({t: "0.43" for t in ids})
        if path == "/spreads":
            return web.json_response({t: ".04" for t in ids})
        return web.json_response([self.books[t] for t in ids if t in self.books])

    async def trades_v2(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.query_string))
        if not self.v2:
            return web.json_response({"error": "not found", "code": "not_found"}, status=404)
        start = decode_cursor(request.query.get("cursor"))
        size = min(int(request.query.get("limit", 100)), self.trades_page_clamp)
        page = self.trades[start : start + size]
        more = start + size < len(self.trades)
        return web.json_response(
            {
                "data": page,
                "pagination": {
                    "limit": size,
                    "offset": 0,
                    "has_more": more,
                    "next_cursor": encode_cursor(start + size) if more else None,
                },
            }
        )

    async def trades_v1(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.query_string))
        start = int(request.query.get("offset", 0))
        size = int(request.query.get("limit", 100))
        rows = self.trades[start : start + size]
        v1 = [
            {
                "proxyWallet": r["proxy_wallet"],
                "side": r["side"],
                "asset": r["token_id"],
                "conditionId": r["condition_id"],
                "size": r["size"],
                "price": r["price"],
                "timestamp": r["timestamp"],
                "transactionHash": r["transaction_hash"],
                "outcome": r["outcome"],
                "outcomeIndex": r["outcome_index"],
            }
            for r in rows
        ]
        return web.json_response(v1)


@asynccontextmanager
async def fake_polymarket(fake: FakePolymarket) -> AsyncIterator[PolymarketHttp]:
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    http = PolymarketHttp(
        {"gamma": base + "/gamma", "clob": base + "/clob", "data": base + "/data"}, SETTINGS
    )
    http.backoff_base_secs = 0.01
    try:
        yield http
    finally:
        await http.aclose()
        await runner.cleanup()


def trade_row(i: int, ts: int, *, tx: str | None = None, size: float = 10.0) -> dict[str, Any]:
    return {
        "proxy_wallet": "0xABCDEF" + f"{i:034x}",
        "side": "BUY" if i % 2 else "SELL",
        "token_id": token(i % 10),
        "condition_id": condition(i % 5),
        "size": size,
        "price": 0.52,
        "timestamp": ts,
        "transaction_hash": tx or "0x" + f"{i:064x}",
        "outcome": "Yes",
        "outcome_index": 0,
    }


# -------------------------------------------------------------------------------------------
# markets


def test_markets_walk_publishes_changes_closures_and_feeds_the_universe(kafka: KafkaEnv) -> None:
    fake = FakePolymarket(markets=[gamma_market(i) for i in range(20)])
    broken = gamma_market(99)
    broken["clobTokenIds"] = "[not json"
    fake.markets.append(broken)
    universe = TokenUniverse()

    async def scenario() -> None:
        async with fake_polymarket(fake) as http:
            publisher = kafka.publisher()
            feed = MarketsFeed(http, publisher, interval_secs=300, universe=universe)
            first = CycleProgress("markets")
            await feed.run_cycle(first)
            assert first.done == 3  # 21 markets in pages of 7, each page short of limit=100
            assert first.records["published"] == 20 and first.parse_errors == 1
            assert len(universe) == 40

            second = CycleProgress("markets")
            await feed.run_cycle(second)
            assert second.records["published"] == 0

            fake.markets[3] = gamma_market(3, question="Edited?")
            fake.markets[5] = gamma_market(5, closed=True)
            third = CycleProgress("markets")
            await feed.run_cycle(third)
            assert third.records["published"] == 1 and third.records["closed"] == 1
            assert len(universe) == 38
            assert universe.condition_of(token(10)) is None
            assert universe.condition_of(token(6)) == condition(3)

            feed.reemit_all()
            fourth = CycleProgress("markets")
            await feed.run_cycle(fourth)
            assert fourth.records["published"] == 19
            assert feed.walked.is_set()

    run(scenario())
    topics = kafka.read_all(MARKETS, "polymarket.dlq")
    records = topics[MARKETS]
    assert len(records) == 20 + 1 + 1 + 19
    by_id = Counter(r["condition_id"] for r in records)
    assert by_id[condition(3)] == 3 and by_id[condition(5)] == 2 and by_id[condition(0)] == 2
    closed = [r for r in records if r["closed"]]
    assert [r["condition_id"] for r in closed] == [condition(5)]
    assert records[0]["token_ids"][0].startswith("1000000")
    dlq = topics["polymarket.dlq"]
    assert len(dlq) == 1 and dlq[0]["component"] == "producer:markets"
    assert json.loads(dlq[0]["original_value"])["conditionId"] == condition(99)

    # another process learns the same universe from the compacted topic
    follower_universe = TokenUniverse()

    async def follow() -> None:
        follower = MarketsTopicFollower(
            kafka.config,
            follower_universe,
            asyncio.get_running_loop(),
            topic=kafka.topic(MARKETS).name,
            empty_wait_secs=5,
        )
        follower.start()
        try:
            assert await asyncio.to_thread(follower.wait_initial_load, 20)
            await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(follower.stop)
        assert follower.errors == 0

    run(follow())
    assert follower_universe.token_set() == universe.token_set()


# -------------------------------------------------------------------------------------------
# prices and books


def universe_of(markets: int) -> TokenUniverse:
    universe = TokenUniverse()
    for i in range(markets):
        universe.set_market(condition(i), (token(2 * i), token(2 * i + 1)))
    return universe


def test_prices_poll_in_batches_of_at_most_500_items(kafka: KafkaEnv) -> None:
    fake = FakePolymarket()
    universe = universe_of(300)  # 600 tokens

    async def scenario() -> None:
        async with fake_polymarket(fake) as http:
            feed = PricesFeed(http, kafka.publisher(), universe, interval_secs=30, concurrency=4)
            progress = CycleProgress("prices")
            await feed.run_cycle(progress)
            assert progress.done == progress.total == 600
            assert progress.records["prices"] == 600 and progress.errors == 0

    run(scenario())
    sizes = Counter(fake.requests)
    assert sizes == {
        ("/prices", 500): 2,  # 250 tokens x 2 sides
        ("/prices", 200): 1,
        ("/midpoints", 500): 1,
        ("/midpoints", 100): 1,
        ("/spreads", 500): 1,
        ("/spreads", 100): 1,
    }
    records = kafka.read("polymarket.prices")
    assert len(records) == 600
    assert {r["token_id"] for r in records} == universe.token_set()
    first = records[0]
    assert (first["best_bid"], first["best_ask"]) == (Decimal("0.41"), Decimal("0.45"))
    assert (first["mid"], first["spread"]) == (Decimal("0.43"), Decimal("0.04"))
    assert (first["source"], first["kind"]) == ("clob", "poll")
    assert first["condition_id"] == universe.condition_of(first["token_id"])


def test_books_verify_hashes_and_never_drop(kafka: KafkaEnv) -> None:
    universe = universe_of(3)
    fake = FakePolymarket()
    for i, tok in enumerate(universe.tokens()):
        fake.books[tok] = raw_book(tok, universe.condition_of(tok) or "", i)
    tokens = universe.tokens()
    fake.books[tokens[1]]["hash"] = "0" * 40  # corrupted hash
    fake.books[tokens[2]]["bids"][0]["price"] = "abc"  # unparseable level

    async def scenario() -> None:
        async with fake_polymarket(fake) as http:
            feed = BooksFeed(http, kafka.publisher(), universe, interval_secs=60, concurrency=2)
            progress = CycleProgress("books")
            await feed.run_cycle(progress)
            assert progress.records["books"] == 5
            assert progress.records["hash_mismatch"] == 1
            assert progress.parse_errors == 1
            assert feed.stats()["hash_mismatches"] == 1

    run(scenario())
    topics = kafka.read_all("polymarket.books", "polymarket.events", "polymarket.dlq")
    books = topics["polymarket.books"]
    assert len(books) == 5
    assert Counter(b["hash_ok"] for b in books) == {True: 4, False: 1}
    bad = next(b for b in books if not b["hash_ok"])
    assert bad["token_id"] == tokens[1] and bad["hash"] == "0" * 40
    good = next(b for b in books if b["hash_ok"])
    assert good["bid_prices"] == [Decimal("0.41"), Decimal("0.40")]  # best first
    assert good["ask_prices"] == [Decimal("0.45"), Decimal("0.6")]
    events = topics["polymarket.events"]
    assert [(e["event_type"], e["category"], e["token_id"]) for e in events] == [
        ("hash_mismatch", "continuity", tokens[1])
    ]
    detail = json.loads(events[0]["detail"])
    assert detail["served"] == "0" * 40
    assert detail["expected"] == book_hash(fake.books[tokens[1]])
    dlq = topics["polymarket.dlq"]
    assert len(dlq) == 1 and "bids[0].price" in dlq[0]["error"]


# -------------------------------------------------------------------------------------------
# trades


def trade(key: str, ts_ms: int) -> Trade:
    return Trade(
        trade_key=key,
        token_id="1",
        side="BUY",
        price=Decimal("0.5"),
        size=Decimal("1"),
        source="data_api",
        source_ts=ts_ms,
        received_ts=ts_ms * 1000,
    )


def test_dedup_never_lets_a_key_through_twice_and_forgets_old_keys() -> None:
    dedup = TradeDedup(overlap_ms=300_000)
    now = 10_000_000_000
    assert dedup.cutoff_ms(now, 3_600_000) == now - 3_600_000
    assert dedup.accept(trade("a", now - 1000))
    assert not dedup.accept(trade("a", now - 1000))
    assert dedup.accept(trade("b", now - 500_000))
    dedup.advance(now)
    assert dedup.watermark_ms == now
    assert dedup.cutoff_ms(now + 1, 3_600_000) == now - 300_000
    assert len(dedup) == 2
    dedup.advance(now + 200_000)  # horizon passes b (older than watermark - 2 x overlap)
    assert len(dedup) == 1
    assert not dedup.accept(trade("b", now - 500_000))  # too old to tell: not emitted again
    assert dedup.too_old == 1 and dedup.duplicates == 1
    assert not dedup.accept(trade("a", now - 1000))


def test_dedup_seed_sets_the_watermark() -> None:
    dedup = TradeDedup(overlap_ms=1000)
    assert dedup.seed([("x", 5000), ("y", 9000), ("z", 8000)]) == 3
    assert dedup.watermark_ms == 9000
    assert len(dedup) == 2  # x is older than 9000 - 2 x 1000: forgotten
    assert not dedup.accept(trade("z", 8000))
    assert not dedup.accept(trade("x", 5000))  # too old to tell


def test_trades_walk_with_overlap_emits_each_fill_once_and_survives_a_restart(
    kafka: KafkaEnv,
) -> None:
    now_s = int(time.time())
    rows = [trade_row(i, now_s - 1 - i) for i in range(2500)]
    tx = "0x" + "ee" * 32  # three identical fills of one transaction across a page boundary
    for i in (999, 1000, 1001):
        rows[i] = trade_row(7, now_s - 1000, tx=tx, size=3.5)
    fake = FakePolymarket(trades=rows)
    settings = Settings(trades_overlap_secs=300, trades_lookback_secs=3600)

    async def scenario() -> None:
        async with fake_polymarket(fake) as http:
            feed = TradesFeed(http, kafka.publisher(), settings, interval_secs=60)
            first = CycleProgress("trades")
            await feed.run_cycle(first)
            assert first.done == 3 and first.records["trades"] == 2500
            assert feed.dedup.watermark_ms == (now_s - 1) * 1000

            fake.trades[:0] = [trade_row(5000 + i, now_s + 5 - i) for i in range(5)]
            second = CycleProgress("trades")
            await feed.run_cycle(second)
            assert second.done == 1  # the first page already reaches watermark - overlap
            assert second.records["trades"] == 5 and second.records["seen"] == 995

    run(scenario())
    kafka.flush()

    async def restart() -> None:
        keys = await asyncio.to_thread(
            load_recent_trade_keys,
            kafka.config,
            (now_s - 4000) * 1000,
            timeout_secs=30,
            topic=kafka.topic(TRADES).name,
        )
        assert len(keys) == 2505
        async with fake_polymarket(fake) as http:
            fake.trades.insert(0, trade_row(9000, now_s + 10))
            feed = TradesFeed(http, kafka.publisher(), settings, interval_secs=60)
            feed.dedup.seed(keys)
            progress = CycleProgress("trades")
            await feed.run_cycle(progress)
            assert progress.records["trades"] == 1

    run(restart())
    records = kafka.read(TRADES)
    keys = Counter(r["trade_key"] for r in records)
    assert len(records) == 2506 and max(keys.values()) == 1
    same_tx = sorted(k for k in keys if k.startswith(tx))
    assert [k.rsplit("|", 1)[1] for k in same_tx] == ["0", "1", "2"]
    assert {r["source"] for r in records} == {"data_api"}
    assert all(r["proxy_wallet"] == r["proxy_wallet"].lower() for r in records)


def test_trades_fall_back_to_v1_on_404(kafka: KafkaEnv) -> None:
    now_s = int(time.time())
    fake = FakePolymarket(trades=[trade_row(i, now_s - i) for i in range(30)], v2=False)

    async def scenario() -> None:
        async with fake_polymarket(fake) as http:
            feed = TradesFeed(http, kafka.publisher(), SETTINGS, interval_secs=60)
            progress = CycleProgress("trades")
            await feed.run_cycle(progress)
            assert feed.api == "v1"
            assert progress.records["trades"] == 30

    run(scenario())
    assert [p for p, _ in fake.requests] == ["/data/v2/trades", "/data/trades", "/data/trades"]
    assert len(kafka.read(TRADES)) == 30


# -------------------------------------------------------------------------------------------
# the universe and the cycle runner (no I/O)


def test_universe_tracks_tradable_tokens() -> None:
    universe = TokenUniverse()
    change = universe.set_market("c1", ("1", "2"))
    assert change.added == ("1", "2") and not change.removed
    assert not universe.set_market("c1", ("1", "2"))
    change = universe.set_market("c1", ("1", "3"))
    assert (change.added, change.removed) == (("3",), ("2",))
    assert universe.tokens() == ["1", "3"] and universe.condition_of("3") == "c1"
    version = universe.version
    universe.set_market("c1", ())
    assert len(universe) == 0 and universe.version == version + 1


def test_universe_waiters_wake_on_change() -> None:
    async def scenario() -> None:
        universe = TokenUniverse()
        waiter = asyncio.create_task(universe.wait_changed(0, 5))
        await asyncio.sleep(0.01)
        universe.set_market("c", ("9",))
        assert await waiter == 1
        started = time.monotonic()
        assert await universe.wait_changed(1, 0.1) == 1
        assert time.monotonic() - started >= 0.1

    run(scenario())


class SlowFeed:
    name = "slow"
    interval_secs = 0.2

    def __init__(self) -> None:
        self.cycles = 0

    def limits(self) -> LimitTotals:
        return LimitTotals(requests=self.cycles, rate_wait_secs=1.5 * self.cycles)

    async def run_cycle(self, progress: CycleProgress) -> None:
        self.cycles += 1
        progress.unit, progress.total = "tokens", 10
        for _ in range(10):
            await asyncio.sleep(0.04)
            progress.done += 1


def test_a_cycle_that_overruns_says_how_far_it_got(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="producers.state")
    feed = SlowFeed()

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_periodic(feed, stop))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 2)

    run(scenario())
    overrun = [r.getMessage() for r in caplog.records if "did not finish" in r.getMessage()]
    assert overrun and "tokens=" in overrun[0] and "/10" in overrun[0]
    assert "rate_limit_wait_secs" in overrun[0]
    done = [r.getMessage() for r in caplog.records if "done in" in r.getMessage()]
    assert done and "tokens=10/10" in done[0]
    assert feed.cycles >= 2


def test_settings_from_env_validate_and_name_the_variable() -> None:
    settings = Settings.from_env({"PMPIPE_WS_SHARD_SIZE": "150", "PMPIPE_HTTP_MAX_RETRIES": "3"})
    assert (settings.ws_shard_size, settings.http_max_retries) == (150, 3)
    assert Settings.from_env({}) == Settings()
    for env, var in [
        ({"PMPIPE_WS_SHARD_SIZE": "501"}, "PMPIPE_WS_SHARD_SIZE"),
        ({"PMPIPE_WS_SILENCE_SECS": "0"}, "PMPIPE_WS_SILENCE_SECS"),
        ({"PMPIPE_RATE_LIMIT_FRACTION": "1.5"}, "PMPIPE_RATE_LIMIT_FRACTION"),
        ({"PMPIPE_HTTP_TIMEOUT_SECS": "soon"}, "PMPIPE_HTTP_TIMEOUT_SECS"),
        ({"PMPIPE_WS_PONG_TIMEOUT_SECS": "5"}, "PMPIPE_WS_PONG_TIMEOUT_SECS"),
    ]:
        with pytest.raises(ConfigError, match=var):
            Settings.from_env({**env, "PMPIPE_WS_PING_SECS": "10"})
