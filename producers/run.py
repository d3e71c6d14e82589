"""`pmpipe produce [FEED...]`: run Polymarket feeds into the topics until SIGINT/SIGTERM.

FEED is any of markets, prices, trades, books, ws (default: all, in one process). One
RecordProducer per process. Signals:

* SIGINT / SIGTERM: stop polling, close the WebSocket connections (each emits 'disconnected'
  first), flush every in-flight record, exit 0 (1 if records could not be delivered).
* SIGUSR1: pause producing (records are buffered, polling goes on), then write
  `$PMPIPE_DATA_DIR/run/produce-<feeds>.paused.json` = {"paused": true, "next_offsets":
  {"topic:partition": n}, "flushed": bool, "buffered": n}.
* SIGUSR2: resume (fresh producer session, buffer drained), delete that file; the markets
  feed re-publishes the whole catalogue at once and the token follower re-reads its topic,
  because the embedded broker's log was rolled.

Feeds other than markets learn the tokens from the compacted polymarket.markets topic; when
it is empty they wait for this process's markets feed, or walk Gamma once themselves.

Replicas (`--replica-index I --replica-count N`, env PMPIPE_REPLICA_INDEX/_COUNT): ws, prices
and books take replica I's share of the tokens; markets and trades run on replica 0 only and
are skipped on the others (producers/replicas.py). A replica left with no feed is an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import click

from pmpipe.avro import AvroCodec, registry_reachable
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.kafka import RecordProducer
from pmpipe.log import setup_logging
from pmpipe.metrics import export_stats, serve_metrics
from pmpipe.topics import MARKETS, TRADES, Topic, get_topic
from producers.books import BooksFeed
from producers.http import HttpError, PolymarketHttp
from producers.market_ws import MarketWsRelay
from producers.markets import MarketsFeed, fill_universe
from producers.prices import PricesFeed
from producers.replicas import GLOBAL_FEEDS, Replica, replica_feeds
from producers.settings import Settings
from producers.state import (
    Feed,
    Publisher,
    clear_pause_state,
    now_ms,
    pause_state_path,
    run_periodic,
    write_pause_state,
)
from producers.tokens import MarketsTopicFollower, TokenUniverse
from producers.trades import TradesFeed, load_recent_trade_keys

__all__ = ["FEEDS", "ProduceProcess", "main", "produce_command"]

log = logging.getLogger(__name__)

FEEDS = ("markets", "prices", "trades", "books", "ws")
MAX_BUFFERED = 1_000_000
_PAUSE_FLUSH_SECS = 60.0
_CLOSE_FLUSH_SECS = 30.0
_POLL_SECS = 0.2


def select_feeds(names: Sequence[str]) -> tuple[str, ...]:
    """The feeds to run, in canonical order (all when none is named)."""
    unknown = sorted(set(names) - set(FEEDS))
    if unknown:
        raise PipelineError(f"unknown feed(s) {', '.join(unknown)}; known: {', '.join(FEEDS)}")
    return tuple(f for f in FEEDS if f in names) or FEEDS


class ProduceProcess:
    """The feeds of one process, their shared producer, and the signal-driven lifecycle."""

    def __init__(
        self,
        config: Config,
        settings: Settings,
        feeds: Sequence[str],
        *,
        topics: Callable[[str], Topic] = get_topic,
    ) -> None:
        self.config = config
        self.settings = settings
        self.replica = Replica(config.replica_index, config.replica_count)
        self.feeds, self.skipped = replica_feeds(select_feeds(feeds), self.replica)
        if not self.feeds:
            raise PipelineError(
                f"replica {self.replica} has no feed to run: {', '.join(GLOBAL_FEEDS)} run on "
                "replica 0 only (PMPIPE_REPLICA_INDEX=0)"
            )
        self._topics = topics
        self.state_path = pause_state_path(config.data_dir, self.feeds)
        self.exit_code = 0
        self._stop = asyncio.Event()
        self._thread_stop = threading.Event()
        self._markets_wake = asyncio.Event()
        self._lifecycle = asyncio.Lock()
        self.producer: RecordProducer | None = None
        self.publisher: Publisher | None = None
        self.universe = TokenUniverse()
        self.follower: MarketsTopicFollower | None = None
        self.http: PolymarketHttp | None = None
        self.markets: MarketsFeed | None = None
        self.components: dict[str, Any] = {}
        self._signal_tasks: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def request_stop(self) -> None:
        if self._stop.is_set():
            log.info("already stopping")
        self._stop.set()
        self._thread_stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        codec = AvroCodec(self.config.schema_registry_config())
        client_id = f"pmpipe-produce-{'-'.join(self.feeds)}"
        if self.replica.split:
            client_id += f"-r{self.replica.index}of{self.replica.count}"
        self.producer = RecordProducer(self.config, client_id, codec, max_buffered=MAX_BUFFERED)
        self.publisher = Publisher(self.producer, max_buffered=MAX_BUFFERED, topics=self._topics)
        self.http = PolymarketHttp.from_config(self.config, self.settings)
        log.info("produce starting feeds=%s replica=%s", ",".join(self.feeds), self.replica)
        if self.skipped:
            log.info(
                "replica %s skips %s: they run on replica 0 only",
                self.replica,
                ",".join(self.skipped),
            )
        try:
            self._tasks.append(self._spawn(self._service_producer(), "producer-service"))
            self._tasks.append(self._spawn(self._start_feeds(loop), "start"))
            self._tasks.append(self._spawn(self._export_metrics(), "metrics"))
            serve_metrics(self.config.metrics_port, self.health)
            await self._stop.wait()
        finally:
            await self._shutdown(self._tasks)
        return self.exit_code

    async def _start_feeds(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start every feed (a SIGTERM meanwhile cancels this, e.g. a long first walk)."""
        assert self.http is not None and self.publisher is not None
        if "markets" in self.feeds:
            self.markets = MarketsFeed(
                self.http,
                self.publisher,
                interval_secs=self.config.markets_interval_secs,
                universe=self.universe,
            )
            self.components["markets"] = self.markets
            self._tasks.append(
                self._spawn(run_periodic(self.markets, self._stop, self._markets_wake), "markets")
            )
        if set(self.feeds) & {"prices", "books", "ws"}:
            await self._load_universe(loop)
        for feed in self._pollers():
            self.components[feed.name] = feed
            self._tasks.append(self._spawn(run_periodic(feed, self._stop), feed.name))
        if "trades" in self.feeds:
            self._tasks.append(self._spawn(self._run_trades(), "trades"))
        if "ws" in self.feeds:
            relay = MarketWsRelay(
                self.config.polymarket_ws_url,
                self.publisher,
                self.universe,
                self.settings,
                replica=self.replica,
            )
            self.components["ws"] = relay
            self._tasks.append(self._spawn(relay.run(self._stop), "ws"))
        self._tasks.append(self._spawn(self._log_stats(), "stats"))

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGUSR1, self._on_signal, self.pause, "pause")
        loop.add_signal_handler(signal.SIGUSR2, self._on_signal, self.resume, "resume")

    def _on_signal(self, action: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        task = self._spawn(action(), name)
        self._signal_tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._signal_tasks.discard)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("task %s failed; stopping", task.get_name(), exc_info=error)
            self.exit_code = 1
            self._stop.set()

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        self._stop.set()
        relay = self.components.get("ws")
        if isinstance(relay, MarketWsRelay):
            await relay.close("shutdown")
        pending = list(tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self.follower is not None:
            await asyncio.to_thread(self.follower.stop)
        if self.http is not None:
            await self.http.aclose()
        producer = self.producer
        if producer is not None:
            if producer.paused:
                log.warning(
                    "stopping while paused: resuming to deliver %d buffered records",
                    producer.buffered,
                )
                await asyncio.to_thread(producer.resume)
            await asyncio.to_thread(producer.close, _CLOSE_FLUSH_SECS)
            failed = sum(producer.failed.values())
            undelivered = self._undelivered() - failed
            if undelivered or failed:
                log.error(
                    "produce stopped with %d undelivered and %d failed record(s)",
                    undelivered,
                    failed,
                )
                self.exit_code = self.exit_code or 1
        clear_pause_state(self.state_path)
        log.info("produce stopped: %s", json.dumps(self.stats(), default=str))

    def _undelivered(self) -> int:
        """Records handed to the producer without a delivery report yet."""
        if self.publisher is None or self.producer is None:
            return 0
        published = sum(self.publisher.published.values())
        return published - sum(self.producer.delivered.values())

    # -- feeds ------------------------------------------------------------------------------------
    def _pollers(self) -> list[Feed]:
        assert self.http is not None and self.publisher is not None
        pollers: list[Feed] = []
        if "prices" in self.feeds:
            pollers.append(
                PricesFeed(
                    self.http,
                    self.publisher,
                    self.universe,
                    interval_secs=self.config.prices_interval_secs,
                    concurrency=self.settings.http_concurrency,
                    replica=self.replica,
                )
            )
        if "books" in self.feeds:
            pollers.append(
                BooksFeed(
                    self.http,
                    self.publisher,
                    self.universe,
                    interval_secs=self.config.books_interval_secs,
                    concurrency=self.settings.http_concurrency,
                    replica=self.replica,
                )
            )
        return pollers

    async def _load_universe(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tokens from polymarket.markets; else this process's first walk, or one of our own."""
        self.follower = MarketsTopicFollower(
            self.config,
            self.universe,
            loop,
            topic=self._topics(MARKETS).name,
            empty_wait_secs=self.settings.tokens_wait_secs,
        )
        self.follower.start()
        self.components["tokens"] = self.follower
        await asyncio.to_thread(
            self.follower.wait_initial_load, self.settings.tokens_wait_secs + 60
        )
        await asyncio.sleep(0)  # let the follower's last batch land
        if len(self.universe):
            log.info("token universe from %s: %d tokens", MARKETS, len(self.universe))
            return
        if self.markets is not None:
            log.info("%s is empty: waiting for this process's first market walk", MARKETS)
            await _first(self.markets.walked.wait(), self._stop.wait())
            return
        assert self.http is not None
        log.info("%s is empty: walking Gamma once for the token universe", MARKETS)
        try:
            await fill_universe(self.http, self.universe)
        except HttpError as e:
            log.error("cannot walk Gamma for the token universe (will follow the topic): %s", e)

    async def _run_trades(self) -> None:
        """Rebuild the seen-set from the topic, then poll."""
        assert self.http is not None and self.publisher is not None
        feed = TradesFeed(
            self.http, self.publisher, self.settings, interval_secs=self.config.trades_interval_secs
        )
        window_ms = int(
            (self.settings.trades_lookback_secs + 2 * self.settings.trades_overlap_secs) * 1000
        )
        try:
            keys = await asyncio.to_thread(
                load_recent_trade_keys,
                self.config,
                now_ms() - window_ms,
                timeout_secs=self.settings.trades_rebuild_timeout_secs,
                topic=self._topics(TRADES).name,
                stop=self._thread_stop,
            )
        except PipelineError as e:
            log.error("trades: cannot rebuild the seen-set from the topic (starting empty): %s", e)
            keys = []
        feed.dedup.seed(keys)
        log.info(
            "trades: seen-set rebuilt with %d keys, watermark_ms=%s",
            len(feed.dedup),
            feed.dedup.watermark_ms,
        )
        self.components["trades"] = feed
        await run_periodic(feed, self._stop)

    # -- pause / resume (embedded broker log roll) -----------------------------------------
    async def pause(self) -> None:
        producer = self.producer
        if producer is None:
            return
        async with self._lifecycle:
            flushed = True
            if not producer.paused:
                log.info("SIGUSR1: pausing the producer")
                try:
                    await asyncio.to_thread(producer.pause, _PAUSE_FLUSH_SECS)
                except PipelineError as e:
                    flushed = False
                    log.error("pause: %s", e)
            write_pause_state(
                self.state_path,
                dict(producer.next_offsets),
                flushed=flushed,
                buffered=producer.buffered,
            )
            log.info("paused; state in %s", self.state_path)

    async def resume(self) -> None:
        producer = self.producer
        if producer is None:
            return
        async with self._lifecycle:
            if producer.paused:
                log.info("SIGUSR2: resuming the producer (%d buffered)", producer.buffered)
                await asyncio.to_thread(producer.resume)
            clear_pause_state(self.state_path)
            if self.markets is not None:
                self.markets.reemit_all()
                self._markets_wake.set()
            if self.follower is not None:
                self.follower.rewind()

    # -- housekeeping ---------------------------------------------------------------------------
    async def _service_producer(self) -> None:
        """Serve delivery reports; stop on a fatal producer error."""
        producer = self.producer
        assert producer is not None
        while True:
            producer.poll(0)
            if producer.fatal and not producer.paused:
                # The broker lost this session (e.g. the embedded broker came back empty):
                # a fresh session, resending what was not acknowledged, keeps this process's
                # memory (the trades seen-set) instead of restarting it.
                log.warning("fatal producer error: %s; renewing the session", producer.fatal)
                async with self._lifecycle:
                    await asyncio.to_thread(producer.renew)
            await asyncio.sleep(_POLL_SECS)

    async def _log_stats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.stats_interval_secs)
            log.info("produce stats %s", json.dumps(self.stats(), default=str))

    async def _export_metrics(self) -> None:
        while True:
            export_stats("produce", self.stats())
            await asyncio.sleep(5)

    def health(self) -> dict[str, bool]:
        """/health: ready when the broker and the schema registry answer (metrics thread)."""
        producer = self.producer
        return {
            "running": not self._stop.is_set(),
            "broker": producer is not None and producer.broker_reachable(),
            "registry": registry_reachable(self.config.schema_registry_url),
        }

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "feeds": list(self.feeds),
            "replica": {"index": self.replica.index, "count": self.replica.count},
            "universe": self.universe.stats(),
        }
        if self.publisher is not None:
            out["publisher"] = self.publisher.stats()
        if self.http is not None:
            out["http"] = self.http.stats()
        for name, component in self.components.items():
            out[name] = component.stats()
        return out


