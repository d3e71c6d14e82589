"""ClickHouse stopped (SIGKILL) for 60 s while trades keep arriving: the sink commits nothing
that has not landed, its memory stays bounded (it pauses instead of buffering), and once
ClickHouse is back on the same port and data, everything lands exactly once, on its own."""

from __future__ import annotations

import io
import json
import random
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import clickhouse_connect
import fastavro
import psutil
import pytest
from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema

from pmpipe.avro import make_registry_client
from pmpipe.migrations import apply_migrations
from pmpipe.topics import TRADES, get_topic
from tests.sink.sinkstack import ChServeProcess, SinkStack, wait_until
from tests.sink.test_avro_insert import trade_record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECS = 60.0
RATE_PER_SEC = 8_000
BUDGET_BYTES = 16 * 1024 * 1024
MAX_GROWTH_BYTES = 64 * 1024 * 1024
"""Allowed RSS growth while ClickHouse is down: the batch budget, librdkafka's 32 MiB prefetch
queue, allocator slack. What arrives during the outage is ~200 MB of Avro alone."""


class TradeFeed(threading.Thread):
    """Produces distinct framed trades at a steady rate until stopped."""

    def __init__(self, stack: SinkStack) -> None:
        super().__init__(name="trade-feed", daemon=True)
        schema = get_topic(TRADES).schema()
        registry = make_registry_client(stack.config.schema_registry_config())
        schema_id = registry.register_schema(
            stack.topic(TRADES).subject, Schema(json.dumps(schema), "AVRO")
        )
        self.header = b"\x00" + schema_id.to_bytes(4, "big")
        self.parsed = fastavro.parse_schema(schema)
        self.topic = stack.topic(TRADES).name
        self.producer = Producer({"bootstrap.servers": stack.bootstrap, "linger.ms": 20})
        self.produced = 0
        self.bytes = 0
        self.stopped = threading.Event()
        self.rng = random.Random(7)

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopped.is_set():
            due = int((time.monotonic() - started) * RATE_PER_SEC)
            while self.produced < due:
                record = trade_record(
                    self.produced,
                    token=str(10**70 + self.rng.randrange(36)),
                    price=Decimal(self.rng.randrange(1, 1000)) / 1000,
                    size=Decimal(self.rng.randrange(1, 10**8)) / 10**6,
                    source_ts=1_767_225_600_000 + self.produced,
                )
                body = io.BytesIO()
                fastavro.schemaless_writer(body, self.parsed, record)
                value = self.header + body.getvalue()
                self.producer.produce(self.topic, value=value, key=record["token_id"].encode())
                self.produced += 1
                self.bytes += len(value)
            self.producer.poll(0)
            time.sleep(0.01)
        assert self.producer.flush(30) == 0


def test_clickhouse_down_for_a_minute(
    own_clickhouse: ChServeProcess, tansu_broker: str, sink_registry_url: str, tmp_path: Path
) -> None:
    endpoint = own_clickhouse.endpoint
    client = clickhouse_connect.get_client(host=endpoint.host, port=endpoint.port)
    apply_migrations(client, "outage")
    run = uuid.uuid4().hex[:10]
    stack = SinkStack(
        bootstrap=tansu_broker,
        registry_url=sink_registry_url,
        endpoint=endpoint,
        database="outage",
        prefix=f"o{run}.",
        group_id=f"sink-{run}",
        log_dir=tmp_path,
        client=client,
    )
    stack.create_topics()

    def committed() -> int:
        return sum(max(0, offset) for offset in stack.committed(TRADES).values())

    def rss() -> int:
        return int(psutil.Process(sink.pid).memory_info().rss)

    feed = TradeFeed(stack)
    feed.start()
    sink = stack.start_sink(
        PMPIPE_SINK_STATIC_ASSIGNMENT="true",
        PMPIPE_SINK_MAX_BUFFERED_BYTES=str(BUDGET_BYTES),
        PMPIPE_SINK_BATCH_MAX_RECORDS="20000",
    )
    try:
        wait_until(lambda: stack.count("market_trades") > 20_000, 60, "the first rows")
        baseline = 0
        for _ in range(5):
            baseline = max(baseline, rss())
            time.sleep(1.0)
        before = committed()
        assert before <= stack.count("market_trades")

        own_clickhouse.kill()
        down_at = time.monotonic()
        produced_at_kill = feed.produced
        samples = []
        while time.monotonic() - down_at < OUTAGE_SECS:
            samples.append((time.monotonic() - down_at, committed(), rss()))
            assert sink.alive(), sink.tail()
            time.sleep(1.0)
        produced_during = feed.produced - produced_at_kill
        own_clickhouse.start()  # same port, same data directory

        # nothing committed early: offsets stop moving once ClickHouse is gone (after the
        # inserts acknowledged before the kill), and never exceed the rows that landed
        settled = [c for t, c, _ in samples if t > 5.0]
        assert len(set(settled)) == 1, samples
        landed_after = stack.count("market_trades")
        assert max(c for _, c, _ in samples) <= landed_after
        # memory bounded: paused partitions, not a growing buffer
        growth = max(r for _, _, r in samples) - baseline
        arrived = feed.bytes * produced_during // feed.produced  # what buffering would hold
        mib = 1 << 20
        print(
            f"outage: RSS {baseline // mib} MiB + {growth // mib} MiB, {arrived // mib} MiB arrived"
        )
        assert growth < MAX_GROWTH_BYTES, (growth, samples)
        assert arrived > MAX_GROWTH_BYTES

        time.sleep(5.0)
        feed.stopped.set()
        feed.join(60)

        def caught_up() -> bool:
            offsets = committed()  # before counting: rows only grow
            try:
                landed = stack.count("market_trades")
            except ClickHouseError:
                return False
            assert offsets <= landed
            return landed == feed.produced and offsets == feed.produced

        wait_until(caught_up, 120, "everything to land and be committed", 1.0)
        assert sink.stop() == 0, sink.tail()
    finally:
        feed.stopped.set()
        if sink.alive():
            sink.kill()
    log = sink.log_path.read_text(errors="replace")
    assert "flush failed" in log and "flush succeeded after" in log
    distinct = client.query("SELECT uniqExact(trade_key), count() FROM outage.market_trades")
    assert distinct.result_rows == [(feed.produced, feed.produced)]
    candles = client.query("SELECT sum(trades) FROM outage.ohlcv_1m_candles").result_rows
    assert candles == [(feed.produced,)]
