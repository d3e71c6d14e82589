"""The sink's counters (`stats()`), and the periodic structured progress line.

The progress line is one log record, `sink progress ...`, whose JSON form carries the fields as
keys (`rows_per_sec` by table, `lag` by partition, `paused`, `dlq`, `retries`, ...).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SinkStats"]

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    started: float = field(default_factory=time.monotonic)
    batches: int = 0
    reformed_batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    """Rows inserted (acknowledged, deduplicated or not) by table."""
    inserts: int = 0
    insert_secs_total: float = 0.0
    insert_secs_max: float = 0.0
    dlq_records: int = 0
    retries: int = 0
    commits: int = 0
    paused_partitions: int = 0
    buffered_bytes: int = 0
    lag: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    _last_log: float = field(default_factory=time.monotonic)
    _last_rows: Counter[str] = field(default_factory=Counter)

    def record_insert(self, table: str, rows: int, inserts: int, secs: float) -> None:
        self.rows[table] += rows
        self.inserts += inserts
        self.insert_secs_total += secs
        if inserts:
            self.insert_secs_max = max(self.insert_secs_max, secs / inserts)

    def snapshot(self) -> dict[str, Any]:
        return {
            "uptime_secs": round(time.monotonic() - self.started, 3),
            "batches": self.batches,
            "reformed_batches": self.reformed_batches,
            "rows": dict(self.rows),
            "inserts": self.inserts,
            "insert_latency_avg_ms": round(1000 * self.insert_secs_total / self.inserts, 3)
            if self.inserts
            else None,
            "insert_latency_max_ms": round(1000 * self.insert_secs_max, 3),
            "dlq_records": self.dlq_records,
            "retries": self.retries,
            "commits": self.commits,
            "paused_partitions": self.paused_partitions,
            "buffered_bytes": self.buffered_bytes,
            "lag": dict(self.lag),
            "last_error": self.last_error,
        }

    def due(self, interval_secs: float) -> bool:
        """Whether the next progress line is due."""
        return time.monotonic() - self._last_log >= interval_secs

    def log_progress(self) -> None:
        """Log the progress line: rows/s per table since the previous line, lag, pauses."""
        now = time.monotonic()
        elapsed = max(now - self._last_log, 1e-9)
        rates = {
            table: round((rows - self._last_rows[table]) / elapsed, 1)
            for table, rows in self.rows.items()
        }
        log.info(
            "sink progress rows/s=%s lag=%d paused=%d dlq=%d retries=%d buffered_bytes=%d",
            rates,
            sum(self.lag.values()),
            self.paused_partitions,
            self.dlq_records,
            self.retries,
            self.buffered_bytes,
            extra={"rows_per_sec": rates, "progress": self.snapshot()},
        )
        self._last_log = now
        self._last_rows = Counter(self.rows)
