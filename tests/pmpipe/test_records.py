"""Records mirror their .avsc one to one, and every parsed record round-trips through fastavro."""

from __future__ import annotations

import io
import json
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import msgspec
import pytest

from pmpipe.paths import schemas_dir
from pmpipe.records import (
    RECORD_TYPES,
    BookSnapshot,
    DeadLetter,
    Market,
    MarketEvent,
    PriceUpdate,
    Trade,
    WsFrame,
    decimal_str,
    to_decimal6,
    trade_key,
    ws_trade_key,
)
from producers.parsing.clob import combine_price_polls, parse_books
from producers.parsing.data_api import parse_trades
from producers.parsing.gamma import parse_events, parse_markets
from producers.parsing.market_ws import parse_frame
from tests.producers import RECEIVED_TS, fixture_text, load_fixture

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def avsc(record_type: type[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (schemas_dir() / f"{record_type.SCHEMA}.avsc").read_text(encoding="utf-8")
    )
    return schema


def is_optional(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)


def python_type(avro_type: Any) -> Any:
    """The record annotation expected for an Avro type."""
    if isinstance(avro_type, list):
        (inner,) = [t for t in avro_type if t != "null"]
        return python_type(inner) | None
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "decimal":
            return Decimal
        if avro_type["type"] == "array":
            return tuple[python_type(avro_type["items"]), ...]  # type: ignore[misc]
        return python_type(avro_type["type"])
    return {"string": str, "boolean": bool, "long": int, "int": int, "bytes": bytes}[avro_type]


@pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda t: t.__name__)
def test_record_mirrors_its_schema(record_type: type[Any]) -> None:
    schema = avsc(record_type)
    assert schema["name"] == record_type.__name__
    assert schema["doc"].startswith(f"Topic {record_type.TOPIC}:")
    hints = typing.get_type_hints(record_type)
    struct_fields = {f.name: f for f in msgspec.structs.fields(record_type)}
    assert list(struct_fields) == [f["name"] for f in schema["fields"]]
    for spec in schema["fields"]:
        name = spec["name"]
        field = struct_fields[name]
        nullable = isinstance(spec["type"], list) and "null" in spec["type"]
        assert is_optional(hints[name]) == nullable, name
        assert hints[name] == python_type(spec["type"]), name
        assert ("default" in spec) == (not field.required), name
        if "default" in spec:
            default = spec["default"]
            assert field.default == (tuple(default) if isinstance(default, list) else default)


def parsed_records() -> list[Any]:
    """At least one record of every type a parser builds, from the fixtures."""
    records: list[Any] = []
    records += parse_markets(load_fixture("gamma_market.json"), RECEIVED_TS).records
    records += parse_events(load_fixture("gamma_event.json"), RECEIVED_TS).records
    records += parse_books(load_fixture("clob_books_post.json"), RECEIVED_TS).records
    records += parse_trades(load_fixture("data_trades_v2.json"), RECEIVED_TS).records
    records += combine_price_polls(
        received_ts=RECEIVED_TS, prices={"1": {"BUY": ".41", "SELL": "0.4"}}, spreads={"1": 0.01}
    ).records
    for name in (
        "ws_book_array.json",
        "ws_price_change.json",
        "ws_last_trade_price.json",
        "ws_tick_size_change.json",
        "ws_best_bid_ask.json",
        "ws_new_market.json",
        "ws_market_resolved.json",
    ):
        records += parse_frame(fixture_text(name), RECEIVED_TS, connection_id="c1").records
    return records


def manual_records() -> list[Any]:
    return [
        WsFrame(
            connection_id="c1",
            seq=7,
            url="wss://ws-subscriptions-clob.polymarket.com/ws/market",
            payload=b"PONG",
            received_ts=RECEIVED_TS,
        ),
        DeadLetter(
            component="producer:gamma",
            original_value=b'{"id": 1}',
            error_type="parse",
            error="$.conditionId: missing",
            received_ts=RECEIVED_TS,
        ),
        MarketEvent(
            event_type="gap",
            category="continuity",
            connection_id="c1",
            token_ids=("1", "2"),
            gap_start=1,
            gap_end=2,
            source="pipeline",
            source_ts=2,
            received_ts=RECEIVED_TS,
        ),
    ]


