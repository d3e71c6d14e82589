"""The simulator's HTTP APIs against the project's parsers: Gamma, CLOB, Data API, ground truth.

One real server (in a thread, free port) for the module; the catalogue is kept fixed (no new
or resolved markets) so listings can be checked exactly.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from producers.parsing.clob import combine_price_polls, parse_books
from producers.parsing.data_api import parse_trades, trades_cursor
from producers.parsing.gamma import next_cursor, parse_events, parse_markets
from producers.simulator.config import SimConfig
from producers.simulator.server import Endpoints, SimulatorThread

MARKETS = 230


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim")


@pytest.fixture(scope="module")
def urls(sim_dir: Path) -> Iterator[Endpoints]:
    config = SimConfig(
        port=0,
        markets=MARKETS,
        seed=11,
        speed=5.0,
        trade_rate=30.0,
        quote_rate=60.0,
        new_market_every_secs=0,
        resolve_market_every_secs=0,
        data_lag_secs=1.0,
        data_dir=sim_dir,
    )
    with SimulatorThread(config) as sim:
        assert sim.urls is not None
        yield sim.urls


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, headers={"User-Agent": "pmpipe-tests"}) as client:
        yield client


def _walk_markets(http: httpx.Client, urls: Endpoints, **params: Any) -> list[dict[str, Any]]:
    markets: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = dict(params, **({"after_cursor": cursor} if cursor else {}))
        page = http.get(f"{urls.gamma}/markets/keyset", params=query).json()
        markets.extend(page["markets"])
        cursor = next_cursor(page)
        if cursor is None:
            return markets
        assert len(page["markets"]) == min(int(params.get("limit", 20)), 100)


def _tokens(http: httpx.Client, urls: Endpoints) -> list[str]:
    markets = _walk_markets(http, urls, limit=100)
    return [t for m in markets for t in json.loads(m["clobTokenIds"])]


# --- Gamma ---------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [100, 37, 5000])
def test_keyset_walks_every_market_exactly_once(
    http: httpx.Client, urls: Endpoints, limit: int
) -> None:
    markets = _walk_markets(http, urls, limit=limit, closed="false")
    ids = [m["id"] for m in markets]
    assert len(ids) == len(set(ids)) == MARKETS
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    parsed = parse_markets({"markets": markets}, 0)
    assert parsed.ok and len(parsed.records) == MARKETS
    record = parsed.records[0]
    assert len(record.token_ids) == 2 and record.condition_id.startswith("0x")
    assert record.updated_at is not None and record.tick_size in (Decimal("0.01"), Decimal("0.001"))


def test_keyset_page_shape_and_encodings(http: httpx.Client, urls: Endpoints) -> None:
    page = http.get(f"{urls.gamma}/markets/keyset", params={"limit": 2}).json()
    assert set(page) == {"$schema", "markets", "next_cursor"}
    market = page["markets"][0]
    for key in ("outcomes", "outcomePrices", "clobTokenIds"):
        assert isinstance(market[key], str) and isinstance(json.loads(market[key]), list)
    assert isinstance(market["volume"], str) and isinstance(market["volumeNum"], float)
    assert market["updatedAt"].endswith("Z") and len(market["updatedAt"]) == 27
    assert market["conditionId"].startswith("0x") and len(market["conditionId"]) == 66
    assert market["events"][0]["id"] and "markets" not in market["events"][0]
    for flag in ("active", "closed", "archived", "acceptingOrders", "enableOrderBook", "negRisk"):
        assert isinstance(market[flag], bool)
    prices = [Decimal(p) for p in json.loads(market["outcomePrices"])]
    assert sum(prices) == 1


def test_keyset_rejects_offset_and_foreign_cursors(http: httpx.Client, urls: Endpoints) -> None:
    response = http.get(f"{urls.gamma}/markets/keyset", params={"offset": 100})
    assert response.status_code == 422 and "offset" in response.json()["error"]
    page = http.get(f"{urls.gamma}/markets/keyset", params={"limit": 5}).json()
    changed = {"limit": 5, "closed": "true", "after_cursor": page["next_cursor"]}
    assert http.get(f"{urls.gamma}/markets/keyset", params=changed).status_code == 422
    bad = {"after_cursor": page["next_cursor"][:-3] + "xyz"}
    assert http.get(f"{urls.gamma}/markets/keyset", params=bad).status_code == 422


def test_keyset_filters(http: httpx.Client, urls: Endpoints) -> None:
    first = http.get(f"{urls.gamma}/markets/keyset", params={"limit": 3}).json()["markets"]
    token = json.loads(first[1]["clobTokenIds"])[1]
    for params in (
        {"clob_token_ids": token},
        {"condition_ids": first[1]["conditionId"]},
        {"id": first[1]["id"]},
    ):
        found = http.get(f"{urls.gamma}/markets/keyset", params=params).json()
        assert [m["id"] for m in found["markets"]] == [first[1]["id"]]
        assert "next_cursor" not in found
    both = http.get(
        f"{urls.gamma}/markets/keyset", params=[("id", first[0]["id"]), ("id", first[2]["id"])]
    ).json()
    assert [m["id"] for m in both["markets"]] == [first[0]["id"], first[2]["id"]]
    closed = http.get(f"{urls.gamma}/markets/keyset", params={"closed": "true"}).json()
    assert closed["markets"] == [] and "next_cursor" not in closed


def test_legacy_offset_listing_and_single_market(http: httpx.Client, urls: Endpoints) -> None:
    keyset = _walk_markets(http, urls, limit=100)
    legacy = http.get(f"{urls.gamma}/markets", params={"limit": 500, "offset": 100})
    assert legacy.status_code == 200 and legacy.headers["Sunset"]
    assert [m["id"] for m in legacy.json()] == [m["id"] for m in keyset[100:200]]
    too_deep = http.get(f"{urls.gamma}/markets", params={"offset": 10_001})
    assert too_deep.status_code == 422
    one = http.get(f"{urls.gamma}/markets/{keyset[7]['id']}").json()
    assert one["conditionId"] == keyset[7]["conditionId"]
    assert http.get(f"{urls.gamma}/markets/1").status_code == 404


def test_events_keyset_nests_every_market(http: httpx.Client, urls: Endpoints) -> None:
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 50, **({"after_cursor": cursor} if cursor else {})}
        page = http.get(f"{urls.gamma}/events/keyset", params=params).json()
        events.extend(page["events"])
        if (cursor := next_cursor(page)) is None:
            break
    parsed = parse_events({"events": events}, 0)
    assert parsed.ok
    assert len({m.condition_id for m in parsed.records}) == MARKETS
    assert all(m.event_id for m in parsed.records)
    assert isinstance(events[0]["volume"], float) and events[0]["tags"]


def test_same_seed_serves_the_same_first_markets(http: httpx.Client, urls: Endpoints) -> None:
    def first_page(u: Endpoints) -> list[tuple[str, ...]]:
        page = http.get(f"{u.gamma}/markets/keyset", params={"limit": 20}).json()
        return [
            (m["id"], m["conditionId"], m["clobTokenIds"], m["question"]) for m in page["markets"]
        ]

    with SimulatorThread(SimConfig(port=0, markets=MARKETS, seed=11)) as twin:
        assert twin.urls is not None
        assert first_page(twin.urls) == first_page(urls)
    with SimulatorThread(SimConfig(port=0, markets=20, seed=12)) as other:
        assert other.urls is not None
        assert first_page(other.urls) != first_page(urls)


# --- CLOB ----------------------------------------------------------------------------------
def test_post_books_parse_and_their_hashes_verify(http: httpx.Client, urls: Endpoints) -> None:
    tokens = _tokens(http, urls)[:500]
    started = time.perf_counter()
    response = http.post(f"{urls.clob}/books", json=[{"token_id": t} for t in tokens])
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and elapsed < 2.0
    result = parse_books(response.json(), 0)
    assert result.ok and [b.token_id for b in result.records] == tokens
    assert all(b.hash_ok is True for b in result.records)
    raw = response.json()[0]
    assert [float(lvl["price"]) for lvl in raw["bids"]] == sorted(
        float(lvl["price"]) for lvl in raw["bids"]
    )  # served ascending: best bid last
    assert isinstance(raw["timestamp"], str) and raw["min_order_size"] == "5"
    book = result.records[0]
    assert book.bid_prices[0] < book.ask_prices[0]


def test_book_routes_and_errors(http: httpx.Client, urls: Endpoints) -> None:
    tokens = _tokens(http, urls)[:3]
    one = http.get(f"{urls.clob}/book", params={"token_id": tokens[0]})
    assert parse_books(one.json(), 0).records[0].hash_ok is True
    listed = http.get(f"{urls.clob}/books", params={"token_ids": ",".join(tokens)}).json()
    assert [b["asset_id"] for b in listed] == tokens
    unknown = http.get(f"{urls.clob}/book", params={"token_id": "123"})
    assert unknown.status_code == 400 and unknown.json() == {"error": "Invalid token id"}
    too_many = [{"token_id": tokens[0]}] * 501
    assert http.post(f"{urls.clob}/books", json=too_many).status_code == 400
    mixed = http.post(f"{urls.clob}/books", json=[{"token_id": "1"}, {"token_id": tokens[1]}])
    assert [b["asset_id"] for b in mixed.json()] == [tokens[1]]


def test_prices_midpoints_spreads_parse_and_are_complementary(
    http: httpx.Client, urls: Endpoints
) -> None:
    """Each response on its own (the engine runs between requests): two tokens of a market
    mirror each other, quotes are never crossed."""
    tokens = _tokens(http, urls)[:40]
    items = [{"token_id": t, "side": s} for t in tokens for s in ("BUY", "SELL")]
    prices = http.post(f"{urls.clob}/prices", json=items).json()
    mids = http.post(f"{urls.clob}/midpoints", json=[{"token_id": t} for t in tokens]).json()
    spreads = http.post(f"{urls.clob}/spreads", json=[{"token_id": t} for t in tokens]).json()
    assert all(isinstance(v, str) for v in (*mids.values(), *spreads.values()))
    polled = combine_price_polls(received_ts=0, prices=prices, midpoints=mids, spreads=spreads)
    assert polled.ok and len(polled.records) == len(tokens)
    for quote in polled.records:
        assert quote.best_bid is not None and quote.best_ask is not None
        assert 0 < quote.best_bid < quote.best_ask < 1
        assert quote.mid is not None and 0 < quote.mid < 1
        assert quote.spread is not None and quote.spread > 0
    for yes, no in zip(tokens[::2], tokens[1::2], strict=True):  # the two tokens of a market
        assert Decimal(prices[yes]["BUY"]) == 1 - Decimal(prices[no]["SELL"])
        assert Decimal(mids[yes]) + Decimal(mids[no]) == 1
        assert spreads[yes] == spreads[no]
    yes = tokens[0]
    price = http.get(f"{urls.clob}/price", params={"token_id": yes, "side": "BUY"}).json()
    assert set(price) == {"price"} and 0 < Decimal(price["price"]) < 1
    got = http.get(f"{urls.clob}/prices", params={"token_ids": yes, "sides": "SELL"}).json()
    assert set(got[yes]) == {"SELL"}
    assert set(http.get(f"{urls.clob}/midpoint", params={"token_id": yes}).json()) == {"mid"}
    assert set(http.get(f"{urls.clob}/spread", params={"token_id": yes}).json()) == {"spread"}
    last = http.post(f"{urls.clob}/last-trades-prices", json=[{"token_id": yes}]).json()
    assert last[0]["token_id"] == yes and last[0]["side"] in ("", "BUY", "SELL")


# --- Data API ------------------------------------------------------------------------------
def _walk_trades(http: httpx.Client, urls: Endpoints, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        page = http.get(f"{urls.data}/v2/trades", params=query).json()
        rows.extend(page["data"])
        cursor = trades_cursor(page)
        assert page["pagination"]["has_more"] == (cursor is not None)
        if cursor is None:
            return rows


def _fill(row: dict[str, Any]) -> tuple[str, str, str, Decimal, Decimal]:
    return (
        row["transaction_hash"],
        row["token_id"],
        row["side"],
        Decimal(str(row["price"])),
        Decimal(str(row["size"])),
    )


def test_v2_trades_cursor_walk_matches_the_ground_truth(
    http: httpx.Client, urls: Endpoints, sim_dir: Path
) -> None:
    time.sleep(0.5)  # some trades, past the data lag
    rows = _walk_trades(http, urls, limit=100)
    assert len(rows) > 100
    stamps = [r["timestamp"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert parse_trades({"data": rows}, 0).ok
    assert any(r["proxy_wallet"] != r["proxy_wallet"].lower() for r in rows)
    assert all(isinstance(r["price"], float) and isinstance(r["size"], float) for r in rows)
    http.post(f"{urls.control}/_sim/flush")
    truth = [
        json.loads(line) for line in (sim_dir / "truth" / "trades.jsonl").read_text().splitlines()
    ]
    # the walk started at the newest visible fill: the truth up to it is exactly the walk
    newest_tx = rows[0]["transaction_hash"]
    last = max(i for i, t in enumerate(truth) if t["transaction_hash"] == newest_tx)
    expected = Counter(
        (t["transaction_hash"], t["token_id"], t["side"], Decimal(t["price"]), Decimal(t["size"]))
        for t in truth[: last + 1]
    )
    assert Counter(_fill(r) for r in rows) == expected
    assert max(expected.values()) >= 2, "no identical fills in one transaction"


def test_v2_trades_filters_and_errors(http: httpx.Client, urls: Endpoints) -> None:
    newest = http.get(f"{urls.data}/v2/trades", params={"limit": 1}).json()["data"][0]
    condition = newest["condition_id"]
    rows = _walk_trades(http, urls, condition=condition, limit=1000)
    assert rows and all(r["condition_id"] == condition for r in rows)
    both = _walk_trades(http, urls, condition=condition, limit=1000, taker_only="false")
    assert len(both) >= 2 * len(rows)
    page = http.get(f"{urls.data}/v2/trades", params={"limit": 5000}).json()
    assert page["pagination"]["limit"] == 1000
    offset = http.get(f"{urls.data}/v2/trades", params={"offset": 10})
    assert offset.status_code == 400 and offset.json()["code"] == "invalid_request"
    many = ",".join(f"0x{i:064x}" for i in range(21))
    assert http.get(f"{urls.data}/v2/trades", params={"condition": many}).status_code == 400


def test_v1_trades(http: httpx.Client, urls: Endpoints) -> None:
    rows = http.get(f"{urls.data}/trades", params={"limit": 10000}).json()
    assert isinstance(rows, list) and len(rows) <= 500
    assert set(rows[0]) >= {
        "proxyWallet",
        "asset",
        "conditionId",
        "transactionHash",
        "outcomeIndex",
    }
    assert parse_trades(rows, 0).ok
    later = http.get(f"{urls.data}/trades", params={"limit": 5, "offset": 5}).json()
    assert len(later) == 5
    assert http.get(f"{urls.data}/trades", params={"offset": 1001}).status_code == 400


def test_status_counts_requests_and_truth_lists_markets(
    http: httpx.Client, urls: Endpoints, sim_dir: Path
) -> None:
    status = http.get(f"{urls.control}/_sim/status").json()
    assert status["markets"] == MARKETS and status["active_tokens"] == 2 * MARKETS
    assert status["trades_generated"] > 0 and status["requests"]["/gamma/markets/keyset"] > 0
    assert status["status_429"] == 0
    http.post(f"{urls.control}/_sim/flush")
    lines = (sim_dir / "truth" / "markets.jsonl").read_text().splitlines()
    created = {json.loads(line)["market_id"] for line in lines if '"created"' in line}
    assert len(created) == MARKETS
    first = json.loads(lines[0])
    assert set(first) >= {"market_id", "condition_id", "token_ids", "closed", "updated_at"}
