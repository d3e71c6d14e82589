"""The broker side of a replay: partitions, watermarks, time lookups, and reading them.

The consumer is only ever `assign()`ed at explicit offsets and never commits: a replay does
not join, or move the offsets of, any consumer group (the live sink's included).

Tansu (the embedded broker) under-reports high watermarks in `ListOffsets` and answers
`offsets_for_times` with 0, but its fetch responses carry the true end (partition EOF). So
watermarks are only used where a low value is harmless (never seek past one: a fetch beyond a
log's end gets no EOF from Tansu), and the end of a partition is its first EOF.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from pmpipe.errors import PipelineError

__all__ = ["LogReader", "Read"]

log = logging.getLogger(__name__)

COMPONENT = "replay"
_ERROR_LOG_INTERVAL_SECS = 10.0


@dataclass(frozen=True)
class Read:
    """One thing the consumer delivered: a record, or the end of a partition (`message` None)."""

    partition: int
    offset: int
    timestamp_ms: int | None
    message: Message | None


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class LogReader:
    def __init__(self, consumer: Consumer, timeout_secs: float = 10.0) -> None:
        self.consumer = consumer
        self.timeout_secs = timeout_secs
        self.topic: str | None = None
        self._error_logged: dict[int, float] = {}

    def partitions(self, topic: str) -> list[int]:
        """The partitions of `topic`; PipelineError when the broker does not have it."""
        try:
            metadata = self.consumer.list_topics(topic, timeout=self.timeout_secs)
        except KafkaException as e:
            raise PipelineError(
                f"broker unavailable: {_first_line(e.args[0])}", component=COMPONENT
            ) from e
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise PipelineError(f"topic {topic} does not exist on the broker", component=COMPONENT)
        return sorted(info.partitions)

    def watermarks(self, topic: str, partitions: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(low, high) per partition as ListOffsets reports them ((-1, -1): unknown)."""
        out = {}
        for p in partitions:
            try:
                low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=self.timeout_secs, cached=False
                )
            except KafkaException as e:
                log.warning("no watermarks for %s[%d]: %s", topic, p, _first_line(e.args[0]))
                low, high = -1, -1
            out[p] = (int(low), int(high))
        return out

    def offsets_at(self, topic: str, partitions: Sequence[int], ms: int) -> dict[int, int | None]:
        """The first offset stamped at or after `ms` per partition (None: no such record;
        0 when the broker cannot answer, which only makes the scan longer)."""
        wanted = [TopicPartition(topic, p, ms) for p in partitions]
        try:
            found = self.consumer.offsets_for_times(wanted, timeout=self.timeout_secs)
        except KafkaException as e:
            log.warning(
                "offsets_for_times unavailable on %s (%s): scanning from the start",
                topic,
                _first_line(e.args[0]),
            )
            return dict.fromkeys(partitions, 0)
        out: dict[int, int | None] = {}
        for tp in found:
            if tp.error is not None:
                log.warning("offsets_for_times %s[%d]: %s", topic, tp.partition, tp.error)
                out[tp.partition] = 0
            else:
                out[tp.partition] = tp.offset if tp.offset >= 0 else None
        return out

    def assign(self, topic: str, seeks: Mapping[int, int | None]) -> None:
        """Read these partitions of `topic` from these offsets (None: the log's beginning)."""
        self.topic = topic
        self.consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING if offset is None else offset)
                for p, offset in sorted(seeks.items())
            ]
        )

    def unassign(self) -> None:
        self.consumer.unassign()
        self.topic = None

    def read(self, max_messages: int = 5_000, timeout_secs: float = 0.5) -> list[Read]:
        """What arrived for the assigned topic, in order per partition."""
        out: list[Read] = []
        for msg in self.consumer.consume(max_messages, timeout_secs):
            error = msg.error()
            partition, offset = msg.partition(), msg.offset()
            if msg.topic() != self.topic or partition is None or offset is None:
                continue
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    out.append(Read(partition, offset, None, None))
                else:
                    self._error(error)
                continue
            ts_type, ts = msg.timestamp()
            out.append(
                Read(partition, offset, None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts, msg)
            )
        return out

    def close(self) -> None:
        self.consumer.close()

    def _error(self, error: KafkaError) -> None:
        if error.fatal():
            raise PipelineError(f"fatal consumer error: {error.str()}", component=COMPONENT)
        now = time.monotonic()
        if now - self._error_logged.get(error.code(), -1e9) >= _ERROR_LOG_INTERVAL_SECS:
            self._error_logged[error.code()] = now
            log.warning("consumer error: %s", error.str())
