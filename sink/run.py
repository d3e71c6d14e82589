"""`pmpipe sink` / `python -m sink`: build the sink from the configuration and run it.

Settings come from the one `Config` (KAFKA_*, SCHEMA_REGISTRY_*, CLICKHOUSE_*,
PMPIPE_SINK_BATCH_MAX_RECORDS / _BYTES / _SECS, PMPIPE_SINK_GROUP_ID); the options below are
the sink's own, each with its env var. SIGINT / SIGTERM: store and commit what is buffered,
then close (a second signal stops at once; nothing uncommitted is lost, it is read again).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import click
import httpx
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from pmpipe.avro import AvroCodec, make_registry_client, registry_reachable
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.kafka import RecordProducer, consumer_config
from pmpipe.log import setup_logging
from pmpipe.metrics import export_stats, serve_metrics
from pmpipe.migrations import TOPIC_TABLES
from pmpipe.supervisor import Backoff
from pmpipe.topics import DLQ, Topic, get_topic
from sink.batch import BatchLimits
from sink.consumer import Sink, SinkOptions
from sink.dlq import DeadLetters
from sink.errors import MissingTableError, UnavailableError
from sink.faults import CrashPoints
from sink.flush import BatchFlusher, Target
from sink.progress import ProgressStore
from sink.schemas import WriterSchemas, record_fullname
from sink.writer import ClickHouseWriter, connect

__all__ = ["build_sink", "main", "sink_command", "topic_targets"]

log = logging.getLogger(__name__)

CONSUMER_TUNING = {
    "queued.max.messages.kbytes": 32 * 1024,
    "fetch.max.bytes": 16 * 1024 * 1024,
    "client.id": "pmpipe-sink",
}
"""librdkafka's prefetch queue is the other buffer besides the batches: bounded to 32 MiB."""


def topic_targets(prefix: str = "") -> dict[str, Target]:
    """Consumed topic -> target table (pmpipe.migrations.TOPIC_TABLES), `prefix` prepended to
    every topic name (tests and side-by-side deployments on one broker)."""
    return {
        prefix + name: Target(table, record_fullname(get_topic(name).schema()))
        for name, table in TOPIC_TABLES.items()
    }


def dlq_topic(prefix: str = "") -> Topic:
    base = get_topic(DLQ)
    return Topic(prefix + base.name, base.schema_name, base.key_field, base.partitions, base.config)


def wait_for_clickhouse(config: Config, stopped: Callable[[], bool]) -> Client | None:
    """Connect, retrying with backoff while ClickHouse is down; None if stopped meanwhile."""
    backoff = Backoff(initial_secs=0.5, max_secs=10.0)
    attempt = 0
    while not stopped():
        try:
            return connect(config)
        except UnavailableError as e:
            attempt += 1
            delay = backoff.delay(attempt)
            log.warning(
                "waiting for ClickHouse (attempt %d, next in %.1f s): %s", attempt, delay, e
            )
            deadline = time.monotonic() + delay
            while not stopped() and time.monotonic() < deadline:
                time.sleep(0.1)
    return None


def build_sink(
    config: Config, client: Client, options: SinkOptions, *, topic_prefix: str = ""
) -> Sink:
    writer = ClickHouseWriter(client, config.clickhouse_database)
    for target in options.targets.values():
        try:
            writer.columns(target.table)
        except MissingTableError as e:
            raise PipelineError(str(e), component="sink") from e
    registry_conf = config.schema_registry_config()
    admin_conf: dict[str, str | int | float | bool] = {**config.kafka_client_config()}
    producer = RecordProducer(config, "pmpipe-sink-dlq", AvroCodec(registry_conf))
    return Sink(
        options,
        consumer=Consumer(consumer_config(config, config.sink_group_id, **CONSUMER_TUNING)),
        admin=AdminClient(admin_conf),
        progress=ProgressStore(client, config.clickhouse_database),
        flusher=BatchFlusher(
            writer, WriterSchemas(make_registry_client(registry_conf)), options.targets
        ),
        dead_letters=DeadLetters(producer, dlq_topic(topic_prefix)),
        crash=CrashPoints.from_env(),
    )


def sink_health(config: Config, admin: AdminClient) -> dict[str, bool]:
    """/health: ready when the broker, the registry and ClickHouse all answer."""
    try:
        admin.list_topics(timeout=2)
        broker = True
    except KafkaException:
        broker = False
    try:
        clickhouse = httpx.get(f"{config.clickhouse_url}/ping", timeout=2).status_code == 200
    except httpx.HTTPError:
        clickhouse = False
    return {
        "broker": broker,
        "registry": registry_reachable(config.schema_registry_url),
        "clickhouse": clickhouse,
    }


