"""CLOB market-data routes under /clob: books, prices, midpoints, spreads, last trades.

Books are served as the live CLOB does (bids ascending, asks descending, decimal strings, ms
timestamp string, `hash` under the current recipe). Single-token routes answer an unknown token
with 400 {"error": "Invalid token id"} and a token of a closed market with 404; batch routes
(at most 500 items, else 400) leave such tokens out of the answer.

/price and /prices follow the 2026 guide: side BUY is the best ask (what a buyer pays), SELL
the best bid.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from producers.simulator.book import ONE, decimal_text, price_text, served_book
from producers.simulator.faults import api_error
from producers.simulator.model import Market
from producers.simulator.state import SimState, json_response, state_of

__all__ = ["MAX_BATCH", "add_clob_routes", "book_text"]

MAX_BATCH = 500
_SIDES = ("BUY", "SELL")
_NO_BOOK = "No orderbook exists for the requested token id"

Token = tuple[Market, int]


class _BadRequestError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def add_clob_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/clob/book", get_book)
    r.add_get("/clob/books", batch(_books, from_query=True))
    r.add_post("/clob/books", batch(_books))
    r.add_get("/clob/price", get_price)
    r.add_get("/clob/prices", batch(_prices, from_query=True, sides=True))
    r.add_post("/clob/prices", batch(_prices, sides=True))
    r.add_get("/clob/midpoint", single(lambda m, o: {"mid": _mid(m, o)}))
    r.add_get("/clob/midpoints", batch(_midpoints, from_query=True))
    r.add_post("/clob/midpoints", batch(_midpoints))
    r.add_get("/clob/spread", single(lambda m, o: {"spread": _spread(m)}))
    r.add_get("/clob/spreads", batch(_spreads, from_query=True))
    r.add_post("/clob/spreads", batch(_spreads))
    r.add_get("/clob/last-trade-price", single(_last_trade))
    r.add_get("/clob/last-trades-prices", batch(_last_trades, from_query=True))
    r.add_post("/clob/last-trades-prices", batch(_last_trades))
    r.add_get("/clob/time", server_time)
    r.add_get("/clob/ok", ok)


# --- values --------------------------------------------------------------------------------
def book_text(state: SimState, market: Market, outcome: int, now_ms: int) -> str:
    """One token's book as served (the bad-hash fault may corrupt its hash)."""
    bids, asks = market.book.levels_json(outcome == 0)
    rate = state.faults.fault_bad_hash
    corrupt = rate > 0 and state.fault_rng.random() < rate
    if corrupt:
        state.stats.bad_hashes += 1
    text, _ = served_book(
        market.book_meta(), market.tokens[outcome], now_ms, bids, asks, corrupt_hash=corrupt
    )
    return text


def _best(market: Market, outcome: int) -> tuple[int, int]:
    return market.book.best(outcome == 0)


def _mid(market: Market, outcome: int) -> str:
    bid, ask = _best(market, outcome)
    return decimal_text((bid + ask) * 5, 10_000)


def _spread(market: Market) -> str:
    return decimal_text(market.book.best_ask - market.book.best_bid, ONE)


def _side_price(market: Market, outcome: int, side: str) -> str:
    bid, ask = _best(market, outcome)
    return price_text(ask if side == "BUY" else bid)


def _last_trade(market: Market, outcome: int) -> dict[str, str]:
    if not market.last_trade:
        return {"price": "0.5", "side": ""}
    if outcome == market.last_token:
        return {"price": price_text(market.last_trade), "side": market.last_side}
    other = "SELL" if market.last_side == "BUY" else "BUY"
    return {"price": price_text(ONE - market.last_trade), "side": other}


# --- single-token routes -------------------------------------------------------------------
def _token(state: SimState, token_id: str | None) -> Token:
    found = state.sim.token(token_id) if token_id else None
    if found is None:
        raise _BadRequestError("Invalid token id")
    if found[0].closed:
        raise _BadRequestError(_NO_BOOK, 404)
    return found


