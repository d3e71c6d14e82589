"""CLOB market-channel WebSocket frames -> records. Pure functions, no I/O.

A text frame is a JSON object (one event), a JSON array of events (the initial dump of `book`
snapshots), or a plain-text control message ('PONG', 'NO NEW ASSETS', 'INVALID OPERATION',
'ALREADY SUBSCRIBED'), which yields no record and sets `ParseResult.control`.

| event_type | record |
|---|---|
| book (also book objects without event_type) | BookSnapshot, source 'ws' |
| price_change (price_changes[], legacy flat, older changes[]) | PriceUpdate per level change |
| last_trade_price | Trade, source 'ws' |
| best_bid_ask | PriceUpdate, kind 'best_bid_ask' |
| tick_size_change, new_market, market_resolved | MarketEvent, category 'market' |

Every event (and every price_changes[] entry) is parsed on its own: a bad or unknown one becomes
a ParseError in the result and the others of the frame are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pmpipe.records import (
    BookSnapshot,
    MarketEvent,
    PriceUpdate,
    Trade,
    trade_key,
    ws_trade_key,
)
from producers.parsing.clob import parse_book
from producers.parsing.common import (
    ParseResult,
    compact_json,
    dec,
    epoch_ms,
    first_present,
    int_or_none,
    key_path,
    mapping,
    midpoint,
    opt_dec,
    opt_str,
    sequence,
    side,
    token_id,
)
from producers.parsing.errors import ParseError

__all__ = [
    "CONTROL_MESSAGES",
    "WsRecord",
    "event_type_of",
    "parse_frame",
    "parse_message",
]

WsRecord = BookSnapshot | PriceUpdate | Trade | MarketEvent

CONTROL_MESSAGES = frozenset({"PONG", "NO NEW ASSETS", "INVALID OPERATION", "ALREADY SUBSCRIBED"})

_decoder = msgspec.json.Decoder()


def parse_frame(
    frame: str | bytes, received_ts: int, *, connection_id: str | None = None
) -> ParseResult[WsRecord]:
    """One WebSocket frame as received -> its records, errors, or the control message it was.

    `received_ts` is the local receive time (epoch µs); `connection_id` is stamped on the
    MarketEvents of the frame.
    """
    result: ParseResult[WsRecord] = ParseResult()
    if isinstance(frame, bytes):
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError as e:
            result.errors.append(ParseError("$", f"frame is not UTF-8 text ({e})", item=frame))
            return result
    else:
        text = frame
    stripped = text.strip()
    if stripped in CONTROL_MESSAGES:
        result.control = stripped
        return result
    if not stripped.startswith(("{", "[")):
        reason = f"not JSON and not a known control message: {stripped[:60]!r}"
        result.errors.append(ParseError("$", reason, item=text))
        return result
    try:
        message = _decoder.decode(stripped)
    except msgspec.DecodeError as e:
        result.errors.append(ParseError("$", f"invalid JSON ({e})", item=text))
        return result
    return parse_message(message, received_ts, connection_id=connection_id)


def parse_message(
    message: Any, received_ts: int, *, connection_id: str | None = None, path: str = "$"
) -> ParseResult[WsRecord]:
    """A decoded frame (one event object or an array of events) -> records and errors."""
    frame = _Frame(received_ts, connection_id)
    if isinstance(message, list):
        events = [(f"{path}[{i}]", item) for i, item in enumerate(message)]
    elif isinstance(message, Mapping):
        events = [(path, message)]
    else:
        frame.result.errors.append(ParseError(path, "expected an event object or an array"))
        return frame.result
    for at, event in events:
        try:
            obj = mapping(event, at)
            kind = event_type_of(obj)
            if kind is None:
                raise ParseError(at, f"no event_type and not a known shape (keys: {list(obj)})")
            handler = _HANDLERS.get(kind)
            if handler is None:
                raise ParseError(key_path(at, "event_type"), f"unknown event type {kind!r}")
            handler(obj, at, frame)
        except ParseError as e:
            frame.result.errors.append(e.with_item(event))
    return frame.result


def event_type_of(event: Mapping[str, Any]) -> str | None:
    """The served event_type, else the type its shape shows (live `book` frames were seen
    without event_type); None when neither tells."""
    served = event.get("event_type")
    if isinstance(served, str) and served:
        return served
    if "bids" in event or "asks" in event:
        return "book"
    if "price_changes" in event or "changes" in event:
        return "price_change"
    if "new_tick_size" in event:
        return "tick_size_change"
    if "winning_asset_id" in event:
        return "market_resolved"
    if "fee_rate_bps" in event or "transaction_hash" in event:
        return "last_trade_price"
    if "spread" in event and "best_bid" in event:
        return "best_bid_ask"
    return None


# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Frame:
    received_ts: int
    connection_id: str | None
    result: ParseResult[WsRecord] = field(default_factory=ParseResult)
    fills: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def occurrence(self, fill: tuple[str, ...]) -> int:
        """Ordinal of an identical fill within this frame (0 for the first)."""
        n = self.fills[fill]
        self.fills[fill] = n + 1
        return n


def _book(event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    frame.result.records.append(parse_book(event, frame.received_ts, source="ws", path=path))


def _price_change(event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    market = opt_str(event, "market", path)
    ts = epoch_ms(event.get("timestamp"), key_path(path, "timestamp"))
    changes: list[tuple[str, Any, str | None, str | None]]
    if "price_changes" in event:  # since 2025-09-15: one entry per (asset, level)
        entries_path = key_path(path, "price_changes")
        entries = sequence(event["price_changes"], entries_path)
        changes = [(f"{entries_path}[{i}]", e, None, None) for i, e in enumerate(entries)]
    elif "changes" in event:  # 2024: one asset, changes [{price, side, size}], one hash
        asset = token_id(event.get("asset_id"), key_path(path, "asset_id"))
        book_hash = opt_str(event, "hash", path)
        entries_path = key_path(path, "changes")
        entries = sequence(event["changes"], entries_path)
        changes = [(f"{entries_path}[{i}]", e, asset, book_hash) for i, e in enumerate(entries)]
    else:  # legacy flat form: the event itself is the change
        changes = [(path, event, None, None)]
    for at, entry, token, order_hash in changes:
        try:
            frame.result.records.append(
                _level_change(entry, at, frame, market, ts, token=token, order_hash=order_hash)
            )
        except ParseError as e:
            frame.result.errors.append(e.with_item(entry))


def _level_change(
    raw: Any,
    path: str,
    frame: _Frame,
    market: str | None,
    ts: int,
    *,
    token: str | None,
    order_hash: str | None,
) -> PriceUpdate:
    entry = mapping(raw, path)
    best_bid = opt_dec(entry, "best_bid", path)
    best_ask = opt_dec(entry, "best_ask", path)
    return PriceUpdate(
        token_id=token or token_id(entry.get("asset_id"), key_path(path, "asset_id")),
        condition_id=market,
        source="ws",
        kind="price_change",
        best_bid=best_bid,
        best_ask=best_ask,
        mid=midpoint(best_bid, best_ask),
        change_side=side(entry.get("side"), key_path(path, "side")),
        change_price=dec(entry.get("price"), key_path(path, "price")),
        change_size=opt_dec(entry, "size", path),
        order_hash=opt_str(entry, "hash", path) or order_hash,
        source_ts=ts,
        received_ts=frame.received_ts,
    )


def _last_trade_price(event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    token = token_id(event.get("asset_id"), key_path(path, "asset_id"))
    ts = epoch_ms(event.get("timestamp"), key_path(path, "timestamp"))
    taker_side = side(event.get("side"), key_path(path, "side"))
    price = dec(event.get("price"), key_path(path, "price"))
    size = dec(event.get("size"), key_path(path, "size"))
    tx = opt_str(event, "transaction_hash", path)
    tx = tx.lower() if tx else None
    occurrence = frame.occurrence((tx or str(ts), token, taker_side, str(price), str(size)))
    if tx:
        key = trade_key(tx, token, side=taker_side, price=price, size=size, occurrence=occurrence)
    else:
        key = ws_trade_key(
            token, ts, side=taker_side, price=price, size=size, occurrence=occurrence
        )
    frame.result.records.append(
        Trade(
            trade_key=key,
            token_id=token,
            condition_id=opt_str(event, "market", path),
            transaction_hash=tx,
            side=taker_side,
            price=price,
            size=size,
            fee_rate_bps=int_or_none(event, "fee_rate_bps", path),
            occurrence=occurrence,
            source="ws",
            source_ts=ts,
            received_ts=frame.received_ts,
        )
    )


def _best_bid_ask(event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    best_bid = opt_dec(event, "best_bid", path)
    best_ask = opt_dec(event, "best_ask", path)
    frame.result.records.append(
        PriceUpdate(
            token_id=token_id(event.get("asset_id"), key_path(path, "asset_id")),
            condition_id=opt_str(event, "market", path),
            source="ws",
            kind="best_bid_ask",
            best_bid=best_bid,
            best_ask=best_ask,
            mid=midpoint(best_bid, best_ask),
            spread=opt_dec(event, "spread", path),
            source_ts=epoch_ms(event.get("timestamp"), key_path(path, "timestamp")),
            received_ts=frame.received_ts,
        )
    )


def _tick_size_change(event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    token = token_id(event.get("asset_id"), key_path(path, "asset_id"))
    frame.result.records.append(
        MarketEvent(
            event_type="tick_size_change",
            category="market",
            token_id=token,
            condition_id=opt_str(event, "market", path),
            token_ids=(token,),
            connection_id=frame.connection_id,
            old_tick_size=opt_dec(event, "old_tick_size", path),
            new_tick_size=dec(event.get("new_tick_size"), key_path(path, "new_tick_size")),
            source="ws",
            source_ts=epoch_ms(event.get("timestamp"), key_path(path, "timestamp")),
            received_ts=frame.received_ts,
        )
    )


def _new_market(event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    _market_lifecycle("new_market", event, path, frame)


def _market_resolved(event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    _market_lifecycle("market_resolved", event, path, frame)


def _market_lifecycle(kind: str, event: Mapping[str, Any], path: str, frame: _Frame) -> None:
    """new_market / market_resolved: the whole payload is kept as JSON in `detail`."""
    winner = event.get("winning_asset_id")
    frame.result.records.append(
        MarketEvent(
            event_type=kind,
            category="market",
            condition_id=opt_str(event, "market", path) or opt_str(event, "condition_id", path),
            market_id=opt_str(event, "id", path),
            token_ids=_token_list(event, path),
            connection_id=frame.connection_id,
            winning_token_id=(
                token_id(winner, key_path(path, "winning_asset_id")) if winner else None
            ),
            winning_outcome=opt_str(event, "winning_outcome", path),
            detail=compact_json(event),
            source="ws",
            source_ts=epoch_ms(event.get("timestamp"), key_path(path, "timestamp")),
            received_ts=frame.received_ts,
        )
    )


def _token_list(event: Mapping[str, Any], path: str) -> tuple[str, ...]:
    name = first_present(event, ("assets_ids", "clob_token_ids"))
    if name is None:
        return ()
    at = key_path(path, name)
    return tuple(token_id(t, f"{at}[{i}]") for i, t in enumerate(sequence(event[name], at)))


_HANDLERS: dict[str, Callable[[Mapping[str, Any], str, _Frame], None]] = {
    "book": _book,
    "price_change": _price_change,
    "last_trade_price": _last_trade_price,
    "best_bid_ask": _best_bid_ask,
    "tick_size_change": _tick_size_change,
    "new_market": _new_market,
    "market_resolved": _market_resolved,
}
