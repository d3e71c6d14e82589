"""Data API trade routes under /data: `/v2/trades` (cursor, snake_case envelope) and the
legacy v1 `/trades` (bare camelCase array, limit/offset).

Rows are newest first (block time, then generation order), one per fill on the taker side
(`taker_only`, the default) or two (taker and maker) otherwise. A fill shows up `data_lag_secs`
of simulated time after its match, with `timestamp` = block time in seconds; sizes and prices are
JSON numbers; wallets are served in mixed case.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import msgspec
from aiohttp import web

from producers.simulator.cursors import CursorError, read_v2_cursor, v2_cursor
from producers.simulator.faults import api_error
from producers.simulator.ids import Wallet, wallet
from producers.simulator.model import Fill
from producers.simulator.state import SimState, json_response, state_of

__all__ = ["add_data_routes"]

V2_MAX_LIMIT = 1000
V2_MAX_CONDITIONS = 20
V1_MAX_LIMIT = 500
V1_MAX_OFFSET = 1000
_ICON = "https://polymarket-upload.s3.us-east-2.amazonaws.com/sim-{}.png"


class _BadRequestError(Exception):
    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


def add_data_routes(app: web.Application) -> None:
    app.router.add_get("/data/v2/trades", trades_v2)
    app.router.add_get("/data/trades", trades_v1)


@lru_cache(maxsize=65_536)
def _wallet(seed: int, number: int) -> Wallet:
    return wallet(seed, number)


class _Row:
    """One served row: a fill seen from its taker (leg 0) or its maker (leg 1)."""

    __slots__ = ("fill", "leg", "side", "wallet")

    def __init__(self, fill: Fill, leg: int, seed: int) -> None:
        self.fill = fill
        self.leg = leg
        taker_side = fill.side
        self.side = taker_side if leg == 0 else ("SELL" if taker_side == "BUY" else "BUY")
        self.wallet = _wallet(seed, fill.taker if leg == 0 else fill.maker)

    @property
    def key(self) -> int:
        return self.fill.seq * 2 + self.leg


class _Query:
    def __init__(
        self,
        conditions: list[str] | None,
        taker_only: bool,
        side: str | None,
        user: str | None,
    ) -> None:
        self.conditions = conditions
        self.taker_only = taker_only
        self.side = side
        self.user = user.lower() if user else None

    def rows(self, state: SimState, before_key: int | None) -> Iterator[_Row]:
        cutoff = state.now_ms() - int(state.config.data_lag_secs * 1000)
        before_seq = None if before_key is None else before_key // 2 + 1
        fills = state.sim.trades.newest_first(
            cutoff, before_seq=before_seq, conditions=self.conditions
        )
        legs = (0,) if self.taker_only else (1, 0)
        for fill in fills:
            for leg in legs:
                if before_key is not None and fill.seq * 2 + leg >= before_key:
                    continue
                row = _Row(fill, leg, state.sim.seed)
                if self.side and row.side != self.side:
                    continue
                if self.user and row.wallet.address.lower() != self.user:
                    continue
                yield row


def _flag(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() not in ("true", "false"):
        raise _BadRequestError(f"{name} must be true or false", name)
    return value.lower() == "true"


def _int(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as e:
        raise _BadRequestError(f"{name} must be an integer", name) from e
    if number < 0:
        raise _BadRequestError(f"{name} must be >= 0", name)
    return number


def _side(value: str | None) -> str | None:
    if not value:
        return None
    if value.upper() not in ("BUY", "SELL"):
        raise _BadRequestError("side must be BUY or SELL", "side")
    return value.upper()


def _first(request: web.Request, *names: str) -> str | None:
    for name in names:
        if name in request.query:
            return request.query[name]
    return None


def _v2_row(row: _Row) -> dict[str, Any]:
    f, m = row.fill, row.fill.market
    return {
        "proxy_wallet": row.wallet.address,
        "side": row.side,
        "token_id": f.token,
        "condition_id": m.condition_id,
        "size": f.size / 100,
        "price": f.price / 1000,
        "timestamp": f.block_s,
        "title": m.question,
        "slug": m.slug,
        "icon": _ICON.format(m.event.id),
        "event_slug": m.event.slug,
        "outcome": m.outcomes[f.outcome],
        "outcome_index": f.outcome,
        "name": row.wallet.name,
        "pseudonym": row.wallet.pseudonym,
        "bio": "",
        "profile_image": "",
        "profile_image_optimized": "",
        "transaction_hash": f.tx_hash,
    }


def _v1_row(row: _Row) -> dict[str, Any]:
    f, m = row.fill, row.fill.market
    return {
        "proxyWallet": row.wallet.address,
        "side": row.side,
        "asset": f.token,
        "conditionId": m.condition_id,
        "size": f.size / 100,
        "price": f.price / 1000,
        "timestamp": f.block_s,
        "title": m.question,
        "slug": m.slug,
        "icon": _ICON.format(m.event.id),
        "eventSlug": m.event.slug,
        "outcome": m.outcomes[f.outcome],
        "outcomeIndex": f.outcome,
        "name": row.wallet.name,
        "pseudonym": row.wallet.pseudonym,
        "bio": "",
        "profileImage": "",
        "profileImageOptimized": "",
        "transactionHash": f.tx_hash,
    }


async def trades_v2(request: web.Request) -> web.Response:
    state = state_of(request)
    q = request.query
    try:
        if "offset" in q:
            raise _BadRequestError("offset is not supported; paginate with cursor", "offset")
        raw = _first(request, "condition", "condition_id", "conditionId")
        conditions = [c for c in raw.split(",") if c] if raw else None
        if conditions is not None and len(set(conditions)) > V2_MAX_CONDITIONS:
            raise _BadRequestError(f"at most {V2_MAX_CONDITIONS} condition ids", "condition")
        query = _Query(
            conditions,
            _flag(_first(request, "taker_only", "takerOnly"), "taker_only", True),
            _side(q.get("side")),
            q.get("user"),
        )
        limit, before_key = min(max(_int(q.get("limit"), "limit", 100), 1), V2_MAX_LIMIT), None
        cursor = q.get("cursor")
        if cursor:
            params = read_v2_cursor(state.cursor_secret, cursor, "trades")
            limit, before_key = int(params["l"]), int(params["sq"])
    except (CursorError, KeyError, ValueError) as e:
        return api_error("data", 400, f"invalid cursor: {e}", parameter="cursor")
    except _BadRequestError as e:
        return api_error("data", 400, e.message, parameter=e.parameter)
    rows: list[_Row] = []
    more = False
    for row in query.rows(state, before_key):
        if len(rows) == limit:
            more = True
            break
        rows.append(row)
    next_cursor = None
    if more:
        last = rows[-1]
        params = {"l": limit, "ts": last.fill.block_s, "sq": str(last.key), "d": 2}
        next_cursor = v2_cursor(state.cursor_secret, "trades", params)
    body = {
        "data": [_v2_row(r) for r in rows],
        "pagination": {"limit": limit, "offset": 0, "has_more": more, "next_cursor": next_cursor},
    }
    return json_response(msgspec.json.encode(body))


async def trades_v1(request: web.Request) -> web.Response:
    state = state_of(request)
    q = request.query
    try:
        limit = min(max(_int(q.get("limit"), "limit", 100), 1), V1_MAX_LIMIT)
        offset = _int(q.get("offset"), "offset", 0)
        if offset > V1_MAX_OFFSET:
            raise _BadRequestError(f"offset must be <= {V1_MAX_OFFSET}", "offset")
        raw = q.get("market")
        query = _Query(
            [c for c in raw.split(",") if c] if raw else None,
            _flag(q.get("takerOnly"), "takerOnly", True),
            _side(q.get("side")),
            q.get("user"),
        )
    except _BadRequestError as e:
        return api_error("data-v1", 400, e.message)
    rows: list[dict[str, Any]] = []
    for i, row in enumerate(query.rows(state, None)):
        if i >= offset + limit:
            break
        if i >= offset:
            rows.append(_v1_row(row))
    return json_response(msgspec.json.encode(rows))
