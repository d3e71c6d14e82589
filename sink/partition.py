"""One assigned partition: its open batch, its sealed batches, the ranges it must re-form.

Messages arrive in offset order. A normal batch is sealed when full or due (the consumer checks
`due`); a re-formed batch takes exactly the offsets of its recorded range and is sealed when it
reaches the range's last offset, never by size or time (a shorter batch under the same token
could later let the rest of the range in twice). Sealed batches wait, in order, to be stored and
committed.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from confluent_kafka import Message

from sink.batch import Batch, BatchLimits, OffsetRange

__all__ = ["PartitionState"]

log = logging.getLogger(__name__)


@dataclass
class PartitionState:
    topic: str
    partition: int
    incarnation: str = ""
    ready: bool = False
    """Resume plan applied (seeked); until then the partition stays paused."""
    paused: bool = False
    """What the consumer was last told (pause/resume)."""
    expected: int | None = None
    """The next offset this partition should deliver; None right after seeking to the start."""
    fetch_from: int | None = None
    """Where the consumer fetches from since the assignment (a logical offset such as
    OFFSET_BEGINNING possibly); a resume plan seeks only when its position differs."""
    reform: deque[OffsetRange] = field(default_factory=deque)
    open: Batch | None = None
    sealed: deque[Batch] = field(default_factory=deque)

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def buffered_bytes(self) -> int:
        return (self.open.nbytes if self.open else 0) + sum(b.nbytes for b in self.sealed)

    def reset(self) -> int:
        """Forget every batch (not committed: they will be read again); returns how many."""
        dropped = len(self.sealed) + (1 if self.open else 0)
        self.open = None
        self.sealed.clear()
        self.reform.clear()
        self.ready = False
        self.expected = None
        self.fetch_from = None
        return dropped

    def add(self, offset: int, message: Message, limits: BatchLimits) -> None:
        """Add the next message (offsets increase: the consumer checks). The hot path: one
        Python call per record, the batch's lists appended to directly."""
        self.expected = offset + 1
        if self.reform:
            self._add_reformed(offset, message, limits)
            return
        batch = self.open
        if batch is None:
            batch = self.open = Batch(self.topic, self.partition, self.incarnation)
        batch.offsets.append(offset)
        batch.messages.append(message)
        batch.nbytes += len(message)
        if len(batch.offsets) >= limits.max_records or batch.nbytes >= limits.max_bytes:
            self.seal()

    def _add_reformed(self, offset: int, message: Message, limits: BatchLimits) -> None:
        while self.reform and offset > self.reform[0].last:
            self._close_reform()
        if self.reform and offset >= self.reform[0].first:
            rng = self.reform[0]
            if self.open is not None and self.open.reformed != rng:
                self.seal()  # records before the range form their own batch
            if self.open is None:
                self.open = Batch(self.topic, self.partition, self.incarnation, reformed=rng)
            self.open.add(offset, message)
            if offset >= rng.last:
                self._close_reform()
            return
        if self.open is None:
            self.open = Batch(self.topic, self.partition, self.incarnation)
        self.open.add(offset, message)
        if self.open.full(limits):
            self.seal()

    def seal(self) -> None:
        if self.open is not None and len(self.open):
            self.sealed.append(self.open)
        self.open = None

    def seal_due(self, limits: BatchLimits, now: float, *, force: bool = False) -> None:
        """Seal the open batch once it is `max_secs` old, unless an earlier batch of this
        partition still waits to be stored: then it keeps growing up to its count/bytes limit
        (a sink behind makes large batches, which ClickHouse ingests with far less CPU per row;
        a sink keeping up seals by age, for latency). With `force`, seal anything. A re-formed
        batch only closes at its recorded last offset."""
        batch = self.open
        if batch is None or batch.reformed is not None:
            return
        if (force and len(batch)) or (not self.sealed and batch.due(limits, now)):
            self.seal()

    def _close_reform(self) -> None:
        rng = self.reform.popleft()
        if self.open is not None and self.open.reformed == rng:
            if self.open.offsets[-1] < rng.last:
                log.warning(
                    "re-formed range %s of %s[%d] ends at %d: the rest is gone from the log",
                    rng,
                    self.topic,
                    self.partition,
                    self.open.offsets[-1],
                )
            self.seal()
        else:
            log.warning(
                "recorded range %s of %s[%d] has no records left in the log: nothing to re-insert",
                rng,
                self.topic,
                self.partition,
            )
