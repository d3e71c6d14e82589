"""Book poll: every interval, the full-depth book of every tradable token via `POST /books`.

Chunks of up to 500 tokens. Each book's served `hash` is verified (parsing.book_hash, current
recipe) and the result is stored with the snapshot (`hash_ok`); a mismatch is counted, logged
and published as a continuity event `hash_mismatch` with the served and recomputed hashes,
and the book itself is published all the same. With several producer replicas, each polls its
share of the tokens (producers/replicas.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pmpipe.records import BookSnapshot
from producers.http import HttpError, LimitTotals, PolymarketHttp
from producers.parsing.book_hash import book_hash
from producers.parsing.clob import parse_books
from producers.prices import MAX_ITEMS_PER_REQUEST, chunked
from producers.replicas import SOLE, Replica, TokenShare
from producers.state import CycleProgress, Publisher, continuity_event, now_us
from producers.tokens import TokenUniverse

__all__ = ["BooksFeed"]

log = logging.getLogger(__name__)

_LOGGED_MISMATCHES_PER_CYCLE = 5


class BooksFeed:
    name = "books"

    def __init__(
        self,
        http: PolymarketHttp,
        publisher: Publisher,
        universe: TokenUniverse,
        *,
        interval_secs: float,
        concurrency: int,
        replica: Replica = SOLE,
    ) -> None:
        self.interval_secs = interval_secs
        self._http = http
        self._publisher = publisher
        self._universe = universe
        self._concurrency = concurrency
        self._share = TokenShare(replica)
        self.cycles = 0
        self.books = 0
        self.hash_mismatches = 0
        self.hash_unverifiable = 0
        self.failed_requests = 0

    def limits(self) -> LimitTotals:
        return self._http.totals([("clob", "/books")])

    async def run_cycle(self, progress: CycleProgress) -> None:
        progress.unit = "tokens"
        tokens = self._share.of(self._universe.tokens())  # this replica's share, sorted
        progress.total = len(tokens)
        gate = asyncio.Semaphore(self._concurrency)

        async def one(chunk: Sequence[str]) -> None:
            async with gate:
                await self._chunk(chunk, progress)

        await asyncio.gather(*(one(c) for c in chunked(tokens, MAX_ITEMS_PER_REQUEST)))
        mismatches = progress.records.get("hash_mismatch", 0)
        if mismatches:
            log.warning(
                "books: %d of %d books failed hash verification this cycle (published anyway)",
                mismatches,
                progress.records.get("books", 0),
            )
        self.cycles += 1

    async def _chunk(self, tokens: Sequence[str], progress: CycleProgress) -> None:
        body = [{"token_id": t} for t in tokens]
        try:
            payload = await self._http.post_json("clob", "/books", body)
        except HttpError as e:
            progress.errors += 1
            self.failed_requests += 1
            log.error("books: POST /books for %d tokens failed: %s", len(tokens), e)
            return
        received_ts = now_us()
        result = parse_books(payload, received_ts)
        progress.parse_errors += await self._publisher.dead_letters_of(
            self.name, result.errors, received_ts
        )
        raw_by_token = _raw_books(payload)
        for book in result.records:
            await self._publisher.publish(book)
            if book.hash_ok is False:
                await self._mismatch(book, raw_by_token.get(book.token_id), progress)
            elif book.hash_ok is None:
                self.hash_unverifiable += 1
                progress.records["hash_unverifiable"] += 1
        progress.records["books"] += len(result.records)
        self.books += len(result.records)
        progress.done += len(tokens)

    async def _mismatch(
        self, book: BookSnapshot, raw: Mapping[str, Any] | None, progress: CycleProgress
    ) -> None:
        self.hash_mismatches += 1
        progress.records["hash_mismatch"] += 1
        expected = _recompute(raw)
        if progress.records["hash_mismatch"] <= _LOGGED_MISMATCHES_PER_CYCLE:
            log.warning(
                "books: hash mismatch token_id=%s served=%s expected=%s",
                book.token_id,
                book.hash,
                expected,
            )
        await self._publisher.publish(
            continuity_event(
                "hash_mismatch",
                token_id=book.token_id,
                token_ids=(book.token_id,),
                condition_id=book.condition_id,
                detail=json.dumps(
                    {"served": book.hash, "expected": expected, "source_ts": book.source_ts}
                ),
                source="clob",
            )
        )

    def stats(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "books": self.books,
            "hash_mismatches": self.hash_mismatches,
            "hash_unverifiable": self.hash_unverifiable,
            "failed_requests": self.failed_requests,
        }


def _raw_books(payload: Any) -> dict[str, Mapping[str, Any]]:
    items = payload.get("data") if isinstance(payload, Mapping) else payload
    if not isinstance(items, list):
        return {}
    return {
        str(item["asset_id"]): item
        for item in items
        if isinstance(item, Mapping) and item.get("asset_id") is not None
    }


def _recompute(raw: Mapping[str, Any] | None) -> str | None:
    if raw is None:
        return None
    try:
        return book_hash(raw)
    except (KeyError, TypeError):
        return None
