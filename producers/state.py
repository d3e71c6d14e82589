"""Runtime state shared by the feeds of one `pmpipe produce` process.

* `Publisher`: the one way a feed emits records (Avro through the process's RecordProducer,
  keyed by `record.key()`, to `record.TOPIC`), parse errors included (to polymarket.dlq);
  counts what it published.
* `CycleProgress` + `run_periodic`: a poll loop that runs a feed's cycle every interval, logs
  one summary line per cycle, and says how far a cycle got and what limited it when it
  overruns its interval.
* `write_pause_state` / `clear_pause_state`: the JSON file the supervisor waits for while the
  embedded broker's log is rolled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pmpipe.errors import PipelineError
from pmpipe.kafka import RecordProducer
from pmpipe.records import DeadLetter, MarketEvent, Record
from pmpipe.topics import Topic, get_topic
from producers.http import LimitTotals
from producers.parsing.errors import ParseError

__all__ = [
    "CycleProgress",
    "Feed",
    "Publisher",
    "clear_pause_state",
    "continuity_event",
    "now_ms",
    "now_us",
    "pause_state_path",
    "run_periodic",
    "write_pause_state",
]

log = logging.getLogger(__name__)


def now_us() -> int:
    return time.time_ns() // 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def continuity_event(
    event_type: str,
    *,
    connection_id: str | None = None,
    token_ids: Iterable[str] = (),
    token_id: str | None = None,
    condition_id: str | None = None,
    gap_start: int | None = None,
    gap_end: int | None = None,
    detail: str | None = None,
    source: str = "pipeline",
) -> MarketEvent:
    """A pipeline continuity record (connected, disconnected, silent, gap, hash_mismatch...)."""
    return MarketEvent(
        event_type=event_type,
        category="continuity",
        token_id=token_id,
        condition_id=condition_id,
        token_ids=tuple(token_ids),
        connection_id=connection_id,
        gap_start=gap_start,
        gap_end=gap_end,
        detail=detail,
        source=source,
        source_ts=now_ms(),
        received_ts=now_us(),
    )


class Publisher:
    """Emits records through one RecordProducer; never drops (a full queue makes it wait).

    `topics` maps a record's topic name to the Topic to write (the catalogue by default; tests
    map to topics of their own). While the producer is paused and its local buffer is full,
    `publish` waits asynchronously, so the event loop keeps running (and can resume).
    """

    def __init__(
        self,
        producer: RecordProducer,
        *,
        max_buffered: int,
        topics: Callable[[str], Topic] = get_topic,
    ) -> None:
        self.producer = producer
        self._max_buffered = max_buffered
        self._topics = topics
        self.published: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()

    async def publish(self, record: Record) -> None:
        while self.producer.paused and self.producer.buffered >= self._max_buffered - 1:
            await asyncio.sleep(0.05)
        topic = self._topics(record.TOPIC)
        await self.producer.aproduce(topic, record.key(), record.to_avro())
        self.published[record.TOPIC] += 1

    async def publish_all(self, records: Iterable[Record]) -> int:
        n = 0
        for record in records:
            await self.publish(record)
            n += 1
        return n

    async def dead_letter(
        self, feed: str, error: ParseError, received_ts: int, *, error_type: str = "parse"
    ) -> None:
        """One unusable item to polymarket.dlq, with its JSON (or raw) bytes and the error."""
        await self.publish(
            DeadLetter(
                component=f"producer:{feed}",
                topic=feed,
                original_value=item_bytes(error.item),
                error_type=error_type,
                error=str(error),
                received_ts=received_ts,
            )
        )
        self.dead_letters[feed] += 1

    async def dead_letters_of(
        self, feed: str, errors: Iterable[ParseError], received_ts: int
    ) -> int:
        n = 0
        for error in errors:
            await self.dead_letter(feed, error, received_ts)
            n += 1
        if n:
            log.warning("feed=%s sent %d unparseable item(s) to the DLQ", feed, n)
        return n

    def stats(self) -> dict[str, Any]:
        return {
            "published": dict(self.published),
            "dead_letters": dict(self.dead_letters),
            "delivered": dict(self.producer.delivered),
            "delivery_failed": dict(self.producer.failed),
            "paused": self.producer.paused,
            "buffered": self.producer.buffered,
        }


def item_bytes(item: Any) -> bytes:
    """What the DLQ keeps of a dropped item: raw bytes/text as is, anything else as JSON."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    return json.dumps(item, ensure_ascii=False, default=str).encode("utf-8")


