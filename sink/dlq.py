"""Dead letters: records the sink cannot store, sent to `polymarket.dlq` with their bytes.

Each `DeadLetter` carries the error, the original key and value exactly as consumed, the topic,
partition and offset (its key is `<topic>:<partition>:<offset>`), and the schema id when the
Confluent header was readable. Letters of a batch are sent after the batch's inserts and
delivered before its offsets are committed: a dead letter is never lost, but a batch retried
after a crash sends its letters again (readers deduplicate on the key). `deliver` is
thread-safe (flush rounds of several partitions run in parallel).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pmpipe.errors import PipelineError
from pmpipe.kafka import RecordProducer
from pmpipe.records import DeadLetter
from pmpipe.topics import Topic
from sink.batch import Batch
from sink.errors import UnavailableError

__all__ = ["DeadLetters", "Letter"]

log = logging.getLogger(__name__)

COMPONENT = "sink"
_MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class Letter:
    """One record to dead-letter: where it is in its batch and why."""

    index: int
    error_type: str
    error: str
    schema_id: int | None = None


class DeadLetters:
    def __init__(
        self, producer: RecordProducer, topic: Topic, flush_timeout_secs: float = 30.0
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.flush_timeout_secs = flush_timeout_secs
        self._lock = threading.Lock()

    def deliver(self, letters: Sequence[tuple[Batch, list[Letter]]]) -> None:
        """Send the letters of these batches and wait until all are delivered:
        `UnavailableError` otherwise (the batches are retried, letters included). A fatal
        producer error ends the sink (PipelineError)."""
        if not any(batch_letters for _, batch_letters in letters):
            return
        with self._lock:
            failed_before = self.producer.failed[self.topic.name]
            for batch, batch_letters in letters:
                self._send(batch, batch_letters)
            remaining = self.producer.flush(self.flush_timeout_secs)
            failed = self.producer.failed[self.topic.name] - failed_before
        if self.producer.fatal:
            raise PipelineError(
                f"dead-letter producer failed fatally: {self.producer.fatal}",
                topic=self.topic.name,
                component=COMPONENT,
            )
        if remaining or failed:
            raise UnavailableError(
                f"dead letters not delivered: {remaining} pending, {failed} failed",
                topic=self.topic.name,
                component=COMPONENT,
            )

    def _send(self, batch: Batch, letters: list[Letter]) -> None:
        now_us = time.time_ns() // 1000
        for letter in letters:
            offset = batch.offsets[letter.index]
            record = DeadLetter(
                component=COMPONENT,
                topic=batch.topic,
                partition=batch.partition,
                offset=offset,
                original_key=batch.key(letter.index),
                original_value=batch.values[letter.index],
                schema_id=letter.schema_id,
                error_type=letter.error_type,
                error=letter.error[:_MAX_ERROR_CHARS],
                source_ts=batch.timestamp(letter.index),
                received_ts=now_us,
            )
            log.warning(
                "dead letter topic=%s partition=%d offset=%d type=%s error=%s",
                batch.topic,
                batch.partition,
                offset,
                letter.error_type,
                letter.error[:300],
            )
            self.producer.produce(self.topic, record.key(), record.to_avro())
