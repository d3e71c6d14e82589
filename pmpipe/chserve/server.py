"""`pmpipe serve`: chdb behind ClickHouse's HTTP interface.

clickhouse-connect and @clickhouse/client talk to it exactly as to ClickHouse (Cloud):
`POST /` with the statement in the body and/or the `query` URL parameter, settings and
`param_<name>` query parameters in the URL (or multipart form fields), compressed insert
bodies, `GET /?query=...` (read-only), `GET /ping`. Answers carry X-ClickHouse-Summary,
-Query-Id, -Format, -Timezone and -Server-Display-Name; errors are ClickHouse's
`Code: N. DB::Exception: ...` bodies with X-ClickHouse-Exception-Code and its HTTP status.

Deviations from ClickHouse, all deliberate: results are buffered whole before they are sent
(no progress headers, the summary is always final); GET requests ignore `session_id` (they run
on read-only connections); `compress=1` (ClickHouse-native response compression) and external
data tables are refused; when no password is configured any credentials are accepted; the
Kafka table engine is refused.

Security: chdb runs in clickhouse-local mode, so `file()`/`url()` table functions and
`INTO OUTFILE` reach the host's files and network with this process's rights (user_files_path
does not confine absolute paths). Keep the default loopback bind, or set a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader, StreamReader, web

from pmpipe.chserve.codecs import choose_response_encoding, encode_response
from pmpipe.chserve.engine import SERVER_TIMEZONE, ChdbEngine, Outcome
from pmpipe.chserve.pool import ConnectionPool, Lease, Offload
from pmpipe.chserve.protocol import (
    ClickHouseError,
    RequestSpec,
    check_credentials,
    content_type_for,
    extract_credentials,
    parse_request,
    summary_header,
)
from pmpipe.chserve.runner import StatementRunner
from pmpipe.log import register_secret

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8123
FEED_BYTES = 2 << 20  # raw body bytes handed to a chdb thread at once
MAX_URL_BYTES = 1 << 20  # ClickHouse's http_max_uri_size
MAX_FORM_BYTES = 64 << 20
COMPRESS_INLINE_BYTES = 64 << 10  # larger response bodies are compressed off the loop
SHUTDOWN_GRACE_SECS = 10.0
KEEPALIVE_SECS = 600.0

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "origin, x-requested-with, x-clickhouse-format, "
    "x-clickhouse-user, x-clickhouse-key, x-clickhouse-quota, authorization, content-type, "
    "content-encoding, accept-encoding",
    "Access-Control-Max-Age": "86400",
}


@dataclass
class ServerState:
    engine: ChdbEngine
    offload: Offload
    pool: ConnectionPool
    user: str
    password: str
    display_name: str


STATE: web.AppKey[ServerState] = web.AppKey("chserve_state", ServerState)


# --- handlers --------------------------------------------------------------------------------


async def handle_root(request: web.Request) -> web.StreamResponse:
    if request.method in ("GET", "HEAD") and "query" not in request.query:
        return web.Response(text="Ok.\n")
    return await handle_query(request)


async def handle_ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="Ok.\n")


async def handle_options(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers=CORS_HEADERS)


async def handle_unknown(request: web.Request) -> web.StreamResponse:
    text = (
        f"There is no handle {request.path}\n\nUse / or /ping for health checks.\n"
        "Or /replicas_status for more sophisticated health checks.\n\n"
        "Send queries from your program with POST method or GET /?query=...\n"
    )
    return web.Response(status=404, text=text)


async def handle_query(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter_ns()
    query_id = request.query.get("query_id") or str(uuid.uuid4())
    cors = False
    try:
        params = list(request.query.items())
        body: StreamReader | None = request.content
        if request.content_type == "multipart/form-data":
            params += await _form_fields(request)
            body = None
        values = dict(params)
        check_credentials(extract_credentials(request.headers, values), state.user, state.password)
        spec = parse_request(params, readonly=request.method in ("GET", "HEAD"), query_id=query_id)
        cors = spec.cors
        if spec.native_compress:
            raise ClickHouseError(
                1,
                "compress=1 (ClickHouse-native response compression) is not supported by the "
                "embedded server; use enable_http_compression=1 with Accept-Encoding",
                status=400,
            )
        encoding = request.headers.get("Content-Encoding", "")
        outcome = await _execute(state, spec, encoding, body)
        return await _reply(request, state, spec, outcome, started)
    except ClickHouseError as e:
        return _error_reply(state, e, query_id, cors)
    except Exception as e:  # a bug here must still answer in ClickHouse's shape
        log.exception("query %s failed unexpectedly", query_id)
        return _error_reply(
            state, ClickHouseError(1002, f"{type(e).__name__}: {e}"), query_id, cors
        )


async def _form_fields(request: web.Request) -> list[tuple[str, str]]:
    """Text fields of a multipart/form-data request (clickhouse-connect sends the query and
    large `param_*` values this way). File parts are external data tables: refused."""
    fields: list[tuple[str, str]] = []
    total = 0
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            raise ClickHouseError(
                48, "External data tables are not supported by the embedded server"
            )
        value = await part.text()
        total += len(value)
        if total > MAX_FORM_BYTES:
            raise ClickHouseError(229, f"The form data is larger than {MAX_FORM_BYTES} bytes")
        fields.append((part.name, value))
    return fields


async def _execute(
    state: ServerState, spec: RequestSpec, encoding: str, body: StreamReader | None
) -> Outcome:
    lease = await state.pool.acquire(
        readonly=spec.readonly,
        session_id=spec.session_id,
        timeout_secs=spec.session_timeout_secs,
        session_check=spec.session_check,
    )
    reusable = False
    try:
        runner = StatementRunner(
            lease.conn,
            spec,
            content_encoding=encoding,
            output_formats=state.engine.output_formats,
        )
        try:
            await state.offload(runner.start)
            await _pump(state.offload, body, runner.feed)
            outcome = await state.offload(runner.finish)
        except BaseException:
            await state.offload(runner.abort)
            raise
        reusable = await _settle(state, lease, outcome)
        return outcome
    except ClickHouseError:
        reusable = True  # chdb reported the error; the connection itself is fine
        raise
    finally:
        await state.pool.release(lease, reusable=reusable, timeout_secs=spec.session_timeout_secs)


async def _settle(state: ServerState, lease: Lease, outcome: Outcome) -> bool:
    """After a statement that changed connection state: a session adopts it, a pooled
    connection is not reused."""
    if not outcome.control:
        return True
    if lease.session is None:
        return False
    await state.offload(lease.conn.adopt_session_state)
    return True


async def _pump(offload: Offload, body: StreamReader | None, feed: Callable[[bytes], None]) -> None:
    """Stream the raw body to `feed` in FEED_BYTES pieces, reading the next piece while a chdb
    thread consumes the previous one (one call in flight, so calls stay ordered)."""
    if body is None:
        return
    pending: asyncio.Future[None] | None = None
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = await body.readany()
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
            if chunks and (not chunk or size >= FEED_BYTES):
                if pending is not None:
                    await pending
                pending = offload.submit(feed, b"".join(chunks))
                chunks, size = [], 0
            if not chunk:
                break
        if pending is not None:
            await pending
    except BaseException:
        if pending is not None and not pending.done():
            await asyncio.wait([pending])
        raise


async def _reply(
    request: web.Request, state: ServerState, spec: RequestSpec, outcome: Outcome, started: int
) -> web.Response:
    headers = _base_headers(state, spec.query_id, spec.cors)
    if outcome.fmt is not None:
        headers["X-ClickHouse-Format"] = outcome.fmt
    headers["Content-Type"] = content_type_for(outcome.fmt)
    body = outcome.body
    if spec.http_compression and len(body) > 0:
        encoding = choose_response_encoding(request.headers.get("Accept-Encoding", ""))
        if encoding is not None:
            if len(body) > COMPRESS_INLINE_BYTES:
                body = await state.offload(encode_response, body, encoding)
            else:
                body = encode_response(body, encoding)
            headers["Content-Encoding"] = encoding
            headers["Vary"] = "Accept-Encoding"
    headers["X-ClickHouse-Summary"] = summary_header(
        outcome.stats, time.perf_counter_ns() - started
    )
    return web.Response(body=body, headers=headers)


def _base_headers(state: ServerState, query_id: str, cors: bool) -> dict[str, str]:
    headers = {
        "X-ClickHouse-Query-Id": query_id,
        "X-ClickHouse-Timezone": SERVER_TIMEZONE,
        "X-ClickHouse-Server-Display-Name": state.display_name,
    }
    if cors:
        headers["Access-Control-Allow-Origin"] = "*"
    return headers


def _error_reply(
    state: ServerState, error: ClickHouseError, query_id: str, cors: bool
) -> web.Response:
    if error.code in (516, 192, 193, 194):
        log.info("authentication failed: %s", error.message)
    else:
        log.debug("query %s failed: %s", query_id, error.message)
    headers = _base_headers(state, query_id, cors)
    headers["X-ClickHouse-Exception-Code"] = str(error.code)
    return web.Response(
        status=error.status,
        text=error.body(state.engine.version or "unknown"),
        content_type="text/plain",
        headers=headers,
    )


# --- application -----------------------------------------------------------------------------


def make_app(
    data_dir: Path, user: str = "default", password: str = "", pool_size: int = 4
) -> web.Application:
    """The aiohttp application; chdb opens on startup and closes (flushing) on cleanup."""
    if pool_size < 1:
        raise ValueError(f"pool_size must be >= 1, got {pool_size}")
    register_secret(password)
    app = web.Application(client_max_size=MAX_FORM_BYTES)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        engine = ChdbEngine(data_dir)
        offload = Offload(threads=2 * pool_size + 4)
        try:
            await offload(engine.open)
        except BaseException:
            offload.shutdown()
            raise
        pool = ConnectionPool(engine, offload, pool_size)
        app[STATE] = ServerState(
            engine=engine,
            offload=offload,
            pool=pool,
            user=user,
            password=password,
            display_name=socket.gethostname(),
        )
        reaper = asyncio.create_task(pool.reaper())
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await pool.close()
            offload.shutdown()
            engine.close()
            log.info("clickhouse stopped data_dir=%s", engine.data_dir)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", handle_root)
    app.router.add_post("/", handle_root)
    app.router.add_route("OPTIONS", "/", handle_options)
    app.router.add_get("/ping", handle_ok)
    app.router.add_get("/replicas_status", handle_ok)
    app.router.add_route("*", "/{tail:.*}", handle_unknown)
    return app


async def serve(
    host: str,
    port: int,
    data_dir: Path,
    stop: asyncio.Event,
    *,
    user: str = "default",
    password: str = "",
    pool_size: int = 4,
    on_ready: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Serve until `stop` is set, then finish in-flight requests and close chdb."""
    app = make_app(data_dir, user=user, password=password, pool_size=pool_size)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE_SECS,
        auto_decompress=False,
        max_line_size=MAX_URL_BYTES,
        max_field_size=MAX_URL_BYTES,
        keepalive_timeout=KEEPALIVE_SECS,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        url = f"http://{host}:{port}"
        log.info("clickhouse ready url=%s data_dir=%s", url, app[STATE].engine.data_dir)
        if on_ready is not None:
            result = on_ready(url)
            if result is not None:
                await result
        await stop.wait()
        log.info("clickhouse stopping")
    finally:
        await runner.cleanup()


def run(
    host: str,
    port: int,
    data_dir: Path,
    user: str = "default",
    password: str = "",
    pool_size: int = 4,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM (blocking). The data directory can
    be served by one process at a time; the process timezone becomes UTC."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(host, port, data_dir, stop, user=user, password=password, pool_size=pool_size)

    asyncio.run(main())
