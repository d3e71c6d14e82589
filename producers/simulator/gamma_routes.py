"""Gamma routes under /gamma: keyset listings (preferred), the legacy offset listings, and
single markets/events.

Markets and events are listed in ascending id order. Keyset pages: `limit` clamped to 1..100,
`after_cursor` opaque, `next_cursor` only when the page is full and more remain, `offset` -> 422.
Legacy lists: `limit` clamped to 100, `offset` > 10000 -> 422, deprecation headers.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from multidict import MultiMapping

from producers.simulator.cursors import CursorError, filter_hash, gamma_cursor, read_gamma_cursor
from producers.simulator.faults import api_error
from producers.simulator.gamma_json import event_json, market_json
from producers.simulator.model import Event, Market
from producers.simulator.state import SimState, json_response, state_of

__all__ = ["add_gamma_routes"]

T = TypeVar("T", Market, Event)

MAX_LIMIT = 100
MAX_OFFSET = 10_000
_MARKETS_SCHEMA = "https://gamma-api.polymarket.com/schemas/MarketsKeysetListResponse.json"
_EVENTS_SCHEMA = "https://gamma-api.polymarket.com/schemas/EventsKeysetListResponse.json"
_DEPRECATED = {"Deprecation": "true", "Sunset": "Fri, 01 May 2026 00:00:00 GMT"}


class _InvalidError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def add_gamma_routes(app: web.Application) -> None:
    app.router.add_get("/gamma/markets/keyset", markets_keyset)
    app.router.add_get("/gamma/markets", markets_legacy)
    app.router.add_get("/gamma/markets/{market_id}", market_by_id)
    app.router.add_get("/gamma/events/keyset", events_keyset)
    app.router.add_get("/gamma/events", events_legacy)
    app.router.add_get("/gamma/events/{event_id}", event_by_id)
    app.router.add_get("/gamma/status", status)


# --- query parsing -------------------------------------------------------------------------
def _multi(query: MultiMapping[str], name: str) -> list[str]:
    """A repeated parameter (`id=1&id=2`), also accepting comma-separated values."""
    return [v for raw in query.getall(name, []) for v in raw.split(",") if v]


def _int(query: MultiMapping[str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise _InvalidError(f"{name} must be an integer") from e
    if value < 0:
        raise _InvalidError(f"{name} must be >= 0")
    return value


def _bool(query: MultiMapping[str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false", "1", "0"):
        raise _InvalidError(f"{name} must be true or false")
    return raw.lower() in ("true", "1")


def _limit(query: MultiMapping[str]) -> int:
    return min(max(_int(query, "limit", 20), 1), MAX_LIMIT)


class _MarketFilter:
    def __init__(self, state: SimState, query: MultiMapping[str]) -> None:
        self.closed = _bool(query, "closed", False)
        self.ids = _multi(query, "id")
        self.tokens = _multi(query, "clob_token_ids")
        self.conditions = _multi(query, "condition_ids")
        self.slugs = _multi(query, "slug")
        self.include_tag = _bool(query, "include_tag", False)
        self.hash = filter_hash(
            "markets", self.closed, self.ids, self.tokens, self.conditions, self.slugs
        )
        self._state = state

    def candidates(self) -> Sequence[Market]:
        sim = self._state.sim
        if not (self.ids or self.tokens or self.conditions or self.slugs):
            return sim.markets
        found: dict[str, Market] = {}
        for market_id in self.ids:
            if market_id in sim.by_id:
                found[market_id] = sim.by_id[market_id]
        for token in self.tokens:
            if token in sim.by_token:
                found[sim.by_token[token].id] = sim.by_token[token]
        for condition in self.conditions:
            if condition in sim.by_condition:
                found[sim.by_condition[condition].id] = sim.by_condition[condition]
        if self.slugs:
            wanted = set(self.slugs)
            found |= {m.id: m for m in sim.markets if m.slug in wanted}
        return sorted(found.values(), key=lambda m: m.id_num)

    def __call__(self, market: Market) -> bool:
        return market.closed == self.closed


def _event_ids(event: Event) -> int:
    return int(event.id)


def _market_ids(market: Market) -> int:
    return market.id_num


def _page(
    items: Sequence[T],
    after: int | None,
    limit: int,
    keep: Callable[[T], bool],
    key: Callable[[T], int],
) -> tuple[list[T], bool]:
    """Up to `limit` items after id `after` that `keep` accepts, and whether more remain."""
    start = 0 if after is None else bisect_right(items, after, key=key)
    page: list[T] = []
    for i in range(start, len(items)):
        if keep(items[i]):
            if len(page) == limit:
                return page, True
            page.append(items[i])
    return page, False


def _after(state: SimState, query: MultiMapping[str], kind: str, filters: str) -> int | None:
    if "offset" in query:
        raise _InvalidError("offset is not supported on keyset endpoints; use after_cursor")
    cursor = query.get("after_cursor")
    if not cursor:
        return None
    try:
        return int(read_gamma_cursor(state.cursor_secret, cursor, kind, filters))
    except (CursorError, ValueError) as e:
        raise _InvalidError(f"invalid after_cursor: {e}") from e


# --- handlers ------------------------------------------------------------------------------
async def markets_keyset(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        where = _MarketFilter(state, request.query)
        limit = _limit(request.query)
        after = _after(state, request.query, "markets", where.hash)
    except _InvalidError as e:
        return api_error("gamma", 422, e.message)
    page, more = _page(where.candidates(), after, limit, where, _market_ids)
    body: dict[str, Any] = {
        "$schema": _MARKETS_SCHEMA,
        "markets": [market_json(m, include_tag=where.include_tag) for m in page],
    }
    if more:
        body["next_cursor"] = gamma_cursor(state.cursor_secret, "markets", where.hash, page[-1].id)
    return json_response(msgspec.json.encode(body))


async def markets_legacy(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        where = _MarketFilter(state, request.query)
        limit = _limit(request.query)
        offset = _offset(request.query)
    except _InvalidError as e:
        return api_error("gamma", 422, e.message)
    page = _slice((m for m in where.candidates() if where(m)), offset, limit)
    body = [market_json(m, include_tag=where.include_tag) for m in page]
    return json_response(msgspec.json.encode(body), headers=_DEPRECATED)


async def market_by_id(request: web.Request) -> web.Response:
    state = state_of(request)
    market_id = request.match_info["market_id"]
    if not market_id.isdigit():
        return api_error("gamma", 422, "id must be an integer")
    market = state.sim.by_id.get(market_id)
    if market is None:
        return api_error("gamma", 404, "market not found")
    include_tag = request.query.get("include_tag", "").lower() == "true"
    return json_response(msgspec.json.encode(market_json(market, include_tag=include_tag)))


class _EventFilter:
    def __init__(self, query: MultiMapping[str]) -> None:
        self.closed = _bool(query, "closed", False)
        self.ids = set(_multi(query, "id"))
        self.with_markets = _bool(query, "include_markets", True)
        self.hash = filter_hash("events", self.closed, sorted(self.ids))

    def __call__(self, event: Event) -> bool:
        return event.closed == self.closed and (not self.ids or event.id in self.ids)


async def events_keyset(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        where = _EventFilter(request.query)
        limit = _limit(request.query)
        after = _after(state, request.query, "events", where.hash)
    except _InvalidError as e:
        return api_error("gamma", 422, e.message)
    page, more = _page(state.sim.events, after, limit, where, _event_ids)
    body: dict[str, Any] = {
        "$schema": _EVENTS_SCHEMA,
        "events": [_event(e, where.with_markets) for e in page],
    }
    if more:
        body["next_cursor"] = gamma_cursor(state.cursor_secret, "events", where.hash, page[-1].id)
    return json_response(msgspec.json.encode(body))


async def events_legacy(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        where = _EventFilter(request.query)
        limit = _limit(request.query)
        offset = _offset(request.query)
    except _InvalidError as e:
        return api_error("gamma", 422, e.message)
    page = _slice((e for e in state.sim.events if where(e)), offset, limit)
    body = [_event(e, where.with_markets) for e in page]
    return json_response(msgspec.json.encode(body), headers=_DEPRECATED)


async def event_by_id(request: web.Request) -> web.Response:
    event = state_of(request).sim.events_by_id.get(request.match_info["event_id"])
    if event is None:
        return api_error("gamma", 404, "event not found")
    return json_response(msgspec.json.encode(event_json(event)))


async def status(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


def _event(event: Event, with_markets: bool) -> dict[str, Any]:
    body = event_json(event)
    if not with_markets:
        del body["markets"]
    return body


def _offset(query: MultiMapping[str]) -> int:
    offset = _int(query, "offset", 0)
    if offset > MAX_OFFSET:
        raise _InvalidError(f"offset must be <= {MAX_OFFSET}; use the keyset endpoints")
    return offset


def _slice(items: Iterable[T], offset: int, limit: int) -> list[T]:
    out: list[T] = []
    for i, item in enumerate(items):
        if i >= offset + limit:
            break
        if i >= offset:
            out.append(item)
    return out
