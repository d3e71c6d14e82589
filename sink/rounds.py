"""Flush rounds on worker threads, so consuming overlaps ClickHouse's work.

A round takes the sealed batches of one partition (in order) and does, in this order:

1. check the broker's cluster id (a replaced log: do nothing, the caller re-reads);
2. record the ranges not recorded yet as `pending` (plus `committed` marks of earlier rounds)
   in one INSERT, acknowledged before anything else;
3. store the batches (their inserts, poison isolated) in order until one raises
   `UnavailableError`;
4. deliver the dead letters of the stored batches.

Rounds of different partitions run in parallel (`concurrency` threads: ClickHouse parses each
insert on one core); a partition has at most one round in flight. The consumer is never
touched here: the main thread commits what a round stored (`RoundResult`). Batches are only
read; their flags are set by the main thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sink.batch import Batch
from sink.dlq import DeadLetters
from sink.errors import UnavailableError
from sink.faults import CrashPoints
from sink.flush import BatchFlusher, Stored
from sink.incarnation import Incarnations
from sink.progress import PENDING, ProgressRow, ProgressStore

__all__ = ["RoundResult", "RoundWorker", "progress_row"]

log = logging.getLogger(__name__)


def progress_row(batch: Batch, state: str) -> ProgressRow:
    return ProgressRow(batch.incarnation, batch.topic, batch.partition, batch.range, state)


@dataclass
class RoundResult:
    batches: list[Batch]
    replaced: bool = False
    """The broker reported another cluster id: nothing was done."""
    recorded: list[Batch] = field(default_factory=list)
    stored: list[tuple[Batch, Stored]] = field(default_factory=list)
    error: UnavailableError | None = None


class RoundWorker:
    def __init__(
        self,
        progress: ProgressStore,
        flusher: BatchFlusher,
        dead_letters: DeadLetters,
        incarnations: Incarnations,
        crash: CrashPoints,
        concurrency: int = 1,
    ) -> None:
        self.progress = progress
        self.flusher = flusher
        self.dead_letters = dead_letters
        self.incarnations = incarnations
        self.crash = crash
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="sink-flush"
        )

    def submit(self, batches: list[Batch], marks: Sequence[ProgressRow]) -> Future[RoundResult]:
        return self._executor.submit(self.run, batches, list(marks))

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def run(self, batches: list[Batch], marks: list[ProgressRow]) -> RoundResult:
        """One round (see the module doc); any `UnavailableError` ends it early."""
        result = RoundResult(batches)
        try:
            topic = batches[0].topic if batches else None
            if self.incarnations.changed(topic):
                result.replaced = True
                return result
            unrecorded = [b for b in batches if not b.recorded]
            self.progress.record([*marks, *(progress_row(b, PENDING) for b in unrecorded)])
            result.recorded = unrecorded
            self.crash.hit("after_pending")
            self._store(batches, result)
        except UnavailableError as e:
            result.error = e
        return result

    def _store(self, batches: list[Batch], result: RoundResult) -> None:
        """Store in order until a batch cannot be stored now; deliver the dead letters."""
        stored: list[tuple[Batch, Stored]] = []
        for batch in batches:
            if batch.stored:
                continue
            try:
                outcome = self.flusher.store(batch)
            except UnavailableError as e:
                result.error = e
                break
            stored.append((batch, outcome))
        self.dead_letters.deliver([(batch, outcome.letters) for batch, outcome in stored])
        result.stored = stored  # not reached if delivery failed: none of them counts as stored
