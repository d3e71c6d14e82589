"""The fills the Data API serves: kept in generation order, bounded, indexed by market.

Fills become visible `lag` after their match (the Data API is keyed on block time and runs a
few seconds behind the WebSocket); queries walk newest first, like /v2/trades.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from producers.simulator.model import Fill

__all__ = ["TradeLog"]


def _match_ms(fill: Fill) -> int:
    return fill.match_ms


def _seq(fill: Fill) -> int:
    return fill.seq


class TradeLog:
    """At most about `keep` recent fills (the oldest are dropped in chunks)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.fills: list[Fill] = []
        self.by_condition: dict[str, list[Fill]] = {}
        self.total = 0

    def add(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.by_condition.setdefault(fill.market.condition_id, []).append(fill)
        self.total += 1
        if len(self.fills) > self.keep + max(self.keep // 10, 1):
            self._trim()

    def newest_first(
        self,
        cutoff_ms: int,
        *,
        before_seq: int | None = None,
        conditions: Iterable[str] | None = None,
    ) -> Iterator[Fill]:
        """Fills matched at or before `cutoff_ms` (and with seq < `before_seq`), newest first,
        optionally only those of the markets with these condition ids."""
        if conditions is None:
            return self._walk(self.fills, cutoff_ms, before_seq)
        walks = [
            self._walk(self.by_condition[c], cutoff_ms, before_seq)
            for c in set(conditions)
            if c in self.by_condition
        ]
        return heapq.merge(*walks, key=_seq, reverse=True)

    @staticmethod
    def _walk(fills: list[Fill], cutoff_ms: int, before_seq: int | None) -> Iterator[Fill]:
        end = bisect_right(fills, cutoff_ms, key=_match_ms)
        if before_seq is not None:
            end = min(end, bisect_left(fills, before_seq, key=_seq))
        for i in range(end - 1, -1, -1):
            yield fills[i]

    def _trim(self) -> None:
        drop = len(self.fills) - self.keep
        dropped, self.fills = self.fills[:drop], self.fills[drop:]
        first_kept = self.fills[0].seq
        for condition in {f.market.condition_id for f in dropped}:
            kept = self.by_condition[condition]
            start = bisect_left(kept, first_kept, key=_seq)
            if start >= len(kept):
                del self.by_condition[condition]
            else:
                self.by_condition[condition] = kept[start:]