def start_observability(config: Config, sink: Sink, interval_secs: float = 5.0) -> None:
    """/metrics and /health on PMPIPE_METRICS_PORT, and the sink's stats mirrored into them."""
    if not config.metrics_port:
        return
    admin = AdminClient(dict(config.kafka_client_config()))
    serve_metrics(config.metrics_port, lambda: sink_health(config, admin))

    def export() -> None:
        while True:
            try:
                export_stats("sink", sink.stats())
            except RuntimeError as e:  # a counter dict changed size mid-read: next round
                log.debug("stats export skipped: %s", e)
            time.sleep(interval_secs)

    threading.Thread(target=export, name="stats-export", daemon=True).start()


class _Signals:
    """First SIGINT/SIGTERM: graceful stop; second: KeyboardInterrupt (stop now)."""

    def __init__(self) -> None:
        self.count = 0
        self.sink: Sink | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        log.info("%s: storing buffered batches, then stopping", signal.Signals(signum).name)
        if self.sink is not None:
            self.sink.stop()


@click.command("sink")
@click.option("--database", default=None, help="ClickHouse database [CLICKHOUSE_DATABASE].")
@click.option("--group-id", default=None, help="Consumer group [PMPIPE_SINK_GROUP_ID].")
@click.option(
    "--topic-prefix",
    envvar="PMPIPE_SINK_TOPIC_PREFIX",
    default="",
    help="Prefix of every topic name (tests, side-by-side deployments).",
)
@click.option(
    "--static-assignment/--group-assignment",
    envvar="PMPIPE_SINK_STATIC_ASSIGNMENT",
    default=False,
    help="Read every partition in this process without group rebalancing (one sink only).",
)
@click.option(
    "--max-buffered-bytes",
    envvar="PMPIPE_SINK_MAX_BUFFERED_BYTES",
    default=256 * 1024 * 1024,
    type=click.IntRange(min=1),
    help="Memory budget of all batches; above it every partition pauses.",
)
@click.option(
    "--insert-concurrency",
    envvar="PMPIPE_SINK_INSERT_CONCURRENCY",
    default=2,
    type=click.IntRange(1, 16),
    help="Partitions inserted in parallel.",
)
@click.option(
    "--progress-interval-secs",
    envvar="PMPIPE_SINK_PROGRESS_INTERVAL_SECS",
    default=10.0,
    type=click.FloatRange(min=0.1),
    help="Seconds between progress log lines (rows/s per table, lag, pauses).",
)
@click.option(
    "--shutdown-timeout-secs",
    envvar="PMPIPE_SINK_SHUTDOWN_TIMEOUT_SECS",
    default=30.0,
    type=click.FloatRange(min=0),
    help="How long a stop may take to store and commit buffered batches.",
)
def sink_command(
    database: str | None,
    group_id: str | None,
    topic_prefix: str,
    static_assignment: bool,
    max_buffered_bytes: int,
    insert_concurrency: int,
    progress_interval_secs: float,
    shutdown_timeout_secs: float,
) -> None:
    """Write the topics into ClickHouse exactly once (Avro batches, dedup tokens, progress)."""
    setup_logging("sink")
    for noisy in ("urllib3", "clickhouse_connect"):  # their failures reach our own log lines
        logging.getLogger(noisy).setLevel(logging.ERROR)
    config = Config.load(overrides={"clickhouse_database": database, "sink_group_id": group_id})
    options = SinkOptions(
        targets=topic_targets(topic_prefix),
        limits=BatchLimits(
            config.sink_batch_max_records, config.sink_batch_max_bytes, config.sink_batch_max_secs
        ),
        max_buffered_bytes=max_buffered_bytes,
        insert_concurrency=insert_concurrency,
        static_assignment=static_assignment,
        progress_interval_secs=progress_interval_secs,
        shutdown_timeout_secs=shutdown_timeout_secs,
    )
    signals = _Signals()
    previous = {s: signal.signal(s, signals) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        client = wait_for_clickhouse(config, lambda: signals.count > 0)
        if client is None:
            return
        sink = build_sink(config, client, options, topic_prefix=topic_prefix)
        signals.sink = sink
        start_observability(config, sink)
        if signals.count:
            sink.stop()
        log.info(
            "sink starting group=%s database=%s topics=%s",
            config.sink_group_id,
            config.clickhouse_database,
            sorted(options.targets),
        )
        sink.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    """`python -m sink`: PipelineError -> one line on stderr and exit 2."""
    try:
        sink_command.main(args=argv, prog_name="python -m sink", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except PipelineError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
