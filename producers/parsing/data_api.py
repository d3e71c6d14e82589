"""Data API trades -> Trade records (source 'data_api'). Pure functions, no I/O.

Accepted shapes: v1 `GET /trades` (bare array, camelCase) and v2 `GET /v2/trades`
({"data": [...], "pagination": {...}}, snake_case; `data: null` is an empty page). Prices and
sizes are JSON floats, converted through their shortest text and rounded half-even to 6 places;
`timestamp` is the block time in seconds; wallets are lower-cased.

There is no trade id: `trade_key` is `transaction_hash|token_id|side|price|size|occurrence`,
where occurrence is the ordinal of the row among identical (tx, token, side, price, size) rows
of the same response, so re-reading a page yields the same keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pmpipe.records import Trade, trade_key
from producers.parsing.common import (
    ParseResult,
    dec,
    first_present,
    int_or_none,
    key_path,
    mapping,
    opt_str,
    side,
    token_id,
)
from producers.parsing.errors import ParseError

__all__ = ["parse_trades", "trades_cursor"]

# v1 camelCase name, v2 snake_case name
_FIELDS = {
    "token": ("asset", "token_id"),
    "condition": ("conditionId", "condition_id"),
    "wallet": ("proxyWallet", "proxy_wallet"),
    "tx": ("transactionHash", "transaction_hash"),
    "outcome_index": ("outcomeIndex", "outcome_index"),
}


def parse_trades(payload: Any, received_ts: int) -> ParseResult[Trade]:
    """One Data API response (v1 array or v2 envelope) -> Trade records, in served order."""
    result: ParseResult[Trade] = ParseResult()
    if isinstance(payload, Mapping) and "data" in payload:
        rows, base = payload["data"], "$.data"
        if rows is None:
            return result
    else:
        rows, base = payload, "$"
    if not isinstance(rows, list):
        result.errors.append(ParseError(base, "expected an array of trades"))
        return result
    seen: Counter[tuple[str, ...]] = Counter()
    for i, row in enumerate(rows):
        path = f"{base}[{i}]"
        try:
            result.records.append(_trade(row, received_ts, path, seen))
        except ParseError as e:
            result.errors.append(e.with_item(row))
    return result


def trades_cursor(payload: Any) -> str | None:
    """v2 `pagination.next_cursor` (None on the last page and for v1 arrays)."""
    if isinstance(payload, Mapping) and isinstance(payload.get("pagination"), Mapping):
        cursor = payload["pagination"].get("next_cursor")
        if isinstance(cursor, str) and cursor:
            return cursor
    return None


def _trade(raw: Any, received_ts: int, path: str, seen: Counter[tuple[str, ...]]) -> Trade:
    row = mapping(raw, path)
    token = token_id(row.get(_name(row, "token")), key_path(path, _name(row, "token")))
    tx_field = _name(row, "tx")
    tx = opt_str(row, tx_field, path)
    if tx is None:
        raise ParseError(key_path(path, tx_field), "missing: a trade cannot be keyed without it")
    tx = tx.lower()
    trade_side = side(row.get("side"), key_path(path, "side"))
    price = dec(row.get("price"), key_path(path, "price"))
    size = dec(row.get("size"), key_path(path, "size"))
    block_s = int_or_none(row, "timestamp", path)
    if block_s is None:
        raise ParseError(key_path(path, "timestamp"), "missing")
    wallet = opt_str(row, _name(row, "wallet"), path)
    identity = (tx, token, trade_side, str(price), str(size))
    occurrence = seen[identity]
    seen[identity] += 1
    return Trade(
        trade_key=trade_key(
            tx, token, side=trade_side, price=price, size=size, occurrence=occurrence
        ),
        token_id=token,
        condition_id=opt_str(row, _name(row, "condition"), path),
        transaction_hash=tx,
        side=trade_side,
        price=price,
        size=size,
        proxy_wallet=wallet.lower() if wallet else None,
        outcome=opt_str(row, "outcome", path),
        outcome_index=int_or_none(row, _name(row, "outcome_index"), path),
        occurrence=occurrence,
        source="data_api",
        source_ts=block_s * 1000,
        received_ts=received_ts,
    )


def _name(row: Mapping[str, Any], field: str) -> str:
    """The key this row uses for `field` (v1 camelCase or v2 snake_case)."""
    names = _FIELDS[field]
    return first_present(row, names) or names[0]
