"""Which offsets of a partition a replay takes: `--from` / `--to`, widened to recorded batches.

Pure functions and a small state machine, no I/O. A replay takes, per partition, a contiguous
run of offsets:

* it starts at `--from`: `earliest`, an offset, or an ISO time (the first record whose
  timestamp is at or after it, as Kafka's `offsets_for_times` defines it);
* it ends before `--to`: an offset (exclusive), an ISO time (the first record stamped at or
  after it, exclusive), or `end`: the log's end when the replay started (the first partition
  EOF, or the first record stamped after the replay started, whichever comes first);
* both bounds are widened to whole **recorded ranges** (the `sink_progress` batches of the
  target database): a batch the sink stored is re-formed whole, never cut, so it is inserted
  again under its own deduplication token.

Time bounds are applied to the records themselves while reading (a broker that cannot answer
`offsets_for_times`, such as the embedded Tansu, only costs a longer scan). Records skipped
before a time start that lie inside a recorded range are held, so the range can be re-formed
from its first offset once the start turns out to lie inside it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sink.batch import OffsetRange

__all__ = [
    "AtOffset",
    "AtTime",
    "Earliest",
    "FromSpec",
    "LogEnd",
    "RangeIndex",
    "Selector",
    "ToSpec",
    "check_bounds",
    "parse_from",
    "parse_to",
    "widen_end",
    "widen_start",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Earliest:
    """The beginning of the log."""


@dataclass(frozen=True)
class LogEnd:
    """The end of the log when the replay started."""


@dataclass(frozen=True)
class AtOffset:
    offset: int


@dataclass(frozen=True)
class AtTime:
    ms: int
    """Epoch milliseconds (Kafka record timestamps)."""

    def __str__(self) -> str:
        return datetime.fromtimestamp(self.ms / 1000, UTC).isoformat(timespec="milliseconds")


FromSpec = Earliest | AtOffset | AtTime
ToSpec = LogEnd | AtOffset | AtTime


def _parse_time(text: str) -> AtTime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"{text!r} is not an offset or an ISO time") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return AtTime(int(moment.timestamp() * 1000))


def _parse_offset(text: str) -> AtOffset | None:
    if not text.isdigit():
        if text.lstrip("-").isdigit():
            raise ValueError(f"offset {text} is negative")
        return None
    return AtOffset(int(text))


def parse_from(text: str) -> FromSpec:
    """`earliest`, an offset (>= 0) or an ISO 8601 time (UTC unless it names a zone)."""
    value = text.strip()
    if value.lower() == "earliest":
        return Earliest()
    return _parse_offset(value) or _parse_time(value)


def parse_to(text: str) -> ToSpec:
    """`end`, an offset (exclusive) or an ISO 8601 time (exclusive; UTC unless it names one)."""
    value = text.strip()
    if value.lower() == "end":
        return LogEnd()
    return _parse_offset(value) or _parse_time(value)


def check_bounds(start: FromSpec, end: ToSpec) -> None:
    """ValueError when the two bounds select nothing whatever the log holds."""
    if isinstance(start, AtOffset) and isinstance(end, AtOffset) and start.offset >= end.offset:
        raise ValueError(f"--from {start.offset} is not before --to {end.offset}")
    if isinstance(start, AtTime) and isinstance(end, AtTime) and start.ms >= end.ms:
        raise ValueError(f"--from {start} is not before --to {end}")


class RangeIndex:
    """Recorded ranges sorted by first offset, searchable by offset."""

    def __init__(self, ranges: Iterable[OffsetRange] = ()) -> None:
        self.ranges = sorted(ranges, key=lambda r: (r.first, r.last))
        self._firsts = [r.first for r in self.ranges]
        self._reach: list[int] = []
        """Highest last offset among ranges[0..i]: where an earlier range may still cover."""
        for r in self.ranges:
            self._reach.append(max(r.last, self._reach[-1]) if self._reach else r.last)

    def __len__(self) -> int:
        return len(self.ranges)

    @property
    def reach(self) -> int:
        """The highest recorded offset (-1: none)."""
        return self._reach[-1] if self._reach else -1

    def covering(self, offset: int) -> OffsetRange | None:
        """The range holding `offset`; where ranges overlap, the one starting last."""
        i = bisect_right(self._firsts, offset) - 1
        while i >= 0 and self._reach[i] >= offset:
            if self.ranges[i].last >= offset:
                return self.ranges[i]
            i -= 1
        return None

    def overlapping(self) -> list[tuple[OffsetRange, OffsetRange]]:
        """Pairs of consecutive ranges that share offsets (a sink cut off from the group can
        leave them; each is re-formed under its own token)."""
        return [
            (a, b) for a, b in zip(self.ranges, self.ranges[1:], strict=False) if b.first <= a.last
        ]


def widen_start(ranges: RangeIndex, offset: int) -> int:
    """`offset`, moved back to the first offset of the recorded range that holds it."""
    rng = ranges.covering(offset)
    return rng.first if rng is not None else offset


def widen_end(ranges: RangeIndex, end: int) -> int:
    """An exclusive end moved forward past the recorded range that holds `end - 1` and `end`
    (a batch is never cut)."""
    rng = ranges.covering(end)
    return rng.last + 1 if rng is not None and rng.first < end else end


@dataclass
class Selector(Generic[T]):
    """Decides, record by record in offset order, what a partition's replay takes.

    `offer` returns the records to take now, in order (held ones first): nothing while before
    the start, and nothing once `done` (the selection ended before this record).
    """

    start: int
    """Offsets below are never taken (already widened to a recorded range's first offset)."""
    end: int | None = None
    """Exclusive end offset (already widened), None: open."""
    from_ms: int | None = None
    """Time start: nothing is taken before the first record stamped at or after it."""
    to_ms: int | None = None
    """Time end: the first record stamped at or after it ends the selection."""
    appended_after_ms: int | None = None
    """`--to end`: the first record stamped after this (the replay's start) ends it."""
    ranges: RangeIndex = field(default_factory=RangeIndex)
    """The recorded ranges of the partition."""
    started: bool = False
    done: bool = False
    _within: int | None = None
    """Last offset of the recorded range being taken: the selection cannot end before it."""
    _held: list[tuple[int, T]] = field(default_factory=list)
    _held_range: OffsetRange | None = None

    def __post_init__(self) -> None:
        if self.from_ms is None:
            self.started = True

    def offer(self, offset: int, timestamp_ms: int | None, item: T) -> list[tuple[int, T]]:
        if self.done or offset < self.start:
            return []
        if not self.started:
            if timestamp_ms is None or self.from_ms is None or timestamp_ms < self.from_ms:
                self._hold(offset, item)
                return []
            self.started = True
            rng = self.ranges.covering(offset)
            held = self._held if rng is not None and rng == self._held_range else []
            self._held, self._held_range = [], None
            if held and rng is not None:
                self._within = rng.last  # the range began before the start: finish it
            return held + self._take(offset, timestamp_ms, item)
        return self._take(offset, timestamp_ms, item)

    def finish(self) -> None:
        """The log has no more records (EOF): the selection is complete."""
        self.done = True
        self._held, self._held_range = [], None

    def _hold(self, offset: int, item: T) -> None:
        rng = self.ranges.covering(offset)
        if rng is None:
            self._held, self._held_range = [], None
            return
        if rng != self._held_range:
            self._held, self._held_range = [], rng
        self._held.append((offset, item))

    def _take(self, offset: int, timestamp_ms: int | None, item: T) -> list[tuple[int, T]]:
        if self.end is not None and offset >= self.end:
            self.done = True
            return []
        inside = self._within is not None and offset <= self._within
        if not inside and timestamp_ms is not None and self._ends_at(timestamp_ms):
            self.done = True
            return []
        rng = self.ranges.covering(offset)
        self._within = rng.last if rng is not None else None
        return [(offset, item)]

    def _ends_at(self, timestamp_ms: int) -> bool:
        if self.to_ms is not None and timestamp_ms >= self.to_ms:
            return True
        return self.appended_after_ms is not None and timestamp_ms > self.appended_after_ms


@dataclass(frozen=True)
class PartitionPlan:
    seek: int | None
    """Where the consumer starts (None: the log's beginning); never past a reported high
    watermark (a fetch past the end gets no EOF on Tansu)."""
    selector: Selector[Any]
    estimate: int | None
    """About how many offsets lie between the seek and the end (None: unknown)."""


def plan_partition(
    start: FromSpec,
    end: ToSpec,
    *,
    ranges: RangeIndex,
    watermarks: tuple[int, int],
    time_offset: int | None = None,
    cap: int | None = None,
    started_ms: int,
) -> PartitionPlan:
    """Seek position and selector of one partition.

    `watermarks` are (low, high) as the broker reports them (-1: unknown); `time_offset` is the
    broker's answer for a time start (None: no record at or after it); `cap` an exclusive end
    the replay must not pass (into the sink's own database: the end of its last recorded
    batch); `started_ms` the replay's start (for `--to end` and time ends)."""
    low, high = watermarks
    selector: Selector[Any]
    if isinstance(start, AtOffset):
        first = widen_start(ranges, start.offset)
        selector = Selector(start=first, ranges=ranges)
    elif isinstance(start, AtTime):
        found = time_offset if time_offset is not None else max(high, 0)
        first = widen_start(ranges, found)
        selector = Selector(start=first, from_ms=start.ms, ranges=ranges)
    else:
        first = 0
        selector = Selector(start=0, ranges=ranges)
    stop: int | None = None
    if isinstance(end, AtOffset):
        stop = widen_end(ranges, end.offset)
    else:
        selector.appended_after_ms = started_ms
        if isinstance(end, AtTime):
            selector.to_ms = end.ms
    if cap is not None:
        stop = cap if stop is None else min(stop, cap)
    selector.end = stop
    if stop is not None and stop <= first:
        selector.done = True
    seek = None if isinstance(start, Earliest) or high < 0 else min(first, high)
    known_end = stop if stop is not None else max(high, ranges.reach + 1 if len(ranges) else 0)
    base = seek if seek is not None else max(low, 0)
    estimate = max(0, known_end - base) if known_end > 0 or stop is not None else None
    return PartitionPlan(seek=seek, selector=selector, estimate=estimate)
