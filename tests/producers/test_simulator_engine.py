"""The simulator's engine, book and helpers, without a server (producers/simulator)."""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal
from unittest import mock

import pytest
from click.testing import CliRunner

from pmpipe.records import MarketEvent
from producers.parsing.book_hash import book_hash, verify_book_hash
from producers.parsing.clob import parse_book
from producers.parsing.market_ws import parse_frame
from producers.simulator.book import (
    MAX_LEVELS,
    MIN_LEVELS,
    ONE,
    Book,
    price_text,
    served_book,
    size_text,
)
from producers.simulator.cli import simulate_command
from producers.simulator.clock import ManualClock
from producers.simulator.config import FaultError, Faults, SimConfig
from producers.simulator.cursors import (
    CursorError,
    gamma_cursor,
    read_gamma_cursor,
    read_v2_cursor,
    v2_cursor,
)
from producers.simulator.engine import Listener, Simulation
from producers.simulator.model import Fill, Market
from producers.simulator.ratelimit import ROUTES, RateLimiter
from producers.simulator.ws_messages import tick_size_changes

START_MS = 1_790_000_000_000


def _sim(**overrides: object) -> Simulation:
    settings: dict[str, object] = {"markets": 40, "seed": 7, "trade_rate": 20.0}
    settings.update(overrides)
    return Simulation(SimConfig(**settings), START_MS)  # type: ignore[arg-type]


def _check_book(book: Book) -> None:
    assert list(book.bid_px) == sorted(book.bid_px)  # ascending, best last
    assert list(book.ask_px) == sorted(book.ask_px, reverse=True)  # descending, best last
    assert 1 <= book.depth("bid") <= MAX_LEVELS + 1
    assert 1 <= book.depth("ask") <= MAX_LEVELS + 1
    assert 0 < book.best_bid < book.best_ask < ONE
    assert all(size > 0 for size in (*book.bid_sz, *book.ask_sz))


def test_same_seed_same_world_and_same_trades() -> None:
    a, b, other = _sim(), _sim(), _sim(seed=8)
    assert [(m.id, m.condition_id, m.tokens, m.question) for m in a.markets] == [
        (m.id, m.condition_id, m.tokens, m.question) for m in b.markets
    ]
    assert a.markets[0].tokens != other.markets[0].tokens
    # b's books are built at other moments (lazily); the fills must not depend on that
    b.markets[5].book  # noqa: B018
    a.advance(START_MS + 30_000)
    for step in range(1, 31):
        b.advance(START_MS + step * 1000)
    fills_a = [(f.tx_hash, f.token, f.side, f.price, f.size) for f in a.trades.fills]
    fills_b = [(f.tx_hash, f.token, f.side, f.price, f.size) for f in b.trades.fills]
    assert fills_a == fills_b
    assert len(fills_a) > 100


def test_ids_have_polymarket_formats() -> None:
    sim = _sim()
    for market in sim.markets:
        assert market.id.isdigit()
        for hex_id in (market.condition_id, market.question_id):
            assert hex_id.startswith("0x") and len(hex_id) == 66
            int(hex_id, 16)
        for token in market.tokens:
            assert token.isdigit() and 76 <= len(token) <= 78
    ids = [m.id_num for m in sim.markets]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_books_stay_ordered_and_uncrossed_while_the_engine_runs() -> None:
    sim = _sim(quote_rate=200.0)
    for market in sim.markets:
        book, room = market.book, 20 * market.tick  # fewer levels only near 0 and 1
        _check_book(book)
        assert book.depth("bid") >= MIN_LEVELS or book.best_bid < room
        assert book.depth("ask") >= MIN_LEVELS or book.best_ask > ONE - room
    sim.advance(START_MS + 120_000)
    assert sim.level_changes > 1000
    for market in sim.open:
        _check_book(market.book)
        if market.tick == 10:
            assert all(p % 10 == 0 for p in (*market.book.bid_px, *market.book.ask_px))


