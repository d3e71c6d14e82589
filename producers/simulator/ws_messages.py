"""Market-channel WebSocket events as the live server sends them (AsyncAPI + captures).

Field names and order follow the captures: `book` (Dec-2025 form: summary fields, then
`event_type`, then `last_trade_price`), `price_change` (one entry per asset: the YES level and
its NO mirror), `last_trade_price` (with `transaction_hash`), `best_bid_ask`,
`tick_size_change`, `new_market`, `market_resolved`. Timestamps are ms strings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

from producers.simulator.book import (
    ONE,
    decimal_text,
    price_text,
    served_book,
    size_text,
    trade_price_text,
)
from producers.simulator.model import Fill, Market

__all__ = [
    "best_bid_ask",
    "book_event",
    "last_trade_prices",
    "market_resolved",
    "new_market",
    "price_change_entries",
    "price_change_event",
    "tick_size_changes",
]

_encode = msgspec.json.encode


def book_event(market: Market, outcome: int, ts_ms: int, *, corrupt_hash: bool = False) -> str:
    """A `book` event. Its hash is the REST hash of the same book at `ts_ms` (the event itself
    lacks min_order_size/tick_size/neg_risk, so a client cannot recompute it)."""
    bids, asks = market.book.levels_json(outcome == 0)
    token = market.tokens[outcome]
    _, digest = served_book(market.book_meta(), token, ts_ms, bids, asks, corrupt_hash=corrupt_hash)
    text = (
        f'{{"market":"{market.condition_id}","asset_id":"{token}","timestamp":"{ts_ms}",'
        f'"hash":"{digest}","bids":{bids},"asks":{asks},"event_type":"book"'
    )
    if market.last_trade:
        text += f',"last_trade_price":"{trade_price_text(market.last_trade)}"'
    return text + "}"


def _order_hash(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def price_change_entries(
    market: Market, ts_ms: int, side: str, price: int
) -> tuple[dict[str, str], dict[str, str]]:
    """The (YES, NO) entries of one YES-book level change (`side` 'bid'/'ask')."""
    book = market.book
    size = size_text(book.size_at(side, price))
    bid, ask = book.best_bid, book.best_ask
    yes, no = market.tokens
    yes_side, no_side = ("BUY", "SELL") if side == "bid" else ("SELL", "BUY")
    return (
        {
            "asset_id": yes,
            "price": price_text(price),
            "size": size,
            "side": yes_side,
            "hash": _order_hash(market.condition_id, ts_ms, yes, price, size),
            "best_bid": price_text(bid),
            "best_ask": price_text(ask),
        },
        {
            "asset_id": no,
            "price": price_text(ONE - price),
            "size": size,
            "side": no_side,
            "hash": _order_hash(market.condition_id, ts_ms, no, price, size),
            "best_bid": price_text(ONE - ask),
            "best_ask": price_text(ONE - bid),
        },
    )


def price_change_event(market: Market, ts_ms: int, entries: Sequence[dict[str, str]]) -> str:
    return _encode(
        {
            "market": market.condition_id,
            "price_changes": list(entries),
            "timestamp": str(ts_ms),
            "event_type": "price_change",
        }
    ).decode()


def last_trade_prices(market: Market, ts_ms: int, fills: Sequence[Fill]) -> str:
    """One frame for a transaction's fills: an object for one fill, an array for several (so
    identical fills of one transaction keep their order and count within the frame)."""
    events = [
        {
            "event_type": "last_trade_price",
            "asset_id": f.token,
            "market": market.condition_id,
            "price": price_text(f.price),
            "size": size_text(f.size),
            "fee_rate_bps": "0",
            "side": f.side,
            "timestamp": str(ts_ms),
            "transaction_hash": f.tx_hash,
        }
        for f in fills
    ]
    return _encode(events[0] if len(events) == 1 else events).decode()


def best_bid_ask(market: Market, outcome: int, ts_ms: int) -> str:
    bid, ask = market.book.best(outcome == 0)
    return _encode(
        {
            "event_type": "best_bid_ask",
            "market": market.condition_id,
            "asset_id": market.tokens[outcome],
            "best_bid": price_text(bid),
            "best_ask": price_text(ask),
            "spread": decimal_text(ask - bid, ONE),
            "timestamp": str(ts_ms),
        }
    ).decode()


def tick_size_changes(market: Market, ts_ms: int, old_tick: int) -> list[tuple[str, str]]:
    """(asset, event) for both tokens."""
    return [
        (
            token,
            _encode(
                {
                    "event_type": "tick_size_change",
                    "asset_id": token,
                    "market": market.condition_id,
                    "old_tick_size": price_text(old_tick),
                    "new_tick_size": price_text(market.tick),
                    "timestamp": str(ts_ms),
                }
            ).decode(),
        )
        for token in market.tokens
    ]


def new_market(market: Market, ts_ms: int) -> str:
    event = market.event
    body: dict[str, Any] = {
        "id": market.id,
        "question": market.question,
        "market": market.condition_id,
        "slug": market.slug,
        "description": f"Simulated market {market.id}.",
        "assets_ids": list(market.tokens),
        "outcomes": list(market.outcomes),
        "event_message": {
            "id": event.id,
            "ticker": event.slug,
            "slug": event.slug,
            "title": event.title,
            "description": f"Markets on: {event.title}",
        },
        "timestamp": str(ts_ms),
        "event_type": "new_market",
        "tags": [t.slug for t in event.tags],
        "condition_id": market.condition_id,
        "active": True,
        "clob_token_ids": list(market.tokens),
        "sports_market_type": "",
        "line": "",
        "game_start_time": "",
        "order_price_min_tick_size": price_text(market.tick),
        "group_item_title": "",
        "taker_base_fee": "1000",
        "fees_enabled": True,
        "fee_schedule": {
            "exponent": "1",
            "rate": "0.05",
            "taker_only": True,
            "rebate_rate": "0.25",
        },
    }
    return _encode(body).decode()


def market_resolved(market: Market, ts_ms: int) -> str:
    winner = market.winner if market.winner >= 0 else 0
    return _encode(
        {
            "event_type": "market_resolved",
            "id": market.id,
            "market": market.condition_id,
            "assets_ids": list(market.tokens),
            "winning_asset_id": market.tokens[winner],
            "winning_outcome": market.outcomes[winner],
            "timestamp": str(ts_ms),
            "tags": [t.slug for t in market.event.tags],
        }
    ).decode()
