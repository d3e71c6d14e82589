"""Crash injection for the sink's crash tests (never set in production).

`PMPIPE_SINK_CRASH="after_pending:0.05,after_insert:0.2,after_commit:0.05"` makes the sink
SIGKILL itself with that probability each time it passes the named point of a flush round:
`after_pending` (ranges recorded, nothing inserted), `after_insert` (inserted and dead letters
delivered, offsets not committed), `after_commit` (committed, progress not marked).
"""

from __future__ import annotations

import logging
import os
import random
import signal
from collections.abc import Mapping

from pmpipe.errors import ConfigError

__all__ = ["CRASH_ENV", "POINTS", "CrashPoints"]

log = logging.getLogger(__name__)

CRASH_ENV = "PMPIPE_SINK_CRASH"
POINTS = ("after_pending", "after_insert", "after_commit")


class CrashPoints:
    def __init__(self, probabilities: Mapping[str, float] | None = None) -> None:
        self.probabilities = dict(probabilities or {})
        self._random = random.Random()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CrashPoints:
        text = (os.environ if env is None else env).get(CRASH_ENV, "").strip()
        probabilities: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            point, sep, value = item.partition(":")
            if point not in POINTS or not sep:
                raise ConfigError(f"{CRASH_ENV}: expected point:probability with point in {POINTS}")
            try:
                probabilities[point] = float(value)
            except ValueError:
                raise ConfigError(f"{CRASH_ENV}: bad probability {value!r}") from None
        if probabilities:
            log.warning("crash injection enabled: %s", probabilities)
        return cls(probabilities)

    def hit(self, point: str) -> None:
        """SIGKILL this process with the configured probability of `point`."""
        probability = self.probabilities.get(point, 0.0)
        if probability and self._random.random() < probability:
            log.warning("crash injection: SIGKILL at %s", point)
            os.kill(os.getpid(), signal.SIGKILL)
