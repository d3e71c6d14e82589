"""`pmpipe replay`: re-process topics into ClickHouse, exactly once.

A replay reads each chosen topic's partitions from `--from` to `--to` with an assign-only
consumer (no group, no commits: the live sink's offsets never move) and stores the records the
way the sink does (sink/DESIGN.md), reusing its modules:

* the target database's `sink_progress` names the batches already stored in the current log
  incarnation: those ranges are **re-formed exactly** (`PartitionState`, same bounds, same
  token `<incarnation>:<topic>:<partition>:<first>-<last>`), so ClickHouse drops what it has
  seen, in the tables and in every rollup view; the selection is widened to whole batches;
* offsets no batch covers are cut anew (count/bytes limits of the sink), recorded `pending`
  before their insert and `committed` after, like the sink does: a second replay re-forms them;
* every batch goes through the sink's `BatchFlusher` (Avro container, one insert per schema id,
  poison isolation). Dead letters are logged and counted, not sent to the DLQ again.

Into the sink's own database (the default), offsets after the sink's last recorded batch are
left to the sink, so a replay never cuts a range differently from a running sink. Into another
database (`--database X`), X is created and migrated first and has its own `sink_progress`.
`--renormalize` re-runs the current WebSocket parsers over `polymarket.ws_raw` into another
database (sink/replay_renormalize.py).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import click
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from pmpipe.avro import AvroCodec, make_registry_client, registry_reachable
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.kafka import consumer_config
from pmpipe.log import setup_logging
from pmpipe.migrations import TOPIC_TABLES, apply_migrations, check_identifier
from pmpipe.supervisor import Backoff
from pmpipe.topics import WS_RAW
from sink.batch import Batch, BatchLimits, OffsetRange
from sink.errors import MissingTableError, UnavailableError
from sink.flush import BatchFlusher, Stored
from sink.incarnation import Incarnations
from sink.partition import PartitionState
from sink.progress import COMMITTED, PENDING, ProgressRow, ProgressStore
from sink.replay_log import LogReader
from sink.replay_progress import ReplayProgress
from sink.replay_renormalize import PREFIX, RECORD_TOPICS, Renormalizer
from sink.replay_window import (
    AtTime,
    FromSpec,
    PartitionPlan,
    RangeIndex,
    ToSpec,
    check_bounds,
    parse_from,
    parse_to,
    plan_partition,
)
from sink.rounds import progress_row
from sink.run import topic_targets
from sink.schemas import WriterSchemas
from sink.writer import ClickHouseWriter, connect

__all__ = ["Replay", "ReplayOptions", "ReplaySummary", "replay_command", "resolve_topics"]

log = logging.getLogger(__name__)

COMPONENT = "replay"
MAX_ATTEMPTS = 6
"""Tries of one ClickHouse / registry step before the replay gives up (exit code 2)."""
_BACKOFF = Backoff(initial_secs=0.5, max_secs=10.0)
_CONSUMER_TUNING = {
    "enable.partition.eof": True,
    "queued.max.messages.kbytes": 32 * 1024,
    "fetch.max.bytes": 16 * 1024 * 1024,
    "client.id": "pmpipe-replay",
}
_STALL_WARN_SECS = 30.0
_COUNTED_TABLE = {"orderbook_snapshots_in": "orderbook_snapshots"}
"""Books are inserted through a Null table; their rows are counted in its view's target."""

R = TypeVar("R")


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def resolve_topics(names: Sequence[str], *, renormalize: bool) -> tuple[str, ...]:
    """Catalogue topic names from `--topic` values (`trades` or `polymarket.trades`); every
    consumed topic when none is given (ws_raw alone with `--renormalize`)."""
    if renormalize:
        wrong = [n for n in names if n not in (WS_RAW, WS_RAW.removeprefix("polymarket."))]
        if wrong:
            raise PipelineError(
                f"--renormalize reads {WS_RAW} only, not {', '.join(wrong)}", component=COMPONENT
            )
        return (WS_RAW,)
    if not names:
        return tuple(TOPIC_TABLES)
    chosen: list[str] = []
    for name in names:
        full = name if name in TOPIC_TABLES else f"polymarket.{name}"
        if full not in TOPIC_TABLES:
            raise PipelineError(
                f"unknown topic {name!r}; choose from {', '.join(TOPIC_TABLES)}",
                component=COMPONENT,
            )
        if full not in chosen:
            chosen.append(full)
    return tuple(chosen)


