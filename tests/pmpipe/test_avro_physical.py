"""pmpipe/avro_physical.py: decimals written as their bytes give fastavro's exact output."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from fastavro._logical_writers import prepare_bytes_decimal  # type: ignore[attr-defined]
from hypothesis import given
from hypothesis import strategies as st

from pmpipe.avro_physical import UnsupportedSchemaError, decimal_bytes, physical_plan
from pmpipe.topics import load_topics
from tests.integration.test_roundtrip import sample_records

DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 6}
QUANTIZED = st.integers(-(10**18) + 1, 10**18 - 1).map(lambda n: Decimal(n).scaleb(-6))


@given(QUANTIZED)
def test_decimal_bytes_are_fastavros(value: Decimal) -> None:
    assert decimal_bytes(value, 6, 18) == prepare_bytes_decimal(value, DECIMAL)


@pytest.mark.parametrize("text", ["0", "0.41", ".41", "-0.5", "1e-05", "9000023.58", "123"])
def test_decimal_bytes_of_unquantized_values(text: str) -> None:
    value = Decimal(text)
    assert decimal_bytes(value, 6, 18) == prepare_bytes_decimal(value, DECIMAL)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (Decimal("0.0000001"), "more than 6 decimal places"),
        (Decimal("1000000000000"), "more than 18 digits"),
        (Decimal("NaN"), "not a finite decimal"),
        (Decimal("Infinity"), "not a finite decimal"),
    ],
)
def test_decimal_bytes_refuses_what_does_not_fit(value: Decimal, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        decimal_bytes(value, 6, 18)
    with pytest.raises(TypeError, match="expected a Decimal"):
        decimal_bytes(0.41, 6, 18)


def _write(schema: Any, value: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return out.getvalue()


@pytest.mark.parametrize("topic", load_topics(), ids=lambda t: t.name)
def test_every_topic_writes_the_same_bytes(topic: Any) -> None:
    physical, convert = physical_plan(topic.schema())
    for record in sample_records(topic):
        converted = convert(record) if convert else record
        assert _write(physical, converted) == _write(topic.schema(), record)
        assert converted is not record or convert is None  # the caller's dict is left alone


def test_shapes_without_a_plan() -> None:
    with pytest.raises(UnsupportedSchemaError, match="map"):
        physical_plan({"type": "map", "values": DECIMAL})
    with pytest.raises(UnsupportedSchemaError, match="union"):
        physical_plan(["null", "string", DECIMAL])
    record = {"type": "record", "name": "R", "fields": [{"name": "d", "type": DECIMAL}]}
    twice = {
        "type": "record",
        "name": "Outer",
        "fields": [{"name": "a", "type": record}, {"name": "b", "type": "R"}],
    }
    with pytest.raises(UnsupportedSchemaError, match="referenced again"):
        physical_plan(twice)
    assert physical_plan({"type": "array", "items": "string"}) == (
        {"type": "array", "items": "string"},
        None,
    )
