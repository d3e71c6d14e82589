"""`python -m sink` against the real broker (Tansu), registry and ClickHouse: every topic lands
exactly once with exact values, poison goes to the dead-letter topic with its offset while its
neighbours land, a schema evolution splits a batch by schema id, and a replaced log (new cluster
id, same offsets) is not deduplicated away."""

from __future__ import annotations

import io
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import Schema

from pmpipe.avro import AvroCodec
from pmpipe.broker import TansuProcess, wait_for_broker
from pmpipe.kafka import RecordProducer
from pmpipe.topics import DLQ, MARKETS, TRADES, get_topic
from tests.sink.sinkstack import SinkStack, wait_until
from tests.sink.test_avro_insert import (
    ROUND_TRIPS,
    TOKEN_A,
    TOKEN_B,
    assert_same,
    expected,
    read_back,
    trade_record,
)

pytestmark = pytest.mark.integration

WAIT_SECS = 60.0


def produce(
    stack: SinkStack, producer: RecordProducer, name: str, records: list[dict[str, Any]]
) -> None:
    topic = stack.topic(name)
    for record in records:
        producer.produce(topic, str(record.get(topic.key_field) or "none"), record)


def many_trades(n: int, start: int = 10_000) -> list[dict[str, Any]]:
    tokens = [str(10**70 + k) for k in range(12)]
    return [
        trade_record(
            start + i,
            token=tokens[i % len(tokens)],
            price=Decimal(1 + i % 999) / 1000,
            size=Decimal(i % 5000 + 1) / 100,
            source_ts=1_767_225_600_000 + i * 1000,
        )
        for i in range(n)
    ]


def dead_letters(stack: SinkStack, count: int) -> list[dict[str, Any]]:
    """The first `count` records of the test's dead-letter topic, decoded."""
    codec = AvroCodec(stack.config.schema_registry_config())
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"dlq-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(stack.prefix + DLQ, 0, 0)])
    letters: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECS
    try:
        while len(letters) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            letters.append(codec.decode(stack.prefix + DLQ, msg.value() or b""))
    finally:
        consumer.close()
    assert len(letters) == count, f"{len(letters)} dead letter(s), expected {count}"
    return letters


def wait_committed(stack: SinkStack, producer: RecordProducer) -> None:
    """Until the group's committed offsets equal the next offset of every produced partition."""
    ends = dict(producer.next_offsets)

    def done() -> bool:
        for name in {topic for topic, _ in ends}:
            committed = stack.committed(name.removeprefix(stack.prefix))
            for (topic, partition), end in ends.items():
                if topic == name and committed.get(partition) != end:
                    return False
        return True

    wait_until(done, WAIT_SECS, "committed offsets to reach the end of every partition", 0.5)


def test_every_topic_lands_exactly_once_with_exact_values(sink_stack: SinkStack) -> None:
    stack = sink_stack
    producer = stack.producer()
    sent = {name: make() for name, (make, _) in ROUND_TRIPS.items()}
    sent[TRADES] += many_trades(3_000)
    for name, records in sent.items():
        produce(stack, producer, name, records)
    assert producer.flush(30) == 0

    sink = stack.start_sink()
    tables = {name: table for name, (_, table) in ROUND_TRIPS.items()}
    wait_until(
        lambda: all(stack.count(tables[n]) >= len(r) for n, r in sent.items()),
        WAIT_SECS,
        "every table to fill",
    )
    wait_committed(stack, producer)
    assert sink.stop() == 0, sink.tail()

    for name, records in sent.items():
        order = "trade_key" if name == TRADES else "received_ts"
        rows = read_back(stack.client, stack.database, tables[name], name, order)
        wanted = expected(name, sorted(records, key=lambda r: r[order]))
        assert_same(rows, wanted)
    states = stack.client.query(
        f"SELECT argMax(state, updated_at) AS s, count() FROM {stack.database}.sink_progress"
        " GROUP BY incarnation, topic, partition, first_offset"
    ).result_rows
    assert {s for s, _ in states} == {"committed"}
    assert "sink stopped" in sink.tail()


