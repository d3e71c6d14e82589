"""Every topic's records go through the registry to the real broker (Tansu) and come back
identical: Confluent wire format, 78-digit token ids, exact decimals like 0.001."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from pmpipe.avro import AvroCodec, split_confluent_header
from pmpipe.config import Config
from pmpipe.kafka import RecordProducer, consumer_config
from pmpipe.topics import Topic, load_topics

pytestmark = pytest.mark.integration

TOKEN_78 = "104239898038807136052399800151408521467737075933964991162589336683346093173875"
assert len(TOKEN_78) == 78

TS_MS = datetime(2026, 11, 26, 10, 30, 1, 123000, tzinfo=UTC)
TS_US = datetime(2026, 11, 26, 10, 30, 1, 123456, tzinfo=UTC)
DECIMALS = [Decimal("0.001"), Decimal("9000023.58"), Decimal("0.41"), Decimal("219.217767")]


def _value(name: str, schema: Any, i: int, full: bool) -> Any:
    """A value for one field: the edge cases we care about, chosen by name and type."""
    if isinstance(schema, list):  # ["null", T]
        if not full:
            return None
        return _value(name, next(s for s in schema if s != "null"), i, full)
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        if logical == "decimal":
            return DECIMALS[i % len(DECIMALS)]
        if logical == "timestamp-millis":
            return TS_MS
        if logical == "timestamp-micros":
            return TS_US
        if schema["type"] == "array":
            return [_value(name, schema["items"], i + k, full) for k in range(2 if full else 0)]
        return _value(name, schema["type"], i, full)
    if schema == "string":
        if "token" in name:
            return TOKEN_78
        if "hash" in name or "condition" in name:
            return "0x" + "ab" * 32
        return f"{name}-é-{i}"
    if schema in ("int", "long"):
        return 999 if name == "outcome_index" else i
    if schema == "boolean":
        return i % 2 == 0
    if schema == "bytes":
        return bytes(range(256))[i : i + 40] + b"\x00\xff"
    raise AssertionError(f"no generator for {schema!r}")


def sample_records(topic: Topic) -> list[dict[str, Any]]:
    fields = topic.schema()["fields"]
    return [
        {f["name"]: _value(f["name"], f["type"], i, full=i % 2 == 0) for f in fields}
        for i in range(4)
    ]


@pytest.fixture(scope="module")
def config(tansu_broker: str, registry_url: str) -> Config:
    return Config.load(
        {"KAFKA_BOOTSTRAP_SERVERS": tansu_broker, "SCHEMA_REGISTRY_URL": registry_url}
    )


def test_every_topic_round_trips_identically(config: Config) -> None:
    from pmpipe.broker import TopicSpec, ensure_topics

    topics = load_topics()
    run = uuid.uuid4().hex[:8]
    names = {t.name: f"rt-{run}-{t.name}" for t in topics}
    ensure_topics(
        config.kafka_client_config(),
        [TopicSpec(names[t.name], 1, {}) for t in topics],
    )
    codec = AvroCodec(config.schema_registry_config())
    producer = RecordProducer(config, "roundtrip-test", codec)
    sent: dict[str, list[dict[str, Any]]] = {}
    for topic in topics:
        # produce under the test's topic name, with the real topic's schema and subject strategy
        alias = Topic(names[topic.name], topic.schema_name, topic.key_field, 1)
        sent[alias.name] = sample_records(topic)
        for record in sent[alias.name]:
            producer.produce(alias, str(record.get(topic.key_field, "k")), record)
    assert producer.flush(30) == 0
    assert sum(producer.failed.values()) == 0

    consumer = Consumer(consumer_config(config, f"rt-{run}"))
    try:
        for name, records in sent.items():
            consumer.assign([TopicPartition(name, 0, 0)])
            got: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(got) < len(records) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                value = msg.value()
                assert value is not None
                got.append(value)
            assert len(got) == len(records), f"{name}: got {len(got)} of {len(records)}"
            for raw, expected in zip(got, records, strict=True):
                schema_id, _ = split_confluent_header(raw)  # magic byte + 4-byte id
                assert schema_id > 0
                decoded = codec.decode(name, raw)
                assert decoded == expected, name
                for key, value in expected.items():
                    if isinstance(value, Decimal):
                        assert decoded[key] == value and str(value) in str(decoded[key])
                    if isinstance(value, str) and value == TOKEN_78:
                        assert decoded[key] == TOKEN_78
    finally:
        consumer.close()


def test_the_fast_encoder_writes_the_bytes_of_confluents_serializer(config: Config) -> None:
    """After its first value a TopicCodec writes with fastavro directly (pmpipe/avro.py):
    byte for byte what confluent-kafka's AvroSerializer writes, for every topic, and the same
    error for a value the schema refuses."""
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from pmpipe.errors import PipelineError

    codec = AvroCodec(config.schema_registry_config())
    for topic in load_topics():
        records = sample_records(topic) * 2
        fast = [codec.for_topic(topic).encode(record) for record in records]
        reference = AvroSerializer(
            codec.registry,
            Schema(topic.schema_text(), "AVRO"),
            conf={"auto.register.schemas": True},
        )
        ctx = SerializationContext(topic.name, MessageField.VALUE)
        assert fast == [reference(record, ctx) for record in records], topic.name
        assert codec.for_topic(topic)._header is not None  # the fast path was taken
        bad = {**records[0], topic.schema()["fields"][0]["name"]: object()}
        with pytest.raises(PipelineError, match="cannot encode record"):
            codec.for_topic(topic).encode(bad)
