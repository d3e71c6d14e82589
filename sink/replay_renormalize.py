"""`pmpipe replay --renormalize`: the current WebSocket parsers over `polymarket.ws_raw`.

Each batch of raw frames (cut and recorded like any replay batch, under the progress topic
`renormalize:<ws_raw topic>`) is decoded with its writer schema, every frame goes through
`producers.parsing.market_ws.parse_frame` exactly as the live relay calls it (same receive
time, same connection id), and the records are encoded with the registry like the relay
publishes them. One *derived* batch per record topic is then stored by the sink's own
`BatchFlusher` (container framing, poison isolation) under the token
`<ws_raw batch token>:<record topic>`: a function of the frames and the parsers, so running
the same renormalisation again inserts nothing twice.

Continuity events (connected, gap...) are made by the relay from its connection state, not
from frames: they are not re-created. Parse errors and control frames are counted and logged,
not dead-lettered.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import httpx2
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pmpipe.avro import AvroCodec
from pmpipe.errors import PipelineError
from pmpipe.records import BookSnapshot, MarketEvent, PriceUpdate, Trade
from pmpipe.topics import Topic, get_topic
from producers.parsing.market_ws import WsRecord, parse_frame
from sink.avro_container import HEADER_SIZE
from sink.batch import Batch
from sink.errors import UnavailableError
from sink.poison import DECODE_ERRORS
from sink.schemas import WriterSchemas

__all__ = ["PREFIX", "DerivedBatch", "Renormalized", "Renormalizer", "decode_frame"]

log = logging.getLogger(__name__)

PREFIX = "renormalize:"
"""Progress-topic prefix of renormalisation batches (their own ranges in sink_progress)."""
RECORD_TOPICS = tuple(t.TOPIC for t in (BookSnapshot, PriceUpdate, Trade, MarketEvent))
"""What the WebSocket parsers make, in the order derived batches are stored."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_LOGGED_ERRORS = 20


@dataclass(eq=False)
class DerivedBatch(Batch):
    """Records a source batch yielded for one topic. `offsets` are the records' ordinals (0..n-1:
    unique, so poison bisection tokens stay distinct); `frame_offsets` the frames they came
    from. Its range is the source batch's."""

    source_token: str = ""
    frame_offsets: list[int] = field(default_factory=list)

    @property
    def token(self) -> str:
        return f"{self.source_token}:{self.topic}"


@dataclass
class Renormalized:
    batches: list[DerivedBatch] = field(default_factory=list)
    frames: int = 0
    records: Counter[str] = field(default_factory=Counter)
    control: int = 0
    parse_errors: int = 0
    undecodable: int = 0


def _micros(value: Any) -> int:
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(microseconds=1)
    return int(value)


def decode_frame(schemas: WriterSchemas, value: bytes) -> dict[str, Any]:
    """A ws_raw value (Confluent-framed WsFrame) -> its fields; PipelineError if it is not one."""
    if len(value) < HEADER_SIZE or value[0] != 0:
        raise PipelineError("not a Confluent wire-format message")
    schema_id = int.from_bytes(value[1:HEADER_SIZE], "big")
    writer = schemas.get(schema_id)
    try:
        frame = fastavro.schemaless_reader(io.BytesIO(value[HEADER_SIZE:]), writer.parsed, None)
    except DECODE_ERRORS as e:
        raise PipelineError(f"does not decode with schema id {schema_id}: {e!r}") from e
    if not isinstance(frame, dict) or "payload" not in frame:
        raise PipelineError(f"schema id {schema_id} ({writer.fullname}) is not a WsFrame")
    return frame


class Renormalizer:
    def __init__(self, schemas: WriterSchemas, codec: AvroCodec, topic_prefix: str = "") -> None:
        self.schemas = schemas
        self.codec = codec
        self.topics: dict[str, Topic] = {}
        for name in RECORD_TOPICS:
            base = get_topic(name)
            self.topics[name] = Topic(
                topic_prefix + name, base.schema_name, base.key_field, base.partitions
            )
        self._errors_logged = 0

    def derive(self, batch: Batch) -> Renormalized:
        """The derived batches of one batch of raw frames (UnavailableError: registry down)."""
        out = Renormalized()
        values: dict[str, list[bytes]] = {name: [] for name in RECORD_TOPICS}
        origins: dict[str, list[int]] = {name: [] for name in RECORD_TOPICS}
        for index, value in enumerate(batch.values):
            offset = batch.offsets[index]
            try:
                frame = decode_frame(self.schemas, value)
            except UnavailableError:
                raise  # the registry is down: the batch is retried
            except PipelineError as e:  # UnknownSchemaError included
                out.undecodable += 1
                self._log_error(batch, offset, f"raw frame not decoded: {e}")
                continue
            out.frames += 1
            result = parse_frame(
                frame["payload"],
                _micros(frame["received_ts"]),
                connection_id=str(frame["connection_id"]),
            )
            if result.control is not None:
                out.control += 1
            for error in result.errors:
                out.parse_errors += 1
                self._log_error(batch, offset, f"parse error: {error}")
            for record in result.records:
                try:
                    encoded = self._encode(record)
                except UnavailableError:
                    raise
                except PipelineError as e:
                    out.parse_errors += 1
                    self._log_error(batch, offset, f"record not encoded: {e}")
                    continue
                values[record.TOPIC].append(encoded)
                origins[record.TOPIC].append(offset)
                out.records[record.TOPIC] += 1
        for name in RECORD_TOPICS:
            if not values[name]:
                continue
            derived = DerivedBatch(
                topic=self.topics[name].name,
                partition=batch.partition,
                incarnation=batch.incarnation,
                reformed=batch.range,
                offsets=list(range(len(values[name]))),
                source_token=batch.token,
                frame_offsets=origins[name],
            )
            derived.values = values[name]
            out.batches.append(derived)
        return out

    def _encode(self, record: WsRecord) -> bytes:
        topic = self.topics[record.TOPIC]
        try:
            return self.codec.for_topic(topic).encode(record.to_avro())
        except (SchemaRegistryError, httpx2.HTTPError, OSError) as e:
            raise UnavailableError(
                f"schema registry unavailable: {e}", topic=topic.name, component="replay"
            ) from e

    def _log_error(self, batch: Batch, offset: int, why: str) -> None:
        if self._errors_logged >= _MAX_LOGGED_ERRORS:
            return
        self._errors_logged += 1
        suffix = (
            " (further errors are counted, not logged)"
            if (self._errors_logged == _MAX_LOGGED_ERRORS)
            else ""
        )
        log.warning(
            "renormalize partition=%d offset=%d: %s%s",
            batch.partition,
            offset,
            why[:300],
            suffix,
        )
