"""Producer replicas: a stable split of the token set over N `pmpipe produce` processes.

Each replica is told its index and the replica count (`PMPIPE_REPLICA_INDEX`,
`PMPIPE_REPLICA_COUNT`, or `--replica-index` / `--replica-count`). A token belongs to the
replica `sha1(token id) mod count` (first 8 bytes of the digest, big-endian): the same answer
in every process, on every machine, in every release, unlike Python's salted `hash()`. So for
any count the replicas' shares are pairwise disjoint and together are the whole token set. The
hash is independent of the WebSocket shard hash (blake2b, `producers.market_ws.shard_of`), so
a replica's tokens still spread over all of its shards.

What each feed does with replicas:

* `ws` (the market WebSocket), `prices` and `books` (the REST polls per token) take only the
  replica's share of the active tokens: connections, requests and rate-limit budget scale out.
* `markets` (the Gamma catalogue) and `trades` (the Data API's global trade stream) are not
  per token: they run on replica 0 only and are skipped, with a log line, on the others.

Changing the count: restart every replica with the new count (each recomputes its share at
start). While old and new counts overlap, a token can be relayed by two replicas for a moment
(WebSocket records carry `source='ws'` and are kept out of the volume rollups; a polled price
or book twice is one more snapshot) or by none until the replica that now owns it is up. Once
every replica runs with the same count, every token is relayed by exactly one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["GLOBAL_FEEDS", "SOLE", "Replica", "TokenShare", "owns", "replica_feeds", "replica_of"]

GLOBAL_FEEDS = ("markets", "trades")
"""Feeds that are not split by token: they run on replica 0 only."""


def replica_of(token_id: str, count: int) -> int:
    """The replica (0..count-1) a token belongs to; stable across processes and releases."""
    if count < 1:
        raise ValueError(f"replica count must be >= 1, got {count}")
    if count == 1:
        return 0
    digest = hashlib.sha1(token_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % count


def owns(token_id: str, index: int, count: int) -> bool:
    """True when replica `index` of `count` serves `token_id`."""
    return replica_of(token_id, count) == index


@dataclass(frozen=True, slots=True)
class Replica:
    """This process's place among the producer replicas (0 of 1: everything)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"replica index must be in 0..count-1, got {self.index}/{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def split(self) -> bool:
        return self.count > 1

    @property
    def runs_global_feeds(self) -> bool:
        return self.index == 0

    def owns(self, token_id: str) -> bool:
        return owns(token_id, self.index, self.count)


SOLE = Replica()
"""The only replica (0 of 1): every token, every feed."""


def replica_feeds(
    feeds: Sequence[str], replica: Replica
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(feeds this replica runs, feeds it skips): global feeds run on replica 0 only."""
    if replica.runs_global_feeds:
        return tuple(feeds), ()
    return (
        tuple(f for f in feeds if f not in GLOBAL_FEEDS),
        tuple(f for f in feeds if f in GLOBAL_FEEDS),
    )


class TokenShare:
    """A replica's share of a token set that changes over time, hashing each token once.

    `of(tokens)` keeps the input order. Only the tokens of the last call are remembered, so
    memory follows the size of the universe, not its history.
    """

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._owned: dict[str, bool] = {}

    def of(self, tokens: Iterable[str]) -> list[str]:
        if not self.replica.split:
            return list(tokens)
        previous = self._owned
        replica = self.replica
        owned = {t: previous[t] if t in previous else replica.owns(t) for t in tokens}
        self._owned = owned
        return [t for t, mine in owned.items() if mine]
