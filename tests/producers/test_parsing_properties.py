"""Property tests: arbitrary ids, decimal texts and missing optional fields never crash a parser
and never lose precision."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pmpipe.records import BookSnapshot, Market, MarketEvent, PriceUpdate, Trade, to_decimal6
from producers.parsing.clob import parse_books
from producers.parsing.data_api import parse_trades
from producers.parsing.gamma import parse_markets
from producers.parsing.market_ws import CONTROL_MESSAGES, parse_frame, parse_message
from tests.producers import RECEIVED_TS

token_ids = st.from_regex(r"[0-9]{1,78}", fullmatch=True)


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    """'12.345678', '0.5', '.41', '7': below 10^12, at most 6 places, both zero styles."""
    whole = draw(st.integers(min_value=0, max_value=10**12 - 1))
    places = draw(st.integers(min_value=0, max_value=6))
    fraction = draw(st.integers(min_value=0, max_value=10**places - 1)) if places else 0
    text = f"{whole}.{fraction:0{places}d}" if places else str(whole)
    if whole == 0 and places and draw(st.booleans()):
        text = text[1:]  # '.41' without the leading zero
    return text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(decimal_texts())
def test_decimal_texts_are_exact(text: str) -> None:
    assert to_decimal6(text) == Decimal(text)


@given(token_ids, decimal_texts(), decimal_texts())
def test_ws_trade_keeps_token_and_values_exact(token: str, price: str, size: str) -> None:
    event = {
        "event_type": "last_trade_price",
        "asset_id": token,
        "price": price,
        "size": size,
        "side": "BUY",
        "timestamp": "1786400108425",
    }
    [trade] = parse_message(event, RECEIVED_TS).records
    assert isinstance(trade, Trade)
    assert trade.token_id == token
    assert (trade.price, trade.size) == (Decimal(price), Decimal(size))


@given(token_ids, st.lists(st.tuples(decimal_texts(), decimal_texts()), max_size=5))
def test_book_levels_exact_and_ordered(token: str, levels: list[tuple[str, str]]) -> None:
    raw = {
        "asset_id": token,
        "timestamp": "1",
        "bids": [{"price": p, "size": s} for p, s in levels],
        "asks": [{"price": p, "size": s} for p, s in levels],
    }
    [book] = parse_books(raw, RECEIVED_TS).records
    assert isinstance(book, BookSnapshot)
    assert book.token_id == token
    assert list(book.bid_prices) == sorted((Decimal(p) for p, _ in levels), reverse=True)
    assert list(book.ask_prices) == sorted(Decimal(p) for p, _ in levels)
    assert sorted(book.bid_sizes) == sorted(Decimal(s) for _, s in levels)


@given(st.decimals(min_value=0, max_value=10**8, places=6, allow_nan=False))
def test_data_api_floats_round_trip(value: Decimal) -> None:
    """A float with <= 15 significant digits (every 6-place value below 10^9) is exact."""
    row = {
        "asset": "1",
        "side": "SELL",
        "price": float(value),
        "size": float(value),
        "timestamp": 1,
        "transactionHash": "0x01",
    }
    [trade] = parse_trades([row], RECEIVED_TS).records
    assert trade.price == trade.size == value


WS_EVENTS: list[dict[str, Any]] = [
    {
        "event_type": "book",
        "asset_id": "1",
        "market": "0x01",
        "timestamp": "1",
        "hash": "ab",
        "bids": [{"price": "0.1", "size": "1"}],
        "asks": [{"price": "0.2", "size": "2"}],
        "tick_size": "0.01",
        "min_order_size": "5",
        "neg_risk": False,
        "last_trade_price": "0.15",
    },
    {
        "event_type": "price_change",
        "market": "0x01",
        "timestamp": "1",
        "price_changes": [
            {
                "asset_id": "1",
                "price": "0.1",
                "size": "1",
                "side": "BUY",
                "hash": "h",
                "best_bid": "0.1",
                "best_ask": "0.2",
            }
        ],
    },
    {
        "event_type": "last_trade_price",
        "asset_id": "1",
        "market": "0x01",
        "price": "0.1",
        "size": "1",
        "side": "SELL",
        "fee_rate_bps": "0",
        "timestamp": "1",
        "transaction_hash": "0xab",
    },
    {
        "event_type": "best_bid_ask",
        "asset_id": "1",
        "market": "0x01",
        "best_bid": "0.1",
        "best_ask": "0.2",
        "spread": "0.1",
        "timestamp": "1",
    },
    {
        "event_type": "tick_size_change",
        "asset_id": "1",
        "market": "0x01",
        "old_tick_size": "0.01",
        "new_tick_size": "0.001",
        "timestamp": "1",
    },
    {
        "event_type": "market_resolved",
        "id": "7",
        "market": "0x01",
        "assets_ids": ["1", "2"],
        "winning_asset_id": "1",
        "winning_outcome": "Yes",
        "timestamp": "1",
    },
]
REQUIRED = {"event_type", "asset_id", "timestamp", "price", "side", "new_tick_size"}


@settings(max_examples=200)
@given(st.sampled_from(WS_EVENTS), st.data())
def test_missing_optional_ws_fields_still_give_a_record(event: dict[str, Any], data: Any) -> None:
    optional = sorted(set(event) - REQUIRED - {"bids", "asks", "price_changes", "size"})
    dropped = data.draw(st.sets(st.sampled_from(optional)) if optional else st.just(set()))
    trimmed = {k: v for k, v in event.items() if k not in dropped}
    result = parse_message(trimmed, RECEIVED_TS)
    assert result.errors == []
    assert len(result.records) == 1


MARKET: dict[str, Any] = {
    "id": "1",
    "conditionId": "0x01",
    "questionID": "0x02",
    "slug": "s",
    "question": "q",
    "description": "d",
    "outcomes": '["Yes", "No"]',
    "outcomePrices": '["0.5", ".5"]',
    "clobTokenIds": '["1", "2"]',
    "active": True,
    "closed": False,
    "archived": False,
    "acceptingOrders": True,
    "enableOrderBook": True,
    "negRisk": False,
    "orderPriceMinTickSize": 0.01,
    "orderMinSize": 5,
    "volumeNum": 1.5,
    "volume24hr": 0.5,
    "liquidityNum": 2.5,
    "startDate": "2026-03-11T09:29:01.328428Z",
    "endDate": "2026-06-30T00:00:00Z",
    "createdAt": "2026-03-11T09:29:01Z",
    "updatedAt": "2026-06-15 06:04:30+00",
    "closedTime": "2026-06-15 06:04:30+00",
    "events": [{"id": "9", "slug": "e", "title": "t", "tags": [{"slug": "x"}]}],
}


@given(st.sets(st.sampled_from(sorted(set(MARKET) - {"conditionId"}))))
def test_missing_optional_market_fields_still_give_a_market(dropped: set[str]) -> None:
    raw = {k: v for k, v in MARKET.items() if k not in dropped}
    result = parse_markets(raw, RECEIVED_TS)
    assert result.errors == []
    [market] = result.records
    assert isinstance(market, Market)
    assert json.loads(market.raw_json or "") == raw


@given(json_values)
def test_any_json_never_raises(value: Any) -> None:
    parsers: list[tuple[Any, Any]] = [
        (parse_markets, Market),
        (parse_books, BookSnapshot),
        (parse_trades, Trade),
        (parse_message, BookSnapshot | PriceUpdate | Trade | MarketEvent),
    ]
    for parse, kind in parsers:
        result = parse(value, RECEIVED_TS)
        assert all(isinstance(r, kind) for r in result.records)
        assert all(e.path.startswith("$") and e.reason for e in result.errors)


@given(st.text(max_size=40) | st.binary(max_size=40) | st.sampled_from(sorted(CONTROL_MESSAGES)))
def test_any_frame_text_never_raises(frame: str | bytes) -> None:
    result = parse_frame(frame, RECEIVED_TS)
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    assert (result.control is not None) == (text.strip() in CONTROL_MESSAGES)
    assert all(e.path.startswith("$") and e.reason for e in result.errors)
    if not text.lstrip().startswith(("{", "[")) and result.control is None:
        assert result.records == [] and len(result.errors) == 1
