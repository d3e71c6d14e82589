"""Market sync: walk Gamma `/markets/keyset?closed=false` to the end every interval.

The first walk (and the first after `reemit_all()`, i.e. after the embedded log was rolled)
publishes every market; later walks publish only the markets whose content changed (a digest
of the record without its receive time). An unparseable market goes to the DLQ once per
distinct content, not on every walk. A market that drops out of the walk was closed (or
removed): its final state is fetched with `closed=true` and published, so followers of the
compacted topic drop its tokens too. Pagination follows `next_cursor` until it is absent;
a short page is never taken as the end (the server clamps `limit`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from pmpipe.records import Market
from producers.http import LimitTotals, PolymarketHttp
from producers.parsing.errors import ParseError
from producers.parsing.gamma import next_cursor, parse_markets
from producers.state import CycleProgress, Publisher, item_bytes, now_us
from producers.tokens import TokenUniverse

__all__ = ["MarketsFeed", "fill_universe", "market_digest", "walk_markets"]

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
MAX_PAGES = 20_000  # 2 M markets: far beyond the catalogue, only bounds a runaway walk
LOOKUP_BATCH = 20  # condition ids per lookup request (URL length / Cloudflare)
KEYSET_PATH = "/markets/keyset"
MAX_REMEMBERED_DEAD = 100_000


async def walk_markets(
    http: PolymarketHttp, params: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Any, int]]:
    """Every page of a keyset walk, as (decoded payload, receive time µs)."""
    query: dict[str, Any] = {"closed": "false", "limit": PAGE_LIMIT, **(params or {})}
    cursor: str | None = None
    seen_cursors: set[str] = set()
    for _ in range(MAX_PAGES):
        page_query = dict(query)
        if cursor is not None:
            page_query["after_cursor"] = cursor
        payload = await http.get_json("gamma", KEYSET_PATH, params=page_query)
        yield payload, now_us()
        cursor = next_cursor(payload)
        items = payload.get("markets") if isinstance(payload, dict) else payload
        if cursor is None or not items:
            return
        if cursor in seen_cursors:
            log.error("gamma keyset walk: cursor %s repeated, stopping the walk", cursor[:40])
            return
        seen_cursors.add(cursor)
    log.error("gamma keyset walk stopped after %d pages (limit)", MAX_PAGES)


def market_digest(market: Market) -> bytes:
    """Content digest of a market record, ignoring when it was received."""
    data = msgspec.json.encode(msgspec.structs.replace(market, received_ts=0))
    return hashlib.blake2b(data, digest_size=16).digest()


async def fill_universe(http: PolymarketHttp, universe: TokenUniverse) -> int:
    """One walk of our own into `universe` (when the markets topic is empty); markets seen."""
    markets = 0
    errors = 0
    async for payload, received_ts in walk_markets(http):
        result = parse_markets(payload, received_ts)
        errors += len(result.errors)
        for market in result.records:
            universe.apply_market(market)
            markets += 1
    log.info(
        "token universe filled from Gamma: markets=%d tokens=%d unparseable=%d "
        "(the markets feed dead-letters those)",
        markets,
        len(universe),
        errors,
    )
    return markets


class MarketsFeed:
    name = "markets"

    def __init__(
        self,
        http: PolymarketHttp,
        publisher: Publisher,
        *,
        interval_secs: float,
        universe: TokenUniverse | None = None,
    ) -> None:
        self.interval_secs = interval_secs
        self._http = http
        self._publisher = publisher
        self._universe = universe
        self._digests: dict[str, bytes] = {}
        self._dead: set[bytes] = set()
        self._emit_all = True
        self.walked = asyncio.Event()  # set after each complete walk
        self.walks = 0
        self.published = 0
        self.closed_published = 0
        self.vanished_unknown = 0

    def limits(self) -> LimitTotals:
        return self._http.totals([("gamma", "/markets")])

    def reemit_all(self) -> None:
        """Publish the whole catalogue on the next walk (the broker's log was rolled)."""
        self._emit_all = True

    async def run_cycle(self, progress: CycleProgress) -> None:
        progress.unit = "pages"
        emit_all = self._emit_all
        seen: set[str] = set()
        async for payload, received_ts in walk_markets(self._http):
            progress.done += 1
            progress.total = progress.done
            result = parse_markets(payload, received_ts)
            progress.parse_errors += await self._dead_letters(result.errors, received_ts)
            progress.records["skipped"] += len(result.skipped)
            for market in result.records:
                seen.add(market.condition_id)
                progress.records["markets"] += 1
                digest = market_digest(market)
                if emit_all or self._digests.get(market.condition_id) != digest:
                    await self._publisher.publish(market)
                    self._digests[market.condition_id] = digest
                    progress.records["published"] += 1
                    self.published += 1
                if self._universe is not None:
                    self._universe.apply_market(market)
        vanished = [cid for cid in self._digests if cid not in seen]
        if vanished:
            await self._close_vanished(vanished, progress)
        self._emit_all = False
        self.walks += 1
        self.walked.set()

    async def _dead_letters(self, errors: list[ParseError], received_ts: int) -> int:
        """Dead-letter unparseable markets once per distinct content, not on every walk."""
        fresh = []
        for error in errors:
            digest = hashlib.blake2b(item_bytes(error.item), digest_size=16).digest()
            if digest not in self._dead:
                self._dead.add(digest)
                fresh.append(error)
        if len(self._dead) > MAX_REMEMBERED_DEAD:
            self._dead.clear()
        await self._publisher.dead_letters_of(self.name, fresh, received_ts)
        return len(errors)

    async def _close_vanished(self, condition_ids: Sequence[str], progress: CycleProgress) -> None:
        """Publish the final (closed) state of markets that left the active walk."""
        found: set[str] = set()
        for start in range(0, len(condition_ids), LOOKUP_BATCH):
            batch = list(condition_ids[start : start + LOOKUP_BATCH])
            params = {"closed": "true", "limit": PAGE_LIMIT, "condition_ids": batch}
            payload = await self._http.get_json("gamma", KEYSET_PATH, params=params)
            received_ts = now_us()
            result = parse_markets(payload, received_ts)
            progress.parse_errors += await self._dead_letters(result.errors, received_ts)
            for market in result.records:
                if market.condition_id not in batch:
                    continue
                found.add(market.condition_id)
                await self._publisher.publish(market)
                progress.records["closed"] += 1
                self.closed_published += 1
                if self._universe is not None:
                    self._universe.apply_market(market)
        for cid in condition_ids:
            self._digests.pop(cid, None)
            if cid not in found:
                self.vanished_unknown += 1
                progress.records["vanished_unknown"] += 1
                log.warning(
                    "market condition_id=%s left the active walk and is not served as closed "
                    "either; dropping its tokens",
                    cid,
                )
                if self._universe is not None:
                    self._universe.set_market(cid, ())

    def stats(self) -> dict[str, Any]:
        return {
            "walks": self.walks,
            "known_markets": len(self._digests),
            "published": self.published,
            "closed_published": self.closed_published,
            "vanished_unknown": self.vanished_unknown,
        }
