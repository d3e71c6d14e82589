"""The sink's errors: what is retried (a service is unavailable) and what is a record's fault.

Both carry the topic / partition / offset context of `PipelineError`. `UnavailableError` never
loses data: the batch stays in memory, its partitions pause, and the flush is retried with
backoff. `DataRefusedError` isolates the culprit records and sends them to the dead-letter topic.
"""

from __future__ import annotations

from pmpipe.errors import PipelineError

__all__ = ["DataRefusedError", "MissingTableError", "UnavailableError"]


class UnavailableError(PipelineError):
    """ClickHouse, the broker or the schema registry cannot be used right now: retry later."""


class MissingTableError(UnavailableError):
    """A target table does not exist: fatal at start (run `pmpipe migrate`), retried later."""


class DataRefusedError(PipelineError):
    """ClickHouse refused an insert because of the data in it (type, parse, range errors)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message, topic=topic, partition=partition, offset=offset, component="sink")
        self.code = code