@dataclass(frozen=True)
class ReplayOptions:
    topics: tuple[str, ...]
    """Catalogue names (without the prefix)."""
    start: FromSpec
    end: ToSpec
    database: str
    """The target database."""
    own_database: bool
    """The target is the sink's database: leave offsets past its last recorded batch to it."""
    limits: BatchLimits
    renormalize: bool = False
    topic_prefix: str = ""


@dataclass
class ReplaySummary:
    records: int = 0
    """Records read and stored (raw frames with --renormalize)."""
    batches_reformed: int = 0
    batches_new: int = 0
    rows_sent: Counter[str] = field(default_factory=Counter)
    """Rows inserted per table (ClickHouse drops the ones whose token it has seen)."""
    dead_letters: int = 0
    parse_errors: int = 0
    undecodable: int = 0
    control_frames: int = 0
    rows_before: dict[str, int] = field(default_factory=dict)
    rows_after: dict[str, int] = field(default_factory=dict)
    elapsed_secs: float = 0.0

    def lines(self, database: str, topics: Sequence[str]) -> list[str]:
        head = (
            f"replay done in {self.elapsed_secs:.1f} s: {self.records:,} records from "
            f"{len(topics)} topic(s) into {database}; batches re-formed {self.batches_reformed:,},"
            f" new {self.batches_new:,}; dead letters {self.dead_letters:,}"
        )
        if self.parse_errors or self.undecodable or self.control_frames:
            head += (
                f"; parse errors {self.parse_errors:,}, undecodable frames {self.undecodable:,},"
                f" control frames {self.control_frames:,}"
            )
        out = [head, f"{'table':<24} {'rows sent':>12} {'rows before':>12} {'rows after':>12}"]
        sent: Counter[str] = Counter()
        for table, rows in self.rows_sent.items():
            sent[_COUNTED_TABLE.get(table, table)] += rows
        for table in sorted(set(sent) | set(self.rows_before)):
            before = self.rows_before.get(table)
            after = self.rows_after.get(table)
            out.append(
                f"{table:<24} {sent.get(table, 0):>12,}"
                f" {'-' if before is None else f'{before:,}':>12}"
                f" {'-' if after is None else f'{after:,}':>12}"
            )
        return out


def target_tables(options: ReplayOptions) -> list[str]:
    """The tables a replay writes, as inserted into (books: the Null table)."""
    names = RECORD_TOPICS if options.renormalize else options.topics
    return [TOPIC_TABLES[name] for name in names]


def recorded_ranges(
    client: Client, database: str, incarnation: str, topic: str
) -> dict[int, RangeIndex]:
    """Every batch range `sink_progress` holds for (incarnation, topic), pending or committed."""
    try:
        rows = client.query(
            f"SELECT partition, first_offset, argMax(last_offset, updated_at)"
            f" FROM {database}.sink_progress"
            " WHERE incarnation = {i:String} AND topic = {t:String}"
            " GROUP BY partition, first_offset ORDER BY partition, first_offset",
            parameters={"i": incarnation, "t": topic},
        ).result_rows
    except ClickHouseError as e:
        raise UnavailableError(f"cannot read batch progress: {_first_line(e)}") from e
    by_partition: dict[int, list[OffsetRange]] = {}
    for partition, first, last in rows:
        by_partition.setdefault(int(partition), []).append(OffsetRange(int(first), int(last)))
    return {p: RangeIndex(ranges) for p, ranges in by_partition.items()}


def table_counts(client: Client, database: str, tables: Sequence[str]) -> dict[str, int]:
    out = {}
    for table in tables:
        counted = _COUNTED_TABLE.get(table, table)
        try:
            out[counted] = int(
                client.query(f"SELECT count() FROM {database}.{counted}").result_rows[0][0]
            )
        except ClickHouseError as e:
            log.warning("cannot count %s.%s: %s", database, counted, _first_line(e))
    return out


@dataclass
class _Partition:
    state: PartitionState
    plan: PartitionPlan
    read: int = 0


