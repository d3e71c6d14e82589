"""The simulator's market WebSocket against the project's parser, and its trades against the
Data API (same fills, same trade keys)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from pmpipe.records import BookSnapshot, MarketEvent, PriceUpdate, Trade
from producers.parsing.book_hash import verify_book_hash
from producers.parsing.data_api import parse_trades, trades_cursor
from producers.parsing.market_ws import WsRecord, parse_frame
from producers.simulator.config import SimConfig
from producers.simulator.server import Endpoints, SimulatorThread

MARKETS = 8


@pytest.fixture(scope="module")
def urls() -> Iterator[Endpoints]:
    config = SimConfig(
        port=0,
        markets=MARKETS,
        seed=5,
        speed=4.0,
        trade_rate=6.0,
        quote_rate=20.0,
        new_market_every_secs=3.0,
        resolve_market_every_secs=0,  # markets stay open: subscriptions stay predictable
        data_lag_secs=2.0,
    )
    with SimulatorThread(config) as sim:
        assert sim.urls is not None
        yield sim.urls


def _markets(urls: Endpoints) -> list[dict[str, Any]]:
    page = httpx.get(f"{urls.gamma}/markets/keyset", params={"limit": 100}).json()
    markets: list[dict[str, Any]] = page["markets"]
    return markets


def _subscribe(tokens: list[str], custom: bool = True) -> str:
    return json.dumps(
        {
            "assets_ids": tokens,
            "type": "market",
            "custom_feature_enabled": custom,
            "initial_dump": True,
        }
    )


class Feed:
    """What one connection received, parsed."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.records: list[WsRecord] = []
        self.controls: list[str] = []
        self.event_types: set[str] = set()

    def add(self, frame: str | bytes) -> None:
        text = frame if isinstance(frame, str) else frame.decode()
        result = parse_frame(text, 0)
        assert result.ok, result.errors
        self.frames.append(text)
        if result.control:
            self.controls.append(result.control)
            return
        self.records.extend(result.records)
        decoded = json.loads(text)
        for event in decoded if isinstance(decoded, list) else [decoded]:
            self.event_types.add(event["event_type"])


