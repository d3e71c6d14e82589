"""The market channel at /ws/market: subscriptions, fan-out of engine events, WS faults.

Protocol (API.md section 4.1): the client subscribes with
`{"assets_ids": [...], "type": "market", "custom_feature_enabled": true, "initial_dump": true}`
and gets one JSON-array frame of `book` events for the assets it subscribed; then events only
for its assets (`new_market` goes to every connection with custom features). Text `PING` ->
`PONG`; `{"operation": "subscribe"|"unsubscribe", "assets_ids": [...]}` changes the set; a
subscribe that adds nothing -> `NO NEW ASSETS`; anything else -> `INVALID OPERATION`.

Each connection has a bounded queue drained by its own writer task; a client that lets it fill
up is disconnected, as a real server would. Faults: `fault_ws_drop_every_secs` aborts the TCP
connection S seconds after it opened (or after the fault was switched on);
`fault_ws_silent_after_secs` stops data after S seconds while PONGs keep coming;
`fault_ws_malformed` truncates that fraction of data frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import WSMsgType, web

from producers.simulator import ws_messages as msg
from producers.simulator.engine import Listener
from producers.simulator.model import Fill, Market
from producers.simulator.state import SimState, state_of

__all__ = ["HUB", "Connection", "Hub", "ws_market"]

log = logging.getLogger(__name__)

QUEUE_FRAMES = 10_000
_ids = itertools.count(1)


class Connection:
    __slots__ = (
        "assets",
        "custom",
        "id",
        "opened",
        "queue",
        "silent",
        "transport",
        "ws",
    )

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        self.id = next(_ids)
        self.ws = ws
        self.transport = transport
        self.assets: set[str] = set()
        self.custom = False
        self.opened = time.monotonic()
        self.silent = False
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_FRAMES)

    def put(self, frame: str | None) -> bool:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True


class Hub(Listener):
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.connections: set[Connection] = set()
        self.by_asset: dict[str, set[Connection]] = {}

    # --- connections -------------------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.state.stats.ws_connections = len(self.connections)
        self.state.stats.ws_connections_total += 1

    def remove(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.unsubscribe(conn, list(conn.assets))
        self.state.stats.ws_connections = len(self.connections)

    def subscribe(self, conn: Connection, assets: Iterable[str]) -> list[str]:
        added = [a for a in dict.fromkeys(assets) if a not in conn.assets]
        for asset in added:
            conn.assets.add(asset)
            self.by_asset.setdefault(asset, set()).add(conn)
        return added

    def unsubscribe(self, conn: Connection, assets: Iterable[str]) -> None:
        for asset in assets:
            conn.assets.discard(asset)
            subscribers = self.by_asset.get(asset)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.by_asset[asset]

    def control(self, conn: Connection, text: str) -> None:
        """PONG / NO NEW ASSETS / INVALID OPERATION: never silenced nor corrupted."""
        conn.put(text)

    def data(self, conn: Connection, frame: str) -> None:
        stats, faults = self.state.stats, self.state.faults
        if conn.silent:
            return
        rate = faults.fault_ws_malformed
        if rate > 0 and self.state.fault_rng.random() < rate:
            stats.ws_malformed += 1
            frame = frame[: max(1, len(frame) // 2)]
        if conn.put(frame):
            stats.ws_frames += 1
        else:
            log.warning("ws connection %d: send queue full, disconnecting", conn.id)
            self.abort(conn)

    def abort(self, conn: Connection) -> None:
        if conn.transport is not None:
            conn.transport.abort()
        conn.put(None)
        self.remove(conn)

    def initial_dump(self, conn: Connection, assets: Sequence[str]) -> None:
        now_ms = self.state.now_ms()
        books = []
        for asset in assets:
            found = self.state.sim.token(asset)
            if found is not None and not found[0].closed:
                books.append(self._book(found[0], found[1], now_ms))
        if books:
            self.data(conn, "[" + ",".join(books) + "]")

    def check_faults(self) -> None:
        """Apply the WebSocket faults (called a few times a second)."""
        faults, stats = self.state.faults, self.state.stats
        now = time.monotonic()
        for conn in list(self.connections):
            since = now - max(conn.opened, self.state.faults_changed_at)
            drop = faults.fault_ws_drop_every_secs
            if drop > 0 and since >= drop:
                stats.ws_dropped += 1
                log.info("fault: dropping ws connection %d", conn.id)
                self.abort(conn)
                continue
            silent_after = faults.fault_ws_silent_after_secs
            silent = silent_after > 0 and since >= silent_after
            if silent and not conn.silent:
                stats.ws_silenced += 1
                log.info("fault: ws connection %d goes silent", conn.id)
            conn.silent = silent

    # --- engine events -----------------------------------------------------------------------
    def _subscribers(self, market: Market) -> tuple[set[Connection], set[Connection]]:
        empty: set[Connection] = set()
        yes, no = market.tokens
        return self.by_asset.get(yes, empty), self.by_asset.get(no, empty)

    def _book(self, market: Market, outcome: int, ts_ms: int) -> str:
        rate = self.state.faults.fault_bad_hash
        corrupt = rate > 0 and self.state.fault_rng.random() < rate
        if corrupt:
            self.state.stats.bad_hashes += 1
        return msg.book_event(market, outcome, ts_ms, corrupt_hash=corrupt)

    def on_level_change(
        self, market: Market, ts_ms: int, side: str, price: int, best_changed: bool
    ) -> None:
        yes_subs, no_subs = self._subscribers(market)
        if not yes_subs and not no_subs:
            return
        yes, no = msg.price_change_entries(market, ts_ms, side, price)
        variants: dict[tuple[bool, bool], str] = {}
        for conn in yes_subs | no_subs:
            key = (conn in yes_subs, conn in no_subs)
            if key not in variants:
                entries = [e for e, on in zip((yes, no), key, strict=True) if on]
                variants[key] = msg.price_change_event(market, ts_ms, entries)
            self.data(conn, variants[key])
        if best_changed:
            self._best_bid_ask(market, ts_ms, yes_subs, no_subs)

    def _best_bid_ask(
        self, market: Market, ts_ms: int, yes_subs: set[Connection], no_subs: set[Connection]
    ) -> None:
        for outcome, subs in enumerate((yes_subs, no_subs)):
            custom = [c for c in subs if c.custom]
            if custom:
                frame = msg.best_bid_ask(market, outcome, ts_ms)
                for conn in custom:
                    self.data(conn, frame)

    def on_trade(
        self, market: Market, ts_ms: int, fills: Sequence[Fill], best_changed: bool
    ) -> None:
        yes_subs, no_subs = self._subscribers(market)
        if not yes_subs and not no_subs:
            return
        traded = (yes_subs, no_subs)[fills[0].outcome]
        if traded:
            frame = msg.last_trade_prices(market, ts_ms, fills)
            for conn in traded:
                self.data(conn, frame)
        for outcome, subs in enumerate((yes_subs, no_subs)):
            if subs:
                frame = self._book(market, outcome, ts_ms)
                for conn in subs:
                    self.data(conn, frame)
        if best_changed:
            self._best_bid_ask(market, ts_ms, yes_subs, no_subs)

    def on_tick_size_change(self, market: Market, ts_ms: int, old_tick: int) -> None:
        for asset, frame in msg.tick_size_changes(market, ts_ms, old_tick):
            for conn in self.by_asset.get(asset, ()):
                self.data(conn, frame)

    def on_new_market(self, market: Market, ts_ms: int) -> None:
        custom = [c for c in self.connections if c.custom]
        if custom:
            frame = msg.new_market(market, ts_ms)
            for conn in custom:
                self.data(conn, frame)

    def on_market_resolved(self, market: Market, ts_ms: int) -> None:
        yes_subs, no_subs = self._subscribers(market)
        custom = [c for c in yes_subs | no_subs if c.custom]
        if custom:
            frame = msg.market_resolved(market, ts_ms)
            for conn in custom:
                self.data(conn, frame)


HUB: web.AppKey[Hub] = web.AppKey("simulator_ws_hub", Hub)


# --- the handler ---------------------------------------------------------------------------
async def _writer(conn: Connection) -> None:
    while True:
        frame = await conn.queue.get()
        if frame is None or conn.ws.closed:
            return
        try:
            await conn.ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            return


def _handle_text(hub: Hub, conn: Connection, text: str) -> None:
    stripped = text.strip()
    if stripped.upper() == "PING":
        hub.control(conn, "PONG")
        return
    try:
        request: Any = json.loads(stripped)
        assets = request["assets_ids"] if isinstance(request, dict) else None
    except (ValueError, KeyError):
        assets = None
    if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
        hub.control(conn, "INVALID OPERATION")
        return
    operation = str(request.get("operation", "subscribe")).lower()
    if "operation" not in request and str(request.get("type", "")).lower() != "market":
        hub.control(conn, "INVALID OPERATION")
        return
    if operation == "unsubscribe":
        hub.unsubscribe(conn, assets)
        return
    if operation != "subscribe":
        hub.control(conn, "INVALID OPERATION")
        return
    if request.get("custom_feature_enabled") is True:
        conn.custom = True
    added = hub.subscribe(conn, assets)
    if not added:
        hub.control(conn, "NO NEW ASSETS")
    elif request.get("initial_dump", True) is not False:
        hub.initial_dump(conn, added)


async def ws_market(request: web.Request) -> web.WebSocketResponse:
    state = state_of(request)
    hub = request.app[HUB]
    ws = web.WebSocketResponse(max_msg_size=16 * 2**20)
    await ws.prepare(request)
    conn = Connection(ws, request.transport)
    hub.add(conn)
    log.debug("ws connection %d opened", conn.id)
    writer = asyncio.create_task(_writer(conn))
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                _handle_text(hub, conn, message.data)
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        hub.remove(conn)
        conn.put(None)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.QueueFull):
            await asyncio.wait_for(writer, timeout=1.0)
        writer.cancel()
        log.debug("ws connection %d closed (%d open)", conn.id, state.stats.ws_connections)
    return ws
