"""CLOB REST payloads -> records: order books (GET /book, GET/POST /books) and the price polls
(/prices, /midpoints, /spreads). Pure functions, no I/O.

Books: levels are normalised best first (bids by price descending, asks ascending) whatever
order the server used; the served hash is verified against the raw levels (book_hash.py).
Price polls carry no timestamp: `source_ts` is the receive time in ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pmpipe.records import BookSnapshot, PriceUpdate
from producers.parsing.book_hash import verify_book_hash
from producers.parsing.common import (
    ParseResult,
    dec,
    epoch_ms,
    flag,
    key_path,
    mapping,
    midpoint,
    opt_dec,
    opt_str,
    sequence,
    token_id,
)
from producers.parsing.errors import ParseError

__all__ = [
    "combine_price_polls",
    "parse_book",
    "parse_books",
    "parse_midpoints",
    "parse_prices",
    "parse_spreads",
]

Level = tuple[Decimal, Decimal]


# --------------------------------------------------------------------------------------------
# books


def parse_book(
    raw: Any, received_ts: int, *, source: str = "clob", path: str = "$"
) -> BookSnapshot:
    """One book object (REST OrderBookSummary or WebSocket `book` event) -> BookSnapshot.

    Raises ParseError (located under `path`) when the book is unusable.
    """
    book = mapping(raw, path)
    bids = _levels(book.get("bids"), key_path(path, "bids"))
    asks = _levels(book.get("asks"), key_path(path, "asks"))
    bids.sort(key=lambda level: level[0], reverse=True)
    asks.sort(key=lambda level: level[0])
    return BookSnapshot(
        token_id=token_id(book.get("asset_id"), key_path(path, "asset_id")),
        condition_id=opt_str(book, "market", path),
        source=source,
        bid_prices=tuple(price for price, _ in bids),
        bid_sizes=tuple(size for _, size in bids),
        ask_prices=tuple(price for price, _ in asks),
        ask_sizes=tuple(size for _, size in asks),
        hash=opt_str(book, "hash", path),
        hash_ok=verify_book_hash(book),
        tick_size=opt_dec(book, "tick_size", path),
        min_order_size=opt_dec(book, "min_order_size", path),
        neg_risk=flag(book, "neg_risk", path),
        last_trade_price=opt_dec(book, "last_trade_price", path),
        source_ts=epoch_ms(book.get("timestamp"), key_path(path, "timestamp")),
        received_ts=received_ts,
    )


def parse_books(payload: Any, received_ts: int) -> ParseResult[BookSnapshot]:
    """GET /book (one object), GET/POST /books (array) or a {"data": [...]} page -> books."""
    result: ParseResult[BookSnapshot] = ParseResult()
    if isinstance(payload, Mapping) and "bids" not in payload and "data" in payload:
        items, base = payload["data"], "$.data"
    elif isinstance(payload, Mapping):
        items, base = [payload], None
    else:
        items, base = payload, "$"
    if not isinstance(items, list):
        path = base or "$"
        result.errors.append(ParseError(path, "expected a book object or an array of books"))
        return result
    for i, item in enumerate(items):
        path = f"{base}[{i}]" if base else "$"
        try:
            result.records.append(parse_book(item, received_ts, source="clob", path=path))
        except ParseError as e:
            result.errors.append(e.with_item(item))
    return result


def _levels(raw: Any, path: str) -> list[Level]:
    levels: list[Level] = []
    for i, item in enumerate(sequence(raw, path, allow_null=True)):
        at = f"{path}[{i}]"
        level = mapping(item, at)
        levels.append(
            (dec(level.get("price"), at + ".price"), dec(level.get("size"), at + ".size"))
        )
    return levels


# --------------------------------------------------------------------------------------------
# price polls


@dataclass(slots=True)
class _Quote:
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    mid: Decimal | None = None
    spread: Decimal | None = None


def parse_prices(payload: Any, received_ts: int) -> ParseResult[PriceUpdate]:
    """GET/POST /prices {token: {BUY: p, SELL: p}} -> one PriceUpdate (kind 'poll') per token."""
    return combine_price_polls(prices=payload, received_ts=received_ts)


def parse_midpoints(
    payload: Any, received_ts: int, *, token_id: str | None = None
) -> ParseResult[PriceUpdate]:
    """GET/POST /midpoints {token: mid}, or GET /midpoint {"mid": m} for `token_id`."""
    return combine_price_polls(midpoints=payload, received_ts=received_ts, token_id=token_id)


def parse_spreads(
    payload: Any, received_ts: int, *, token_id: str | None = None
) -> ParseResult[PriceUpdate]:
    """POST /spreads {token: spread} or {"spreads": {...}}, or GET /spread for `token_id`."""
    return combine_price_polls(spreads=payload, received_ts=received_ts, token_id=token_id)


def combine_price_polls(
    *,
    received_ts: int,
    prices: Any = None,
    midpoints: Any = None,
    spreads: Any = None,
    token_id: str | None = None,
) -> ParseResult[PriceUpdate]:
    """The responses of one poll of /prices, /midpoints and /spreads -> one PriceUpdate per token.

    Each argument is a decoded response (None when that endpoint was not polled). Values may be
    numbers or strings ('.41' included). `token_id` names the token of single-token responses
    ({"mid": ...}, {"mid_price": ...}, {"spread": ...}). /prices sides: when both are given the
    lower is the best bid and the higher the best ask (the docs disagree on what BUY means; a
    CLOB book is never crossed, so this holds either way); a lone side follows the 2026 guide
    (BUY = the lowest ask a buyer pays, SELL = the highest bid). `mid` is /midpoints when
    given, else (best_bid + best_ask) / 2; `spread` is /spreads as served. Error paths are
    `$...` when one response is given, `$.prices...`, `$.midpoints...`, `$.spreads...` else.
    """
    result: ParseResult[PriceUpdate] = ParseResult()
    quotes: dict[str, _Quote] = {}
    responses = {"prices": prices, "midpoints": midpoints, "spreads": spreads}
    given = {name: payload for name, payload in responses.items() if payload is not None}
    for name, payload in given.items():
        base = "$" if len(given) == 1 else f"$.{name}"
        for token, value, path in _entries(name, payload, base, token_id, result):
            try:
                if name == "prices":
                    bid, ask = _sides(value, path)
                    quote = quotes.setdefault(token, _Quote())
                    quote.best_bid, quote.best_ask = bid, ask
                elif name == "midpoints":
                    quotes.setdefault(token, _Quote()).mid = dec(value, path)
                else:
                    quotes.setdefault(token, _Quote()).spread = dec(value, path)
            except ParseError as e:
                result.errors.append(e.with_item({token: value}))

    source_ts = received_ts // 1000
    for token, q in quotes.items():
        mid = q.mid if q.mid is not None else midpoint(q.best_bid, q.best_ask)
        result.records.append(
            PriceUpdate(
                token_id=token,
                source="clob",
                kind="poll",
                best_bid=q.best_bid,
                best_ask=q.best_ask,
                mid=mid,
                spread=q.spread,
                source_ts=source_ts,
                received_ts=received_ts,
            )
        )
    return result


_SINGLE_KEYS = {"prices": (), "midpoints": ("mid", "mid_price"), "spreads": ("spread",)}


def _entries(
    endpoint: str,
    payload: Any,
    base: str,
    single_token: str | None,
    result: ParseResult[PriceUpdate],
) -> list[tuple[str, Any, str]]:
    """(token, raw value, path) of one response; unusable entries go to result.errors."""
    if not isinstance(payload, Mapping):
        result.errors.append(ParseError(base, "expected an object keyed by token id"))
        return []
    for key in _SINGLE_KEYS[endpoint]:
        if key in payload and not isinstance(payload[key], Mapping):
            path = key_path(base, key)
            if single_token is None:
                reason = f"a single-token response ({key!r}) needs the token id of the request"
                result.errors.append(ParseError(path, reason, item=payload))
                return []
            try:
                return [(token_id(single_token, "token_id"), payload[key], path)]
            except ParseError as e:
                result.errors.append(e.with_item(payload))
                return []
    if endpoint == "spreads" and isinstance(payload.get("spreads"), Mapping):
        payload, base = payload["spreads"], key_path(base, "spreads")
    entries: list[tuple[str, Any, str]] = []
    for key, value in payload.items():
        path = key_path(base, str(key))
        try:
            entries.append((token_id(key, path), value, path))
        except ParseError as e:
            result.errors.append(e.with_item({key: value}))
    return entries


def _sides(value: Any, path: str) -> tuple[Decimal | None, Decimal | None]:
    """{BUY: p, SELL: p} -> (best_bid, best_ask)."""
    sides = {str(k).upper(): v for k, v in mapping(value, path).items()}
    buy = dec(sides["BUY"], path + ".BUY") if sides.get("BUY") not in (None, "") else None
    sell = dec(sides["SELL"], path + ".SELL") if sides.get("SELL") not in (None, "") else None
    if buy is not None and sell is not None:
        return min(buy, sell), max(buy, sell)
    return sell, buy
