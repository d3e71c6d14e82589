"""The `sink_progress` table: each batch's offset range, recorded before its inserts.

Rows are `(incarnation, topic, partition, first_offset, last_offset, state, updated_at)`;
`state` is `pending` (written and acknowledged before the batch's first insert) or `committed`
(written after its offsets were committed to the broker). The latest row per range wins
(`argMax(..., updated_at)`, the table is a ReplacingMergeTree on `updated_at`).

`plan()` turns what the table and the group's committed offset say into where to resume:

* C = the group's committed offset (None: nothing committed);
* M = the highest `committed` range's last offset at or above C: the table can be ahead of the
  group (a commit lost, group offsets expired), then consumption resumes at M + 1;
* every `pending` range ending at or past that point was (maybe) inserted but not committed:
  it is re-formed exactly (same bounds, same deduplication token) before anything new.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sink.batch import OffsetRange
from sink.errors import UnavailableError

__all__ = ["COMMITTED", "PENDING", "Position", "ProgressRow", "ProgressStore", "ResumePlan"]

log = logging.getLogger(__name__)

TABLE = "sink_progress"
PENDING = "pending"
COMMITTED = "committed"
_COLUMNS = (
    "incarnation",
    "topic",
    "partition",
    "first_offset",
    "last_offset",
    "state",
    "updated_at",
)
_SETTINGS = {"insert_deduplicate": 0, "async_insert": 0}
"""Every progress row must land: no deduplication by data hash (replicated tables do that)."""
_LATEST = (
    "SELECT topic, partition, first_offset, argMax(last_offset, updated_at) AS last,"
    " argMax(state, updated_at) AS latest_state"
    " FROM {db}.sink_progress WHERE {where}"
    " GROUP BY incarnation, topic, partition, first_offset"
)
_ONE = (
    "(incarnation = {{i{n}:String}} AND topic = {{t{n}:String}}"
    " AND partition = {{p{n}:UInt32}} AND last_offset >= {{c{n}:UInt64}})"
)


@dataclass(frozen=True)
class Position:
    """A partition to plan: its incarnation and the group's committed offset (None: none)."""

    incarnation: str
    topic: str
    partition: int
    committed: int | None


@dataclass(frozen=True)
class ProgressRow:
    incarnation: str
    topic: str
    partition: int
    range: OffsetRange
    state: str


@dataclass(frozen=True)
class ResumePlan:
    position: int | None
    """First offset to read; None = from the beginning of the log."""
    reform: tuple[OffsetRange, ...] = ()
    """Recorded ranges to re-form exactly, in order, before new batches."""


class ProgressStore:
    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database

    def record(self, rows: Sequence[ProgressRow]) -> None:
        """Insert rows in one statement (one request); returns once ClickHouse acknowledged."""
        if not rows:
            return
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        body = "".join(
            json.dumps(
                [r.incarnation, r.topic, r.partition, r.range.first, r.range.last, r.state, now]
            )
            + "\n"
            for r in rows
        )
        try:
            self.client.raw_insert(
                f"{self.database}.{TABLE}",
                column_names=_COLUMNS,
                insert_block=body.encode(),
                fmt="JSONCompactEachRow",
                settings=_SETTINGS,
            )
        except ClickHouseError as e:
            raise UnavailableError(f"cannot record batch progress: {e}", component="sink") from e

    def plan(
        self, incarnation: str, topic: str, partition: int, committed: int | None
    ) -> ResumePlan:
        """Where (topic, partition) resumes in this incarnation; see the module doc."""
        return self.plans([Position(incarnation, topic, partition, committed)])[(topic, partition)]

    def plans(self, positions: Sequence[Position]) -> dict[tuple[str, int], ResumePlan]:
        """Resume plans of many partitions with two queries (see the module doc)."""
        if not positions:
            return {}
        params: dict[str, str | int] = {}
        clauses = []
        for n, pos in enumerate(positions):
            clauses.append(_ONE.format(n=n))
            params.update({f"i{n}": pos.incarnation, f"t{n}": pos.topic, f"p{n}": pos.partition})
            params[f"c{n}"] = pos.committed or 0
        latest = _LATEST.format(db=self.database, where=" OR ".join(clauses))
        try:
            ahead = self.client.query(
                f"SELECT topic, partition, max(last) FROM ({latest})"
                f" WHERE latest_state = '{COMMITTED}' GROUP BY topic, partition",
                parameters=params,
            ).result_rows
            pending = self.client.query(
                f"SELECT topic, partition, first_offset, last FROM ({latest})"
                f" WHERE latest_state = '{PENDING}' ORDER BY topic, partition, first_offset",
                parameters=params,
            ).result_rows
        except ClickHouseError as e:
            raise UnavailableError(f"cannot read batch progress: {e}", component="sink") from e
        newest = {(str(t), int(p)): int(last) for t, p, last in ahead}
        ranges: dict[tuple[str, int], list[OffsetRange]] = {}
        for t, p, first, last in pending:
            ranges.setdefault((str(t), int(p)), []).append(OffsetRange(int(first), int(last)))
        return {
            (pos.topic, pos.partition): _plan(
                pos,
                newest.get((pos.topic, pos.partition)),
                ranges.get((pos.topic, pos.partition), []),
            )
            for pos in positions
        }


def _plan(pos: Position, newest_committed: int | None, pending: list[OffsetRange]) -> ResumePlan:
    position = pos.committed
    if newest_committed is not None and (position is None or newest_committed >= position):
        position = newest_committed + 1
    reform = tuple(r for r in pending if position is None or r.last >= position)
    if reform:
        position = reform[0].first
    if position != pos.committed or reform:
        log.info(
            "resume plan topic=%s partition=%d incarnation=%s committed=%s position=%s reform=%s",
            pos.topic,
            pos.partition,
            pos.incarnation,
            pos.committed,
            position,
            [str(r) for r in reform],
        )
    return ResumePlan(position=position, reform=reform)
