"""The simulator's one aiohttp server: Gamma, CLOB, Data API and the market WebSocket on one
port, the engine loop, and the control routes tests use.

Base URLs (P = the port): Gamma http://HOST:P/gamma, CLOB http://HOST:P/clob, Data API
http://HOST:P/data, WebSocket ws://HOST:P/ws/market. Control: GET /_sim/status,
GET|POST /_sim/faults, POST /_sim/flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from producers.simulator.clob_routes import add_clob_routes
from producers.simulator.clock import Clock, SimClock
from producers.simulator.config import FaultError, Faults, SimConfig
from producers.simulator.data_routes import add_data_routes
from producers.simulator.engine import Simulation
from producers.simulator.faults import front_door
from producers.simulator.gamma_routes import add_gamma_routes
from producers.simulator.ratelimit import RateLimiter
from producers.simulator.state import STATE, SimState, json_response, state_of
from producers.simulator.truth import TruthWriter
from producers.simulator.ws import HUB, Hub, ws_market

__all__ = ["Endpoints", "SimulatorThread", "make_app", "run", "serve"]

log = logging.getLogger(__name__)

TICK_SECS = 0.05
FLUSH_SECS = 1.0


@dataclass(frozen=True, slots=True)
class Endpoints:
    gamma: str
    clob: str
    data: str
    ws: str
    control: str

    @classmethod
    def at(cls, host: str, port: int) -> Endpoints:
        http = f"http://{host}:{port}"
        return cls(
            f"{http}/gamma", f"{http}/clob", f"{http}/data", f"ws://{host}:{port}/ws/market", http
        )


def make_app(config: SimConfig, clock: Clock | None = None) -> web.Application:
    """The application with its engine (not started: the engine runs while the app runs)."""
    clock = clock or SimClock(config.speed, config.start_time_ms)
    started = time.perf_counter()
    sim = Simulation(config, clock.now_ms())
    state = SimState(
        config=config,
        clock=clock,
        sim=sim,
        faults=Faults(),
        limiter=RateLimiter(config.rate_limit_scale),
        fault_rng=random.Random(f"faults:{config.seed}"),
    )
    hub = Hub(state)
    sim.listeners.append(hub)
    if config.data_dir is not None:
        state.truth = TruthWriter(config.data_dir)
        state.truth.catalogue(sim.markets, sim.start_ms)
        state.truth.flush()
        sim.listeners.append(state.truth)
    log.info(
        "simulated %d markets (%d tokens) in %.2fs, seed %d",
        len(sim.markets),
        sim.active_tokens,
        time.perf_counter() - started,
        config.seed,
    )
    app = web.Application(middlewares=[front_door], client_max_size=16 * 2**20)
    app[STATE] = state
    app[HUB] = hub
    add_gamma_routes(app)
    add_clob_routes(app)
    add_data_routes(app)
    app.router.add_get("/ws/market", ws_market)
    app.router.add_get("/_sim/status", sim_status)
    app.router.add_get("/_sim/faults", get_faults)
    app.router.add_post("/_sim/faults", set_faults)
    app.router.add_post("/_sim/flush", flush_truth)
    app.cleanup_ctx.append(_engine_ctx)
    app.on_shutdown.append(_close_websockets)
    return app


# --- the engine loop -----------------------------------------------------------------------
async def _engine_loop(state: SimState, hub: Hub) -> None:
    last_flush = time.monotonic()
    while True:
        done = state.sim.advance(state.clock.now_ms())
        hub.check_faults()
        if state.truth is not None and time.monotonic() - last_flush >= FLUSH_SECS:
            state.truth.flush()
            last_flush = time.monotonic()
        await asyncio.sleep(0 if done >= 20_000 else TICK_SECS)


async def _engine_ctx(app: web.Application) -> Any:
    state, hub = app[STATE], app[HUB]
    task = asyncio.create_task(_engine_loop(state, hub), name="simulator-engine")
    state.engine_task = task
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if state.truth is not None:
        state.truth.flush()
        log.info(
            "ground truth flushed: %d fills, %d market lines in %s",
            state.truth.trades_written,
            state.truth.markets_written,
            state.truth.dir,
        )


async def _close_websockets(app: web.Application) -> None:
    for conn in list(app[HUB].connections):
        await conn.ws.close(code=1001, message=b"server shutdown")


# --- control routes ------------------------------------------------------------------------
async def sim_status(request: web.Request) -> web.Response:
    state = state_of(request)
    sim = state.sim
    body: dict[str, Any] = {
        "seed": sim.seed,
        "speed": state.config.speed,
        "sim_time_ms": state.now_ms(),
        "engine_time_ms": sim.now_ms,
        "markets": len(sim.markets),
        "open_markets": len(sim.open),
        "closed_markets": len(sim.markets) - len(sim.open),
        "events": len(sim.events),
        "active_tokens": sim.active_tokens,
        "trades_generated": sim.trades.total,
        "transactions": sim.transactions,
        "level_changes": sim.level_changes,
        "faults": state.faults.active(),
        **state.stats.as_dict(),
    }
    if state.truth is not None:
        body["truth"] = {
            "dir": str(state.truth.dir),
            "trades_written": state.truth.trades_written,
            "markets_written": state.truth.markets_written,
        }
    return json_response(msgspec.json.encode(body))


async def get_faults(request: web.Request) -> web.Response:
    return json_response(msgspec.json.encode(state_of(request).faults.as_dict()))


async def set_faults(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        changes = msgspec.json.decode(await request.read())
        if not isinstance(changes, dict):
            raise FaultError("expected a JSON object of fault settings")
        changed = state.faults.update(changes)
    except (msgspec.DecodeError, FaultError) as e:
        return json_response(msgspec.json.encode({"error": str(e)}), 400)
    if changed:
        state.faults_changed_at = time.monotonic()
        log.info("faults changed: %s", {name: getattr(state.faults, name) for name in changed})
    return json_response(
        msgspec.json.encode({"faults": state.faults.as_dict(), "changed": changed})
    )


async def flush_truth(request: web.Request) -> web.Response:
    truth = state_of(request).truth
    if truth is None:
        return json_response(msgspec.json.encode({"error": "no --data-dir: no truth"}), 409)
    truth.flush()
    return json_response(
        msgspec.json.encode(
            {"trades_written": truth.trades_written, "markets_written": truth.markets_written}
        )
    )


# --- running -------------------------------------------------------------------------------
async def serve(
    config: SimConfig,
    stop: asyncio.Event,
    *,
    faults: Faults | None = None,
    on_ready: Callable[[Endpoints], None] | None = None,
) -> None:
    """Serve until `stop` is set (or the engine fails). Port 0 picks a free port; the
    readiness line and `on_ready` carry the bound one."""
    app = make_app(config)
    if faults is not None:
        app[STATE].faults.update(faults.as_dict())
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else config.port
        urls = Endpoints.at(config.host, port)
        log.info(
            "simulator ready gamma=%s clob=%s data=%s ws=%s markets=%d tokens=%d seed=%d",
            urls.gamma,
            urls.clob,
            urls.data,
            urls.ws,
            len(app[STATE].sim.markets),
            app[STATE].sim.active_tokens,
            config.seed,
        )
        if app[STATE].faults.active():
            log.info("faults on: %s", app[STATE].faults.active())
        if on_ready is not None:
            on_ready(urls)
        stopped = asyncio.create_task(stop.wait())
        engine = app[STATE].engine_task
        assert engine is not None
        await asyncio.wait((stopped, engine), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if engine.done() and not engine.cancelled() and engine.exception() is not None:
            log.error("the simulator engine failed: %r", engine.exception())
            raise RuntimeError("the simulator engine failed") from engine.exception()
    finally:
        log.info("simulator stopping")
        await runner.cleanup()
        log.info("simulator stopped")


def run(config: SimConfig, faults: Faults | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM (blocking)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop, faults=faults)

    asyncio.run(main())


class SimulatorThread:
    """The simulator served from a daemon thread with its own event loop (tests, benches).

    `start()` returns once it accepts connections (re-raising a startup error); `urls` is then
    set. Use as a context manager to stop it on exit.
    """

    def __init__(self, config: SimConfig, faults: Faults | None = None) -> None:
        self.config = config
        self.faults = faults
        self.urls: Endpoints | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_secs: float = 120.0) -> Endpoints:
        self._thread = threading.Thread(target=self._main, name="simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_secs):
            raise TimeoutError(f"simulator not ready after {timeout_secs}s")
        if self._error is not None:
            raise self._error
        assert self.urls is not None
        return self.urls

    def stop(self, timeout_secs: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_secs)

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.config, self._stop, faults=self.faults, on_ready=self._on_ready)

        try:
            asyncio.run(main())
        except BaseException as e:
            self._error = e
            self._ready.set()

    def _on_ready(self, urls: Endpoints) -> None:
        self.urls = urls
        self._ready.set()