def from_avro(value: Any, avro_type: Any) -> Any:
    """fastavro reads timestamps as datetimes: back to the ints the records hold."""
    if isinstance(value, datetime):
        logical = avro_type.get("logicalType") if isinstance(avro_type, dict) else None
        if logical is None and isinstance(avro_type, list):
            logical = next(t for t in avro_type if t != "null")["logicalType"]
        unit = 1000 if logical == "timestamp-millis" else 1_000_000
        delta = value - EPOCH
        return (delta.days * 86_400 + delta.seconds) * unit + delta.microseconds * unit // 10**6
    return value


def test_parsers_build_every_record_type() -> None:
    kinds = {type(r) for r in parsed_records()}
    assert kinds == {Market, PriceUpdate, Trade, BookSnapshot, MarketEvent}


@pytest.mark.parametrize(
    "record", parsed_records() + manual_records(), ids=lambda r: type(r).__name__
)
def test_record_round_trips_through_avro(record: Any) -> None:
    schema = avsc(type(record))
    parsed = fastavro.parse_schema(schema)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record.to_avro())
    buffer.seek(0)
    back: dict[str, Any] = fastavro.schemaless_reader(buffer, parsed)  # type: ignore[assignment]
    types_by_name = {f["name"]: f["type"] for f in schema["fields"]}
    restored = {name: from_avro(value, types_by_name[name]) for name, value in back.items()}
    assert restored == record.to_avro()
    rebuilt = type(record)(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in restored.items()}
    )
    assert rebuilt == record
    assert record.key()


def test_keys() -> None:
    assert manual_records()[0].key() == "c1"
    assert manual_records()[1].key() == "producer:gamma"
    dead = DeadLetter(
        component="sink",
        topic="polymarket.trades",
        partition=2,
        offset=41,
        original_value=b"",
        error_type="decode",
        error="bad magic byte",
        received_ts=0,
    )
    assert dead.key() == "polymarket.trades:2:41"
    assert manual_records()[2].key() == "c1"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (".41", "0.41"),
        ("0.001", "0.001"),
        ("9000023.58", "9000023.58"),
        (1e-05, "0.00001"),
        (0.1 + 0.2, "0.3"),  # str(0.30000000000000004) rounds half-even to 0.300000
        ("0.0000005", "0"),
        ("0.0000015", "0.000002"),
        ("-0.0000001", "0"),
        (Decimal("1E+3"), "1000"),
        (7, "7"),
        ("999999999999.999999", "999999999999.999999"),
        (" 0.5 ", "0.5"),
    ],
)
def test_to_decimal6(given: Any, expected: str) -> None:
    value = to_decimal6(given)
    assert value == Decimal(expected)
    assert value.as_tuple().exponent == -6
    assert decimal_str(value) == expected


@pytest.mark.parametrize(
    "given",
    [
        *("nan", "NaN", "inf", float("inf"), float("nan"), Decimal("NaN")),
        *("", "abc", "1_000", "0x10", "1e12", "-1e12", "999999999999.9999995"),
        *(True, None, [1]),
    ],
)
def test_to_decimal6_rejects(given: Any) -> None:
    with pytest.raises(ValueError, match=r"not a|does not fit|expected"):
        to_decimal6(given)


def test_trade_keys_are_canonical() -> None:
    price, size = to_decimal6(0.52), to_decimal6("22.840000")
    assert trade_key("0xAB", "1", side="BUY", price=price, size=size, occurrence=0) == (
        "0xab|1|BUY|0.52|22.84|0"
    )
    assert ws_trade_key("1", 5, side="SELL", price=price, size=size, occurrence=2) == (
        "ws|1|5|SELL|0.52|22.84|2"
    )