async def _first(*aws: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


@click.command("produce")
@click.argument("feeds", nargs=-1, type=click.Choice(FEEDS), metavar="[FEED]...")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (pause state files go to DATA_DIR/run) [env PMPIPE_DATA_DIR].",
)
@click.option(
    "--replica-index",
    type=int,
    default=None,
    help="This replica's index, 0..COUNT-1 [env PMPIPE_REPLICA_INDEX, default 0].",
)
@click.option(
    "--replica-count",
    type=int,
    default=None,
    help="How many producer replicas split the tokens [env PMPIPE_REPLICA_COUNT, default 1].",
)
def produce_command(
    feeds: tuple[str, ...],
    data_dir: Path | None,
    replica_index: int | None,
    replica_count: int | None,
) -> None:
    """Run Polymarket producers: FEED in markets, prices, trades, books, ws (default all).

    SIGINT/SIGTERM flush and exit; SIGUSR1 pauses producing (state file in DATA_DIR/run),
    SIGUSR2 resumes. With N replicas, replica I relays and polls its share of the tokens
    (ws, prices, books); markets and trades run on replica 0 only.
    """
    selected = select_feeds(feeds)
    setup_logging(f"produce-{'-'.join(selected)}")
    config = Config.load(
        overrides={
            "data_dir": data_dir,
            "replica_index": replica_index,
            "replica_count": replica_count,
        }
    )
    settings = Settings.from_env()
    code = asyncio.run(ProduceProcess(config, settings, selected).run())
    if code:
        sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m producers.run [FEED...]`: the same command outside the pmpipe group."""
    try:
        produce_command.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except PipelineError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
