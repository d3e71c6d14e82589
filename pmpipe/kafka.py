"""Kafka client plumbing shared by producers, the sink and the CLI (confluent-kafka).

`RecordProducer` is the one way records leave a process: Avro through the registry,
idempotent, zstd-compressed, delivery reports counted, and back-pressure instead of drops when
librdkafka's local queue is full. It can `pause()` (flush, then buffer) and `resume()` (fresh
producer session, drain the buffer) so the embedded broker can be rolled underneath it.

A session the broker no longer knows (the embedded broker crashed and came back empty: its
idempotent producer id is unknown there, a fatal error) is replaced by `renew()`: a fresh
session, and every record the old one did not get acknowledged (failed for that reason, or
still queued, or in flight: purged) is sent again on the new one, in order. A record in
flight when its log vanished may thus be sent twice to a log that still has it only if the
broker wrote it and then lost the acknowledgement; the crash case has no such log.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pmpipe.avro import AvroCodec
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.metrics import RECORDS_FAILED, RECORDS_PRODUCED
from pmpipe.topics import Topic

log = logging.getLogger(__name__)

# A consumer-group join takes ~23 s on Tansu with librdkafka's default session timeout and ~3 s
# with 6 s; Redpanda is fine with either.
CONSUMER_SESSION_TIMEOUT_MS = 6000


def consumer_config(config: Config, group_id: str, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **config.kafka_client_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": CONSUMER_SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 1000,
        "enable.partition.eof": False,
    }
    conf.update(extra)
    return conf


def producer_config(config: Config, client_id: str, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **config.kafka_client_config(),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 200_000,
        "queue.buffering.max.kbytes": 256 * 1024,
        "message.timeout.ms": 300_000,
    }
    conf.update(extra)
    return conf


_RESEND_CODES = frozenset(
    {
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._FATAL,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_EPOCH,
    }
)
"""Delivery failures that mean "not written, the session is gone": re-sent by `renew()`."""
_FLUSH_STALL_SECS = 5.0
"""pause(): give up flushing when no delivery report arrived for this long (a dead session)."""


@dataclass
class _Pending:
    topic: str
    key: bytes | None
    value: bytes


class RecordProducer:
    """Thread-safe wrapper around one confluent_kafka.Producer."""

    def __init__(
        self,
        config: Config,
        client_id: str,
        codec: AvroCodec | None = None,
        *,
        max_buffered: int = 1_000_000,
        **extra_conf: Any,
    ) -> None:
        self._conf = producer_config(config, client_id, **extra_conf)
        self.codec = codec
        self._producer = Producer(self._conf)
        self._lock = threading.Lock()
        self._paused = False
        self._buffer: deque[_Pending] = deque()
        self._max_buffered = max_buffered
        self.delivered: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.resent: Counter[str] = Counter()
        self.renewals = 0
        self._unsent: list[_Pending] = []  # failed as "session gone": sent again by renew()
        self.fatal: str | None = None
        # next offset per (topic, partition) from delivery reports: a lag reference that does
        # not depend on the broker's high watermark (Tansu under-reports it).
        self.next_offsets: dict[tuple[str, int], int] = {}

    # -- delivery ---------------------------------------------------------------------------------
    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        topic = msg.topic() or "?"
        if err is not None and (err.fatal() or err.code() in _RESEND_CODES):
            if err.fatal() and self.fatal is None:
                self.fatal = str(err)
                log.warning("producer session failed fatally (records kept to resend): %s", err)
            value = msg.value()
            if value is not None:
                self._unsent.append(_Pending(topic, msg.key(), value))
            return
        if err is not None:
            self.failed[topic] += 1
            RECORDS_FAILED.labels(topic).inc()
            if err.fatal():
                self.fatal = str(err)
            log.error("delivery failed topic=%s error=%s", topic, err)
            return
        self.delivered[topic] += 1
        RECORDS_PRODUCED.labels(topic).inc()
        partition, offset = msg.partition(), msg.offset()
        if partition is not None and offset is not None and offset >= 0:
            key = (topic, partition)
            if offset + 1 > self.next_offsets.get(key, 0):
                self.next_offsets[key] = offset + 1

    # -- producing -------------------------------------------------------------------------------
    def encode(self, topic: Topic, value: dict[str, Any]) -> bytes:
        if self.codec is None:
            raise PipelineError("RecordProducer has no Avro codec", topic=topic.name)
        return self.codec.for_topic(topic).encode(value)

    def produce(self, topic: Topic, key: str | None, value: dict[str, Any]) -> None:
        self.produce_raw(topic.name, key, self.encode(topic, value))

    def produce_raw(self, topic: str, key: str | bytes | None, value: bytes) -> None:
        """Queue one message; blocks (polling delivery reports) while the local queue is full."""
        key_bytes = key.encode() if isinstance(key, str) else key
        while True:
            with self._lock:
                if self._paused:
                    self._buffer_locked(_Pending(topic, key_bytes, value))
                    return
                try:
                    self._producer.produce(
                        topic, value=value, key=key_bytes, on_delivery=self._on_delivery
                    )
                    self._producer.poll(0)
                    return
                except BufferError:
                    pass
            self._producer.poll(0.05)

    async def aproduce(self, topic: Topic, key: str | None, value: dict[str, Any]) -> None:
        """asyncio variant: a full queue slows the caller down (await) instead of dropping."""
        data = self.encode(topic, value)
        key_bytes = key.encode() if key is not None else None
        while True:
            with self._lock:
                if self._paused:
                    self._buffer_locked(_Pending(topic.name, key_bytes, data))
                    return
                try:
                    self._producer.produce(
                        topic.name, value=data, key=key_bytes, on_delivery=self._on_delivery
                    )
                    self._producer.poll(0)
                    return
                except BufferError:
                    self._producer.poll(0)
            await asyncio.sleep(0.05)

    def _buffer_locked(self, item: _Pending) -> None:
        while len(self._buffer) >= self._max_buffered:
            # Back-pressure while paused: the caller waits for resume() instead of dropping.
            self._lock.release()
            try:
                time.sleep(0.05)
            finally:
                self._lock.acquire()
            if not self._paused:
                break
        self._buffer.append(item)

    def broker_reachable(self, timeout: float = 2.0) -> bool:
        """True when the broker answers a metadata request (for /health)."""
        try:
            self._producer.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return self.fatal is None

    def poll(self, timeout: float = 0.0) -> int:
        return int(self._producer.poll(timeout))

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every queued message's delivery report; returns how many are still queued."""
        return int(self._producer.flush(timeout))

    # -- pause / resume (embedded log roll) ----------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def pause(self, flush_timeout: float = 60.0) -> dict[tuple[str, int], int]:
        """Flush what is in flight, then buffer new records locally; returns next offsets.

        Raises PipelineError when records are still unacknowledged after `flush_timeout`, or
        after no acknowledgement came for _FLUSH_STALL_SECS (a session the broker lost): they
        stay with the old session and are sent again by `resume()`."""
        with self._lock:
            self._paused = True
        remaining = self._flush_while_progressing(flush_timeout)
        if remaining:
            raise PipelineError(f"pause: {remaining} message(s) still undelivered after flush")
        log.info("producer paused delivered=%s", dict(self.delivered))
        return dict(self.next_offsets)

    def _flush_while_progressing(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        last_progress = time.monotonic()
        seen = -1
        while True:
            try:
                remaining = int(
                    self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
                )
            except (KafkaException, SystemError) as e:  # a fatal error surfaces here too
                log.warning("flush failed: %s", e)
                remaining = len(self._producer)
            if remaining == 0 or self.fatal is not None:
                return remaining
            now = time.monotonic()
            done = sum(self.delivered.values()) + sum(self.failed.values()) + len(self._unsent)
            if done != seen:
                seen, last_progress = done, now
            if now >= deadline or now - last_progress >= _FLUSH_STALL_SECS:
                return remaining

    def resume(self) -> None:
        """Start a fresh producer session (new idempotent producer id) and drain the buffer."""
        with self._lock:
            self._paused = False
        self.renew()

    def renew(self) -> None:
        """Replace the session: unacknowledged records of the old one, then the pause buffer,
        go out on a new idempotent producer, in order."""
        with self._lock:
            old, self._producer = self._producer, Producer(self._conf)
            buffered, self._buffer = self._buffer, deque()
        try:
            old.purge(in_queue=True, in_flight=True)
            old.poll(0.5)  # delivery reports of what was purged: collected into _unsent
        except (KafkaException, SystemError) as e:
            log.warning("purging the old producer session failed: %s", e)
        with self._lock:
            unsent, self._unsent = self._unsent, []
            self.next_offsets.clear()
            self.fatal = None
            self.renewals += 1
        for item in unsent:
            self.resent[item.topic] += 1
        log.info("producer resumed buffered=%d resent=%d", len(buffered), len(unsent))
        for item in [*unsent, *buffered]:
            self.produce_raw(item.topic, item.key, item.value)
        self.poll(0)

    def close(self, timeout: float = 30.0) -> None:
        remaining = self.flush(timeout)
        if remaining:
            log.error("producer closed with %d undelivered message(s)", remaining)
