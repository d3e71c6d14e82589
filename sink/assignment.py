"""The partitions a sink owns: assignment, resume plans, pause state.

Before anything is read from a partition, its incarnation, committed offset and progress rows
give a `ResumePlan` (sink/progress.py): it is assigned at the plan's position and the ranges to
re-form are queued on it. That needs ClickHouse: while it is down, the partition is assigned
at its committed offset but paused, and `initialise` retries with backoff, then seeks and
resumes. (Planning before assigning avoids the resume: Tansu delivers nothing for ~1 s after a
freshly assigned partition is paused and resumed.)
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from pmpipe.supervisor import Backoff
from sink.errors import UnavailableError
from sink.incarnation import Incarnations
from sink.partition import PartitionState
from sink.progress import Position, ProgressStore
from sink.stats import SinkStats

__all__ = ["Partitions", "names"]

log = logging.getLogger(__name__)

KAFKA_TIMEOUT_SECS = 10.0
_WARN_INTERVAL_SECS = 10.0

Key = tuple[str, int]


def names(partitions: Iterable[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]


class Partitions:
    def __init__(
        self,
        consumer: Consumer,
        incarnations: Incarnations,
        progress: ProgressStore,
        counters: SinkStats,
        backoff: Backoff,
        before_revoke: Callable[[], None],
    ) -> None:
        self.consumer = consumer
        self.incarnations = incarnations
        self.progress = progress
        self.counters = counters
        self.backoff = backoff
        self.before_revoke = before_revoke
        """Called first in a revocation: finish the round in flight and commit what it stored."""
        self.parts: dict[Key, PartitionState] = {}
        self._init_attempt = 0
        self._init_at = 0.0

    # --- assignment ----------------------------------------------------------------------------
    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Assign at the resume plans' positions. Without ClickHouse there is no plan yet:
        assign at the committed offsets, paused, and `initialise` later (seek, resume)."""
        states = [PartitionState(tp.topic, tp.partition) for tp in partitions]
        for st in states:
            self.parts[st.key] = st
        try:
            positions = self._plan(states)
        except UnavailableError as e:
            log.warning("assigned without a resume plan (paused until there is one): %s", e)
            positions = self._committed_positions(partitions)
            for st in states:
                st.paused = True
        for tp in partitions:
            tp.offset = positions[(tp.topic, tp.partition)]
            self.parts[(tp.topic, tp.partition)].fetch_from = tp.offset
        consumer.assign(partitions)
        if any(st.paused for st in states):
            consumer.pause(partitions)
        log.info("assigned %s", names(partitions))

    def _committed_positions(self, partitions: list[TopicPartition]) -> dict[Key, int]:
        try:
            committed = self._committed(partitions)
        except UnavailableError as e:
            log.warning("committed offsets unavailable at assignment: %s", e)
            committed = {}
        positions = {}
        for tp in partitions:
            offset = committed.get((tp.topic, tp.partition))
            positions[(tp.topic, tp.partition)] = OFFSET_BEGINNING if offset is None else offset
        return positions

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.before_revoke()
        for tp in partitions:
            st = self.parts.pop((tp.topic, tp.partition), None)
            dropped = st.reset() if st is not None else 0
            if dropped:
                log.info(
                    "revoked %s[%d]: dropped %d uncommitted batch(es); the next owner reads them"
                    " again (recorded ranges are re-formed)",
                    tp.topic,
                    tp.partition,
                    dropped,
                )
        log.info("revoked %s", names(partitions))

    def every_partition(
        self, topics: Sequence[str], stopped: Callable[[], bool]
    ) -> list[TopicPartition]:
        """Every partition of `topics` (static assignment), waiting for missing topics."""
        warned = 0.0
        while not stopped():
            try:
                metadata = self.consumer.list_topics(timeout=KAFKA_TIMEOUT_SECS)
            except KafkaException as e:
                log.warning("broker metadata unavailable: %s", e.args[0])
                continue
            missing = [t for t in topics if t not in metadata.topics]
            if not missing:
                return [
                    TopicPartition(t, p)
                    for t in topics
                    for p in sorted(metadata.topics[t].partitions)
                ]
            if time.monotonic() - warned > _WARN_INTERVAL_SECS:
                log.warning("waiting for topics to be created: %s", missing)
                warned = time.monotonic()
            time.sleep(1.0)
        return []

    # --- initialisation -----------------------------------------------------------------------
    def initialise(self, now: float) -> None:
        """Apply the resume plan of every partition assigned without one (with backoff)."""
        need = [st for st in self.parts.values() if not st.ready]
        if not need or now < self._init_at:
            return
        try:
            positions = self._plan(need)
            for st in need:
                if positions[st.key] != st.fetch_from:
                    self._seek(TopicPartition(st.topic, st.partition, positions[st.key]))
                    st.fetch_from = positions[st.key]
        except UnavailableError as e:
            for st in need:
                st.ready = False
            self._init_attempt += 1
            self._init_at = now + self.backoff.delay(self._init_attempt)
            self.counters.retries += 1
            self.counters.last_error = str(e)
            log.warning("partition initialisation failed, retrying: %s", e)
            return
        self._init_attempt = 0

    def _plan(self, states: list[PartitionState]) -> dict[Key, int]:
        """Read incarnations, committed offsets and progress rows; queue the ranges to re-form
        and mark the states ready. Returns where each partition must be read from."""
        self.incarnations.refresh({st.topic for st in self.parts.values()})
        committed = self._committed([TopicPartition(st.topic, st.partition) for st in states])
        for st in states:
            st.incarnation = self.incarnations.of(st.topic)
        plans = self.progress.plans(
            [Position(st.incarnation, st.topic, st.partition, committed[st.key]) for st in states]
        )
        positions: dict[Key, int] = {}
        for st in states:
            plan = plans[st.key]
            positions[st.key] = OFFSET_BEGINNING if plan.position is None else plan.position
            st.reform = deque(plan.reform)
            st.expected = plan.position
            st.ready = True
            self.counters.reformed_batches += len(plan.reform)
        return positions

    def _committed(self, partitions: list[TopicPartition]) -> dict[Key, int | None]:
        try:
            result = self.consumer.committed(partitions, timeout=KAFKA_TIMEOUT_SECS)
        except KafkaException as e:
            raise UnavailableError(
                f"committed offsets unavailable: {e.args[0]}", component="sink"
            ) from e
        out: dict[Key, int | None] = {}
        for tp in result:
            if tp.error is not None:
                raise UnavailableError(
                    f"committed offset unavailable: {tp.error}",
                    topic=tp.topic,
                    partition=tp.partition,
                )
            out[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        return out

    def _seek(self, tp: TopicPartition) -> None:
        try:
            self.consumer.seek(tp)
        except KafkaException as e:
            raise UnavailableError(
                f"cannot seek to {tp.offset}: {e.args[0]}", topic=tp.topic, partition=tp.partition
            ) from e

    # --- state ----------------------------------------------------------------------------------
    def reset(self, keys: Iterable[Key], why: str) -> None:
        """Drop the batches of these partitions and initialise them again."""
        for key in keys:
            st = self.parts.get(key)
            if st is not None:
                log.warning("%s[%d]: %s; dropping its uncommitted batches", key[0], key[1], why)
                st.reset()

    def buffered(self) -> int:
        return sum(st.buffered_bytes for st in self.parts.values())

    def apply_pauses(self, max_buffered_bytes: int, stopping: bool) -> None:
        """Pause every partition while the batches exceed the memory budget (ClickHouse slow or
        down) or the sink stops, and those without a resume plan; resume the rest."""
        over_budget = self.buffered() >= max_buffered_bytes
        pause: list[TopicPartition] = []
        resume: list[TopicPartition] = []
        for st in self.parts.values():
            want = stopping or not st.ready or over_budget
            if want != st.paused:
                (pause if want else resume).append(TopicPartition(st.topic, st.partition))
                st.paused = want
        if pause:
            self.consumer.pause(pause)
        if resume:
            self.consumer.resume(resume)
        self.counters.paused_partitions = sum(st.paused for st in self.parts.values())
        self.counters.buffered_bytes = self.buffered()
