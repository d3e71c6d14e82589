"""Who gets which chdb connection (asyncio side; chdb calls go through `Offload`).

* Requests without a session share a pool: up to `size` read-write connections (POST) and
  `size` read-only ones (GET, opened with readonly=2). A request waits for a free connection;
  connections whose state a statement changed (SET, USE...) are closed instead of reused.
* A `session_id` gets its own connection, kept until `session_timeout` seconds of idleness
  (60 by default, 3600 at most). As in ClickHouse a session runs one query at a time: a second
  concurrent request on it fails with SESSION_IS_LOCKED, and `session_check=1` on an unknown
  session with SESSION_NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from pmpipe.chserve.engine import ChConnection, ChdbEngine
from pmpipe.chserve.protocol import ClickHouseError

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_SESSIONS = 256
REAP_INTERVAL_SECS = 5.0


class Offload:
    """Runs blocking chdb calls on a dedicated thread pool. If the awaiting task is cancelled
    the call still finishes before the cancellation propagates, so a connection is never
    handed to another request while a thread is still using it."""

    def __init__(self, threads: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chdb")

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def __call__(self, fn: Callable[..., T], *args: object) -> T:
        future = self.submit(fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


@dataclass
class Lease:
    conn: ChConnection
    session: Session | None = None


@dataclass
class Session:
    session_id: str
    conn: ChConnection | None = None
    busy: bool = True
    expires_at: float = 0.0


class ConnectionPool:
    def __init__(self, engine: ChdbEngine, offload: Offload, size: int) -> None:
        self._engine = engine
        self._offload = offload
        self._size = size
        self._idle: dict[bool, list[ChConnection]] = {False: [], True: []}
        self._slots: dict[bool, asyncio.Semaphore] = {}
        self._sessions: dict[str, Session] = {}
        self._closed = False

    def _slot(self, readonly: bool) -> asyncio.Semaphore:
        if readonly not in self._slots:
            self._slots[readonly] = asyncio.Semaphore(self._size)
        return self._slots[readonly]

    async def acquire(
        self, *, readonly: bool, session_id: str | None, timeout_secs: float, session_check: bool
    ) -> Lease:
        if self._closed:
            raise ClickHouseError(236, "The server is shutting down", status=503)
        if session_id is not None and not readonly:
            return await self._acquire_session(session_id, timeout_secs, session_check)
        slot = self._slot(readonly)
        await slot.acquire()
        try:
            idle = self._idle[readonly]
            conn = idle.pop() if idle else await self._offload(self._connect, readonly)
        except BaseException:
            slot.release()
            raise
        return Lease(conn)

    def _connect(self, readonly: bool) -> ChConnection:
        return self._engine.connect(readonly=readonly)

    async def release(self, lease: Lease, *, reusable: bool, timeout_secs: float) -> None:
        if lease.session is not None:
            await self._release_session(lease.session, reusable, timeout_secs)
            return
        conn = lease.conn
        try:
            if reusable and not conn.tainted and not self._closed:
                self._idle[conn.readonly].append(conn)
            else:
                await self._offload(conn.close)
        finally:
            self._slot(conn.readonly).release()

    # --- sessions ---------------------------------------------------------------------------
    async def _acquire_session(self, session_id: str, timeout_secs: float, check: bool) -> Lease:
        session = self._sessions.get(session_id)
        if session is not None:
            if session.busy or session.conn is None:
                raise ClickHouseError(373, f"Session {session_id} is locked by a concurrent client")
            session.busy = True
            return Lease(session.conn, session)
        if check:
            raise ClickHouseError(372, f"Session {session_id} not found")
        if len(self._sessions) >= MAX_SESSIONS:
            await self.reap()
            if len(self._sessions) >= MAX_SESSIONS:
                raise ClickHouseError(
                    202, f"Too many open sessions ({MAX_SESSIONS}); close idle clients"
                )
        session = Session(session_id)
        self._sessions[session_id] = session  # holds the id while the connection opens
        try:
            session.conn = await self._offload(self._connect, False)
        except BaseException:
            del self._sessions[session_id]
            raise
        log.debug("session %s opened (%d open)", session_id, len(self._sessions))
        return Lease(session.conn, session)

    async def _release_session(self, session: Session, reusable: bool, timeout_secs: float) -> None:
        session.busy = False
        session.expires_at = time.monotonic() + timeout_secs
        if not reusable or self._closed or (session.conn is not None and session.conn.tainted):
            await self._drop_session(session)

    async def _drop_session(self, session: Session) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]
        if session.conn is not None:
            await self._offload(session.conn.close)
            session.conn = None

    async def reap(self) -> None:
        """Close sessions idle past their timeout."""
        now = time.monotonic()
        expired = [s for s in self._sessions.values() if not s.busy and s.expires_at <= now]
        for session in expired:
            log.debug("session %s expired", session.session_id)
            await self._drop_session(session)

    async def reaper(self) -> None:
        while not self._closed:
            await asyncio.sleep(REAP_INTERVAL_SECS)
            await self.reap()

    async def close(self) -> None:
        """Close idle connections and sessions (requests have finished by now)."""
        self._closed = True
        for conns in self._idle.values():
            while conns:
                await self._offload(conns.pop().close)
        for session in list(self._sessions.values()):
            with contextlib.suppress(Exception):
                await self._drop_session(session)