async def _collect(ws: Any, feed: Feed, secs: float) -> None:
    deadline = time.monotonic() + secs
    while (left := deadline - time.monotonic()) > 0:
        try:
            feed.add(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return


def _assets(record: WsRecord) -> set[str]:
    if isinstance(record, MarketEvent):
        return set(record.token_ids)
    return {record.token_id}


def test_initial_dump_and_stream(urls: Endpoints) -> None:
    markets = _markets(urls)
    tokens = [t for m in markets[:MARKETS] for t in json.loads(m["clobTokenIds"])]
    chosen = tokens[:10]
    meta = {t: m for m in markets for t in json.loads(m["clobTokenIds"])}  # Gamma's view

    async def run() -> tuple[list[dict[str, Any]], Feed]:
        async with websockets.connect(urls.ws, max_size=2**24) as ws:
            await ws.send(_subscribe(chosen))
            dump = json.loads(await ws.recv())
            await ws.send("PING")
            feed = Feed()
            await _collect(ws, feed, 3.0)
            return dump, feed

    dump, feed = asyncio.run(run())
    assert isinstance(dump, list) and {b["asset_id"] for b in dump} == set(chosen)
    assert all(b["event_type"] == "book" for b in dump)
    for book in dump:  # the event's hash is the REST recipe over the event + market metadata
        market = meta[book["asset_id"]]
        full = dict(book)
        full.update(
            min_order_size=str(market["orderMinSize"]),
            tick_size=str(market["orderPriceMinTickSize"]),
            neg_risk=market["negRisk"],
        )
        assert verify_book_hash(full) is True
        assert verify_book_hash(book) is None  # not checkable from the event alone
    assert feed.controls[:1] == ["PONG"]
    assert {"price_change", "last_trade_price", "book", "best_bid_ask"} <= feed.event_types
    kinds = {type(r) for r in feed.records}
    assert {BookSnapshot, PriceUpdate, Trade} <= kinds
    for record in feed.records:
        if not (isinstance(record, MarketEvent) and record.event_type == "new_market"):
            assert _assets(record) <= set(chosen), record
    changes = [r for r in feed.records if isinstance(r, PriceUpdate) and r.kind == "price_change"]
    assert changes
    for change in changes:
        assert change.best_bid is not None and change.best_ask is not None
        assert change.best_bid < change.best_ask


def test_every_ws_trade_shows_up_in_the_data_api(urls: Endpoints) -> None:
    markets = _markets(urls)
    tokens = [t for m in markets for t in json.loads(m["clobTokenIds"])]

    async def run() -> Feed:
        async with websockets.connect(urls.ws, max_size=2**24) as ws:
            await ws.send(_subscribe(tokens))
            feed = Feed()
            await _collect(ws, feed, 2.5)
            return feed

    feed = asyncio.run(run())
    ws_trades = [r for r in feed.records if isinstance(r, Trade)]
    assert len(ws_trades) >= 5
    assert all(t.transaction_hash for t in ws_trades)
    time.sleep(0.8)  # the Data API runs data_lag_secs (2 simulated s = 0.5 s) behind
    conditions = sorted({t.condition_id for t in ws_trades if t.condition_id})
    rows: list[dict[str, Any]] = []  # one walk per 20 conditions, parsed as one multiset
    for start in range(0, len(conditions), 20):
        filters = {"condition": ",".join(conditions[start : start + 20]), "limit": 200}
        params: dict[str, Any] = dict(filters)
        while True:  # the same filters on every page, as the v2 API requires
            page = httpx.get(f"{urls.data}/v2/trades", params=params).json()
            rows += page["data"]
            if (cursor := trades_cursor(page)) is None:
                break
            params = {**filters, "cursor": cursor}
    parsed = parse_trades({"data": rows}, 0)
    assert parsed.ok
    data_keys = {t.trade_key for t in parsed.records}
    missing = [t.trade_key for t in ws_trades if t.trade_key not in data_keys]
    assert not missing


def test_dynamic_subscriptions(urls: Endpoints) -> None:
    tokens = [t for m in _markets(urls) for t in json.loads(m["clobTokenIds"])]

    async def run() -> tuple[Feed, Feed, list[Any]]:
        async with websockets.connect(urls.ws, max_size=2**24) as ws:
            await ws.send(_subscribe(tokens[:4], custom=False))
            await ws.recv()  # initial dump
            await ws.send(json.dumps({"operation": "subscribe", "assets_ids": tokens[:2]}))
            again = Feed()
            while not again.controls:
                again.add(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps({"operation": "subscribe", "assets_ids": tokens[4:6]}))
            added: list[Any] = []
            while not (added and isinstance(added[-1], list)):
                added.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            await ws.send(json.dumps({"operation": "unsubscribe", "assets_ids": tokens[:4]}))
            await ws.send("PING")
            after = Feed()
            while not after.controls:  # everything sent before the PONG
                after.add(await asyncio.wait_for(ws.recv(), 5))
            await _collect(ws, after, 2.0)
            deadline = time.monotonic() + 15  # a loaded machine: wait for a record after PONG
            while not _records(after.frames[after.frames.index("PONG") + 1 :]):
                assert time.monotonic() < deadline, "no record after the PONG in 17 s"
                await _collect(ws, after, 1.0)
            return again, after, added

    again, after, added = asyncio.run(run())
    assert again.controls == ["NO NEW ASSETS"]
    assert {b["asset_id"] for b in added[-1]} == set(tokens[4:6])
    assert "best_bid_ask" not in again.event_types | after.event_types  # no custom features
    assert "new_market" not in after.event_types
    pong = after.frames.index("PONG")
    late = _records(after.frames[pong + 1 :])
    assert late and all(_assets(r) <= set(tokens[4:6]) for r in late)


def _records(frames: list[str]) -> list[WsRecord]:
    records: list[WsRecord] = []
    for frame in frames:
        records.extend(parse_frame(frame, 0).records)
    return records


def test_new_and_resolved_markets() -> None:
    config = SimConfig(
        port=0,
        markets=6,
        seed=9,
        speed=4.0,
        quote_rate=5.0,
        trade_rate=1.0,
        new_market_every_secs=3.0,
        resolve_market_every_secs=5.0,
    )
    with SimulatorThread(config) as sim:
        assert sim.urls is not None
        _check_lifecycle(sim.urls)


def _check_lifecycle(urls: Endpoints) -> None:
    tokens = [t for m in _markets(urls) for t in json.loads(m["clobTokenIds"])]

    async def run() -> Feed:
        async with websockets.connect(urls.ws, max_size=2**24) as ws:
            await ws.send(_subscribe(tokens))
            feed = Feed()
            deadline = time.monotonic() + 8
            while (
                time.monotonic() < deadline
                and not {
                    "new_market",
                    "market_resolved",
                }
                <= feed.event_types
            ):
                await _collect(ws, feed, 0.5)
            return feed

    feed = asyncio.run(run())
    events = [r for r in feed.records if isinstance(r, MarketEvent)]
    new = next(e for e in events if e.event_type == "new_market")
    resolved = next(e for e in events if e.event_type == "market_resolved")
    assert new.market_id and len(new.token_ids) == 2
    gamma_new = httpx.get(f"{urls.gamma}/markets/{new.market_id}").json()
    assert json.loads(gamma_new["clobTokenIds"]) == list(new.token_ids)
    assert resolved.winning_token_id in resolved.token_ids
    gone = httpx.get(f"{urls.gamma}/markets/keyset", params={"closed": "true", "limit": 100})
    closed = {m["conditionId"]: m for m in gone.json()["markets"]}
    assert resolved.condition_id in closed
    assert closed[resolved.condition_id]["closed"] is True
    assert closed[resolved.condition_id]["acceptingOrders"] is False
    book = httpx.get(f"{urls.clob}/book", params={"token_id": resolved.token_ids[0]})
    assert book.status_code == 404
