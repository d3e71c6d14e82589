"""Market sync: walk Gamma `/events/keyset?closed=false` and `/markets/keyset?closed=false` to
the end every interval.

The first walk (and the first after `reemit_all()`, i.e. after the embedded log was rolled)
publishes every market; later walks publish only the markets whose content changed (a digest
of the record without its receive time). An unparseable market goes to the DLQ once per
distinct content, not on every walk. A market that drops out of the walk was closed (or
removed): its final state is fetched with `closed=true` and published, so followers of the
compacted topic drop its tokens too. Pagination follows `next_cursor` until it is absent;
a short page is never taken as the end (the server clamps `limit`).

The events walk runs first and gives, per market, its event's id, slug, title, category and
tags (`/markets/keyset` serves tags only with `include_tag`, and its nested event summary has
none): a market record gets from there what its own object leaves empty. It also finds the
markets the markets walk missed: open markets listed under an open event but not by the
markets walk, and markets that closed under an open event before any walk saw them open;
both are looked up by condition id and published (a closed one once). When the events walk
fails, the previous walk's event data is used; a host without `/events/keyset` (404) is
walked for markets only from then on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from pmpipe.records import Market
from producers.http import HttpError, LimitTotals, PolymarketHttp
from producers.parsing.errors import ParseError
from producers.parsing.gamma import next_cursor, parse_events, parse_markets
from producers.state import CycleProgress, Publisher, item_bytes, now_us
from producers.tokens import TokenUniverse

__all__ = [
    "EventInfo",
    "MarketsFeed",
    "enrich_market",
    "event_info",
    "fill_universe",
    "market_digest",
    "walk_events",
    "walk_keyset",
    "walk_markets",
]

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
MAX_PAGES = 20_000  # 2 M markets: far beyond the catalogue, only bounds a runaway walk
LOOKUP_BATCH = 20  # condition ids per lookup request (URL length / Cloudflare)
KEYSET_PATH = "/markets/keyset"
EVENTS_KEYSET_PATH = "/events/keyset"
MAX_REMEMBERED_DEAD = 100_000
MAX_REMEMBERED_CLOSED = 500_000


async def walk_keyset(
    http: PolymarketHttp, path: str, items_key: str, params: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Any, int]]:
    """Every page of a Gamma keyset walk, as (decoded payload, receive time µs)."""
    query: dict[str, Any] = {"closed": "false", "limit": PAGE_LIMIT, **(params or {})}
    cursor: str | None = None
    seen_cursors: set[str] = set()
    for _ in range(MAX_PAGES):
        page_query = dict(query)
        if cursor is not None:
            page_query["after_cursor"] = cursor
        payload = await http.get_json("gamma", path, params=page_query)
        yield payload, now_us()
        cursor = next_cursor(payload)
        items = payload.get(items_key) if isinstance(payload, dict) else payload
        if cursor is None or not items:
            return
        if cursor in seen_cursors:
            log.error("gamma %s walk: cursor %s repeated, stopping the walk", path, cursor[:40])
            return
        seen_cursors.add(cursor)
    log.error("gamma %s walk stopped after %d pages (limit)", path, MAX_PAGES)


def walk_markets(
    http: PolymarketHttp, params: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Any, int]]:
    """Every page of the `/markets/keyset` walk."""
    return walk_keyset(http, KEYSET_PATH, "markets", params)


def walk_events(
    http: PolymarketHttp, params: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Any, int]]:
    """Every page of the `/events/keyset` walk (events with their nested markets)."""
    return walk_keyset(http, EVENTS_KEYSET_PATH, "events", params)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What the events walk says about one market: its event, and whether it is closed."""

    event_id: str | None
    event_slug: str | None
    event_title: str | None
    category: str | None
    tags: tuple[str, ...]
    closed: bool


def event_info(market: Market) -> EventInfo:
    """The event data of a market record parsed from an event (`parse_events`)."""
    return EventInfo(
        event_id=market.event_id,
        event_slug=market.event_slug,
        event_title=market.event_title,
        category=market.category,
        tags=market.tags,
        closed=market.closed,
    )


