"""The markets feed's `/events/keyset` walk: walked to the end with `after_cursor` alongside
`/markets/keyset`, its event data (id, slug, title, tags) filling the market records, and the
markets it lists that the markets walk missed (open ones, and ones that closed under an open
event) looked up and published. Against the simulator and against a small fake of Gamma
(for the misses and failures), publishing through the real broker; records are read back
from the topics.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web

from pmpipe.records import Market
from pmpipe.topics import MARKETS
from producers.http import PolymarketHttp
from producers.markets import EventInfo, MarketsFeed, enrich_market
from producers.parsing.gamma import next_cursor
from producers.simulator.config import SimConfig
from producers.simulator.server import Endpoints, SimulatorThread
from producers.state import CycleProgress
from tests.producers.test_pollers import (
    SETTINGS,
    FakePolymarket,
    KafkaEnv,
    condition,
    decode_cursor,
    encode_cursor,
    fake_polymarket,
    gamma_market,
    kafka,
    registry_url,
    run,
)

__all__ = ["kafka", "registry_url"]  # fixtures shared with test_pollers


# -------------------------------------------------------------------------------------------
# enrichment (pure)


def _market(**fields: Any) -> Market:
    base: dict[str, Any] = {
        "condition_id": "0xc1",
        "market_id": "1",
        "slug": "m",
        "question": "Q?",
        "outcomes": ("Yes", "No"),
        "outcome_prices": (Decimal("0.4"), Decimal("0.6")),
        "token_ids": ("1", "2"),
        "active": True,
        "closed": False,
        "archived": False,
        "accepting_orders": True,
        "enable_order_book": True,
        "neg_risk": False,
        "source_ts": 1,
        "received_ts": 1000,
    }
    return Market(**(base | fields))


INFO = EventInfo("7", "ev-7", "Event seven", "Politics", ("politics", "all"), closed=False)


def test_enrich_fills_only_what_the_market_left_empty() -> None:
    bare = enrich_market(_market(), INFO)
    assert (bare.event_id, bare.event_slug, bare.event_title) == ("7", "ev-7", "Event seven")
    assert bare.category == "Politics" and bare.tags == ("politics", "all")

    own = _market(
        event_id="7", event_slug="own-slug", event_title=None, category="Crypto", tags=("x",)
    )
    filled = enrich_market(own, INFO)
    assert filled.event_slug == "own-slug" and filled.event_title == "Event seven"
    assert filled.category == "Crypto" and filled.tags == ("x",)

    other_event = enrich_market(_market(event_id="8"), INFO)
    assert other_event.event_id == "8" and other_event.event_slug is None
    assert other_event.tags == ("politics", "all")
    assert enrich_market(own, None) is own


# -------------------------------------------------------------------------------------------
# against the simulator

SIM_MARKETS = 260


@pytest.fixture(scope="module")
def sim() -> Iterator[Endpoints]:
    config = SimConfig(
        port=0,
        markets=SIM_MARKETS,
        seed=23,
        trade_rate=0,
        new_market_every_secs=0,
        resolve_market_every_secs=0,
    )
    with SimulatorThread(config) as thread:
        assert thread.urls is not None
        yield thread.urls


def _walk(url: str, key: str) -> tuple[list[dict[str, Any]], int]:
    """Every item of a keyset listing (closed=false, limit=100) and the number of pages."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    with httpx.Client(timeout=10) as client:
        while True:
            params: dict[str, Any] = {"closed": "false", "limit": 100}
            if cursor:
                params["after_cursor"] = cursor
            page = client.get(url, params=params).json()
            pages += 1
            items.extend(page[key])
            cursor = next_cursor(page)
            if cursor is None:
                return items, pages


def test_events_walk_against_the_simulator_fills_event_data(
    sim: Endpoints, kafka: KafkaEnv
) -> None:
    events, event_pages = _walk(f"{sim.gamma}/events/keyset", "events")
    markets, _ = _walk(f"{sim.gamma}/markets/keyset", "markets")
    assert event_pages >= 2, "the catalogue should span several event pages"
    assert not any("tags" in m for m in markets)  # the markets walk alone has no tags
    expected = {
        m["conditionId"]: (e["id"], e["slug"], e["title"], tuple(t["slug"] for t in e["tags"]))
        for e in events
        for m in e["markets"]
    }
    open_markets = {m["conditionId"] for m in markets}
    assert open_markets <= set(expected)

    stats: dict[str, Any] = {}

    async def scenario() -> None:
        http = PolymarketHttp({"gamma": sim.gamma}, SETTINGS)
        try:
            feed = MarketsFeed(http, kafka.publisher(), interval_secs=300)
            first = CycleProgress("markets")
            await feed.run_cycle(first)
            assert first.records["published"] == len(open_markets)
            assert first.records["event_markets"] == len(expected)
            second = CycleProgress("markets")
            await feed.run_cycle(second)
            assert second.records["published"] == 0  # the enrichment is stable
            stats.update(http.stats())
            assert feed.stats()["events_walks"] == 2 and feed.stats()["found_by_events"] == 0
        finally:
            await http.aclose()

    run(scenario())
    # both walks went to the end with after_cursor, twice
    assert stats["gamma/events"]["requests"] == 2 * event_pages
    records = kafka.read(MARKETS)
    assert Counter(r["condition_id"] for r in records) == Counter(open_markets)
    for r in records:
        event_id, slug, title, tags = expected[r["condition_id"]]
        assert (r["event_id"], r["event_slug"], r["event_title"]) == (event_id, slug, title)
        assert tuple(r["tags"]) == tags and "all" in tags


