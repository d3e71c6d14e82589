"""The active token universe: which CLOB tokens the price, book and WebSocket feeds cover.

A market is *tradable* when it is active, not closed, has its order book enabled and has token
ids (Gamma serves none for a few minutes after creation). `TokenUniverse` keeps the tradable
tokens per condition id and tells what appeared and disappeared with each change; it lives on
the event loop (no locks).

`MarketsTopicFollower` feeds it from the compacted `polymarket.markets` topic: a consumer
thread assigned to every partition from the beginning (no group, no commits) that keeps
following the topic, so feeds in other processes learn new and resolved markets as the markets
feed publishes them. `initial_load` tells when the backlog has been read (or that the topic
was empty, e.g. a freshly rolled embedded log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pmpipe.avro import AvroCodec
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.kafka import consumer_config
from pmpipe.records import Market
from pmpipe.topics import MARKETS

__all__ = ["CatchUp", "Change", "MarketsTopicFollower", "TokenUniverse", "tradable_tokens"]

log = logging.getLogger(__name__)

_IDLE_SECS = 1.5
_POLL_SECS = 0.5
_BATCH = 1000
_RETRY_SECS = 5.0


def tradable_tokens(
    *, active: bool, closed: bool, enable_order_book: bool, token_ids: Iterable[str]
) -> tuple[str, ...]:
    """The tokens to poll and subscribe for a market (none unless it is tradable)."""
    tokens = tuple(t for t in token_ids if t)
    if active and not closed and enable_order_book:
        return tokens
    return ()


@dataclass(frozen=True, slots=True)
class Change:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


class TokenUniverse:
    """Tradable tokens by market; `version` increases with every change."""

    def __init__(self) -> None:
        self._markets: dict[str, tuple[str, ...]] = {}
        self._condition_of: dict[str, str] = {}
        self.version = 0
        self._changed = asyncio.Event()
        self.added_total = 0
        self.removed_total = 0

    def __len__(self) -> int:
        return len(self._condition_of)

    def tokens(self) -> list[str]:
        """Every tradable token, sorted (stable chunking across cycles)."""
        return sorted(self._condition_of)

    def token_set(self) -> frozenset[str]:
        return frozenset(self._condition_of)

    def condition_of(self, token_id: str) -> str | None:
        return self._condition_of.get(token_id)

    def set_market(self, condition_id: str, tokens: tuple[str, ...]) -> Change:
        """Make `tokens` the tradable tokens of `condition_id` (() removes the market)."""
        old = self._markets.get(condition_id, ())
        if old == tokens:
            return Change()
        if tokens:
            self._markets[condition_id] = tokens
        else:
            self._markets.pop(condition_id, None)
        removed = tuple(t for t in old if t not in tokens)
        added = tuple(t for t in tokens if t not in old)
        for token in removed:
            if self._condition_of.get(token) == condition_id:
                del self._condition_of[token]
        for token in added:
            self._condition_of[token] = condition_id
        change = Change(added, removed)
        if change:
            self.version += 1
            self.added_total += len(added)
            self.removed_total += len(removed)
            self._changed.set()
        return change

    def apply_market(self, market: Market) -> Change:
        return self.set_market(
            market.condition_id,
            tradable_tokens(
                active=market.active,
                closed=market.closed,
                enable_order_book=market.enable_order_book,
                token_ids=market.token_ids,
            ),
        )

    def apply_batch(self, updates: Iterable[tuple[str, tuple[str, ...]]]) -> Change:
        added: list[str] = []
        removed: list[str] = []
        for condition_id, tokens in updates:
            change = self.set_market(condition_id, tokens)
            added.extend(change.added)
            removed.extend(change.removed)
        return Change(tuple(added), tuple(removed))

    async def wait_changed(self, since_version: int, timeout: float) -> int:
        """Wait until `version` differs from `since_version` (or timeout); return it."""
        if self.version == since_version:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self.version

    def stats(self) -> dict[str, Any]:
        return {
            "markets": len(self._markets),
            "tokens": len(self._condition_of),
            "version": self.version,
            "added_total": self.added_total,
            "removed_total": self.removed_total,
        }


def market_update(value: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A decoded polymarket.markets value -> (condition id, tradable tokens)."""
    return str(value["condition_id"]), tradable_tokens(
        active=bool(value["active"]),
        closed=bool(value["closed"]),
        enable_order_book=bool(value["enable_order_book"]),
        token_ids=[str(t) for t in value["token_ids"]],
    )


