"""`pmpipe status`: is the pipeline alive and fresh?

Per topic and partition: end offset, the sink group's committed offset and the lag between
them; the DLQ's size; per table: rows, newest receive time and newest source time, and
freshness against the expected interval of the feed that fills it.

Lag caveat: lag is measured against the broker's high watermark. Redpanda reports it exactly;
the embedded Tansu under-reports it after batched produces, so there the lag shown is a
lower bound (the embedded stack's log roll uses producers' delivery reports instead).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import Consumer, KafkaException, TopicPartition

from pmpipe.broker import wait_for_broker
from pmpipe.clickhouse import make_client
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.kafka import consumer_config
from pmpipe.topics import DLQ, load_topics

# table -> (feed that fills it, config field of its expected interval; None = event-driven)
TABLE_FEEDS: dict[str, tuple[str, str | None]] = {
    "markets": ("markets", "markets_interval_secs"),
    "market_prices": ("prices", "prices_interval_secs"),
    "market_trades": ("trades", "trades_interval_secs"),
    "orderbook_snapshots": ("books", "books_interval_secs"),
    "market_events": ("ws", None),
    "ws_raw_frames": ("ws", None),
}
STALE_FACTOR = 2.0
STALE_GRACE_SECS = 30.0


@dataclass
class PartitionStatus:
    topic: str
    partition: int
    end_offset: int
    committed: int | None
    lag: int | None


@dataclass
class TableStatus:
    table: str
    feed: str
    rows: int
    newest_received: str | None
    newest_source: str | None
    age_secs: float | None
    expected_interval_secs: float | None
    fresh: bool | None


@dataclass
class Status:
    broker: str
    cluster_id: str | None
    clickhouse: str
    database: str
    partitions: list[PartitionStatus] = field(default_factory=list)
    dlq_records: int | None = None
    tables: list[TableStatus] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def kafka_status(config: Config, status: Status) -> None:
    status.cluster_id = wait_for_broker(
        config.kafka_bootstrap_servers, 10.0, config.kafka_client_config()
    )
    consumer = Consumer(consumer_config(config, config.sink_group_id))
    try:
        metadata = consumer.list_topics(timeout=10)
        wanted = []
        for topic in load_topics():
            meta = metadata.topics.get(topic.name)
            if meta is None or meta.error is not None:
                status.errors.append(f"topic {topic.name} is missing")
                continue
            wanted += [TopicPartition(topic.name, p) for p in sorted(meta.partitions)]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(wanted, 10)}
        for tp in wanted:
            _, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            offset = committed.get((tp.topic, tp.partition), -1)
            known = offset if offset >= 0 else None
            lag = None if tp.topic == DLQ else max(high - (known or 0), 0)
            status.partitions.append(PartitionStatus(tp.topic, tp.partition, high, known, lag))
        status.dlq_records = sum(p.end_offset for p in status.partitions if p.topic == DLQ)
    except KafkaException as e:
        status.errors.append(f"kafka: {e}")
    finally:
        consumer.close()


def clickhouse_status(config: Config, status: Status, now: float) -> None:
    client = make_client(config)
    try:
        for table, (feed, interval_field) in TABLE_FEEDS.items():
            has_source = table != "ws_raw_frames"
            row = client.query(
                f"SELECT count(), max(received_ts), {'max(source_ts)' if has_source else 'NULL'}"
                f" FROM {config.clickhouse_database}.{table}"
            ).result_rows[0]
            rows, newest_recv, newest_src = int(row[0]), row[1], row[2]
            age = None
            if rows and newest_recv is not None:
                age = max(now - newest_recv.timestamp(), 0.0)
            interval = getattr(config, interval_field) if interval_field else None
            fresh = None
            if interval is not None:
                fresh = age is not None and age <= interval * STALE_FACTOR + STALE_GRACE_SECS
            status.tables.append(
                TableStatus(
                    table,
                    feed,
                    rows,
                    newest_recv.isoformat() if rows and newest_recv else None,
                    newest_src.isoformat() if rows and newest_src else None,
                    None if age is None else round(age, 1),
                    interval,
                    fresh,
                )
            )
    except ClickHouseError as e:
        status.errors.append(f"clickhouse: {str(e).splitlines()[0]}")
    finally:
        client.close()


def gather_status(config: Config) -> Status:
    status = Status(
        broker=config.kafka_bootstrap_servers,
        cluster_id=None,
        clickhouse=config.clickhouse_url,
        database=config.clickhouse_database,
    )
    now = time.time()
    try:
        kafka_status(config, status)
    except PipelineError as e:
        status.errors.append(str(e))
    try:
        clickhouse_status(config, status, now)
    except PipelineError as e:
        status.errors.append(str(e))
    return status


def render_status(status: Status) -> str:
    out = [
        f"broker     {status.broker} (cluster {status.cluster_id or 'unreachable'})",
        f"clickhouse {status.clickhouse} database {status.database}",
        "",
        f"{'topic':<22}{'part':>5}{'end':>12}{'committed':>12}{'lag':>10}",
    ]
    for p in status.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        lag = "-" if p.lag is None else str(p.lag)
        out.append(f"{p.topic:<22}{p.partition:>5}{p.end_offset:>12}{committed:>12}{lag:>10}")
    out.append(f"dead letters: {status.dlq_records if status.dlq_records is not None else '-'}")
    out += ["", f"{'table':<22}{'rows':>12}  {'newest received (UTC)':<28}{'age s':>8}  state"]
    for t in status.tables:
        state = "event-driven" if t.fresh is None else ("fresh" if t.fresh else "STALE")
        if t.rows == 0:
            state = "empty" if t.fresh is None else "STALE (empty)"
        age = "-" if t.age_secs is None else f"{t.age_secs:.0f}"
        out.append(f"{t.table:<22}{t.rows:>12}  {t.newest_received or '-':<28}{age:>8}  {state}")
    for error in status.errors:
        out.append(f"error: {error}")
    return "\n".join(out)
