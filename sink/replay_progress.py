"""Progress of a replay: a bar on a terminal, a log line every few seconds otherwise.

Both show the offsets read of the (estimated) total, the records taken per second and the ETA.
Totals are estimates: Tansu under-reports its high watermarks, so a replay may read past 100 %;
then the ETA is unknown ("?").
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

__all__ = ["ReplayProgress", "eta_text", "progress_text"]

log = logging.getLogger(__name__)

_BAR_WIDTH = 24
_TTY_INTERVAL_SECS = 0.2


def eta_text(done: int, total: int | None, rate: float) -> str:
    """`h:mm:ss` until `total` at `rate` per second; '?' when that cannot be told."""
    if total is None or rate <= 0 or done > total:
        return "?"
    secs = round((total - done) / rate)
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"


def progress_text(
    topic: str, read: int, total: int | None, taken: int, elapsed_secs: float, *, bar: bool
) -> str:
    """One progress line: topic, bar (optional), offsets read / total, records/s, ETA."""
    rate = read / elapsed_secs if elapsed_secs > 0 else 0.0
    taken_rate = taken / elapsed_secs if elapsed_secs > 0 else 0.0
    parts = [topic]
    if total:
        fraction = min(read / total, 1.0)
        if bar:
            filled = int(fraction * _BAR_WIDTH)
            parts.append("[" + "#" * filled + "-" * (_BAR_WIDTH - filled) + "]")
        parts.append(f"{fraction:4.0%} {read:,}/{total:,} offsets")
    else:
        parts.append(f"{read:,} offsets")
    parts.append(f"{taken:,} records {taken_rate:,.0f} records/s")
    parts.append(f"ETA {eta_text(read, total, rate)}")
    return "  ".join(parts)


class ReplayProgress:
    """One topic at a time: `start(topic, total)`, `update(read, taken)`, `finish()`."""

    def __init__(self, stream: TextIO | None = None, *, interval_secs: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval_secs = _TTY_INTERVAL_SECS if self.tty else interval_secs
        self.topic = ""
        self.total: int | None = None
        self.read = 0
        self.taken = 0
        self._started = time.monotonic()
        self._shown = 0.0

    def start(self, topic: str, total: int | None) -> None:
        self.topic, self.total, self.read, self.taken = topic, total, 0, 0
        self._started = self._shown = time.monotonic()

    def update(self, read: int, taken: int) -> None:
        self.read, self.taken = read, taken
        now = time.monotonic()
        if now - self._shown >= self.interval_secs:
            self._shown = now
            self._show(now)

    def finish(self) -> None:
        self._show(time.monotonic())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, now: float) -> None:
        elapsed = now - self._started
        if self.tty:
            line = progress_text(self.topic, self.read, self.total, self.taken, elapsed, bar=True)
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            return
        rate = self.taken / elapsed if elapsed > 0 else 0.0
        log.info(
            "replay progress %s",
            progress_text(self.topic, self.read, self.total, self.taken, elapsed, bar=False),
            extra={
                "topic": self.topic,
                "offsets_read": self.read,
                "offsets_total": self.total,
                "records": self.taken,
                "records_per_sec": round(rate, 1),
                "eta": eta_text(self.read, self.total, self.read / elapsed if elapsed else 0.0),
            },
        )