class Replay:
    """One replay run over the chosen topics, one topic at a time."""

    def __init__(
        self,
        options: ReplayOptions,
        *,
        client: Client,
        reader: LogReader,
        incarnations: Incarnations,
        flusher: BatchFlusher,
        renormalizer: Renormalizer | None = None,
        display: ReplayProgress | None = None,
        attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.options = options
        self.client = client
        self.reader = reader
        self.incarnations = incarnations
        self.progress = ProgressStore(client, options.database)
        self.flusher = flusher
        self.renormalizer = renormalizer
        self.display = display or ReplayProgress()
        self.attempts = attempts
        self.summary = ReplaySummary()
        self._marks: list[ProgressRow] = []
        self._topic = ""

    def run(self) -> ReplaySummary:
        started = time.monotonic()
        tables = target_tables(self.options)
        self.summary.rows_before = table_counts(self.client, self.options.database, tables)
        names = [self.options.topic_prefix + name for name in self.options.topics]
        self._retry("reading the log incarnation", lambda: self.incarnations.refresh(names))
        for name in names:
            self._replay_topic(name)
        self.summary.rows_after = table_counts(self.client, self.options.database, tables)
        self.summary.elapsed_secs = time.monotonic() - started
        return self.summary

    # --- one topic -------------------------------------------------------------------------------
    def _replay_topic(self, topic: str) -> None:
        self._topic = topic
        label = PREFIX + topic if self.options.renormalize else topic
        incarnation = self.incarnations.of(topic)
        partitions = self.reader.partitions(topic)
        recorded = self._retry(
            "reading batch progress",
            lambda: recorded_ranges(self.client, self.options.database, incarnation, label),
        )
        parts = self._plan(topic, label, incarnation, partitions, recorded)
        todo = {p: part for p, part in parts.items() if not part.plan.selector.done}
        estimates = [part.plan.estimate for part in todo.values()]
        total = None if any(e is None for e in estimates) else sum(e or 0 for e in estimates)
        log.info(
            "replaying %s partitions=%s incarnation=%s recorded_batches=%d into %s",
            topic,
            sorted(todo),
            incarnation,
            sum(len(r) for r in recorded.values()),
            self.options.database,
        )
        self.display.start(topic, total)
        if todo:
            self.reader.assign(topic, {p: part.plan.seek for p, part in todo.items()})
            try:
                self._read(todo)
            finally:
                self.reader.unassign()
        self._record([])  # the last committed marks
        self.display.finish()

    def _plan(
        self,
        topic: str,
        label: str,
        incarnation: str,
        partitions: list[int],
        recorded: dict[int, RangeIndex],
    ) -> dict[int, _Partition]:
        marks = self.reader.watermarks(topic, partitions)
        start, end = self.options.start, self.options.end
        at_time = (
            self.reader.offsets_at(topic, partitions, start.ms) if isinstance(start, AtTime) else {}
        )
        started_ms = time.time_ns() // 1_000_000
        parts = {}
        for p in partitions:
            ranges = recorded.get(p, RangeIndex())
            for a, b in ranges.overlapping():
                log.warning("%s[%d]: recorded batches %s and %s overlap", topic, p, a, b)
            cap = None
            if self.options.own_database:
                cap = ranges.reach + 1
                log.info(
                    "%s[%d]: offsets from %d on are left to the sink (%s)",
                    topic,
                    p,
                    cap,
                    f"its last recorded batch ends at {ranges.reach}"
                    if len(ranges)
                    else "it recorded no batch of this partition in this log incarnation",
                )
            plan = plan_partition(
                start,
                end,
                ranges=ranges,
                watermarks=marks[p],
                time_offset=at_time.get(p, 0),
                cap=cap,
                started_ms=started_ms,
            )
            reform = deque(r for r in ranges.ranges if r.last >= plan.selector.start)
            state = PartitionState(label, p, incarnation, ready=True, reform=reform)
            parts[p] = _Partition(state, plan)
        return parts

    def _read(self, todo: dict[int, _Partition]) -> None:
        limits = self.options.limits
        open_parts = dict(todo)
        heard = time.monotonic()
        while open_parts:
            reads = self.reader.read()
            now = time.monotonic()
            if reads:
                heard = now
            elif now - heard >= _STALL_WARN_SECS:
                heard = now
                log.warning(
                    "%s: nothing from partitions %s for %.0f s (no record, no end of partition);"
                    " still waiting",
                    self._topic,
                    sorted(open_parts),
                    _STALL_WARN_SECS,
                )
            for read in reads:
                part = open_parts.get(read.partition)
                if part is None:
                    continue
                selector = part.plan.selector
                if read.message is None:  # EOF
                    selector.finish()
                else:
                    part.read += 1
                    for offset, message in selector.offer(
                        read.offset, read.timestamp_ms, read.message
                    ):
                        part.state.add(offset, message, limits)
                        self.summary.records += 1
                    self._store_sealed(part.state)
                if selector.done:
                    part.state.seal()
                    self._store_sealed(part.state)
                    del open_parts[read.partition]
            self.display.update(sum(p.read for p in todo.values()), self.summary.records)

    # --- storing -------------------------------------------------------------------------------
    def _store_sealed(self, state: PartitionState) -> None:
        while state.sealed:
            self._store(state.sealed.popleft())

    def _store(self, batch: Batch) -> None:
        if self._retry(
            "checking the log incarnation", lambda: self.incarnations.changed(self._topic)
        ):
            raise PipelineError(
                "the broker's log was replaced during the replay (new cluster id): run it again",
                topic=self._topic,
                component=COMPONENT,
            )
        new = not batch.recorded
        if new:
            self._record([progress_row(batch, PENDING)])
            batch.recorded = True
            self.summary.batches_new += 1
        else:
            self.summary.batches_reformed += 1
        for stored in self._retry(f"storing batch {batch.token}", lambda: self._insert(batch)):
            self.summary.rows_sent[stored.table] += stored.rows
            self.summary.dead_letters += len(stored.letters)
            for letter in stored.letters[:20]:
                log.warning(
                    "dead letter (logged, not re-sent) batch=%s index=%d type=%s error=%s",
                    batch.token,
                    letter.index,
                    letter.error_type,
                    letter.error[:300],
                )
        batch.stored = True
        if new:
            self._marks.append(progress_row(batch, COMMITTED))

    def _insert(self, batch: Batch) -> list[Stored]:
        if self.renormalizer is None:
            return [self.flusher.store(batch)]
        derived = self.renormalizer.derive(batch)
        self.summary.parse_errors += derived.parse_errors
        self.summary.undecodable += derived.undecodable
        self.summary.control_frames += derived.control
        return [self.flusher.store(b) for b in derived.batches]

    def _record(self, rows: list[ProgressRow]) -> None:
        marks, self._marks = self._marks, []
        if marks or rows:
            self._retry("recording batch progress", lambda: self.progress.record([*marks, *rows]))

    def _retry(self, what: str, step: Callable[[], R]) -> R:
        for attempt in range(1, self.attempts + 1):
            try:
                return step()
            except UnavailableError as e:
                if attempt >= self.attempts:
                    raise PipelineError(
                        f"{what} failed {attempt} times, giving up: {_first_line(e)}",
                        component=COMPONENT,
                    ) from e
                delay = _BACKOFF.delay(attempt)
                log.warning(
                    "%s failed (attempt %d), retrying in %.1f s: %s",
                    what,
                    attempt,
                    delay,
                    _first_line(e),
                )
                time.sleep(delay)
        raise AssertionError("unreachable")


# --- the command ---------------------------------------------------------------------------------
def _connect_clickhouse(config: Config) -> Client:
    try:
        client = connect(config, timeout_secs=300.0)
        client.command("SELECT 1")
    except (UnavailableError, ClickHouseError, OSError) as e:
        raise PipelineError(
            f"ClickHouse at {config.clickhouse_url} is unreachable: {_first_line(e)}",
            component=COMPONENT,
        ) from e
    return client


def _check_broker(config: Config, topics: Sequence[str]) -> None:
    """The broker answers and has every topic (librdkafka's own log lines silenced here)."""
    admin = AdminClient({**config.kafka_client_config(), "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=10)
    except KafkaException as e:
        raise PipelineError(
            f"broker at {config.kafka_bootstrap_servers} is unreachable: {_first_line(e.args[0])}",
            component=COMPONENT,
        ) from e
    missing = [t for t in topics if t not in metadata.topics]
    if missing:
        raise PipelineError(
            f"topic(s) {', '.join(missing)} do not exist on the broker", component=COMPONENT
        )


def _prepare_database(client: Client, options: ReplayOptions) -> None:
    if not options.own_database:
        log.info("creating and migrating database %s", options.database)
        apply_migrations(client, options.database)
    writer = ClickHouseWriter(client, options.database)
    for table in [*target_tables(options), "sink_progress"]:
        try:
            writer.columns(table)
        except MissingTableError as e:
            raise PipelineError(_first_line(e), component=COMPONENT) from e
        except UnavailableError as e:
            raise PipelineError(
                f"ClickHouse is unreachable: {_first_line(e)}", component=COMPONENT
            ) from e


def _options(
    config: Config,
    topics: Sequence[str],
    start_text: str,
    end_text: str,
    database: str | None,
    renormalize: bool,
    topic_prefix: str,
) -> ReplayOptions:
    try:
        start = parse_from(start_text)
    except ValueError as e:
        raise PipelineError(f"--from: {e}", component=COMPONENT) from e
    try:
        end = parse_to(end_text)
    except ValueError as e:
        raise PipelineError(f"--to: {e}", component=COMPONENT) from e
    try:
        check_bounds(start, end)
    except ValueError as e:
        raise PipelineError(str(e), component=COMPONENT) from e
    chosen = resolve_topics(topics, renormalize=renormalize)
    target = database or config.clickhouse_database
    check_identifier(target)
    own = target == config.clickhouse_database
    if renormalize and own:
        raise PipelineError(
            f"--renormalize writes into another database than the sink's ({target}):"
            " pass --database NAME",
            component=COMPONENT,
        )
    return ReplayOptions(
        topics=chosen,
        start=start,
        end=end,
        database=target,
        own_database=own,
        limits=BatchLimits(
            config.sink_batch_max_records, config.sink_batch_max_bytes, config.sink_batch_max_secs
        ),
        renormalize=renormalize,
        topic_prefix=topic_prefix,
    )


@click.command("replay")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="TOPIC",
    help="Topic to replay, repeatable (`trades` or `polymarket.trades`)."
    " Default: the five data topics and polymarket.ws_raw.",
)
@click.option(
    "--from",
    "start_text",
    default="earliest",
    show_default=True,
    help="`earliest`, an offset (in every partition) or an ISO time (UTC unless it names a zone).",
)
@click.option(
    "--to",
    "end_text",
    default="end",
    show_default=True,
    help="`end` (the log's end when the replay starts), an offset or an ISO time (both exclusive).",
)
@click.option(
    "--database",
    default=None,
    help="Target database (default: CLICKHOUSE_DATABASE, the sink's). Another one is created"
    " and migrated first.",
)
@click.option(
    "--renormalize",
    is_flag=True,
    help="Re-run the current WebSocket parsers over polymarket.ws_raw into --database"
    " (which must not be the sink's).",
)
@click.option(
    "--topic-prefix",
    envvar="PMPIPE_SINK_TOPIC_PREFIX",
    default="",
    help="Prefix of every topic name (tests, side-by-side deployments).",
)
def replay_command(
    topics: tuple[str, ...],
    start_text: str,
    end_text: str,
    database: str | None,
    renormalize: bool,
    topic_prefix: str,
) -> None:
    """Re-process topics into ClickHouse without duplicates.

    Batches the sink stored are re-formed exactly and inserted under their deduplication
    tokens (ClickHouse drops them, views included); offsets no batch covers are cut and
    recorded like the sink does. Into the sink's own database, offsets after its last recorded
    batch are left to it; `--database X` replays into X (created and migrated first).
    Deduplication covers the last 10,000 blocks per table (self-hosted / embedded; 1 hour on
    ClickHouse Cloud): a batch older than that lands again in the same database.

    Embedded mode: the broker (Tansu) keeps nothing across restarts or log rolls, so a replay
    covers the current broker run only.
    """
    setup_logging(COMPONENT)
    for noisy in ("urllib3", "clickhouse_connect"):  # their failures reach our own lines
        logging.getLogger(noisy).setLevel(logging.ERROR)
    config = Config.load()
    options = _options(config, topics, start_text, end_text, database, renormalize, topic_prefix)
    names = [topic_prefix + name for name in options.topics]
    client = _connect_clickhouse(config)
    try:
        _check_broker(config, names)
        if not registry_reachable(config.schema_registry_url):
            raise PipelineError(
                f"schema registry at {config.schema_registry_url} is unreachable",
                component=COMPONENT,
            )
        _prepare_database(client, options)
        registry_conf = config.schema_registry_config()
        schemas = WriterSchemas(make_registry_client(registry_conf))
        flusher = BatchFlusher(
            ClickHouseWriter(client, options.database), schemas, topic_targets(topic_prefix)
        )
        renormalizer = (
            Renormalizer(schemas, AvroCodec(registry_conf), topic_prefix) if renormalize else None
        )
        consumer = Consumer(
            consumer_config(config, f"pmpipe-replay-{uuid.uuid4().hex[:12]}", **_CONSUMER_TUNING)
        )
        reader = LogReader(consumer)
        try:
            replay = Replay(
                options,
                client=client,
                reader=reader,
                incarnations=Incarnations(AdminClient(dict(config.kafka_client_config()))),
                flusher=flusher,
                renormalizer=renormalizer,
            )
            summary = replay.run()
        finally:
            reader.close()
    finally:
        client.close()
    lines = summary.lines(options.database, names)
    log.info(
        "replay summary",
        extra={
            "database": options.database,
            "records": summary.records,
            "rows_sent": dict(summary.rows_sent),
            "rows_before": summary.rows_before,
            "rows_after": summary.rows_after,
            "batches_reformed": summary.batches_reformed,
            "batches_new": summary.batches_new,
            "dead_letters": summary.dead_letters,
            "elapsed_secs": round(summary.elapsed_secs, 2),
        },
    )
    for line in lines:
        click.echo(line)