def test_the_second_token_is_the_mirror_of_the_first() -> None:
    market = _sim().markets[0]
    yes_bid, yes_ask = market.book.best(True)
    no_bid, no_ask = market.book.best(False)
    assert (no_bid, no_ask) == (ONE - yes_ask, ONE - yes_bid)
    yes_bids, yes_asks = (json.loads(t) for t in market.book.levels_json(True))
    no_bids, no_asks = (json.loads(t) for t in market.book.levels_json(False))
    assert [Decimal(lvl["price"]) for lvl in no_bids] == [
        1 - Decimal(lvl["price"]) for lvl in yes_asks
    ]
    assert [lvl["size"] for lvl in no_asks] == [lvl["size"] for lvl in yes_bids]


def test_served_book_hash_is_the_current_recipe() -> None:
    market = _sim().markets[3]
    bids, asks = market.book.levels_json(False)
    text, digest = served_book(market.book_meta(), market.tokens[1], START_MS, bids, asks)
    raw = json.loads(text)
    assert list(raw) == [
        "market",
        "asset_id",
        "timestamp",
        "hash",
        "bids",
        "asks",
        "min_order_size",
        "tick_size",
        "neg_risk",
        "last_trade_price",
    ]
    assert raw["hash"] == digest == book_hash(raw)
    assert verify_book_hash(raw) is True
    record = parse_book(raw, 0)
    assert record.hash_ok is True and record.token_id == market.tokens[1]
    corrupt, _ = served_book(
        market.book_meta(), market.tokens[1], START_MS, bids, asks, corrupt_hash=True
    )
    assert verify_book_hash(json.loads(corrupt)) is False


def test_trades_consume_the_book_and_come_in_multi_fill_transactions() -> None:
    sim = _sim(trade_rate=50.0, quote_rate=0.0)
    depth_before = {m.id: m.book.depth("bid") + m.book.depth("ask") for m in sim.markets}
    sim.advance(START_MS + 60_000)
    fills = sim.trades.fills
    by_tx = Counter(f.tx_hash for f in fills)
    assert max(by_tx.values()) > 1, "no multi-maker transaction"
    identical = Counter((f.tx_hash, f.token, f.side, f.price, f.size) for f in fills)
    assert max(identical.values()) >= 2, "no identical fills within one transaction"
    assert all(f.occurrence == 0 for f in fills if identical[_key(f)] == 1)
    depth_after = {m.id: m.book.depth("bid") + m.book.depth("ask") for m in sim.markets}
    assert sum(depth_after.values()) < sum(depth_before.values())
    for f in fills:
        assert f.side in ("BUY", "SELL") and 0 < f.price < ONE and f.size > 0
        assert f.block_s * 1000 >= f.match_ms


def _key(f: Fill) -> tuple[str, str, str, int, int]:
    return (f.tx_hash, f.token, f.side, f.price, f.size)


def test_new_and_resolved_markets_reach_listeners() -> None:
    seen: dict[str, list[Market]] = {"new": [], "resolved": []}

    class Recorder(Listener):
        def on_new_market(self, market: Market, ts_ms: int) -> None:
            seen["new"].append(market)

        def on_market_resolved(self, market: Market, ts_ms: int) -> None:
            seen["resolved"].append(market)

    sim = _sim(new_market_every_secs=10.0, resolve_market_every_secs=15.0)
    sim.listeners.append(Recorder())
    sim.advance(START_MS + 60_000)
    assert len(seen["new"]) == 6 and len(seen["resolved"]) == 4
    assert seen["new"][-1].id_num == max(m.id_num for m in sim.markets)
    for market in seen["resolved"]:
        assert market.closed and market.winner in (0, 1) and not market.has_book
        assert market not in sim.open
        with pytest.raises(LookupError):
            market.book  # noqa: B018
    assert sim.active_tokens == 2 * (40 + 6 - 4)


def test_decimal_texts() -> None:
    assert [price_text(p) for p in (1, 10, 500, 510, 999)] == [
        "0.001",
        "0.01",
        "0.5",
        "0.51",
        "0.999",
    ]
    assert [size_text(s) for s in (2284, 38000, 970, 5)] == ["22.84", "380", "9.7", "0.05"]


def test_rate_limiter_sliding_window() -> None:
    limiter = RateLimiter()
    route = ROUTES["/data/v2/trades"]  # 200 per 10 s
    assert all(limiter.acquire(route, 100.0 + i * 0.001) == 0 for i in range(200))
    assert limiter.acquire(route, 100.5) == 10  # the first one leaves the window at 110.0
    assert limiter.acquire(route, 110.0005) == 0
    assert RateLimiter(scale=0).acquire(route, 100.0) == 0


