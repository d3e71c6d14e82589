"""Avro compatibility rules of the embedded registry (pmpipe.registry.compat)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pmpipe.paths import schemas_dir
from pmpipe.registry.compat import (
    InvalidSchemaError,
    check_compatibility,
    check_level,
    describe,
    parse_schema,
)

DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 6}


def trade(*extra: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [
        {"name": "trade_key", "type": "string"},
        {"name": "price", "type": DECIMAL},
        {"name": "size", "type": DECIMAL},
        {"name": "ts_ms", "type": "long"},
        {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}},
    ]
    fields = [f for f in fields if f["name"] not in drop] + list(extra)
    return {"type": "record", "name": "Trade", "namespace": "polymarket", "fields": fields}


def with_field(schema: dict[str, Any], name: str, new_type: Any) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    for f in out["fields"]:
        if f["name"] == name:
            f["type"] = new_type
    return out


# -- BACKWARD: the new schema (reader) reads data written with the old one (writer) -----------


def test_identical_schemas_are_compatible() -> None:
    assert check_compatibility(trade(), trade()) == []
    assert check_compatibility(json.dumps(trade()), json.dumps(trade())) == []


def test_added_optional_field_with_null_default_is_accepted() -> None:
    new = trade({"name": "maker", "type": ["null", "string"], "default": None})
    assert check_compatibility(new, trade()) == []


def test_added_field_without_default_is_refused_naming_the_field() -> None:
    new = trade({"name": "fee_rate", "type": "long"})
    assert check_compatibility(new, trade()) == [
        "field 'fee_rate' added to record polymarket.Trade without a default"
    ]


def test_removed_field_is_accepted() -> None:
    assert check_compatibility(trade(drop=("size",)), trade()) == []


def test_type_change_is_refused_naming_the_field() -> None:
    new = with_field(trade(), "price", "string")
    assert check_compatibility(new, trade()) == [
        "field 'price' in record polymarket.Trade: type changed from bytes/decimal(18,6) to string"
    ]


def test_decimal_scale_change_is_refused() -> None:
    new = with_field(trade(), "size", {**DECIMAL, "scale": 8})
    messages = check_compatibility(new, trade())
    assert messages == [
        "field 'size' in record polymarket.Trade: type changed from bytes/decimal(18,6) "
        "to bytes/decimal(18,8)"
    ]


def test_decimal_precision_change_and_logical_type_change_are_refused() -> None:
    assert check_compatibility(with_field(trade(), "price", {**DECIMAL, "precision": 20}), trade())
    micros = {"type": "long", "logicalType": "timestamp-micros"}
    millis = {"type": "long", "logicalType": "timestamp-millis"}
    old = with_field(trade(), "ts_ms", millis)
    assert check_compatibility(with_field(old, "ts_ms", micros), old) == [
        "field 'ts_ms' in record polymarket.Trade: type changed from long/timestamp-millis "
        "to long/timestamp-micros"
    ]


@pytest.mark.parametrize(
    ("old_type", "new_type"),
    [
        ("int", "long"),
        ("int", "double"),
        ("long", "float"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    ],
)
def test_spec_promotions_are_accepted(old_type: str, new_type: str) -> None:
    old = trade({"name": "n", "type": old_type})
    assert check_compatibility(with_field(old, "n", new_type), old) == []


@pytest.mark.parametrize(("old_type", "new_type"), [("long", "int"), ("double", "float")])
def test_narrowing_is_refused(old_type: str, new_type: str) -> None:
    old = trade({"name": "n", "type": old_type})
    assert check_compatibility(with_field(old, "n", new_type), old) == [
        f"field 'n' in record polymarket.Trade: type changed from {old_type} to {new_type}"
    ]


def test_union_widening_is_accepted() -> None:
    old = trade({"name": "maker", "type": ["null", "string"], "default": None})
    wider = with_field(old, "maker", ["null", "string", "long"])
    assert check_compatibility(wider, old) == []
    # a plain type may become a union containing it
    assert check_compatibility(with_field(trade(), "trade_key", ["null", "string"]), trade()) == []


def test_union_narrowing_names_the_lost_branch() -> None:
    old = trade({"name": "maker", "type": ["null", "string", "long"], "default": None})
    new = with_field(old, "maker", ["null", "string"])
    assert check_compatibility(new, old) == [
        "field 'maker' in record polymarket.Trade: the old union branch long cannot be read as "
        "union[null, string]"
    ]
    # union -> plain type: the null branch can no longer be read
    plain = trade({"name": "maker", "type": "string", "default": ""})
    assert check_compatibility(plain, old) == [
        "field 'maker' in record polymarket.Trade: the old union branch null cannot be read as "
        "string",
        "field 'maker' in record polymarket.Trade: the old union branch long cannot be read as "
        "string",
    ]


def test_nested_record_change_names_the_nested_path() -> None:
    party: dict[str, Any] = {
        "type": "record",
        "name": "Party",
        "fields": [{"name": "wallet", "type": "string"}, {"name": "fee", "type": DECIMAL}],
    }
    old = trade({"name": "maker", "type": party})
    new_party = copy.deepcopy(party)
    new_party["fields"][1]["type"] = "double"
    new_party["fields"].append({"name": "label", "type": "string"})
    assert check_compatibility(with_field(old, "maker", new_party), old) == [
        "field 'maker.fee' in record polymarket.Party: type changed from bytes/decimal(18,6) "
        "to double",
        "field 'maker.label' added to record polymarket.Party without a default",
    ]


def test_array_and_map_paths() -> None:
    level: dict[str, Any] = {
        "type": "record",
        "name": "Level",
        "fields": [{"name": "price", "type": DECIMAL}, {"name": "size", "type": DECIMAL}],
    }
    old = trade(
        {"name": "bids", "type": {"type": "array", "items": level}},
        {"name": "tags", "type": {"type": "map", "values": "int"}},
    )
    new_level = copy.deepcopy(level)
    new_level["fields"][0]["type"] = "string"
    new = with_field(old, "bids", {"type": "array", "items": new_level})
    new = with_field(new, "tags", {"type": "map", "values": "boolean"})
    assert check_compatibility(new, old) == [
        "field 'bids[].price' in record polymarket.Level: type changed from "
        "bytes/decimal(18,6) to string",
        "field 'tags{}' in record polymarket.Trade: type changed from int to boolean",
    ]


def test_enum_symbol_removal_is_refused_and_addition_accepted() -> None:
    side = {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}
    fewer = with_field(trade(), "side", {**side, "symbols": ["BUY"]})
    assert check_compatibility(fewer, trade()) == [
        "field 'side' in record polymarket.Trade: symbol(s) 'SELL' removed from enum "
        "polymarket.Side, which has no default"
    ]
    more = with_field(trade(), "side", {**side, "symbols": ["BUY", "SELL", "UNKNOWN"]})
    assert check_compatibility(more, trade()) == []
    # a reader enum default absorbs unknown symbols (Avro >= 1.9)
    with_default = with_field(trade(), "side", {**side, "symbols": ["BUY"], "default": "BUY"})
    assert check_compatibility(with_default, trade()) == []


def test_named_type_rename_is_refused_unless_aliased() -> None:
    renamed = {**trade(), "name": "Fill"}
    assert check_compatibility(renamed, trade()) == [
        "schema root: record name changed from polymarket.Trade to polymarket.Fill"
    ]
    aliased = {**renamed, "aliases": ["Trade"]}
    assert check_compatibility(aliased, trade()) == []


def test_field_rename_with_alias_is_accepted() -> None:
    old = trade()
    new = copy.deepcopy(old)
    new["fields"][0] = {"name": "key", "type": "string", "aliases": ["trade_key"]}
    assert check_compatibility(new, old) == []


def test_fixed_size_change_is_refused() -> None:
    old = trade({"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 32}})
    new = with_field(old, "hash", {"type": "fixed", "name": "Hash", "size": 20})
    assert check_compatibility(new, old) == [
        "field 'hash' in record polymarket.Trade: type changed from fixed polymarket.Hash[32] "
        "to fixed polymarket.Hash[20]"
    ]


def test_record_to_primitive_at_root() -> None:
    assert check_compatibility("string", trade()) == [
        "schema root: type changed from record polymarket.Trade to string"
    ]


def test_recursive_schemas_terminate() -> None:
    node: dict[str, Any] = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "value", "type": "long"},
            {"name": "next", "type": ["null", "Node"], "default": None},
        ],
    }
    assert check_compatibility(node, node) == []
    grown = copy.deepcopy(node)
    grown["fields"].append({"name": "label", "type": "string"})
    assert check_compatibility(grown, node) == [
        "field 'label' added to record Node without a default"
    ]


def test_named_type_references_resolve_to_the_definition() -> None:
    old = trade({"name": "prev_side", "type": ["null", "Side"], "default": None})
    new_side = {"type": "enum", "name": "Side", "symbols": ["BUY"]}
    new = with_field(with_field(old, "side", new_side), "prev_side", ["null", "Side"])
    messages = check_compatibility(new, old)
    assert len(messages) == 2
    assert all("removed from enum polymarket.Side" in m for m in messages)
    assert "field 'prev_side'" in messages[1]


# -- FORWARD wording and the levels ------------------------------------------------------------


def test_forward_direction_wording() -> None:
    old = trade({"name": "fee", "type": "long"})
    new = trade()  # fee removed, and the old schema has no default for it
    assert check_compatibility(old, new, reader_is_new=False) == [
        "field 'fee' removed from record polymarket.Trade, but the old schema has no default for it"
    ]


def test_check_level_directions_and_transitivity() -> None:
    v1 = parse_schema(trade({"name": "a", "type": "int"}))
    v2 = parse_schema(trade())
    v3 = parse_schema(trade({"name": "a", "type": "string", "default": "x"}))
    history = [(1, v1), (2, v2)]
    assert check_level("BACKWARD", v3, history) == []
    assert check_level("NONE", v3, history) == []
    transitive = check_level("BACKWARD_TRANSITIVE", v3, history)
    assert transitive == [
        "version 1, new schema reading old data: field 'a' in record polymarket.Trade: "
        "type changed from int to string"
    ]
    # FORWARD: the old schema must read new data; removing a field without default breaks it
    assert check_level("FORWARD", v2, [(1, v1)]) == [
        "version 1, old schema reading new data: field 'a' removed from record "
        "polymarket.Trade, but the old schema has no default for it"
    ]
    assert check_level("BACKWARD", v2, [(1, v1)]) == []
    assert check_level("FULL", v2, [(1, v1)]) == check_level("FORWARD", v2, [(1, v1)])
    assert check_level("full_transitive", v3, history) != []
    with pytest.raises(ValueError, match="unknown compatibility level"):
        check_level("SIDEWAYS", v3, history)


# -- parsing and identity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        {"type": "record", "name": "A", "fields": [{"name": "x", "type": "intt"}]},
        {"type": "record", "name": "A", "fields": [{"name": "x", "type": "int", "default": "y"}]},
        {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 6},
        {"type": "enum", "name": "E", "symbols": ["A", "A"]},
        {"type": "record", "name": "1A", "fields": []},
        ["int", "int"],
        {
            "type": "record",
            "name": "A",
            "fields": [{"name": "x", "type": ["null", "int"], "default": 5}],
        },
    ],
)
def test_invalid_schemas_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidSchemaError):
        parse_schema(bad if isinstance(bad, str) else json.dumps(bad))


def test_canonical_form_ignores_spelling_but_not_meaning() -> None:
    split = {
        "type": "record",
        "name": "T",
        "namespace": "p",
        "fields": [{"name": "x", "type": "int"}],
    }
    full: dict[str, Any] = {
        "fields": [{"type": {"type": "int"}, "name": "x"}],
        "name": "p.T",
        "type": "record",
    }
    assert parse_schema(json.dumps(split, indent=2)).canonical == parse_schema(full).canonical
    with_default = copy.deepcopy(full)
    with_default["fields"][0]["default"] = 0
    assert parse_schema(with_default).canonical != parse_schema(full).canonical


def test_describe_forms() -> None:
    assert describe(["null", "string"]) == "union[null, string]"
    assert describe({"type": "array", "items": "long"}) == "array<long>"
    assert describe({"type": "map", "values": DECIMAL}) == "map<bytes/decimal(18,6)>"
    assert describe({"type": "int", "logicalType": "date"}) == "int/date"


def test_project_schemas_parse_and_are_self_compatible() -> None:
    files = sorted(schemas_dir().glob("*.avsc"))
    assert files, "no .avsc files found"
    for path in files:
        parsed = parse_schema(path.read_text(encoding="utf-8"))
        assert check_compatibility(parsed, parsed) == [], path.name
