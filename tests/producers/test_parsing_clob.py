"""CLOB REST books and price polls -> BookSnapshot / PriceUpdate."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from producers.parsing.clob import (
    combine_price_polls,
    parse_books,
    parse_midpoints,
    parse_prices,
    parse_spreads,
)
from tests.producers import RECEIVED_TS, load_fixture

YES = "11019686559003253359318459636510036787281809199165975947920974072245914352862"
NO = "58879299945592013948525261328444396601397408171613924748929269227017026499887"


def levels(raw: list[dict[str, str]]) -> dict[Decimal, Decimal]:
    return {Decimal(lvl["price"]): Decimal(lvl["size"]) for lvl in raw}


def test_book_with_hash_every_field() -> None:
    raw = load_fixture("clob_book.json")
    result = parse_books(raw, RECEIVED_TS)
    assert result.errors == []
    [book] = result.records
    assert book.token_id == raw["asset_id"]
    assert book.condition_id == raw["market"]
    assert book.source == "clob"
    assert book.hash == "14b1ea7f9e2c09b793d30523699b49c0a4fb6842"
    assert book.hash_ok is True
    assert book.tick_size == Decimal("0.01")
    assert book.min_order_size == Decimal("5")
    assert book.neg_risk is False
    assert book.last_trade_price == Decimal("0.5")  # served "0.500"
    assert book.source_ts == 1784211751431
    assert book.received_ts == RECEIVED_TS
    assert book.bid_prices[:3] == (Decimal("0.5"), Decimal("0.49"), Decimal("0.48"))
    assert book.ask_prices[:3] == (Decimal("0.51"), Decimal("0.52"), Decimal("0.55"))
    assert list(book.bid_prices) == sorted(book.bid_prices, reverse=True)
    assert list(book.ask_prices) == sorted(book.ask_prices)
    assert dict(zip(book.bid_prices, book.bid_sizes, strict=True)) == levels(raw["bids"])
    assert dict(zip(book.ask_prices, book.ask_sizes, strict=True)) == levels(raw["asks"])
    assert book.key() == book.token_id


def test_levels_are_normalised_best_first_whatever_the_served_order() -> None:
    raw = load_fixture("clob_book_2024.json")  # bids ascending, asks descending as served
    [book] = parse_books(raw, RECEIVED_TS).records
    assert book.bid_prices == tuple(Decimal(p) for p in ("0.1", "0.09", "0.08", "0.06", "0.01"))
    assert book.bid_sizes == tuple(Decimal(s) for s in ("125", "294", "120", "200", "1000"))
    assert book.ask_prices == tuple(
        Decimal(p) for p in ("0.14", "0.2", "0.38", "0.46", "0.47", "0.5", "0.98")
    )
    assert book.ask_sizes[2] == Decimal("192.3")
    reversed_raw = copy.deepcopy(raw)
    reversed_raw["bids"].reverse()
    reversed_raw["asks"].reverse()
    [same] = parse_books(reversed_raw, RECEIVED_TS).records
    assert (same.bid_prices, same.ask_prices) == (book.bid_prices, book.ask_prices)
    assert (same.bid_sizes, same.ask_sizes) == (book.bid_sizes, book.ask_sizes)


def test_post_books_array() -> None:
    result = parse_books(load_fixture("clob_books_post.json"), RECEIVED_TS)
    assert result.errors == []
    assert [b.token_id for b in result.records] == [YES, NO]
    assert all(b.hash_ok is True for b in result.records)
    yes, no = result.records
    assert yes.bid_prices == (Decimal("0.002"), Decimal("0.001"))
    assert yes.bid_sizes == (Decimal("6258600.88"), Decimal("11871148.13"))
    assert no.bid_sizes[-1] == Decimal("21045213.38")
    assert yes.last_trade_price == no.last_trade_price == Decimal("0.003")


def test_exact_sizes_and_token_ids_stay_exact() -> None:
    token = "48331043336612883890938759509493159234755048973500640148014422747788308965732"
    raw = {
        "market": "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917",
        "asset_id": token,
        "bids": [{"price": ".001", "size": "9000023.58"}],
        "asks": None,
        "timestamp": "1728799418260",
    }
    [book] = parse_books(raw, RECEIVED_TS).records
    assert book.token_id == token
    assert book.bid_prices == (Decimal("0.001"),)
    assert book.bid_sizes == (Decimal("9000023.58"),)
    assert book.ask_prices == book.ask_sizes == ()
    assert book.hash is None
    assert book.hash_ok is None


def test_data_envelope_and_bad_book_kept_apart() -> None:
    good, other = load_fixture("clob_books_post.json")
    bad = copy.deepcopy(good)
    bad["bids"][1]["price"] = "x"
    result = parse_books({"data": [bad, other, {"asset_id": "1", "bids": []}]}, RECEIVED_TS)
    assert [b.token_id for b in result.records] == [NO]
    assert [e.path for e in result.errors] == ["$.data[0].bids[1].price", "$.data[2].timestamp"]
    assert result.errors[0].item is bad


def test_prices_map_numbers_strings_and_leading_dot() -> None:
    payload = {YES: {"BUY": ".41", "SELL": 0.4}, NO: {"SELL": "0.59"}}
    result = parse_prices(payload, RECEIVED_TS)
    assert result.errors == []
    yes, no = result.records
    assert (yes.token_id, yes.best_bid, yes.best_ask) == (YES, Decimal("0.4"), Decimal("0.41"))
    assert yes.mid == Decimal("0.405")
    assert (no.best_bid, no.best_ask, no.mid) == (Decimal("0.59"), None, None)
    assert {(r.source, r.kind) for r in result.records} == {("clob", "poll")}
    assert yes.source_ts == RECEIVED_TS // 1000


def test_midpoints_and_spreads_maps_and_single_forms() -> None:
    mids = parse_midpoints({YES: "0.085", NO: 0.915}, RECEIVED_TS)
    assert [(r.token_id, r.mid) for r in mids.records] == [
        (YES, Decimal("0.085")),
        (NO, Decimal("0.915")),
    ]
    single = parse_midpoints({"mid": "0.0005"}, RECEIVED_TS, token_id=YES)
    assert [(r.token_id, r.mid) for r in single.records] == [(YES, Decimal("0.0005"))]
    legacy = parse_midpoints({"mid_price": ".5"}, RECEIVED_TS, token_id=NO)
    assert [(r.token_id, r.mid) for r in legacy.records] == [(NO, Decimal("0.5"))]
    spreads = parse_spreads({"spreads": {YES: "0.01"}}, RECEIVED_TS)
    assert [(r.token_id, r.spread) for r in spreads.records] == [(YES, Decimal("0.01"))]
    bare = parse_spreads({YES: 0.02}, RECEIVED_TS)
    assert bare.records[0].spread == Decimal("0.02")
    one = parse_spreads({"spread": "0.03"}, RECEIVED_TS, token_id=NO)
    assert one.records[0].spread == Decimal("0.03")


def test_single_token_response_needs_the_token() -> None:
    result = parse_midpoints({"mid": "0.5"}, RECEIVED_TS)
    assert result.records == []
    assert [e.path for e in result.errors] == ["$.mid"]


def test_combined_poll_gives_one_update_per_token() -> None:
    result = combine_price_polls(
        received_ts=RECEIVED_TS,
        prices={YES: {"BUY": "0.09", "SELL": "0.08"}, NO: {"BUY": 0.92, "SELL": 0.91}},
        midpoints={YES: "0.085", NO: "0.915"},
        spreads={"spreads": {YES: "0.01", NO: "0.01"}},
    )
    assert result.errors == []
    assert [r.token_id for r in result.records] == [YES, NO]
    yes = result.records[0]
    assert (yes.best_bid, yes.best_ask) == (Decimal("0.08"), Decimal("0.09"))
    assert (yes.mid, yes.spread) == (Decimal("0.085"), Decimal("0.01"))
    assert yes.change_side is None
    assert yes.key() == YES


def test_bad_price_entries_are_located_and_others_kept() -> None:
    result = combine_price_polls(
        received_ts=RECEIVED_TS,
        prices={YES: {"BUY": "0.09"}, "0xnot-a-token": {"BUY": "0.1"}, NO: {"BUY": "abc"}},
        midpoints={NO: "0.915"},
    )
    assert [(r.token_id, r.best_ask, r.mid) for r in result.records] == [
        (YES, Decimal("0.09"), None),
        (NO, None, Decimal("0.915")),
    ]
    assert [e.path for e in result.errors] == [
        '$.prices["0xnot-a-token"]',
        f'$.prices["{NO}"].BUY',
    ]


@pytest.mark.parametrize("payload", [[1, 2], "0.5", 3])
def test_price_payload_of_wrong_shape(payload: object) -> None:
    result = parse_prices(payload, RECEIVED_TS)
    assert result.records == []
    assert [e.path for e in result.errors] == ["$"]
