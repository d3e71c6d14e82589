"""The sink loop: consume -> batch per partition -> record range -> insert -> commit.

The main thread owns the consumer; a worker thread runs flush rounds (sink/rounds.py) so that
consuming overlaps ClickHouse's work. Every step, in this order (sink/DESIGN.md says why the
result is exactly once):

1. consume up to N messages into their partitions' open batches (no decoding);
2. initialise newly assigned partitions (sink/assignment.py: resume plan, seek, re-form);
3. seal batches that are full or due (all of them above the memory budget);
4. for each partition whose round finished: commit `last + 1` of the batches it stored,
   synchronously, and queue their `committed` marks for a later round; on `UnavailableError`
   back off; then submit a round for each partition with sealed batches and none in flight;
5. pause every partition above the memory budget, resume them below it;
6. now and then: check the broker's cluster id (idle sinks too), log the progress line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from itertools import takewhile

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from pmpipe.errors import PipelineError
from pmpipe.supervisor import Backoff
from sink.assignment import Partitions
from sink.batch import Batch, BatchLimits
from sink.dlq import DeadLetters
from sink.errors import UnavailableError
from sink.faults import CrashPoints
from sink.flush import BatchFlusher, Target
from sink.incarnation import Incarnations
from sink.partition import PartitionState
from sink.progress import COMMITTED, ProgressRow, ProgressStore
from sink.rounds import RoundResult, RoundWorker, progress_row
from sink.stats import SinkStats

__all__ = ["DEFAULT_BACKOFF", "Sink", "SinkOptions"]

log = logging.getLogger(__name__)

_FENCED = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.STALE_MEMBER_EPOCH,
        KafkaError._ASSIGNMENT_LOST,
    }
)
"""Commit errors meaning the partitions are (being) given to another member: drop, re-read."""
_ERROR_LOG_INTERVAL_SECS = 10.0
_REVOKE_WAIT_SECS = 60.0
_UNASSIGNED_WARN_SECS = 30.0
DEFAULT_BACKOFF = Backoff(initial_secs=0.25, max_secs=10.0)
"""Retry delays of failed flush rounds and partition initialisations (jittered, doubling)."""


@dataclass(frozen=True)
class SinkOptions:
    targets: Mapping[str, Target]
    """Consumed topic -> table and expected record type."""
    limits: BatchLimits
    max_buffered_bytes: int = 256 * 1024 * 1024
    """Memory budget of all batches together; above it every partition pauses."""
    static_assignment: bool = False
    """Assign every partition to this process instead of joining the group's rebalancing
    (one sink instance only; offsets are still committed under the group id)."""
    progress_interval_secs: float = 10.0
    shutdown_timeout_secs: float = 30.0
    consume_max_messages: int = 10_000
    insert_concurrency: int = 2
    """Partitions stored in parallel within a round (ClickHouse parses each insert on one
    core; two inserts in flight keep a second core busy)."""
    incarnation_check_secs: float = 5.0
    """How often an idle sink asks the broker for its cluster id (each round does too)."""
    backoff: Backoff = DEFAULT_BACKOFF


class Sink:
    def __init__(
        self,
        options: SinkOptions,
        *,
        consumer: Consumer,
        admin: AdminClient,
        progress: ProgressStore,
        flusher: BatchFlusher,
        dead_letters: DeadLetters,
        crash: CrashPoints | None = None,
    ) -> None:
        self.options = options
        self.consumer = consumer
        self.dead_letters = dead_letters
        self.crash = crash or CrashPoints()
        self.counters = SinkStats()
        self.incarnations = Incarnations(admin)
        self.partitions = Partitions(
            consumer, self.incarnations, progress, self.counters, options.backoff, self._settle
        )
        self.worker = RoundWorker(
            progress,
            flusher,
            dead_letters,
            self.incarnations,
            self.crash,
            options.insert_concurrency,
        )
        self._stopping = False
        self._inflight: dict[tuple[str, int] | None, Future[RoundResult]] = {}
        """Rounds in flight by partition (None: a round that only writes marks)."""
        self._marks: list[ProgressRow] = []
        self._marks_since = 0.0
        self._flush_attempt = 0
        self._flush_at = 0.0
        self._check_at = 0.0
        self._error_logged: dict[int, float] = {}
        self._unassigned_since = time.monotonic()
        self._unassigned_warned = self._unassigned_since

    @property
    def parts(self) -> dict[tuple[str, int], PartitionState]:
        return self.partitions.parts

    # --- public ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish: store and commit what is buffered, close (signal-safe)."""
        self._stopping = True

    def stats(self) -> dict[str, object]:
        """Counters: batches, rows per table, insert latency, DLQ records, retries, pauses."""
        return self.counters.snapshot()

    def run(self) -> None:
        self.start()
        try:
            while not self._stopping:
                self.step()
            self._drain()
        finally:
            self.close()

    def start(self) -> None:
        topics = sorted(self.options.targets)
        if self.options.static_assignment:
            partitions = self.partitions.every_partition(topics, lambda: self._stopping)
            if partitions:
                self.partitions.on_assign(self.consumer, partitions)
            return
        log.info("joining consumer group, topics=%s", topics)
        self.consumer.subscribe(
            topics,
            on_assign=self.partitions.on_assign,
            on_revoke=self.partitions.on_revoke,
            on_lost=self.partitions.on_revoke,
        )

    def step(self) -> None:
        self._consume(0.02 if self._inflight else 0.1)
        now = time.monotonic()
        self.partitions.initialise(now)
        over_budget = self.partitions.buffered() >= self.options.max_buffered_bytes
        for st in self.parts.values():
            st.seal_due(self.options.limits, now, force=over_budget)
        self._flush(now)
        self._check_incarnation(now)
        self._check_assignment(now)
        self.partitions.apply_pauses(self.options.max_buffered_bytes, self._stopping)
        if self.counters.due(self.options.progress_interval_secs):
            self.counters.lag = self._lag()
            self.counters.log_progress()

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.worker.close()
            self.dead_letters.producer.close()

    # --- consuming ---------------------------------------------------------------------------
    def _consume(self, timeout_secs: float) -> None:
        """The hot path: per message a few accessor calls and two appends, nothing decoded."""
        limits = self.options.limits
        parts = self.parts
        last_topic: str | None = None
        last_partition = -1
        st: PartitionState | None = None
        for msg in self.consumer.consume(self.options.consume_max_messages, timeout_secs):
            if msg.error() is not None:
                self._consumer_error(msg.error())
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            if topic is None or partition is None or offset is None:
                continue
            if partition != last_partition or topic != last_topic:
                st = parts.get((topic, partition))
                last_topic, last_partition = topic, partition
            if st is None or not st.ready:
                continue  # fetched before the pause or seek: read again from the resume position
            if st.expected is not None and offset < st.expected:
                self.partitions.reset([st.key], f"offset went back from {st.expected} to {offset}")
                continue
            st.add(offset, msg, limits)

    def _consumer_error(self, error: KafkaError | None) -> None:
        if error is None:
            return
        if error.fatal():
            raise PipelineError(f"fatal consumer error: {error.str()}", component="sink")
        now = time.monotonic()
        if now - self._error_logged.get(error.code(), -1e9) >= _ERROR_LOG_INTERVAL_SECS:
            self._error_logged[error.code()] = now
            log.warning("consumer error: %s", error.str())

    # --- flush rounds ------------------------------------------------------------------------
    def _flush(self, now: float) -> None:
        """Collect finished rounds (commit what they stored), then start new ones."""
        self._collect()
        if now < self._flush_at:
            return
        for st in self.parts.values():
            if st.sealed and st.key not in self._inflight:
                self._submit(st.key, list(st.sealed), now)
        if self._marks and not self._inflight and now - self._marks_since >= 5.0:
            self._submit(None, [], now)

    def _collect(self) -> None:
        """Take the finished rounds, then commit what they stored in one request."""
        results = []
        for key, future in list(self._inflight.items()):
            if future.done():
                del self._inflight[key]
                results.append(future.result())  # a worker's PipelineError ends the sink
        if results:
            self._finish_rounds(results)

    def _submit(self, key: tuple[str, int] | None, batches: list[Batch], now: float) -> None:
        self._check_at = now + self.options.incarnation_check_secs  # the round checks it
        marks, self._marks = self._marks, []
        self._inflight[key] = self.worker.submit(batches, marks)

    def _finish_rounds(self, results: list[RoundResult]) -> None:
        if any(r.replaced for r in results):
            self._log_replaced(checked=True)
            return
        errors: list[UnavailableError] = []
        keys: set[tuple[str, int]] = set()
        for result in results:
            for batch in result.recorded:
                batch.recorded = True
            for batch, outcome in result.stored:
                batch.stored = True
                self.counters.record_insert(
                    outcome.table, outcome.rows, outcome.inserts, outcome.insert_secs
                )
                self.counters.dlq_records += len(outcome.letters)
            keys.update((b.topic, b.partition) for b in result.batches if b.stored)
            if result.error is not None:
                errors.append(result.error)
        if keys:
            self.crash.hit("after_insert")
            try:
                self._commit(keys)
            except UnavailableError as e:
                errors.append(e)
        error = errors[0] if errors else None
        if error is None:
            if self._flush_attempt:
                log.info("flush succeeded after %d failed attempt(s)", self._flush_attempt)
            self._flush_attempt = 0
            return
        self.counters.retries += 1
        self.counters.last_error = str(error)
        now = time.monotonic()
        if now < self._flush_at:
            return  # a round of another partition failed in the same attempt: backoff is set
        self._flush_attempt += 1
        delay = self.options.backoff.delay(self._flush_attempt)
        self._flush_at = now + delay
        log.warning(
            "flush failed (attempt %d), retrying in %.1f s: %s", self._flush_attempt, delay, error
        )

    def _commit(self, keys: set[tuple[str, int]]) -> None:
        """Commit, for these partitions if still owned, `last + 1` of the stored prefix of
        their sealed batches."""
        prefixes: dict[tuple[str, int], list[Batch]] = {}
        for key in keys:
            st = self.parts.get(key)
            prefix = list(takewhile(lambda b: b.stored, st.sealed)) if st is not None else []
            if prefix:
                prefixes[key] = prefix
        if not prefixes or self._log_replaced():
            return
        offsets = [TopicPartition(t, p, b[-1].next_offset) for (t, p), b in prefixes.items()]
        try:
            result = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            error = e.args[0]
            if error.code() in _FENCED:
                self.partitions.reset(prefixes, f"commit fenced: {error.str()}")
                return
            raise UnavailableError(f"offset commit failed: {error.str()}", component="sink") from e
        failed = {(tp.topic, tp.partition): tp.error for tp in result or [] if tp.error}
        fenced = [key for key, err in failed.items() if err.code() in _FENCED]
        self.partitions.reset(fenced, "commit fenced")
        self.crash.hit("after_commit")
        if not self._marks:
            self._marks_since = time.monotonic()
        for key, batches in prefixes.items():
            if key in failed:
                continue
            sealed = self.parts[key].sealed
            for batch in batches:
                sealed.popleft()
                self._marks.append(progress_row(batch, COMMITTED))
            self.counters.batches += len(batches)
        self.counters.commits += 1
        others = {key: err for key, err in failed.items() if key not in fenced}
        if others:
            raise UnavailableError(f"offset commit failed for {others}", component="sink")

    def _settle(self) -> None:
        """Before a revocation: finish the rounds in flight and commit what they stored."""
        _, late = wait_for(list(self._inflight.values()), timeout=_REVOKE_WAIT_SECS)
        if late:
            log.warning("%d round(s) still in flight at the revocation", len(late))
        self._collect()

    # --- incarnation, lag, shutdown -------------------------------------------------------------
    def _check_incarnation(self, now: float) -> None:
        """An idle sink must notice a replaced log too: it may wait at an offset the new log
        also has, and never see the new log's first records."""
        if now < self._check_at or not self.parts:
            return
        self._check_at = now + self.options.incarnation_check_secs
        try:
            self._log_replaced()
        except UnavailableError as e:
            log.warning("cannot check the log incarnation: %s", e)

    def _check_assignment(self, now: float) -> None:
        """Say so when the group gives this sink nothing for long (Tansu's coordinator can stall
        a join after a broker restart; `--static-assignment` avoids the group protocol)."""
        if self.parts or self.options.static_assignment:
            self._unassigned_since = self._unassigned_warned = now
        elif now - self._unassigned_warned >= _UNASSIGNED_WARN_SECS:
            self._unassigned_warned = now
            log.warning(
                "no partition assigned for %.0f s: waiting for the group coordinator",
                now - self._unassigned_since,
            )

    def _log_replaced(self, *, checked: bool = False) -> bool:
        """Whether the broker's log was replaced (new cluster id); then drop everything."""
        if not checked:
            topic = next(iter(self.parts))[0] if self.parts else None
            if not self.incarnations.changed(topic):
                return False
        log.warning(
            "the broker reports a new cluster id (was %s): the log was replaced; re-reading"
            " every partition from the new log",
            self.incarnations.cluster_id,
        )
        self.partitions.reset(list(self.parts), "log replaced")
        return True

    def _lag(self) -> dict[str, int]:
        lag = {}
        for st in self.parts.values():
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(st.topic, st.partition), cached=True
                )
            except KafkaException:
                continue
            if high is not None and high >= 0 and st.expected is not None:
                lag[f"{st.topic}[{st.partition}]"] = max(0, high - st.expected)
        return lag

    def _drain(self) -> None:
        """Shutdown: store and commit what is buffered, within shutdown_timeout_secs."""
        deadline = time.monotonic() + self.options.shutdown_timeout_secs
        now = time.monotonic()
        for st in self.parts.values():
            st.seal_due(self.options.limits, now, force=True)
        self.partitions.apply_pauses(self.options.max_buffered_bytes, True)
        self._flush_at = 0.0
        while time.monotonic() < deadline and (
            self._inflight or any(st.sealed for st in self.parts.values())
        ):
            self._flush(time.monotonic())
            if self._inflight:
                wait_for(list(self._inflight.values()), timeout=0.05, return_when="FIRST_COMPLETED")
            self.consumer.consume(self.options.consume_max_messages, 0.01)  # serve callbacks
        left = sum(len(st.sealed) for st in self.parts.values())
        if left:
            log.error(
                "shutdown: %d batch(es) not stored within %.0f s; they are read again at the"
                " next start",
                left,
                self.options.shutdown_timeout_secs,
            )
        elif self._marks and not self._inflight:
            self.worker.run([], self._marks)  # idle workers: write the last marks here
        log.info("sink stopped: %s", self.counters.snapshot())
