"""Avro codec over a Confluent-compatible schema registry (Confluent wire format).

Every value on our topics is `0x00 | 4-byte schema id | Avro body`, written by confluent-kafka's
`AvroSerializer` and read by its `AvroDeserializer`, so Redpanda Console and any
Confluent-compatible tool decode the same bytes. Keys are plain UTF-8 strings (token id,
condition id or connection id) so partitioning keeps one instrument in order.

The same code talks to the embedded registry (`pmpipe registry`) and to Redpanda's.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import fastavro
import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from pmpipe.avro_physical import Converter, UnsupportedSchemaError, physical_plan
from pmpipe.errors import PipelineError
from pmpipe.topics import Topic

MAGIC_BYTE = 0
HEADER_SIZE = 5


def registry_reachable(url: str, timeout: float = 2.0) -> bool:
    """True when a Confluent-compatible registry answers GET /subjects (for /health)."""
    try:
        return httpx.get(f"{url.rstrip('/')}/subjects", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def make_registry_client(conf: dict[str, str]) -> SchemaRegistryClient:
    return SchemaRegistryClient(dict(conf))


def split_confluent_header(value: bytes) -> tuple[int, memoryview]:
    """(schema id, Avro body) of a Confluent-framed message; PipelineError if not framed."""
    if len(value) < HEADER_SIZE or value[0] != MAGIC_BYTE:
        raise PipelineError("not a Confluent wire-format message (missing magic byte)")
    (schema_id,) = struct.unpack(">I", value[1:HEADER_SIZE])
    return schema_id, memoryview(value)[HEADER_SIZE:]


@dataclass
class TopicCodec:
    """Serializer + deserializer of one topic's values.

    The first value goes through confluent-kafka's `AvroSerializer`, which registers the
    schema (or looks it up) and learns its id. Every later value is written by the same
    fastavro `schemaless_writer` that serializer calls, behind the same 5-byte header, without
    the serializer's per-call work (subject lookup, rule checks), and with the decimals
    converted to their bytes here against the schema's physical form
    (pmpipe/avro_physical.py): the same bytes (tests/integration/test_roundtrip.py compares
    them) at about a third of the CPU, which matters at thousands of WebSocket records and
    tens of thousands of books a minute.
    """

    topic: Topic
    serializer: AvroSerializer
    deserializer: AvroDeserializer
    _header: bytes | None = field(default=None, repr=False)
    _parsed: Any = field(default=None, repr=False)
    _convert: Converter | None = field(default=None, repr=False)

    def encode(self, value: dict[str, Any]) -> bytes:
        header = self._header
        if header is None:
            return self._encode_first(value)
        out = io.BytesIO()
        out.write(header)
        try:
            convert = self._convert
            fastavro.schemaless_writer(out, self._parsed, convert(value) if convert else value)
        except (TypeError, ValueError) as e:
            raise PipelineError(f"cannot encode record: {e}", topic=self.topic.name) from e
        return out.getvalue()

    def _encode_first(self, value: dict[str, Any]) -> bytes:
        ctx = SerializationContext(self.topic.name, MessageField.VALUE)
        try:
            data = self.serializer(value, ctx)
        except (TypeError, ValueError) as e:
            raise PipelineError(f"cannot encode record: {e}", topic=self.topic.name) from e
        if data is None:
            raise PipelineError("serializer returned nothing", topic=self.topic.name)
        data = bytes(data)
        try:
            physical, self._convert = physical_plan(self.topic.schema())
        except UnsupportedSchemaError:
            physical, self._convert = self.topic.schema(), None
        self._parsed = fastavro.parse_schema(physical)
        self._header = data[:HEADER_SIZE]
        return data

    def decode(self, data: bytes) -> dict[str, Any]:
        ctx = SerializationContext(self.topic.name, MessageField.VALUE)
        value = self.deserializer(data, ctx)
        if not isinstance(value, dict):
            raise PipelineError("decoded value is not a record", topic=self.topic.name)
        return value


class AvroCodec:
    """Codecs for every topic sharing one registry client (its schema cache included)."""

    def __init__(self, registry_conf: dict[str, str], *, auto_register: bool = True) -> None:
        self.registry = make_registry_client(registry_conf)
        self.auto_register = auto_register
        self._codecs: dict[str, TopicCodec] = {}
        self._deserializer = AvroDeserializer(self.registry)

    def decode(self, topic_name: str, data: bytes) -> dict[str, Any]:
        """Decode any Confluent-framed value with the writer schema its id names."""
        ctx = SerializationContext(topic_name, MessageField.VALUE)
        value = self._deserializer(data, ctx)
        if not isinstance(value, dict):
            raise PipelineError("decoded value is not a record", topic=topic_name)
        return value

    def for_topic(self, topic: Topic) -> TopicCodec:
        codec = self._codecs.get(topic.name)
        if codec is None:
            schema_text = json.dumps(topic.schema())
            codec = TopicCodec(
                topic=topic,
                serializer=AvroSerializer(
                    self.registry,
                    Schema(schema_text, "AVRO"),
                    conf={"auto.register.schemas": self.auto_register},
                ),
                deserializer=self._deserializer,
            )
            self._codecs[topic.name] = codec
        return codec