async def get_book(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        market, outcome = _token(state, request.query.get("token_id"))
    except _BadRequestError as e:
        return api_error("clob", e.status, e.message)
    return json_response(book_text(state, market, outcome, state.now_ms()))


async def get_price(request: web.Request) -> web.Response:
    state = state_of(request)
    side = request.query.get("side", "").upper()
    try:
        market, outcome = _token(state, request.query.get("token_id"))
        if side not in _SIDES:
            raise _BadRequestError("Invalid side")
    except _BadRequestError as e:
        return api_error("clob", e.status, e.message)
    return json_response(msgspec.json.encode({"price": _side_price(market, outcome, side)}))


def single(
    value: Callable[[Market, int], dict[str, str]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            market, outcome = _token(state_of(request), request.query.get("token_id"))
        except _BadRequestError as e:
            return api_error("clob", e.status, e.message)
        return json_response(msgspec.json.encode(value(market, outcome)))

    return handler


async def server_time(request: web.Request) -> web.Response:
    return json_response(str(state_of(request).now_ms() // 1000))


async def ok(request: web.Request) -> web.Response:
    return json_response('"OK"')


# --- batch routes --------------------------------------------------------------------------
Item = tuple[str, str]  # (token id, side or "")
BatchBody = Callable[[SimState, list[tuple[Token, str]]], str | bytes]


def batch(
    build: BatchBody, *, from_query: bool = False, sides: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A batch route: parse the items (JSON body or token_ids/sides query), look the tokens
    up (unknown and closed ones are left out) and answer `build(state, tokens)`."""

    async def handler(request: web.Request) -> web.Response:
        state = state_of(request)
        try:
            if from_query:
                items = _query_items(request, sides)
            else:
                items = _body_items(await request.read(), sides)
        except _BadRequestError as e:
            return api_error("clob", e.status, e.message)
        tokens: list[tuple[Token, str]] = []
        for token_id, side in items:
            found = state.sim.token(token_id)
            if found is not None and not found[0].closed:
                tokens.append((found, side))
        return json_response(build(state, tokens))

    return handler


def _query_items(request: web.Request, sides: bool) -> list[Item]:
    tokens = [t for t in request.query.get("token_ids", "").split(",") if t]
    if not sides:
        items = [(t, "") for t in tokens]
    else:
        wanted = [s.upper() for s in request.query.get("sides", "").split(",") if s]
        if len(wanted) != len(tokens) or any(s not in _SIDES for s in wanted):
            raise _BadRequestError("token_ids and sides must be parallel lists of BUY/SELL")
        items = list(zip(tokens, wanted, strict=True))
    return _checked(items)


def _body_items(raw: bytes, sides: bool) -> list[Item]:
    try:
        body: Any = json.loads(raw)
    except ValueError as e:
        raise _BadRequestError("Invalid payload") from e
    if not isinstance(body, list):
        raise _BadRequestError("Invalid payload: expected an array of {token_id}")
    items: list[Item] = []
    for entry in body:
        if not isinstance(entry, dict) or not isinstance(entry.get("token_id"), str):
            raise _BadRequestError("Invalid payload: every item needs a token_id")
        side = entry.get("side")
        side = side.upper() if isinstance(side, str) else ""
        if sides and side not in _SIDES:
            raise _BadRequestError("Invalid side")
        items.append((entry["token_id"], side))
    return _checked(items)


def _checked(items: list[Item]) -> list[Item]:
    if len(items) > MAX_BATCH:
        raise _BadRequestError(f"Too many items: at most {MAX_BATCH} per request")
    return items


def _books(state: SimState, tokens: list[tuple[Token, str]]) -> str:
    now_ms = state.now_ms()
    return "[" + ",".join(book_text(state, m, o, now_ms) for (m, o), _ in tokens) + "]"


def _prices(state: SimState, tokens: list[tuple[Token, str]]) -> bytes:
    out: dict[str, dict[str, str]] = {}
    for (market, outcome), side in tokens:
        out.setdefault(market.tokens[outcome], {})[side] = _side_price(market, outcome, side)
    return msgspec.json.encode(out)


def _midpoints(state: SimState, tokens: list[tuple[Token, str]]) -> bytes:
    return msgspec.json.encode({m.tokens[o]: _mid(m, o) for (m, o), _ in tokens})


def _spreads(state: SimState, tokens: list[tuple[Token, str]]) -> bytes:
    return msgspec.json.encode({m.tokens[o]: _spread(m) for (m, o), _ in tokens})


def _last_trades(state: SimState, tokens: list[tuple[Token, str]]) -> bytes:
    return msgspec.json.encode(
        [{"token_id": m.tokens[o], **_last_trade(m, o)} for (m, o), _ in tokens]
    )
