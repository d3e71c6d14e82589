"""`pmpipe up`: the whole pipeline on one machine, no Docker, supervised.

Children (each its own process, output prefixed with its name): the Tansu broker, the schema
registry, the embedded ClickHouse (`pmpipe serve`), optionally the Polymarket simulator, one
`pmpipe produce FEED` per feed, the sink, and the dashboard once it exists. A controller
running next to the supervisor creates topics, registers schemas and applies migrations
before producers and the sink start, watches the broker, and rolls its log:

* Tansu's memory storage keeps every byte ever produced. When the broker's RSS passes
  `PMPIPE_EMBEDDED_BROKER_ROLL_BYTES`, producers flush and pause (buffering, not dropping),
  the controller waits until the sink has committed everything the producers' delivery
  reports say was written, restarts the broker as a new incarnation (fresh cluster id, empty
  log), recreates the topics, restarts the sink on the new log, and resumes the producers.
* A broker that dies unexpectedly is restarted by the supervisor as a new incarnation too; the
  controller then recreates the topics and restarts the sink and producers. What the old
  broker held but ClickHouse did not yet have is lost: embedded replay covers the current
  incarnation only.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psutil
from confluent_kafka import Consumer, TopicPartition

from pmpipe.bootstrap import init_topics, initialize
from pmpipe.broker import TANSU_STOP_SIGNAL, tansu_launcher_argv, wait_for_broker
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.kafka import consumer_config
from pmpipe.pausing import NAME_ENV, RUN_DIR_ENV, read_paused_offsets, state_path
from pmpipe.supervisor import ChildSpec, Supervisor, tcp_check

log = logging.getLogger(__name__)

FEEDS = ("markets", "prices", "trades", "books", "ws")
SIMULATOR_PORT = 18900
# Niceness of the pollers (markets, prices, trades, books): each has tens of seconds of slack
# in its cycle, while a WebSocket event waits on the relay, the broker, the sink and
# ClickHouse; on a saturated machine the kernel then serves that path first.
POLLER_NICE = 5
PAUSABLE_ENV = "PMPIPE_PAUSABLE"


def pmpipe_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pmpipe", *args]


def http_check(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(url)).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def _port_of(bootstrap: str) -> int:
    return int(bootstrap.split(",", maxsplit=1)[0].rpartition(":")[2])


@dataclass
class StackOptions:
    simulate: bool = False
    simulator_markets: int = 200
    simulator_port: int = SIMULATOR_PORT
    feeds: tuple[str, ...] = FEEDS
    with_sink: bool = True
    with_dashboard: bool = True
    loadgen_rate: float = 0.0
    loadgen_raw_bytes: int = 0
    loadgen_seconds: float = 0.0
    extra_children: tuple[ChildSpec, ...] = ()
    monitor_interval_secs: float = 2.0
    roll_drain_timeout_secs: float = 300.0


class EmbeddedStack:
    def __init__(self, config: Config, options: StackOptions | None = None) -> None:
        self.config = config
        self.options = options or StackOptions()
        self.data_dir = config.data_dir.resolve()
        self.run_dir = self.data_dir / "run"
        self.initialized = asyncio.Event()
        self.cluster_id: str | None = None
        self.rolls = 0
        self._rolling = False
        self.supervisor = Supervisor(self.children())

    # -- the children ------------------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        env = {
            "PMPIPE_DATA_DIR": str(self.data_dir),
            RUN_DIR_ENV: str(self.run_dir),
            "KAFKA_BOOTSTRAP_SERVERS": self.config.kafka_bootstrap_servers,
            "SCHEMA_REGISTRY_URL": self.config.schema_registry_url,
            "CLICKHOUSE_HOST": self.config.clickhouse_host,
            "CLICKHOUSE_PORT": str(self.config.clickhouse_port),
            "PMPIPE_METRICS_PORT": "0",  # one port per child, below
        }
        if self.options.simulate:
            base = f"http://127.0.0.1:{self.options.simulator_port}"
            env |= {
                "POLYMARKET_GAMMA_URL": f"{base}/gamma",
                "POLYMARKET_CLOB_URL": f"{base}/clob",
                "POLYMARKET_DATA_URL": f"{base}/data",
                "POLYMARKET_WS_URL": f"ws://127.0.0.1:{self.options.simulator_port}/ws/market",
            }
        return env

    def metrics_env(self, offset: int) -> dict[str, str]:
        """PMPIPE_METRICS_PORT for one child: the configured base port + offset (sink +0,
        producers +1..), or none when no base port is configured."""
        base = self.config.metrics_port
        return {"PMPIPE_METRICS_PORT": str(base + offset)} if base else {}

    async def _initialized(self) -> None:
        await self.initialized.wait()

    def children(self) -> list[ChildSpec]:
        cfg, env = self.config, self.child_env()
        kafka_port = _port_of(cfg.kafka_bootstrap_servers)
        registry_port = urlsplit(cfg.schema_registry_url).port or 18081
        ch_port = cfg.clickhouse_port
        data = str(self.data_dir)
        children = [
            ChildSpec(
                "broker",
                tansu_launcher_argv(kafka_port),
                ready_check=tcp_check("127.0.0.1", kafka_port),
                stop_order=3,
                stop_signal=TANSU_STOP_SIGNAL,
                url=f"kafka://127.0.0.1:{kafka_port}",
            ),
            ChildSpec(
                "registry",
                pmpipe_argv("registry", "--port", str(registry_port), "--data-dir", data),
                env=env,
                ready_check=http_check(f"http://127.0.0.1:{registry_port}/subjects"),
                stop_order=3,
                url=f"http://127.0.0.1:{registry_port}",
            ),
            ChildSpec(
                "clickhouse",
                pmpipe_argv("serve", "--port", str(ch_port), "--data-dir", data),
                env=env,
                ready_check=http_check(f"http://127.0.0.1:{ch_port}/ping"),
                stop_order=4,
                stop_timeout_secs=30,
                url=f"http://127.0.0.1:{ch_port}",
            ),
        ]
        infra = ("broker", "registry", "clickhouse")
        if self.options.simulate:
            children.append(
                ChildSpec(
                    "simulator",
                    pmpipe_argv(
                        "simulate",
                        "--port",
                        str(self.options.simulator_port),
                        "--markets",
                        str(self.options.simulator_markets),
                        "--data-dir",
                        str(self.data_dir / "simulator"),
                    ),
                    env=env,
                    ready_check=tcp_check("127.0.0.1", self.options.simulator_port),
                    stop_order=1,
                    url=f"http://127.0.0.1:{self.options.simulator_port}",
                )
            )
        if self.options.with_sink:
            children.append(
                ChildSpec(
                    "sink",
                    pmpipe_argv("sink"),
                    env=env | self.metrics_env(0),
                    depends_on=infra,
                    start_gate=self._initialized,
                    stop_order=1,
                    stop_timeout_secs=60,
                )
            )
        feed_deps = infra + (("simulator",) if self.options.simulate else ())
        for index, feed in enumerate(self.options.feeds, start=1):
            name = f"produce-{feed}"
            children.append(
                ChildSpec(
                    name,
                    pmpipe_argv("produce", feed),
                    env=env | {NAME_ENV: name, PAUSABLE_ENV: "1"} | self.metrics_env(index),
                    depends_on=feed_deps,
                    start_gate=self._initialized,
                    stop_order=0,
                    stop_timeout_secs=60,
                    nice=0 if feed == "ws" else POLLER_NICE,
                )
            )
        if self.options.with_dashboard:
            if shutil.which("node") and shutil.which("npm"):
                port = cfg.dashboard_port
                children.append(
                    ChildSpec(
                        "dashboard",
                        pmpipe_argv("dashboard", "--port", str(port)),
                        env=env,
                        depends_on=("clickhouse",),
                        start_gate=self._initialized,
                        ready_check=http_check(f"http://127.0.0.1:{port}/"),
                        ready_timeout_secs=900,  # the first start runs npm ci + next build
                        stop_order=0,
                        url=f"http://127.0.0.1:{port}",
                    )
                )
            else:
                log.warning("node/npm not found: the dashboard is not started")
        if self.options.loadgen_rate > 0:
            children.append(
                ChildSpec(
                    "loadgen",
                    pmpipe_argv(
                        "loadgen",
                        "--rate",
                        str(self.options.loadgen_rate),
                        "--raw-bytes",
                        str(self.options.loadgen_raw_bytes),
                        "--seconds",
                        str(self.options.loadgen_seconds),
                        "--report",
                        str(self.run_dir / "loadgen.report.json"),
                    ),
                    env=env | {NAME_ENV: "loadgen", PAUSABLE_ENV: "1"},
                    depends_on=infra,
                    start_gate=self._initialized,
                    stop_order=0,
                    stop_timeout_secs=60,
                    restart=self.options.loadgen_seconds <= 0,  # a timed run ends for good
                )
            )
        for spec in self.options.extra_children:
            children.append(spec)
        return children

    def pausable(self) -> list[str]:
        return [s.name for s in self.supervisor.specs() if (s.env or {}).get(PAUSABLE_ENV)]

    # -- running -----------------------------------------------------------------------------
    async def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob("*.paused.json"):
            stale.unlink()
        controller = asyncio.create_task(self._controller(), name="controller")
        try:
            return await self.supervisor.run()
        finally:
            controller.cancel()
            await asyncio.gather(controller, return_exceptions=True)

    async def _controller(self) -> None:
        try:
            await self._initialize()
            await self._monitor()
        except asyncio.CancelledError:
            raise
        except PipelineError as e:
            log.error("embedded stack controller failed: %s", e)
            self.supervisor.stop()

    def _init_topics(self) -> tuple[str, list[str]]:
        return init_topics(self.config, partitions=self.config.embedded_partitions or None)

    async def _initialize(self, timeout_secs: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_secs
        delay = 0.5
        while True:
            try:
                report = await asyncio.to_thread(
                    initialize, self.config, partitions=self.config.embedded_partitions or None
                )
                break
            except PipelineError as e:
                if time.monotonic() > deadline:
                    raise PipelineError(f"initialisation failed: {e}") from e
                log.info("waiting for the stack before initialising: %s", e)
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 5.0)
        self.cluster_id = report.cluster_id
        log.info(
            "ready init cluster_id=%s topics_created=%d schemas=%d migrations=%s",
            report.cluster_id,
            len(report.topics_created),
            len(report.schemas),
            report.migrations,
        )
        self.initialized.set()
        cfg = self.config
        log.info(
            "pmpipe up: kafka=%s registry=%s clickhouse=%s data_dir=%s",
            cfg.kafka_bootstrap_servers,
            cfg.schema_registry_url,
            cfg.clickhouse_url,
            self.data_dir,
        )

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.options.monitor_interval_secs)
            if self._rolling:
                continue
            rss = self.broker_rss()
            if rss >= self.config.embedded_broker_roll_bytes:
                log.info(
                    "broker log roll triggered rss_bytes=%d limit_bytes=%d",
                    rss,
                    self.config.embedded_broker_roll_bytes,
                )
                await self.roll()
                continue
            cluster_id = await self._current_cluster_id()
            if cluster_id and self.cluster_id and cluster_id != self.cluster_id:
                await self._on_new_incarnation(cluster_id)

    def broker_rss(self) -> int:
        pid = self.supervisor.pid("broker")
        if pid is None:
            return 0
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return 0

    async def _current_cluster_id(self) -> str | None:
        try:
            return await asyncio.to_thread(
                wait_for_broker,
                self.config.kafka_bootstrap_servers,
                3.0,
                self.config.kafka_client_config(),
            )
        except PipelineError:
            return None

    async def _on_new_incarnation(self, cluster_id: str) -> None:
        """The broker crashed and came back empty (not a planned roll): recreate the topics and
        give every producer a fresh session on the new log by pausing and resuming it. The
        producers are not restarted: a restarted trades producer would rebuild its seen-set
        from the new, empty topic and emit again fills ClickHouse already has. The sink is
        restarted once the producers are back (its consumer does not recover from the broker
        vanishing under it)."""
        log.warning(
            "broker restarted as a new incarnation old=%s new=%s: recreating topics; records "
            "the old broker held but ClickHouse did not are lost (embedded mode)",
            self.cluster_id,
            cluster_id,
        )
        self.cluster_id, created = await asyncio.to_thread(self._init_topics)
        log.info("topics recreated %s", created)
        producers = [n for n in self.pausable() if self.supervisor.pid(n) is not None]
        try:
            await self._pause(producers)
        finally:
            self._resume(producers)
        log.info("producers resumed on the new broker %s", producers)
        if self.supervisor.has_child("sink"):
            # A consumer that lived through the broker's restart keeps fetching nothing from
            # the new log (seen on Tansu): a fresh sink process reads it from the start.
            await self.supervisor.restart_child("sink")

    # -- the log roll ------------------------------------------------------------------------
    async def roll(self) -> bool:
        """Roll the broker's log; True when done, False when aborted (producers resumed)."""
        self._rolling = True
        started = time.monotonic()
        rss_before = self.broker_rss()
        producers = [n for n in self.pausable() if self.supervisor.pid(n) is not None]
        try:
            offsets = await self._pause(producers)
            if offsets is None:
                return False
            has_sink = self.supervisor.has_child("sink")
            if has_sink:
                await self._wait_sink_caught_up(offsets)
                # The sink leaves its consumer group before the broker goes: a member that
                # silently rejoined the new broker would make the next join wait for it up
                # to the rebalance timeout (max.poll.interval.ms, 5 minutes).
                await self.supervisor.hold_child("sink")
            await self.supervisor.restart_child("broker")
            rss_after = self.broker_rss()  # the fresh broker, before anything is produced
            self.cluster_id, _ = await asyncio.to_thread(self._init_topics)
            if has_sink:
                await self.supervisor.release_child("sink")
            self.rolls += 1
            log.info(
                "broker log rolled cluster_id=%s rss_before=%d rss_after=%d secs=%.1f",
                self.cluster_id,
                rss_before,
                rss_after,
                time.monotonic() - started,
            )
            return True
        except PipelineError as e:
            log.error("broker log roll aborted: %s", e)
            return False
        finally:
            if self.supervisor.has_child("sink") and self.supervisor.is_held("sink"):
                await self.supervisor.release_child("sink")
            self._resume(producers)
            self._rolling = False

    async def _pause(self, producers: list[str]) -> dict[tuple[str, int], int] | None:
        pids: dict[str, int | None] = {}
        for name in producers:
            state_path(self.run_dir, name).unlink(missing_ok=True)
            pids[name] = self.supervisor.pid(name)
            self.supervisor.signal_child(name, signal.SIGUSR1)
        offsets: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + 120
        for name in producers:
            while (got := read_paused_offsets(state_path(self.run_dir, name))) is None:
                if time.monotonic() > deadline or self.supervisor.pid(name) is None:
                    log.error("producer %s did not pause in time", name)
                    return None
                if self.supervisor.pid(name) != pids[name]:
                    log.error("producer %s restarted instead of pausing", name)
                    return None
                await asyncio.sleep(0.1)
            for key, value in got.items():
                offsets[key] = max(offsets.get(key, 0), value)
        log.info("producers paused %s", producers)
        return offsets

    def _resume(self, producers: list[str]) -> None:
        for name in producers:
            if self.supervisor.pid(name) is not None:
                self.supervisor.signal_child(name, signal.SIGUSR2)

    async def _wait_sink_caught_up(self, offsets: dict[tuple[str, int], int]) -> None:
        """Until the sink group's committed offsets reach what producers delivered."""
        if not offsets:
            return
        consumer = Consumer(consumer_config(self.config, self.config.sink_group_id))
        partitions = [TopicPartition(t, p) for (t, p) in offsets]
        deadline = time.monotonic() + self.options.roll_drain_timeout_secs
        try:
            while True:
                committed = await asyncio.to_thread(consumer.committed, partitions, 10.0)
                behind = {
                    (tp.topic, tp.partition): offsets[(tp.topic, tp.partition)] - tp.offset
                    for tp in committed
                    if tp.offset < offsets[(tp.topic, tp.partition)]
                }
                if not behind:
                    log.info("sink caught up partitions=%d", len(partitions))
                    return
                if time.monotonic() > deadline:
                    raise PipelineError(f"sink did not catch up: {len(behind)} partition(s) behind")
                await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(consumer.close)


def run_up(config: Config, options: StackOptions) -> int:
    stack = EmbeddedStack(config, options)
    return asyncio.run(stack.run())