# -------------------------------------------------------------------------------------------
# against a fake Gamma: misses, closures under open events, failures


@dataclass
class FakeGamma(FakePolymarket):
    """Markets keyset as in test_pollers, plus `/events/keyset` (one event per page) and
    markets hidden from the markets walk (served only when looked up by condition id)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)
    events_status: int = 200

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/gamma/events/keyset", self.events_keyset)
        return app

    async def keyset(self, request: web.Request) -> web.Response:
        if not request.query.getall("condition_ids", []):
            shown = [m for m in self.markets if m["conditionId"] not in self.hidden]
            all_markets, self.markets = self.markets, shown
            try:
                return await super().keyset(request)
            finally:
                self.markets = all_markets
        return await super().keyset(request)

    async def events_keyset(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.query_string))
        if self.events_status != 200:
            return web.json_response({"error": "nope"}, status=self.events_status)
        assert request.query.get("closed") == "false"
        start = decode_cursor(request.query.get("after_cursor"))
        body: dict[str, Any] = {"events": self.events[start : start + 1]}
        if start + 1 < len(self.events):
            body["next_cursor"] = encode_cursor(start + 1)
        return web.json_response(body)


def _event(event_id: int, markets: list[dict[str, Any]], tags: list[str]) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "slug": f"event-{event_id}",
        "title": f"Event {event_id}",
        "closed": False,
        "tags": [{"id": str(i), "label": t.title(), "slug": t} for i, t in enumerate(tags)],
        "markets": markets,
    }


def test_events_walk_finds_missed_and_closed_markets_and_survives_failures(
    kafka: KafkaEnv,
) -> None:
    markets = [gamma_market(i) for i in range(7)]
    resolved = gamma_market(7, closed=True)  # closed under an open event, never seen open
    fake = FakeGamma(markets=[*markets, resolved])
    fake.hidden = {condition(6)}  # the markets walk misses it; a lookup serves it
    fake.events = [
        _event(1, [markets[0], markets[1], resolved], ["politics"]),
        _event(2, markets[2:7], ["crypto", "all"]),
    ]
    feed_stats: dict[str, Any] = {}

    def event_requests() -> int:
        return sum(1 for path, _ in fake.requests if path.endswith("/events/keyset"))

    async def scenario() -> None:
        async with fake_polymarket(fake) as http:
            feed = MarketsFeed(http, kafka.publisher(), interval_secs=300)
            first = CycleProgress("markets")
            await feed.run_cycle(first)
            assert event_requests() == 2  # one event per page, walked to the end
            assert first.records["published"] == 7  # 0..5 from the walk, 6 by lookup
            assert first.records["closed"] == 1 and first.records["found_by_events"] == 2

            second = CycleProgress("markets")
            await feed.run_cycle(second)
            assert second.records["published"] == 0 and second.records["closed"] == 0

            fake.events_status = 500  # a failing events walk keeps the last event data
            third = CycleProgress("markets")
            await feed.run_cycle(third)
            assert third.records["events_walk_failed"] == 1
            assert third.records["published"] == 0 and third.records["closed"] == 0

            fake.events_status = 404  # not served: markets only from then on
            await feed.run_cycle(CycleProgress("markets"))
            before = event_requests()
            fourth = CycleProgress("markets")
            await feed.run_cycle(fourth)
            assert event_requests() == before
            assert fourth.records["published"] == 0
            feed_stats.update(feed.stats())

    run(scenario())
    assert feed_stats["events_walks"] == 2 and feed_stats["events_walk_failures"] == 2
    records = kafka.read(MARKETS)
    by_id = Counter(r["condition_id"] for r in records)
    assert by_id == Counter(condition(i) for i in range(8))
    tags = {r["condition_id"]: tuple(r["tags"]) for r in records}
    assert tags[condition(0)] == ("politics",) and tags[condition(7)] == ("politics",)
    assert tags[condition(6)] == ("crypto", "all")
    closed = [r for r in records if r["closed"]]
    assert [r["condition_id"] for r in closed] == [condition(7)]
    event_of = {r["condition_id"]: (r["event_id"], r["event_title"]) for r in records}
    assert event_of[condition(6)] == ("2", "Event 2")
    assert json.loads(records[0]["raw_json"])["conditionId"] == records[0]["condition_id"]