class CatchUp:
    """When a consumer (started now, from old offsets) has read a topic's backlog.

    A partition is caught up at its first record produced after the start, or when nothing
    came from it for `idle_secs` once anything at all has arrived (a broker's first fetch can
    be slow); a topic from which nothing at all arrives for `empty_secs` is taken as empty.
    Works on a topic that other producers keep writing to, where "idle" never happens.
    """

    def __init__(
        self, partitions: Iterable[int], empty_secs: float, idle_secs: float = _IDLE_SECS
    ) -> None:
        self.started_ms = time.time_ns() // 1_000_000
        self._started = time.monotonic()
        self._empty_secs = empty_secs
        self._idle_secs = idle_secs
        self._pending: dict[int, float | None] = dict.fromkeys(partitions)
        self._first: float | None = None

    def seen(self, partition: int | None, produced_ms: int) -> bool:
        """Note a record; True when it belongs to the backlog (produced before the start)."""
        now = time.monotonic()
        if self._first is None:
            self._first = now
        backlog = produced_ms < self.started_ms
        if partition in self._pending:
            if backlog:
                self._pending[partition] = now
            else:
                del self._pending[partition]
        return backlog

    def done(self) -> bool:
        now = time.monotonic()
        if self._first is None:
            if now - self._started >= self._empty_secs:
                self._pending.clear()
            return not self._pending
        for partition, last in list(self._pending.items()):
            if now - (last if last is not None else self._first) >= self._idle_secs:
                del self._pending[partition]
        return not self._pending


class MarketsTopicFollower:
    """A thread that follows polymarket.markets into a TokenUniverse on `loop`."""

    def __init__(
        self,
        config: Config,
        universe: TokenUniverse,
        loop: asyncio.AbstractEventLoop,
        *,
        topic: str = MARKETS,
        empty_wait_secs: float = 5.0,
        codec_factory: Callable[[], AvroCodec] | None = None,
    ) -> None:
        self._empty_wait_secs = empty_wait_secs
        self._config = config
        self._universe = universe
        self._loop = loop
        self.topic = topic
        self._codec_factory = codec_factory or (
            lambda: AvroCodec(config.schema_registry_config(), auto_register=False)
        )
        self.initial_load = threading.Event()
        self.records = 0
        self.errors = 0
        self._stop = threading.Event()
        self._rewind = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="markets-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def rewind(self) -> None:
        """Read the topic again from the beginning (after the embedded log was rolled)."""
        self._rewind.set()

    def wait_initial_load(self, timeout: float) -> bool:
        return self.initial_load.wait(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "errors": self.errors,
            "loaded": self.initial_load.is_set(),
        }

    # -- the thread ---------------------------------------------------------------------------
    def _main(self) -> None:
        """Follow the topic; after a failure (broker gone, topic missing) retry every 5 s."""
        while not self._stop.is_set():
            try:
                self._follow()
            except (KafkaException, PipelineError) as e:
                self.failure = e
                self.errors += 1
                log.error("markets follower: %s; retrying in %.0f s", e, _RETRY_SECS)
                self.initial_load.set()  # nothing to wait for: the feeds go on without it
                self._stop.wait(_RETRY_SECS)

    def _follow(self) -> None:
        codec = self._codec_factory()
        conf = consumer_config(self._config, f"pmpipe-tokens-{uuid.uuid4().hex[:12]}")
        consumer = Consumer(conf)
        try:
            catch_up = CatchUp(self._assign_from_beginning(consumer), self._empty_wait_secs)
            while not self._stop.is_set():
                if self._rewind.is_set():
                    self._rewind.clear()
                    self._assign_from_beginning(consumer)
                    log.info("markets follower rewound to the beginning of %s", self.topic)
                messages = consumer.consume(_BATCH, _POLL_SECS)
                if not self.initial_load.is_set():
                    for msg in messages:
                        if msg.error() is None:
                            catch_up.seen(msg.partition(), msg.timestamp()[1])
                updates = self._decode(codec, messages)
                if updates:
                    self._loop.call_soon_threadsafe(self._universe.apply_batch, updates)
                if not self.initial_load.is_set() and catch_up.done():
                    log.info(
                        "markets follower read the backlog of %s: %d records",
                        self.topic,
                        self.records,
                    )
                    self.initial_load.set()
        finally:
            consumer.close()

    def _assign_from_beginning(self, consumer: Consumer) -> list[int]:
        metadata = consumer.list_topics(self.topic, timeout=10)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise PipelineError("topic has no partitions (not created?)", topic=self.topic)
        partitions = sorted(topic.partitions)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        return partitions

    def _decode(self, codec: AvroCodec, messages: list[Any]) -> list[tuple[str, tuple[str, ...]]]:
        updates: list[tuple[str, tuple[str, ...]]] = []
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.errors += 1
                    log.warning("markets follower: consumer error %s", error)
                continue
            self.records += 1
            value = msg.value()
            key = msg.key()
            if value is None:  # tombstone: the market is gone
                if key:
                    updates.append((key.decode("utf-8", errors="replace"), ()))
                continue
            try:
                updates.append(market_update(codec.decode(self.topic, value)))
            except (
                KafkaException,
                SchemaRegistryError,
                PipelineError,
                LookupError,
                TypeError,
                ValueError,
            ) as e:
                self.errors += 1
                log.warning(
                    "markets follower: undecodable record topic=%s partition=%s offset=%s: %s",
                    self.topic,
                    msg.partition(),
                    msg.offset(),
                    e,
                )
        return updates
