"""Price poll: every interval, top of book for every tradable token through the batch routes.

Per chunk of up to 500 tokens: `POST /prices` (both sides; at most 500 items per request, so
two requests of 250 tokens), `POST /midpoints` and `POST /spreads`, combined into one
PriceUpdate (source 'clob', kind 'poll') per token. A route that fails for a chunk after all
retries leaves its fields empty for that chunk; the others are still published. With several
producer replicas, each polls its share of the tokens (producers/replicas.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import msgspec

from producers.http import HttpError, LimitTotals, PolymarketHttp
from producers.parsing.clob import combine_price_polls
from producers.replicas import SOLE, Replica, TokenShare
from producers.state import CycleProgress, Publisher, now_us
from producers.tokens import TokenUniverse

__all__ = ["MAX_ITEMS_PER_REQUEST", "PricesFeed", "chunked"]

log = logging.getLogger(__name__)

MAX_ITEMS_PER_REQUEST = 500
SIDES = ("BUY", "SELL")
ROUTES = (("clob", "/prices"), ("clob", "/midpoints"), ("clob", "/spreads"))


def chunked(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class PricesFeed:
    name = "prices"

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
        self.updates = 0
        self.failed_requests = 0

    def limits(self) -> LimitTotals:
        return self._http.totals(ROUTES)

    async def run_cycle(self, progress: CycleProgress) -> None:
        progress.unit = "tokens"
        tokens = self._share.of(self._universe.tokens())  # this replica's share, sorted
        progress.total = len(tokens)
        gate = asyncio.Semaphore(self._concurrency)

        async def one(chunk: Sequence[str]) -> None:
            async with gate:
                await self._chunk(chunk, progress)

        await asyncio.gather(*(one(c) for c in chunked(tokens, MAX_ITEMS_PER_REQUEST)))
        self.cycles += 1

    async def _chunk(self, tokens: Sequence[str], progress: CycleProgress) -> None:
        per_side = MAX_ITEMS_PER_REQUEST // len(SIDES)
        price_parts = [
            [{"token_id": t, "side": s} for t in part for s in SIDES]
            for part in chunked(tokens, per_side)
        ]
        ids = [{"token_id": t} for t in tokens]
        answers = await asyncio.gather(
            *(self._post("/prices", body, progress) for body in price_parts),
            self._post("/midpoints", ids, progress),
            self._post("/spreads", ids, progress),
        )
        *price_answers, midpoints, spreads = answers
        prices: dict[str, Any] | None = None
        for answer in price_answers:
            if isinstance(answer, dict):
                prices = {**(prices or {}), **answer}
            elif answer is not None:
                prices = answer  # not an object: let the parser report it
        received_ts = now_us()
        result = combine_price_polls(
            received_ts=received_ts, prices=prices, midpoints=midpoints, spreads=spreads
        )
        progress.parse_errors += await self._publisher.dead_letters_of(
            self.name, result.errors, received_ts
        )
        for parsed in result.records:
            condition_id = self._universe.condition_of(parsed.token_id)
            update = (
                parsed
                if condition_id is None
                else msgspec.structs.replace(parsed, condition_id=condition_id)
            )
            await self._publisher.publish(update)
        progress.records["prices"] += len(result.records)
        self.updates += len(result.records)
        progress.done += len(tokens)

    async def _post(self, path: str, body: list[dict[str, str]], progress: CycleProgress) -> Any:
        try:
            return await self._http.post_json("clob", path, body)
        except HttpError as e:
            progress.errors += 1
            self.failed_requests += 1
            log.error("prices: %s for %d tokens failed: %s", path, len(body), e)
            return None

    def stats(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "updates": self.updates,
            "failed_requests": self.failed_requests,
        }
