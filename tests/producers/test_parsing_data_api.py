"""Data API v1 /trades and v2 /v2/trades -> Trade records."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from producers.parsing.data_api import parse_trades, trades_cursor
from tests.producers import RECEIVED_TS, load_fixture

TX = "0x80e71829e69e94d57052689c2f7ca654d04720461d2961af61a403bafd62308c"
TOKEN = "22943400237250229318795315882775337816951160275867284205243766113690886285726"


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "proxyWallet": "0x50A0cebecFb81DbCbFA6d38F82040343F1E3D95F",
        "side": "SELL",
        "asset": TOKEN,
        "conditionId": "0xba3509c3c29a52bb2f8cf8204755314a38461825e61e77e6350f5abd4b848e05",
        "size": 42.62,
        "price": 0.91,
        "timestamp": 1782752879,
        "outcome": "No",
        "outcomeIndex": 1,
        "transactionHash": TX,
    }
    base.update(changes)
    return base


def test_v1_array_every_field() -> None:
    result = parse_trades(load_fixture("data_trades_v1.json"), RECEIVED_TS)
    assert result.errors == []
    assert len(result.records) == 3
    t = result.records[0]
    assert t.trade_key == f"{TX}|{TOKEN}|BUY|0.9|3.28888|0"
    assert t.token_id == TOKEN
    assert t.condition_id == "0xba3509c3c29a52bb2f8cf8204755314a38461825e61e77e6350f5abd4b848e05"
    assert t.transaction_hash == TX
    assert t.side == "BUY"
    assert (t.price, t.size) == (Decimal("0.9"), Decimal("3.28888"))
    assert t.proxy_wallet == "0x9fb96c5cf2027d0ce8e0e92fc30b52e81f001866"
    assert (t.outcome, t.outcome_index) == ("Down", 1)
    assert t.fee_rate_bps is None
    assert t.occurrence == 0
    assert t.source == "data_api"
    assert t.source_ts == 1774166009000
    assert t.received_ts == RECEIVED_TS
    assert t.key() == TOKEN


def test_v2_envelope_snake_case() -> None:
    page = load_fixture("data_trades_v2.json")
    result = parse_trades(page, RECEIVED_TS)
    assert result.errors == []
    [t] = result.records
    token = "107562952936555819668737826428754978979556920505990557747611348541829551199040"
    tx = "0x7958c0638f1b7ab12d0e3c762a6a2d3fe98edb3f748d0bcbe12adae1a67e58a8"
    assert t.token_id == token
    assert t.trade_key == f"{tx}|{token}|BUY|0.52|22.84|0"
    assert (t.price, t.size) == (Decimal("0.52"), Decimal("22.84"))
    assert t.proxy_wallet == "0x379a410a36c101e3b8dfb6c90d1176eb0def4b1a"
    assert (t.outcome, t.outcome_index) == ("Yes", 999)
    assert t.source_ts == 1789381477000
    assert trades_cursor(page) == page["pagination"]["next_cursor"]
    assert trades_cursor(load_fixture("data_trades_v1.json")) is None


def test_empty_v2_page() -> None:
    empty = {"data": None, "pagination": {"has_more": False, "next_cursor": None}}
    result = parse_trades(empty, RECEIVED_TS)
    assert (result.records, result.errors) == ([], [])
    assert trades_cursor(empty) is None


def test_wallets_lower_cased_and_floats_rounded_half_even() -> None:
    [t] = parse_trades([row(price=0.1234565, size=1e-05)], RECEIVED_TS).records
    assert t.proxy_wallet == "0x50a0cebecfb81dbcbfa6d38f82040343f1e3d95f"
    assert t.price == Decimal("0.123456")  # 0.1234565 -> half-even at 6 places
    assert t.size == Decimal("0.00001")
    [u] = parse_trades([row(transactionHash=TX.upper().replace("0X", "0x"))], 0).records
    assert u.transaction_hash == TX


def test_occurrence_counts_identical_fills_in_one_response() -> None:
    rows = [row(), row(), row(size=1.5), row(), row(side="BUY")]
    result = parse_trades(rows, RECEIVED_TS)
    assert [t.occurrence for t in result.records] == [0, 1, 0, 2, 0]
    keys = [t.trade_key for t in result.records]
    assert len(set(keys)) == 5
    assert keys[3] == f"{TX}|{TOKEN}|SELL|0.91|42.62|2"
    # the same page read again gives the same keys
    assert [t.trade_key for t in parse_trades(rows, RECEIVED_TS + 1).records] == keys


def test_stringified_numbers_are_accepted() -> None:
    [t] = parse_trades(
        [row(size="256", price="0.152", timestamp="1781289172", outcomeIndex="0")], RECEIVED_TS
    ).records
    assert (t.size, t.price, t.outcome_index) == (Decimal("256"), Decimal("0.152"), 0)
    assert t.source_ts == 1781289172000


def test_bad_rows_are_located_and_the_rest_kept() -> None:
    no_tx = row()
    del no_tx["transactionHash"]
    rows = [row(), row(side="HOLD"), no_tx, row(price=None), row(asset="0xabc"), 7, row()]
    page = {"data": rows, "pagination": {}}
    result = parse_trades(page, RECEIVED_TS)
    assert len(result.records) == 2
    assert [t.occurrence for t in result.records] == [0, 1]
    assert [e.path for e in result.errors] == [
        "$.data[1].side",
        "$.data[2].transactionHash",
        "$.data[3].price",
        "$.data[4].asset",
        "$.data[5]",
    ]
    assert result.errors[0].item == rows[1]


def test_payload_of_wrong_shape() -> None:
    result = parse_trades({"data": {"not": "a list"}}, RECEIVED_TS)
    assert [e.path for e in result.errors] == ["$.data"]
    broken = copy.deepcopy(load_fixture("data_trades_v1.json"))
    broken[0]["timestamp"] = "yesterday"
    assert [e.path for e in parse_trades(broken, RECEIVED_TS).errors] == ["$[0].timestamp"]
