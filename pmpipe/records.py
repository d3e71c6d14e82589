"""Typed records, one class per Avro schema in schemas/, mirroring it field by field.

Field names, order and optionality are those of the `.avsc` (a test checks it); names are also
the ClickHouse column names. Conventions:

* decimal(18,6) fields are `Decimal` values built with `to_decimal6` (exactly 6 places);
* timestamp-millis fields are `int` epoch milliseconds, timestamp-micros fields `int` epoch
  microseconds (fastavro accepts ints for both logical types);
* token ids, condition ids and hashes are `str`; arrays are tuples (records are immutable).

`to_avro()` returns the dict that confluent's AvroSerializer / fastavro write; `key()` is the
message key the schema doc names; `TOPIC` is the topic of the record type.
"""

from __future__ import annotations

import functools
import re
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    InvalidOperation,
)
from typing import Any, ClassVar

import msgspec

__all__ = [
    "RECORD_TYPES",
    "BookSnapshot",
    "DeadLetter",
    "Market",
    "MarketEvent",
    "PriceUpdate",
    "Record",
    "Trade",
    "WsFrame",
    "decimal_str",
    "to_decimal6",
    "trade_key",
    "ws_trade_key",
]

# --------------------------------------------------------------------------------------------
# decimal(18,6)

DECIMAL_SCALE = 6
DECIMAL_PRECISION = 18
_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_LIMIT = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)
_ZERO = Decimal(0).quantize(_QUANTUM)
_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def to_decimal6(x: str | int | float | Decimal) -> Decimal:
    """`x` as an exact decimal(18,6): rounded half-even to 6 places.

    Accepts decimal strings ('0.41', '.41', '9000023.58', '1e-05'), ints, floats (converted
    through `str(x)`, i.e. their shortest repr, never their binary expansion) and Decimals.
    Raises ValueError for NaN, infinities, booleans, non-numeric strings and values whose
    magnitude does not fit decimal(18,6) (|x| must stay below 10^12 after rounding).
    """
    if isinstance(x, str):
        return _str_to_decimal6(x)
    if isinstance(x, bool):
        raise ValueError(f"expected a number, got the boolean {x!r}")
    if isinstance(x, Decimal):
        value = x
    elif isinstance(x, int):
        value = Decimal(x)
    elif isinstance(x, float):
        value = Decimal(str(x))
    else:
        raise ValueError(f"expected a number or a decimal string, got {type(x).__name__}")
    return _round6(value, x)


@functools.lru_cache(maxsize=1 << 16)
def _str_to_decimal6(x: str) -> Decimal:
    """The string case of to_decimal6, cached: book levels and price changes repeat the same
    few thousand price and size strings (a tick grid), and a Decimal is immutable."""
    text = x.strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not a decimal number: {x!r}")
    return _round6(Decimal(text), x)


def _round6(value: Decimal, x: object) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"not a finite number: {x!r}")
    if value and value.adjusted() >= DECIMAL_PRECISION - DECIMAL_SCALE:
        raise ValueError(f"{x!r} does not fit decimal({DECIMAL_PRECISION},{DECIMAL_SCALE})")
    try:
        rounded = value.quantize(_QUANTUM, context=_CONTEXT)
    except InvalidOperation as e:  # pragma: no cover - excluded by the magnitude check
        raise ValueError(f"cannot round {x!r} to {DECIMAL_SCALE} places") from e
    if abs(rounded) >= _LIMIT:
        raise ValueError(f"{x!r} does not fit decimal({DECIMAL_PRECISION},{DECIMAL_SCALE})")
    return rounded if rounded else _ZERO


def decimal_str(value: Decimal) -> str:
    """Canonical text of a decimal: no exponent, no trailing zeros ('0.41', '100', '0')."""
    if not value:
        return "0"
    return format(value.normalize(_CONTEXT), "f")


def trade_key(
    transaction_hash: str,
    token_id: str,
    *,
    side: str,
    price: Decimal,
    size: Decimal,
    occurrence: int,
) -> str:
    """Canonical fill key `transaction_hash|token_id|side|price|size|occurrence` (trades.avsc).

    Prices and sizes are written canonically (`decimal_str`), so a Data API float and a
    WebSocket string of the same fill give the same key.
    """
    fill = f"{side}|{decimal_str(price)}|{decimal_str(size)}"
    return f"{transaction_hash.lower()}|{token_id}|{fill}|{occurrence}"


def ws_trade_key(
    token_id: str,
    source_ts: int,
    *,
    side: str,
    price: Decimal,
    size: Decimal,
    occurrence: int,
) -> str:
    """Key of a WebSocket fill without a transaction hash: `ws|token_id|source_ts|side|...`."""
    fill = f"{side}|{decimal_str(price)}|{decimal_str(size)}"
    return f"ws|{token_id}|{source_ts}|{fill}|{occurrence}"


# --------------------------------------------------------------------------------------------
# records