def test_faults_update_validates() -> None:
    faults = Faults()
    assert faults.update({"fault_5xx": 0.5, "fault_429_storm": True}) == [
        "fault_429_storm",
        "fault_5xx",
    ]
    assert faults.active() == {"fault_429_storm": True, "fault_5xx": 0.5}
    for bad in ({"fault_5xx": 2}, {"nope": 1}, {"fault_429_storm": "yes"}):
        with pytest.raises(FaultError):
            faults.update(bad)
    assert faults.fault_5xx == 0.5


def test_cursors_are_signed_and_bound_to_their_filters() -> None:
    secret = b"s" * 16
    cursor = gamma_cursor(secret, "markets", "f1", "540123")
    assert read_gamma_cursor(secret, cursor, "markets", "f1") == "540123"
    for args in ((b"x" * 16, cursor, "markets", "f1"), (secret, cursor, "markets", "f2")):
        with pytest.raises(CursorError):
            read_gamma_cursor(*args)
    v2 = v2_cursor(secret, "trades", {"l": 5, "sq": "10"})
    assert read_v2_cursor(secret, v2, "trades") == {"l": 5, "sq": "10"}
    with pytest.raises(CursorError):
        read_v2_cursor(secret, v2[:-4], "trades")


def test_manual_clock_drives_the_engine() -> None:
    clock = ManualClock(START_MS)
    sim = _sim(trade_rate=10.0)
    assert sim.advance(clock.now_ms()) == 0
    sim.advance(clock.advance(5))
    assert sim.transactions > 0 and sim.now_ms == START_MS + 5000


def test_generated_book_starts_at_the_requested_best_levels() -> None:
    book = Book.generate(random.Random(1), 500, 510, 10)
    assert (book.best_bid, book.best_ask) == (500, 510)
    _check_book(book)


def test_tick_refines_near_the_edges_and_is_announced() -> None:
    sim = next(s for s in (_sim(markets=1, seed=n) for n in range(50)) if s.markets[0].tick == 10)
    market = sim.markets[0]
    changes: list[tuple[int, int]] = []

    class Recorder(Listener):
        def on_tick_size_change(self, market: Market, ts_ms: int, old_tick: int) -> None:
            changes.append((old_tick, market.tick))

    sim.listeners.append(Recorder())
    book = market.book
    for side in ("bid", "ask"):  # move the whole book to 0.02 / 0.03
        for price in list(book.sides(side)[0]):
            book.set_level(side, price, 0)
    for i in range(MIN_LEVELS):
        book.set_level("ask", 30 + 10 * i, 10_000)
    book.set_level("bid", 20, 10_000)
    book.set_level("bid", 10, 10_000)
    sim.advance(START_MS + 1000)
    assert changes == [(10, 1)] and market.tick == 1
    frames = tick_size_changes(market, START_MS, 10)
    assert [asset for asset, _ in frames] == list(market.tokens)
    record = parse_frame(frames[0][1], 0).records[0]
    assert isinstance(record, MarketEvent) and record.new_tick_size == Decimal("0.001")
    assert record.old_tick_size == Decimal("0.01")


def test_cli_options_and_env_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMPIPE_SIM_MARKETS", "25000")
    args = ["--port", "0", "--seed", "9", "--speed", "10", "--fault-5xx", "0.2"]
    args += ["--fault-429-storm", "--fault-ws-silent-after-secs", "30"]
    with mock.patch("producers.simulator.server.run") as run:
        result = CliRunner().invoke(simulate_command, args)
    assert result.exit_code == 0, result.output
    config, faults = run.call_args.args
    assert (config.port, config.markets, config.seed, config.speed) == (0, 25000, 9, 10.0)
    assert faults.active() == {
        "fault_429_storm": True,
        "fault_5xx": 0.2,
        "fault_ws_silent_after_secs": 30.0,
    }
    bad = CliRunner().invoke(simulate_command, ["--fault-5xx", "2"])
    assert bad.exit_code == 2
