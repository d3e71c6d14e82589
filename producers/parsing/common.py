"""Helpers shared by the source parsers: the result type and typed field readers.

Every reader takes the JSON path of the value it reads and raises `ParseError` with that path
when the value is unusable, so an error names the exact spot (`$[3].price_changes[1].size`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pmpipe.records import to_decimal6
from producers.parsing.errors import ParseError

__all__ = [
    "ParseResult",
    "compact_json",
    "dec",
    "epoch_ms",
    "first_present",
    "flag",
    "int_or_none",
    "key_path",
    "mapping",
    "midpoint",
    "opt_dec",
    "opt_str",
    "req_str",
    "sequence",
    "side",
    "token_id",
]

R = TypeVar("R")

_TOKEN_ID = re.compile(r"[0-9]{1,78}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIDES = {"BUY": "BUY", "SELL": "SELL"}


@dataclass(slots=True)
class ParseResult(Generic[R]):
    """What a parser made of one payload: the records, and one error per dropped item.

    `skipped` lists (path, reason) of well-formed items that deliberately yield no record
    (a Gamma market not deployed yet has no condition id to key it by): count them, do not
    dead-letter them. `control` is set for WebSocket text frames that carry no data ('PONG',
    'NO NEW ASSETS'...).
    """

    records: list[R] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    control: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, other: ParseResult[R]) -> None:
        self.records.extend(other.records)
        self.errors.extend(other.errors)
        self.skipped.extend(other.skipped)


def key_path(path: str, key: str) -> str:
    """`$.price` for identifier keys, `$["1234"]` for token ids and other keys."""
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def compact_json(value: Any) -> str:
    """Compact JSON text (no spaces), key order kept: how raw payload pieces are stored."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ParseError(path, f"expected an object, got {_kind(value)}")
    return value


def sequence(value: Any, path: str, *, allow_null: bool = False) -> list[Any]:
    if value is None and allow_null:
        return []
    if not isinstance(value, list):
        raise ParseError(path, f"expected an array, got {_kind(value)}")
    return value


def req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    """A required non-empty string (numbers are accepted and written as text)."""
    value = opt_str(obj, key, path)
    if value is None:
        raise ParseError(key_path(path, key), "missing")
    return value


def opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """An optional string; absent, null and "" all mean "not given"."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ParseError(key_path(path, key), f"expected a string, got {_kind(value)}")


def token_id(value: Any, path: str) -> str:
    """A CLOB token id: a uint256 as a decimal string (up to 78 digits), kept as text."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if isinstance(value, str) and _TOKEN_ID.fullmatch(value):
        return value
    if value is None or value == "":
        raise ParseError(path, "missing token id")
    raise ParseError(path, f"not a token id (1-78 decimal digits): {_short(value)}")


def dec(value: Any, path: str) -> Decimal:
    """A required decimal(18,6) from a decimal string or a JSON number."""
    if value is None or value == "":
        raise ParseError(path, "missing")
    try:
        return to_decimal6(value)
    except ValueError as e:
        raise ParseError(path, str(e)) from e


def opt_dec(obj: Mapping[str, Any], key: str, path: str) -> Decimal | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    return dec(value, key_path(path, key))


def int_or_none(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    """An optional integer given as a JSON number or a digit string ('0', 999)."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        return int(value)
    raise ParseError(key_path(path, key), f"expected an integer, got {_short(value)}")


def epoch_ms(value: Any, path: str) -> int:
    """A Unix-milliseconds timestamp sent as a digit string ('1757908892351') or a number."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if value is None or value == "":
        raise ParseError(path, "missing timestamp")
    raise ParseError(path, f"expected a Unix-ms timestamp, got {_short(value)}")


def flag(obj: Mapping[str, Any], key: str, path: str) -> bool | None:
    """An optional boolean (JSON bool, or the strings 'true'/'false')."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ParseError(key_path(path, key), f"expected true/false, got {_short(value)}")


def side(value: Any, path: str) -> str:
    """'BUY' or 'SELL' (any letter case on input)."""
    if isinstance(value, str) and value.upper() in _SIDES:
        return _SIDES[value.upper()]
    raise ParseError(path, f"expected BUY or SELL, got {_short(value)}")


def midpoint(best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
    """(best_bid + best_ask) / 2 rounded to 6 places, when both are known."""
    if best_bid is None or best_ask is None:
        return None
    return to_decimal6((best_bid + best_ask) / 2)


def first_present(obj: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    """The first of `keys` that is present with a non-null value, if any."""
    for key in keys:
        if obj.get(key) is not None:
            return key
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        str: "a string",
        int: "a number",
        float: "a number",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
