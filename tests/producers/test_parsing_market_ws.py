"""Market-channel WebSocket frames -> records, control messages and per-event errors."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from pmpipe.records import BookSnapshot, MarketEvent, PriceUpdate, Trade
from producers.parsing.market_ws import CONTROL_MESSAGES, parse_frame, parse_message
from tests.producers import RECEIVED_TS, fixture_text, load_fixture

YES_0936 = "25245433628208476987364023432306599125597948324625578977436890641930158259698"
NO_0936 = "20168250870314270898487593595943592687458358996170785976290704639743788087191"


def frame_of(name: str, **kwargs: Any) -> list[Any]:
    result = parse_frame(fixture_text(name), RECEIVED_TS, **kwargs)
    assert result.errors == []
    assert result.control is None
    return list(result.records)


def test_book_array_frame() -> None:
    records = frame_of("ws_book_array.json")
    assert [type(r) for r in records] == [BookSnapshot, BookSnapshot]
    yes, no = records
    assert isinstance(yes, BookSnapshot)
    assert isinstance(no, BookSnapshot)
    assert (yes.token_id, no.token_id) == (YES_0936, NO_0936)
    assert yes.source == "ws"
    assert yes.source_ts == 1766481546487
    assert yes.last_trade_price == Decimal("0.5")
    assert (yes.bid_prices[0], yes.bid_sizes[0]) == (Decimal("0.49"), Decimal("60"))
    assert (yes.ask_prices[0], yes.ask_sizes[0]) == (Decimal("0.5"), Decimal("16"))
    assert (len(yes.bid_prices), len(yes.ask_prices)) == (49, 50)
    assert yes.hash_ok is None  # WS books lack tick_size/min_order_size/neg_risk


def test_book_without_event_type() -> None:
    [book] = frame_of("ws_book_no_event_type.json")
    assert isinstance(book, BookSnapshot)
    assert book.bid_prices == (Decimal("0.02"), Decimal("0.01"))
    assert book.ask_prices == (Decimal("0.5"),)
    assert book.ask_sizes == (Decimal("500"),)


def test_price_change_entries_are_routed_by_asset() -> None:
    records = frame_of("ws_price_change.json")
    assert len(records) == 2
    first, second = records
    assert isinstance(first, PriceUpdate)
    assert isinstance(second, PriceUpdate)
    assert first.token_id == (
        "85820491405070503157833602237286422627039369979142976656076036182129921475920"
    )
    assert second.token_id == (
        "41904046339315199441846846901798861215014557277009414496634485581318123208334"
    )
    assert (
        first.condition_id
        == second.condition_id
        == ("0x125730a9a19a6bc2d0f847f04f8bf16837484ca0131cf0fc79226075ecc50ebd")
    )
    assert (first.kind, first.source) == ("price_change", "ws")
    assert (first.change_side, first.change_price, first.change_size) == (
        "BUY",
        Decimal("0.03"),
        Decimal("23391.25"),
    )
    assert (first.best_bid, first.best_ask, first.mid) == (
        Decimal("0.5"),
        Decimal("0.51"),
        Decimal("0.505"),
    )
    assert first.order_hash == "789f4c2e63b0bc047478203856c749bef6bd8828"
    assert (second.change_side, second.change_price) == ("SELL", Decimal("0.97"))
    assert first.source_ts == second.source_ts == 1779782572795
    assert first.spread is None


def test_legacy_flat_price_change() -> None:
    [change] = frame_of("ws_price_change_legacy.json")
    assert isinstance(change, PriceUpdate)
    assert change.token_id == (
        "48331043336612883890938759509493159234755048973500640148014422747788308965732"
    )
    assert (change.change_side, change.change_price, change.change_size) == (
        "SELL",
        Decimal("0.514"),
        Decimal("21574.08"),
    )
    assert change.order_hash == "bf32b3746fff40c76c98021b7f3f07261169dd26"
    assert (change.best_bid, change.best_ask, change.mid) == (None, None, None)
    assert change.source_ts == 1723967931411


def test_older_changes_form() -> None:
    records = frame_of("ws_price_change_changes.json")
    assert [(r.change_side, r.change_price, r.change_size) for r in records] == [
        ("SELL", Decimal("0.576"), Decimal("0")),
        ("BUY", Decimal("0.528"), Decimal("487.05")),
    ]
    assert {r.order_hash for r in records} == {"0d6dea697fe4fb2f1ad19c2e40171a69d9e81c9f"}
    assert {r.token_id for r in records} == {
        "72936048731589292555781174533757608024096898681344338816447372274344589246891"
    }


def test_last_trade_price_without_transaction_hash() -> None:
    [trade] = frame_of("ws_last_trade_price.json")
    assert isinstance(trade, Trade)
    token = "21742633143463906290569050155826241533067272736897614950488156847949938836455"
    assert trade.trade_key == f"ws|{token}|1724564136087|SELL|0.491|85.36|0"
    assert trade.transaction_hash is None
    assert (trade.price, trade.size, trade.side) == (Decimal("0.491"), Decimal("85.36"), "SELL")
    assert trade.fee_rate_bps == 0
    assert (trade.source, trade.source_ts, trade.proxy_wallet) == ("ws", 1724564136087, None)


def test_last_trade_price_with_transaction_hash_keys_like_the_data_api() -> None:
    line = fixture_text("ws_last_trade_price_tx.jsonl").splitlines()[0]
    [trade] = parse_frame(line, RECEIVED_TS).records
    assert isinstance(trade, Trade)
    tx = "0x1f32e9556bd72cfbcf9b4389de16e01f90067e0f60812dec95ad037e374d1ba0"
    token = "97692775490562554470217512763234539730491132622937393941079783202295197339698"
    assert trade.transaction_hash == tx
    assert trade.trade_key == f"{tx}|{token}|BUY|0.999|341.89|0"
    assert trade.condition_id == (
        "0x555ef29ef46a9ccb105b872c40f4aa3c484861beb5d3879f52ece71364d68c21"
    )


def test_identical_fills_in_one_frame_get_occurrences() -> None:
    event = load_fixture("ws_last_trade_price.json")
    result = parse_message([event, event, dict(event, size="1")], RECEIVED_TS)
    assert [t.occurrence for t in result.records if isinstance(t, Trade)] == [0, 1, 0]
    assert len({t.trade_key for t in result.records if isinstance(t, Trade)}) == 3


def test_tick_size_change() -> None:
    [event] = frame_of("ws_tick_size_change.json", connection_id="conn-1")
    assert isinstance(event, MarketEvent)
    token = "115474063863764126958837769719736461272619491980773624567012766320777398670353"
    assert (event.event_type, event.category, event.source) == ("tick_size_change", "market", "ws")
    assert (event.token_id, event.token_ids) == (token, (token,))
    assert (event.old_tick_size, event.new_tick_size) == (Decimal("0.01"), Decimal("0.001"))
    assert event.connection_id == "conn-1"
    assert event.source_ts == 1739068041853
    assert event.key() == token


def test_best_bid_ask() -> None:
    [update] = frame_of("ws_best_bid_ask.json")
    assert isinstance(update, PriceUpdate)
    assert update.kind == "best_bid_ask"
    assert (update.best_bid, update.best_ask, update.spread, update.mid) == (
        Decimal("0.73"),
        Decimal("0.77"),
        Decimal("0.04"),
        Decimal("0.75"),
    )
    assert update.source_ts == 1766789469958


def test_new_market_keeps_the_payload() -> None:
    raw = load_fixture("ws_new_market.json")
    [event] = frame_of("ws_new_market.json")
    assert isinstance(event, MarketEvent)
    assert (event.event_type, event.category) == ("new_market", "market")
    assert event.market_id == "2359818"
    assert event.condition_id == raw["market"]
    assert event.token_ids == tuple(raw["assets_ids"])
    assert event.token_id is None
    assert json.loads(event.detail or "") == raw
    assert event.key() == raw["market"]


def test_market_resolved() -> None:
    raw = load_fixture("ws_market_resolved.json")
    [event] = frame_of("ws_market_resolved.json")
    assert isinstance(event, MarketEvent)
    assert event.event_type == "market_resolved"
    assert event.winning_token_id == raw["winning_asset_id"]
    assert event.winning_outcome == "Yes"
    assert event.token_ids == tuple(raw["assets_ids"])
    assert event.market_id == "1031769"


@pytest.mark.parametrize("text", sorted(CONTROL_MESSAGES))
def test_control_messages(text: str) -> None:
    for frame in (text, text + "\n", text.encode()):
        result = parse_frame(frame, RECEIVED_TS)
        assert (result.records, result.errors, result.control) == ([], [], text)


def test_bytes_frames_are_decoded() -> None:
    result = parse_frame(fixture_text("ws_best_bid_ask.json").encode(), RECEIVED_TS)
    assert [type(r) for r in result.records] == [PriceUpdate]


def test_bad_events_do_not_lose_the_others() -> None:
    (book,) = load_fixture("ws_book_array.json")[:1]
    change = load_fixture("ws_price_change.json")
    change["price_changes"][1]["size"] = "lots"
    frame = [book, {"event_type": "brand_new_thing"}, change, "text", {"foo": 1}]
    result = parse_frame(json.dumps(frame), RECEIVED_TS)
    assert [type(r) for r in result.records] == [BookSnapshot, PriceUpdate]
    assert [e.path for e in result.errors] == [
        "$[1].event_type",
        "$[2].price_changes[1].size",
        "$[3]",
        "$[4]",
    ]
    assert "unknown event type 'brand_new_thing'" in str(result.errors[0])
    assert result.errors[1].item == change["price_changes"][1]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("HELLO THERE", "not a known control message"),
        ('{"event_type": "book"', "invalid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ("42", "not a known control message"),
        ("", "not a known control message"),
    ],
)
def test_unusable_frames_are_errors(frame: str | bytes, reason: str) -> None:
    result = parse_frame(frame, RECEIVED_TS)
    assert result.records == []
    assert [e.path for e in result.errors] == ["$"]
    assert reason in str(result.errors[0])
    assert result.errors[0].item == frame


def test_leading_dot_and_exact_values_in_price_change() -> None:
    event = {
        "event_type": "price_change",
        "market": "0x01",
        "timestamp": "1757908892351",
        "price_changes": [
            {"asset_id": "1", "price": ".41", "size": "9000023.58", "side": "buy"},
        ],
    }
    [update] = parse_message(event, RECEIVED_TS).records
    assert isinstance(update, PriceUpdate)
    assert (update.change_price, update.change_size, update.change_side) == (
        Decimal("0.41"),
        Decimal("9000023.58"),
        "BUY",
    )
    assert update.order_hash is None
