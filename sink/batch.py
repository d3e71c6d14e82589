"""Per-(topic, partition) batches of raw Kafka messages, closed by count, bytes or age.

A batch keeps the consumed `Message` objects themselves (one append per record on the hot path;
values, keys and timestamps are read from them when the batch is stored): nothing is decoded
here. Its *range* names it: normally its first and last offsets, but a batch re-formed
from a range the progress table recorded keeps the recorded bounds even if records in it have
since disappeared (retention), so its deduplication token is the one used before the crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

__all__ = ["Batch", "BatchLimits", "OffsetRange"]


@dataclass(frozen=True)
class BatchLimits:
    """When an open batch is closed: whichever of the three comes first."""

    max_records: int
    max_bytes: int
    max_secs: float


@dataclass(frozen=True)
class OffsetRange:
    """A batch's identity in one log incarnation: [first, last], both inclusive."""

    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


@dataclass(eq=False)
class Batch:
    """Compared by identity: two batches with the same records are still two batches."""

    topic: str
    partition: int
    incarnation: str
    reformed: OffsetRange | None = None
    """The recorded range this batch re-forms; None for a new batch."""
    offsets: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    nbytes: int = 0
    opened: float = field(default_factory=time.monotonic)
    recorded: bool = False
    """Its range is in the progress table (always true for a re-formed batch)."""
    stored: bool = False
    """Every insert acknowledged and its dead letters delivered: only the commit is left."""

    def __post_init__(self) -> None:
        if self.reformed is not None:
            self.recorded = True

    def add(self, offset: int, message: Message) -> None:
        if self.offsets and offset <= self.offsets[-1]:
            raise ValueError(f"offset {offset} after {self.offsets[-1]} in one batch")
        self.offsets.append(offset)
        self.messages.append(message)
        self.nbytes += len(message)

    @cached_property
    def values(self) -> list[bytes]:
        """Message values as consumed (a tombstone, value None, as b''); read once sealed."""
        return [m.value() or b"" for m in self.messages]

    def key(self, index: int) -> bytes | None:
        key = self.messages[index].key()
        return key.encode() if isinstance(key, str) else key

    def timestamp(self, index: int) -> int | None:
        """The message's timestamp in ms, if it has one."""
        ts_type, ts = self.messages[index].timestamp()
        return None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def range(self) -> OffsetRange:
        if self.reformed is not None:
            return self.reformed
        if not self.offsets:
            raise ValueError(f"empty batch of {self.topic}[{self.partition}] has no range")
        return OffsetRange(self.offsets[0], self.offsets[-1])

    @property
    def next_offset(self) -> int:
        """The offset to commit once this batch is stored: one past its range."""
        return self.range.last + 1

    @property
    def token(self) -> str:
        """`<incarnation>:<topic>:<partition>:<first>-<last>`, the insert deduplication token."""
        return f"{self.incarnation}:{self.topic}:{self.partition}:{self.range}"

    def full(self, limits: BatchLimits) -> bool:
        return len(self.offsets) >= limits.max_records or self.nbytes >= limits.max_bytes

    def due(self, limits: BatchLimits, now: float | None = None) -> bool:
        """Full, or open for max_secs with something in it."""
        if not self.offsets:
            return False
        now = time.monotonic() if now is None else now
        return self.full(limits) or now - self.opened >= limits.max_secs
