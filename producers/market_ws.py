"""WebSocket relay of the CLOB market channel, sharded, with gaps published as data.

Every tradable token is subscribed on some connection. A token's shard is a hash of its id
modulo a shard count fixed at the first subscription (tokens / (shard size x 0.7)), so a
restart with the same universe maps tokens the same way; a shard that outgrows the shard size
opens a further connection ("slot"). As the universe changes, tokens are added and removed
with dynamic `subscribe` / `unsubscribe` operations on their connection. With several
producer replicas (producers/replicas.py), a relay subscribes only its replica's share of the
universe, and its continuity events name the replica (`"replica": "i/n"` in `detail`).

Each connection sends the text `PING` every ws_ping_secs, is dead without a `PONG` for
ws_pong_timeout_secs, and is recycled when no data frame arrived for ws_silence_secs (the
"silent freeze"). It reconnects with exponential backoff and jitter and resubscribes. Every
connect, disconnect, silence, resubscribe and the gap after a reconnect go to
polymarket.events (category 'continuity'); every frame goes to polymarket.ws_raw exactly as
received; parsed records go to their topics and unparseable events to the DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from pmpipe.errors import PipelineError
from pmpipe.records import WsFrame
from producers.http import USER_AGENT, backoff_delays
from producers.parsing.market_ws import parse_frame
from producers.replicas import SOLE, Replica, TokenShare
from producers.settings import Settings
from producers.state import Publisher, continuity_event, now_ms, now_us
from producers.tokens import TokenUniverse

__all__ = ["Connection", "MarketWsRelay", "shard_count", "shard_of", "subscribe_message"]

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024 * 1024
SHARD_FILL = 0.7
_TICK_SECS = 0.5
_FEED = "ws"


def shard_of(token_id: str, shards: int) -> int:
    """The shard of a token: stable across processes and restarts."""
    digest = hashlib.blake2b(token_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_count(tokens: int, shard_size: int) -> int:
    return max(1, math.ceil(tokens / (shard_size * SHARD_FILL)))


def subscribe_message(tokens: Iterable[str]) -> str:
    return json.dumps(
        {
            "assets_ids": sorted(tokens),
            "type": "market",
            "custom_feature_enabled": True,
            "initial_dump": True,
        }
    )


def operation_message(operation: str, tokens: Iterable[str]) -> str:
    body: dict[str, Any] = {"operation": operation, "assets_ids": sorted(tokens)}
    if operation == "subscribe":
        body["custom_feature_enabled"] = True
    return json.dumps(body)


class ConnectionDeadError(Exception):
    """The heartbeat or the watchdog gave up on a connection."""


class Connection:
    """One socket serving the tokens of one slot of one shard, reconnecting until closed."""

    def __init__(self, relay: MarketWsRelay, shard: int, slot: int, tokens: Iterable[str]) -> None:
        self.relay = relay
        self.shard = shard
        self.slot = slot
        self.tokens: set[str] = set(tokens)
        self.connection_id = ""
        self.sessions = 0
        self._ws: ClientConnection | None = None
        self._subscribed = False
        self._seq = 0
        self._last_data_ms: int | None = None  # wall clock, for gap events
        self._last_data = 0.0  # monotonic, for the watchdog
        self._last_pong = 0.0
        self._gap_start: int | None = None  # set while a gap after a reconnect is open
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"ws-{self.shard}-{self.slot}")
        self._task.add_done_callback(self.relay.connection_done)

    async def close(self, reason: str) -> None:
        """Emit 'disconnected' (when connected), then close the socket and stop."""
        if self._closing:
            return
        self._closing = True
        if self._ws is not None:
            await self._event("disconnected", gap_start=self._last_data_ms, detail=reason)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def subscribe(self, tokens: list[str]) -> None:
        await self._operation("subscribe", tokens)

    async def unsubscribe(self, tokens: list[str]) -> None:
        await self._operation("unsubscribe", tokens)

    async def _operation(self, operation: str, tokens: list[str]) -> None:
        """Send a dynamic (un)subscribe; when not subscribed yet, the next connect covers it."""
        ws = self._ws
        if ws is None or not self._subscribed or not tokens:
            return
        try:
            await ws.send(operation_message(operation, tokens))
        except ConnectionClosed as e:
            log.info(
                "ws %s: %s of %d tokens not sent (%s)",
                self.connection_id,
                operation,
                len(tokens),
                e,
            )
            return
        self.relay.counters[f"{operation}_ops"] += 1
        log.info(
            "ws %s shard=%d: %s %d tokens (now %d)",
            self.connection_id,
            self.shard,
            operation,
            len(tokens),
            len(self.tokens),
        )

    # -- the connection loop ----------------------------------------------------------------
    async def _run(self) -> None:
        settings = self.relay.settings
        delays = backoff_delays(base_secs=1.0, max_secs=settings.ws_backoff_max_secs)
        while not self._closing:
            self._seq = 0
            try:
                await self._session()
                reason = "closed by the server"
            except ConnectionClosed as e:
                reason = f"connection closed: {e}"
            except (ConnectionDeadError, OSError, TimeoutError, WebSocketException) as e:
                reason = f"{type(e).__name__}: {e}"
            except PipelineError as e:  # publishing failed (registry unreachable...)
                reason = f"cannot publish: {e}"
            finally:
                ws, self._ws, self._subscribed = self._ws, None, False
                if ws is not None:
                    await ws.close()
            if self._closing:
                return
            if ws is not None:
                self.relay.counters["disconnects"] += 1
                await self._event("disconnected", gap_start=self._last_data_ms, detail=reason)
                self._gap_start = self._last_data_ms or now_ms()
            if self._seq > 0:  # the connection worked: start the backoff over
                delays = backoff_delays(base_secs=1.0, max_secs=settings.ws_backoff_max_secs)
            delay = next(delays)
            log.warning(
                "ws shard=%d slot=%d: %s; reconnecting in %.1f s",
                self.shard,
                self.slot,
                reason,
                delay,
            )
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One socket, from connect to its end."""
        settings = self.relay.settings
        async with self.relay.connect_gate:  # no thundering herd of handshakes at start
            ws = await connect(
                self.relay.url,
                max_size=MAX_FRAME_BYTES,
                ping_interval=None,
                open_timeout=settings.ws_open_timeout_secs,
                close_timeout=5,
                user_agent_header=USER_AGENT,
            )
        self._ws = ws
        self.sessions += 1
        self.connection_id = f"ws-{self.shard}-{self.slot}-{uuid.uuid4().hex[:10]}"
        self._seq = 0
        now = time.monotonic()
        self._last_data = self._last_pong = now
        reconnect = self.sessions > 1
        self.relay.counters["connects"] += 1
        await self._event("connected", gap_start=self._gap_start if reconnect else None)
        self._subscribed = True
        await ws.send(subscribe_message(self.tokens))
        if reconnect:
            self.relay.counters["resubscribes"] += 1
            await self._event("resubscribed", gap_start=self._gap_start)
        log.info(
            "ws %s connected: shard=%d slot=%d tokens=%d session=%d",
            self.connection_id,
            self.shard,
            self.slot,
            len(self.tokens),
            self.sessions,
        )
        reader = asyncio.create_task(self._read(ws))
        beat = asyncio.create_task(self._heartbeat(ws))
        try:
            done, _ = await asyncio.wait({reader, beat}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, beat):
                task.cancel()
            await asyncio.gather(reader, beat, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            await self._on_frame(frame)

    async def _on_frame(self, frame: str | bytes) -> None:
        received_ts = now_us()
        relay = self.relay
        payload = frame.encode("utf-8") if isinstance(frame, str) else frame
        await relay.publisher.publish(
            WsFrame(
                connection_id=self.connection_id,
                seq=self._seq,
                url=relay.url,
                shard=self.shard,
                is_binary=isinstance(frame, bytes),
                payload=payload,
                received_ts=received_ts,
            )
        )
        self._seq += 1
        relay.counters["frames"] += 1
        result = parse_frame(frame, received_ts, connection_id=self.connection_id)
        if result.control is not None:
            relay.counters[f"control_{result.control.lower().replace(' ', '_')}"] += 1
            if result.control == "PONG":
                self._last_pong = time.monotonic()
            return
        self._last_data = time.monotonic()
        self._last_data_ms = received_ts // 1000
        if self._gap_start is not None:
            gap_start, self._gap_start = self._gap_start, None
            relay.counters["gaps"] += 1
            await self._event("gap", gap_start=gap_start, gap_end=self._last_data_ms)
        for record in result.records:
            await relay.publisher.publish(record)
            relay.counters[record.TOPIC] += 1
        await relay.publisher.dead_letters_of(_FEED, result.errors, received_ts)
        relay.counters["parse_errors"] += len(result.errors)

    async def _heartbeat(self, ws: ClientConnection) -> None:
        settings = self.relay.settings
        last_ping = 0.0
        while True:
            now = time.monotonic()
            if now - last_ping >= settings.ws_ping_secs:
                await ws.send("PING")
                last_ping = now
            if now - self._last_pong > settings.ws_pong_timeout_secs:
                self.relay.counters["pong_timeouts"] += 1
                raise ConnectionDeadError(f"no PONG for {now - self._last_pong:.0f} s")
            if now - self._last_data > settings.ws_silence_secs:
                self.relay.counters["silences"] += 1
                detail = f"no data for {now - self._last_data:.0f} s (PONGs fine)"
                await self._event("silent", gap_start=self._last_data_ms, detail=detail)
                raise ConnectionDeadError(f"silent socket: {detail}")
            await asyncio.sleep(_TICK_SECS)

    async def _event(
        self,
        event_type: str,
        *,
        gap_start: int | None = None,
        gap_end: int | None = None,
        detail: str | None = None,
    ) -> None:
        context: dict[str, Any] = {"shard": self.shard, "slot": self.slot, "url": self.relay.url}
        if self.relay.replica.split:
            context["replica"] = str(self.relay.replica)
        if detail:
            context["reason"] = detail
        await self.relay.publisher.publish(
            continuity_event(
                event_type,
                connection_id=self.connection_id or None,
                token_ids=sorted(self.tokens),
                gap_start=gap_start,
                gap_end=gap_end,
                detail=json.dumps(context),
            )
        )


class MarketWsRelay:
    """Keeps one connection per shard slot subscribed to this replica's share of the tokens."""

    name = _FEED

    def __init__(
        self,
        url: str,
        publisher: Publisher,
        universe: TokenUniverse,
        settings: Settings,
        *,
        replica: Replica = SOLE,
    ) -> None:
        self.url = url
        self.publisher = publisher
        self.universe = universe
        self.settings = settings
        self.replica = replica
        self._share = TokenShare(replica)
        self.counters: Counter[str] = Counter()
        self.shards: int | None = None
        self._slots: dict[int, list[Connection]] = defaultdict(list)
        self._owner: dict[str, Connection] = {}
        self._failure: BaseException | None = None
        self.connect_gate = asyncio.Semaphore(settings.ws_connect_concurrency)

    def connection_done(self, task: asyncio.Task[None]) -> None:
        """A connection task ended: fine when closed, a bug otherwise (run() re-raises it)."""
        if not task.cancelled() and task.exception() is not None:
            log.error("ws: connection task %s failed", task.get_name(), exc_info=task.exception())
            self._failure = task.exception()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the universe until `stop` is set, then close every connection."""
        version = -1
        try:
            while not stop.is_set():
                if self._failure is not None:
                    raise PipelineError(f"a WebSocket connection failed: {self._failure!r}")
                if self.universe.version != version:
                    version = self.universe.version
                    await self.sync(frozenset(self._share.of(self.universe.token_set())))
                await self.universe.wait_changed(version, 1.0)
        finally:
            await self.close("shutdown")

    async def sync(self, wanted: frozenset[str]) -> None:
        """Subscribe what is new, unsubscribe what is gone (`wanted`: this relay's tokens)."""
        current = set(self._owner)
        added = sorted(wanted - current)
        removed = sorted(current - wanted)
        if not added and not removed:
            return
        if self.shards is None:
            self.shards = shard_count(len(wanted), self.settings.ws_shard_size)
            log.info(
                "ws: %d tokens over %d shards (replica %s)", len(wanted), self.shards, self.replica
            )
        by_conn: dict[Connection, list[str]] = defaultdict(list)
        for token in removed:
            conn = self._owner.pop(token)
            conn.tokens.discard(token)
            by_conn[conn].append(token)
        for conn, tokens in by_conn.items():
            if conn.tokens:
                await conn.unsubscribe(tokens)
            else:
                self._slots[conn.shard].remove(conn)
                await conn.close("no tokens left on this connection")
        fresh: list[Connection] = []
        subscribe: dict[Connection, list[str]] = defaultdict(list)
        for token in added:
            conn = self._slot_with_room(shard_of(token, self.shards), fresh)
            conn.tokens.add(token)
            self._owner[token] = conn
            if conn not in fresh:
                subscribe[conn].append(token)
        for conn, tokens in subscribe.items():
            await conn.subscribe(tokens)
        for conn in fresh:
            conn.start()
        log.info(
            "ws: +%d -%d tokens; %d tokens on %d connections",
            len(added),
            len(removed),
            len(self._owner),
            self.connection_count,
        )

    def _slot_with_room(self, shard: int, fresh: list[Connection]) -> Connection:
        slots = self._slots[shard]
        for conn in slots:
            if len(conn.tokens) < self.settings.ws_shard_size:
                return conn
        used = {c.slot for c in slots}
        slot = next(i for i in range(len(slots) + 1) if i not in used)
        conn = Connection(self, shard, slot, ())
        slots.append(conn)
        fresh.append(conn)
        return conn

    @property
    def connection_count(self) -> int:
        return sum(len(s) for s in self._slots.values())

    def connections(self) -> list[Connection]:
        return [c for slots in self._slots.values() for c in slots]

    async def close(self, reason: str) -> None:
        conns = self.connections()
        await asyncio.gather(*(c.close(reason) for c in conns))
        self._slots.clear()
        self._owner.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "replica": str(self.replica),
            "shards": self.shards,
            "connections": self.connection_count,
            "connected": sum(1 for c in self.connections() if c.connected),
            "tokens": len(self._owner),
            **dict(self.counters),
        }