def test_poison_goes_to_the_dlq_with_its_offset_and_its_neighbours_land(
    sink_stack: SinkStack,
) -> None:
    stack = sink_stack
    producer = stack.producer()
    trades = stack.topic(TRADES)
    good = [producer.encode(trades, trade_record(i, token=TOKEN_A)) for i in range(8)]
    schema_id = int.from_bytes(good[0][1:5], "big")
    big = trade_record(100, token=TOKEN_A, price=Decimal("1e15"))  # fits Avro, not Decimal(18, 6)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(get_topic(TRADES).schema()), big)
    poison = {
        2: (good[0][:5] + b"\xff" * 40, "decode"),  # corrupt body
        4: (b"\x00" + (999_999).to_bytes(4, "big") + good[1][5:], "decode"),  # unknown id
        6: (b"\x07not-avro", "decode"),  # no magic byte
        8: (good[0][:5] + body.getvalue(), "insert"),  # ClickHouse refuses the value
    }
    values, g = [], iter(good)
    for offset in range(12):
        values.append(poison[offset][0] if offset in poison else next(g))
    for value in values:  # one key: one partition, offsets 0..11
        producer.produce_raw(trades.name, TOKEN_A, value)
    # a record of another type on the markets topic
    producer.produce_raw(stack.prefix + MARKETS, "m", good[7])
    assert producer.flush(30) == 0
    (partition,) = {p for (t, p) in producer.next_offsets if t == trades.name}

    sink = stack.start_sink()
    letters = dead_letters(stack, 5)
    wait_until(lambda: stack.count("market_trades") >= 8, WAIT_SECS, "the good trades")
    wait_committed(stack, producer)
    assert sink.stop() == 0, sink.tail()

    by_offset = {(d["topic"], d["offset"]): d for d in letters}
    for offset, (value, error_type) in poison.items():
        letter = by_offset[(trades.name, offset)]
        assert letter["original_value"] == value
        assert letter["partition"] == partition
        assert letter["error_type"] == error_type
        assert letter["original_key"] == TOKEN_A.encode()
        assert letter["component"] == "sink"
    assert by_offset[(trades.name, 4)]["schema_id"] == 999_999
    assert "unknown" in by_offset[(trades.name, 4)]["error"]
    assert by_offset[(trades.name, 8)]["schema_id"] == schema_id
    markets_letter = by_offset[(stack.prefix + MARKETS, 0)]
    assert markets_letter["error_type"] == "schema"
    assert "Trade" in markets_letter["error"]
    # every good neighbour landed, once
    keys = stack.client.query(
        f"SELECT trade_key FROM {stack.database}.market_trades ORDER BY trade_key"
    ).result_rows
    assert [k for (k,) in keys] == sorted(
        trade_record(i, token=TOKEN_A)["trade_key"] for i in range(8)
    )
    assert stack.count("markets") == 0


def test_schema_evolution_splits_a_batch_by_schema_id(sink_stack: SinkStack) -> None:
    """Markets written with an older schema (before `tags`) and the current one, in one batch:
    one insert per schema id, the older rows get the column default."""
    stack = sink_stack
    producer = stack.producer()
    markets = stack.topic(MARKETS)
    current = get_topic(MARKETS).schema()
    older = {**current, "fields": [f for f in current["fields"] if f["name"] != "tags"]}
    registry = AvroCodec(stack.config.schema_registry_config()).registry
    old_id = registry.register_schema(markets.subject, Schema(json.dumps(older), "AVRO"))
    make, _ = ROUND_TRIPS[MARKETS]
    full, empty = make()
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, fastavro.parse_schema(older), {k: v for k, v in full.items() if k != "tags"}
    )
    producer.produce_raw(
        markets.name, "same-key", b"\x00" + old_id.to_bytes(4, "big") + body.getvalue()
    )
    producer.produce_raw(markets.name, "same-key", producer.encode(markets, empty))
    assert producer.flush(30) == 0

    sink = stack.start_sink()
    wait_until(lambda: stack.count("markets") >= 2, WAIT_SECS, "both markets")
    wait_committed(stack, producer)
    assert sink.stop() == 0, sink.tail()
    rows = stack.client.query(
        f"SELECT condition_id, tags FROM {stack.database}.markets ORDER BY received_ts"
    ).result_rows
    assert rows == [(full["condition_id"], []), (empty["condition_id"], [])]
    ranges = stack.client.query(
        f"SELECT first_offset, last_offset FROM {stack.database}.sink_progress"
        " WHERE topic = {t:String}",
        parameters={"t": markets.name},
    ).result_rows
    assert set(ranges) == {(0, 1)}  # one batch, two schema ids, two inserts


def test_a_replaced_log_with_the_same_offsets_is_not_deduplicated_away(
    sink_registry_url: str,
    clickhouse_endpoint: Any,
    clickhouse_client: Any,
    migrated_database: str,
    tmp_path: Any,
) -> None:
    """The embedded broker restarts empty with a new cluster id while the sink runs; the same
    records are produced again at the same offsets: they are a new log and land again."""
    broker = TansuProcess(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        first_cluster = wait_for_broker(broker.bootstrap, 10)
        stack = SinkStack(
            bootstrap=broker.bootstrap,
            registry_url=sink_registry_url,
            endpoint=clickhouse_endpoint,
            database=migrated_database,
            prefix="inc.",
            group_id="sink-incarnation",
            log_dir=tmp_path,
            client=clickhouse_client,
        )
        stack.create_topics()
        records = [trade_record(i, token=TOKEN_B if i % 2 else TOKEN_A) for i in range(500)]
        producer = stack.producer()
        produce(stack, producer, TRADES, records)
        assert producer.flush(30) == 0
        sink = stack.start_sink(PMPIPE_SINK_STATIC_ASSIGNMENT="true")
        wait_until(lambda: stack.count("market_trades") == 500, WAIT_SECS, "the first log")
        wait_committed(stack, producer)

        second_cluster = broker.restart()
        assert second_cluster != first_cluster
        stack.create_topics()
        producer = stack.producer()
        produce(stack, producer, TRADES, records)  # same records, same offsets
        assert producer.flush(30) == 0
        wait_until(lambda: stack.count("market_trades") == 1_000, WAIT_SECS, "the second log")
        wait_committed(stack, producer)
        assert sink.stop() == 0, sink.tail()
        assert "new cluster id" in sink.tail(100_000)
        incarnations = stack.client.query(
            f"SELECT DISTINCT splitByChar('/', incarnation)[1] FROM {stack.database}.sink_progress"
        ).result_rows
        assert {i for (i,) in incarnations} == {first_cluster, second_cluster}
        assert stack.count("market_trades") == 1_000
    finally:
        broker.stop()