class _Record(msgspec.Struct, frozen=True, kw_only=True):
    """Shared behaviour: Avro dict and field names in schema order."""

    TOPIC: ClassVar[str]
    SCHEMA: ClassVar[str]  # stem of the .avsc file in schemas/

    def to_avro(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


class Market(_Record, frozen=True, kw_only=True):
    """polymarket.markets: one Gamma market's metadata (markets.avsc)."""

    TOPIC: ClassVar[str] = "polymarket.markets"
    SCHEMA: ClassVar[str] = "markets"

    condition_id: str
    market_id: str
    question_id: str | None = None
    slug: str
    question: str
    description: str | None = None
    outcomes: tuple[str, ...]
    outcome_prices: tuple[Decimal, ...]
    token_ids: tuple[str, ...]
    event_id: str | None = None
    event_slug: str | None = None
    event_title: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    active: bool
    closed: bool
    archived: bool
    accepting_orders: bool
    enable_order_book: bool
    neg_risk: bool
    tick_size: Decimal | None = None
    min_order_size: Decimal | None = None
    volume: Decimal | None = None
    volume_24h: Decimal | None = None
    liquidity: Decimal | None = None
    start_date: int | None = None
    end_date: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    closed_time: int | None = None
    source_ts: int
    received_ts: int
    raw_json: str | None = None

    def key(self) -> str:
        return self.condition_id


class PriceUpdate(_Record, frozen=True, kw_only=True):
    """polymarket.prices: a top-of-book observation or one book level change (prices.avsc)."""

    TOPIC: ClassVar[str] = "polymarket.prices"
    SCHEMA: ClassVar[str] = "prices"

    token_id: str
    condition_id: str | None = None
    source: str
    kind: str
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    mid: Decimal | None = None
    spread: Decimal | None = None
    last_trade_price: Decimal | None = None
    last_trade_side: str | None = None
    change_side: str | None = None
    change_price: Decimal | None = None
    change_size: Decimal | None = None
    order_hash: str | None = None
    source_ts: int
    received_ts: int

    def key(self) -> str:
        return self.token_id


class Trade(_Record, frozen=True, kw_only=True):
    """polymarket.trades: one fill of one token (trades.avsc)."""

    TOPIC: ClassVar[str] = "polymarket.trades"
    SCHEMA: ClassVar[str] = "trades"

    trade_key: str
    token_id: str
    condition_id: str | None = None
    transaction_hash: str | None = None
    side: str
    price: Decimal
    size: Decimal
    fee_rate_bps: int | None = None
    proxy_wallet: str | None = None
    outcome: str | None = None
    outcome_index: int | None = None
    occurrence: int = 0
    source: str
    source_ts: int
    received_ts: int

    def key(self) -> str:
        return self.token_id


class BookSnapshot(_Record, frozen=True, kw_only=True):
    """polymarket.books: a full-depth book of one token, levels best first (books.avsc)."""

    TOPIC: ClassVar[str] = "polymarket.books"
    SCHEMA: ClassVar[str] = "books"

    token_id: str
    condition_id: str | None = None
    source: str
    bid_prices: tuple[Decimal, ...]
    bid_sizes: tuple[Decimal, ...]
    ask_prices: tuple[Decimal, ...]
    ask_sizes: tuple[Decimal, ...]
    hash: str | None = None
    hash_ok: bool | None = None
    tick_size: Decimal | None = None
    min_order_size: Decimal | None = None
    neg_risk: bool | None = None
    last_trade_price: Decimal | None = None
    source_ts: int
    received_ts: int

    def key(self) -> str:
        return self.token_id


class MarketEvent(_Record, frozen=True, kw_only=True):
    """polymarket.events: market lifecycle and pipeline continuity events (events.avsc)."""

    TOPIC: ClassVar[str] = "polymarket.events"
    SCHEMA: ClassVar[str] = "events"

    event_type: str
    category: str
    token_id: str | None = None
    condition_id: str | None = None
    market_id: str | None = None
    token_ids: tuple[str, ...] = ()
    connection_id: str | None = None
    gap_start: int | None = None
    gap_end: int | None = None
    old_tick_size: Decimal | None = None
    new_tick_size: Decimal | None = None
    winning_token_id: str | None = None
    winning_outcome: str | None = None
    detail: str | None = None
    source: str
    source_ts: int
    received_ts: int

    def key(self) -> str:
        """The token, else the market, else the connection (connection-wide events)."""
        return self.token_id or self.condition_id or self.connection_id or ""


class WsFrame(_Record, frozen=True, kw_only=True):
    """polymarket.ws_raw: one WebSocket frame exactly as received (ws_raw.avsc)."""

    TOPIC: ClassVar[str] = "polymarket.ws_raw"
    SCHEMA: ClassVar[str] = "ws_raw"

    connection_id: str
    seq: int
    url: str
    shard: int = 0
    is_binary: bool = False
    payload: bytes
    source_ts: int | None = None
    received_ts: int

    def key(self) -> str:
        return self.connection_id


class DeadLetter(_Record, frozen=True, kw_only=True):
    """polymarket.dlq: something that could not be parsed, decoded or stored (dlq.avsc)."""

    TOPIC: ClassVar[str] = "polymarket.dlq"
    SCHEMA: ClassVar[str] = "dlq"

    component: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    original_key: bytes | None = None
    original_value: bytes
    schema_id: int | None = None
    error_type: str
    error: str
    source_ts: int | None = None
    received_ts: int

    def key(self) -> str:
        """'<topic>:<partition>:<offset>' for consumed records, else the failing component."""
        if self.topic is not None and self.partition is not None and self.offset is not None:
            return f"{self.topic}:{self.partition}:{self.offset}"
        return self.component


Record = Market | PriceUpdate | Trade | BookSnapshot | MarketEvent | WsFrame | DeadLetter

RECORD_TYPES: tuple[type[_Record], ...] = (
    Market,
    PriceUpdate,
    Trade,
    BookSnapshot,
    MarketEvent,
    WsFrame,
    DeadLetter,
)
