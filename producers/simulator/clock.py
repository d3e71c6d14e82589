"""Simulated time: epoch milliseconds that run `speed` times faster than the wall clock."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SimClock"]


class Clock(Protocol):
    def now_ms(self) -> int:
        """The simulated time, Unix epoch milliseconds."""
        ...


class SimClock:
    """Starts at `start_ms` (default: the wall clock) and advances `speed` x real time."""

    def __init__(self, speed: float = 1.0, start_ms: int | None = None) -> None:
        self.speed = speed
        self.start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
        self._mono0 = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._mono0) * 1000 * self.speed)


class ManualClock:
    """A clock that moves only when told to (unit tests)."""

    def __init__(self, start_ms: int = 1_780_000_000_000) -> None:
        self.start_ms = start_ms
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, secs: float) -> int:
        self._now += int(secs * 1000)
        return self._now