# --------------------------------------------------------------------------------------------
# poll cycles


@dataclass
class CycleProgress:
    """What one cycle of a feed has done so far (read while it runs, logged when it ends)."""

    feed: str
    unit: str = "items"
    total: int = 0
    done: int = 0
    records: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    parse_errors: int = 0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        records = " ".join(f"{k}={v}" for k, v in sorted(self.records.items())) or "none"
        notes = f" notes={'; '.join(self.notes)}" if self.notes else ""
        return (
            f"{self.unit}={self.done}/{self.total} records[{records}] "
            f"errors={self.errors} parse_errors={self.parse_errors}{notes}"
        )


class Feed(Protocol):
    name: str
    interval_secs: float

    async def run_cycle(self, progress: CycleProgress) -> None: ...

    def limits(self) -> LimitTotals: ...


async def run_periodic(feed: Feed, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
    """Run `feed.run_cycle` every `feed.interval_secs` until `stop` is set.

    A cycle that overruns its interval is not cancelled: at the interval mark one line says
    how far it got and what limited it (rate-limit waits, retries, failed requests, and the
    CPU time the whole process used meanwhile: close to the elapsed time means CPU-bound, and
    the feeds want processes of their own), and the next cycle starts as soon as it ends. Setting
    `wake` starts the next cycle early.
    """
    cycle = 0
    while not stop.is_set():
        cycle += 1
        started = time.monotonic()
        progress = CycleProgress(feed.name)
        limits_before = feed.limits()
        cpu_before = time.process_time()
        task = asyncio.create_task(feed.run_cycle(progress), name=f"{feed.name}-cycle-{cycle}")
        try:
            done, _ = await asyncio.wait({task}, timeout=feed.interval_secs)
            if not done:
                log.warning(
                    "feed=%s cycle=%d did not finish inside its %.0f s interval: so far %s; "
                    "limited by %s process_cpu_secs=%.1f",
                    feed.name,
                    cycle,
                    feed.interval_secs,
                    progress.describe(),
                    (feed.limits() - limits_before).describe(),
                    time.process_time() - cpu_before,
                )
            await task
        except asyncio.CancelledError:
            task.cancel()
            raise
        except PipelineError as e:
            # an HTTP failure after all retries, a registry error...: the next cycle retries
            progress.errors += 1
            log.error("feed=%s cycle=%d failed: %s (%s)", feed.name, cycle, e, progress.describe())
        elapsed = time.monotonic() - started
        log.info(
            "feed=%s cycle=%d done in %.2f s: %s; %s process_cpu_secs=%.2f",
            feed.name,
            cycle,
            elapsed,
            progress.describe(),
            (feed.limits() - limits_before).describe(),
            time.process_time() - cpu_before,
        )
        await _sleep_until(started + feed.interval_secs, stop, wake)


async def _sleep_until(deadline: float, stop: asyncio.Event, wake: asyncio.Event | None) -> None:
    waiters: list[Awaitable[Any]] = [stop.wait()]
    if wake is not None:
        waiters.append(wake.wait())
    tasks = [asyncio.ensure_future(w) for w in waiters]
    try:
        await asyncio.wait(
            tasks, timeout=max(0.0, deadline - time.monotonic()), return_when="FIRST_COMPLETED"
        )
    finally:
        for t in tasks:
            t.cancel()
    if wake is not None:
        wake.clear()


# --------------------------------------------------------------------------------------------
# pause state file (embedded broker log roll)


def pause_state_path(data_dir: Path, feeds: Iterable[str]) -> Path:
    return data_dir / "run" / f"produce-{'-'.join(feeds)}.paused.json"


def write_pause_state(
    path: Path, next_offsets: Mapping[tuple[str, int], int], **extra: Any
) -> None:
    """Atomically write {"paused": true, "next_offsets": {"topic:partition": n}, ...}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "paused": True,
        "next_offsets": {f"{t}:{p}": n for (t, p), n in sorted(next_offsets.items())},
        **extra,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def clear_pause_state(path: Path) -> None:
    path.unlink(missing_ok=True)