def enrich_market(market: Market, info: EventInfo | None) -> Market:
    """`market` with the event fields its own object left empty filled from `info`."""
    if info is None:
        return market
    changes: dict[str, Any] = {}
    if market.event_id is None and info.event_id is not None:
        changes |= {
            "event_id": info.event_id,
            "event_slug": info.event_slug,
            "event_title": info.event_title,
        }
    elif market.event_id == info.event_id:
        if market.event_slug is None and info.event_slug is not None:
            changes["event_slug"] = info.event_slug
        if market.event_title is None and info.event_title is not None:
            changes["event_title"] = info.event_title
    if market.category is None and info.category is not None:
        changes["category"] = info.category
    if not market.tags and info.tags:
        changes["tags"] = info.tags
    return msgspec.structs.replace(market, **changes) if changes else market


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
        walk_events: bool = True,
    ) -> None:
        self.interval_secs = interval_secs
        self._http = http
        self._publisher = publisher
        self._universe = universe
        self._digests: dict[str, bytes] = {}
        self._dead: set[bytes] = set()
        self._closed_known: set[str] = set()  # closed markets published (or seen open first)
        self._events: Mapping[str, EventInfo] = {}  # the last complete events walk
        self._events_before: Mapping[str, EventInfo] = {}  # the one before it
        self._walk_events = walk_events
        self._emit_all = True
        self.walked = asyncio.Event()  # set after each complete walk
        self.walks = 0
        self.published = 0
        self.closed_published = 0
        self.vanished_unknown = 0
        self.events_walks = 0
        self.events_walk_failures = 0
        self.found_by_events = 0

    def limits(self) -> LimitTotals:
        return self._http.totals([("gamma", "/markets"), ("gamma", "/events")])

    def reemit_all(self) -> None:
        """Publish the whole catalogue on the next walk (the broker's log was rolled)."""
        self._emit_all = True

    async def run_cycle(self, progress: CycleProgress) -> None:
        progress.unit = "pages"
        emit_all = self._emit_all
        events = await self._events_walk(progress)
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
                enriched = enrich_market(market, events.get(market.condition_id))
                await self._publish_if_changed(enriched, emit_all, progress)
        # what the events walk listed and the markets walk did not
        missed = [cid for cid, info in events.items() if not info.closed and cid not in seen]
        closed_unseen = [
            cid
            for cid, info in events.items()
            if info.closed
            and cid not in seen
            and cid not in self._digests
            and cid not in self._closed_known
        ]
        if missed:
            for market in await self._lookup(missed, closed=False, progress=progress):
                seen.add(market.condition_id)
                self.found_by_events += 1
                progress.records["found_by_events"] += 1
                enriched = enrich_market(market, events.get(market.condition_id))
                await self._publish_if_changed(enriched, emit_all, progress)
            unresolved = [cid for cid in missed if cid not in seen]
            if unresolved:
                log.warning(
                    "%d open market(s) listed under events are not served by %s "
                    "(e.g. condition_id=%s); left for the next walk",
                    len(unresolved),
                    KEYSET_PATH,
                    unresolved[0],
                )
        if closed_unseen:
            for market in await self._lookup(closed_unseen, closed=True, progress=progress):
                self.found_by_events += 1
                progress.records["found_by_events"] += 1
                await self._publish_closed(enrich_market(market, events.get(market.condition_id)))
                progress.records["closed"] += 1
        vanished = [cid for cid in self._digests if cid not in seen]
        if vanished:
            await self._close_vanished(vanished, events, progress)
        self._emit_all = False
        self.walks += 1
        self.walked.set()

    async def _publish_if_changed(
        self, market: Market, emit_all: bool, progress: CycleProgress
    ) -> None:
        digest = market_digest(market)
        if emit_all or self._digests.get(market.condition_id) != digest:
            await self._publisher.publish(market)
            self._digests[market.condition_id] = digest
            progress.records["published"] += 1
            self.published += 1
        if self._universe is not None:
            self._universe.apply_market(market)

    async def _publish_closed(self, market: Market) -> None:
        await self._publisher.publish(market)
        self.closed_published += 1
        if len(self._closed_known) >= MAX_REMEMBERED_CLOSED:
            self._closed_known.clear()
        self._closed_known.add(market.condition_id)
        if self._universe is not None:
            self._universe.apply_market(market)

    async def _events_walk(self, progress: CycleProgress) -> Mapping[str, EventInfo]:
        """Event data per condition id from a complete events walk (else the last one's)."""
        if not self._walk_events:
            return self._events
        events: dict[str, EventInfo] = {}
        pages = 0
        try:
            async for payload, received_ts in walk_events(self._http):
                pages += 1
                progress.done += 1
                progress.total = progress.done
                result = parse_events(payload, received_ts)
                progress.parse_errors += await self._dead_letters(result.errors, received_ts)
                for market in result.records:
                    events[market.condition_id] = event_info(market)
        except HttpError as e:
            self.events_walk_failures += 1
            progress.records["events_walk_failed"] += 1
            if e.status == 404:
                self._walk_events = False
                log.warning(
                    "gamma %s is not served (404): walking %s only from now on",
                    EVENTS_KEYSET_PATH,
                    KEYSET_PATH,
                )
            else:
                log.warning(
                    "gamma events walk failed after %d pages, using the previous walk's "
                    "event data (%d markets): %s",
                    pages,
                    len(self._events),
                    e,
                )
            return self._events
        self._events_before, self._events = self._events, events
        self.events_walks += 1
        progress.records["event_markets"] += len(events)
        return events

    async def _lookup(
        self, condition_ids: Sequence[str], *, closed: bool, progress: CycleProgress
    ) -> list[Market]:
        """The markets of `condition_ids` that Gamma serves with this `closed` state."""
        found: list[Market] = []
        for start in range(0, len(condition_ids), LOOKUP_BATCH):
            batch = list(condition_ids[start : start + LOOKUP_BATCH])
            params = {
                "closed": "true" if closed else "false",
                "limit": PAGE_LIMIT,
                "condition_ids": batch,
            }
            payload = await self._http.get_json("gamma", KEYSET_PATH, params=params)
            received_ts = now_us()
            result = parse_markets(payload, received_ts)
            progress.parse_errors += await self._dead_letters(result.errors, received_ts)
            wanted = set(batch)
            found.extend(m for m in result.records if m.condition_id in wanted)
        return found

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

    async def _close_vanished(
        self,
        condition_ids: Sequence[str],
        events: Mapping[str, EventInfo],
        progress: CycleProgress,
    ) -> None:
        """Publish the final (closed) state of markets that left the active walk (with the
        event data of the walk before when their event closed with them)."""
        found: set[str] = set()
        for market in await self._lookup(condition_ids, closed=True, progress=progress):
            cid = market.condition_id
            found.add(cid)
            info = events.get(cid) or self._events_before.get(cid)
            await self._publish_closed(enrich_market(market, info))
            progress.records["closed"] += 1
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
            "events_walks": self.events_walks,
            "events_walk_failures": self.events_walk_failures,
            "known_markets": len(self._digests),
            "event_markets": len(self._events),
            "published": self.published,
            "closed_published": self.closed_published,
            "found_by_events": self.found_by_events,
            "vanished_unknown": self.vanished_unknown,
        }
