"""The market engine: a seeded, event-driven simulation of the whole catalogue.

Four independent streams, each with its own `random.Random` derived from the seed, schedule
events in simulated time: taker orders (`trade_rate`/s, Poisson), order-book level changes
(`quote_rate`/s, Poisson; each also steps the market's fair price, a random walk the book
follows), new markets and resolutions (fixed intervals). `advance(now_ms)` runs every event
due by `now_ms` in time order, so the sequence of events depends only on the seed and the start
time, never on when or how often `advance` is called, nor on what clients request.

Listeners (the WebSocket hub, the ground-truth writer) are told about every change.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Sequence

from producers.simulator.book import MAX_LEVELS, MIN_LEVELS, ONE, random_size
from producers.simulator.config import SimConfig
from producers.simulator.ids import tx_hash
from producers.simulator.model import DAY_MS, Event, Fill, Market, new_event, new_market
from producers.simulator.trades import TradeLog

__all__ = ["Listener", "Simulation"]

log = logging.getLogger(__name__)

FIRST_MARKET_ID = 540_000
FIRST_EVENT_ID = 23_000
WALLETS = 5_000


class Listener:
    """Hooks for everything the engine changes (no-ops here; override what you need)."""

    def on_level_change(
        self, market: Market, ts_ms: int, side: str, price: int, best_changed: bool
    ) -> None:
        """One YES-book level (`side` 'bid'/'ask', `price`) changed; read its size from the
        book (0 = removed). `best_changed`: the best bid or ask moved."""

    def on_trade(
        self, market: Market, ts_ms: int, fills: Sequence[Fill], best_changed: bool
    ) -> None:
        """One taker order matched `fills` (one transaction); the book has been updated."""

    def on_tick_size_change(self, market: Market, ts_ms: int, old_tick: int) -> None:
        """market.tick changed from `old_tick`."""

    def on_new_market(self, market: Market, ts_ms: int) -> None:
        """A market was created (after the initial catalogue)."""

    def on_market_resolved(self, market: Market, ts_ms: int) -> None:
        """market.closed is now true and market.winner says which outcome won."""


class Simulation:
    def __init__(self, config: SimConfig, start_ms: int) -> None:
        self.config = config
        self.seed = config.seed
        self.start_ms = start_ms
        self.listeners: list[Listener] = []
        self._world = random.Random(f"world:{config.seed}")
        self._trades_rng = random.Random(f"trades:{config.seed}")
        self._quotes_rng = random.Random(f"quotes:{config.seed}")
        self._life_rng = random.Random(f"life:{config.seed}")
        self.markets: list[Market] = []  # ascending id
        self.events: list[Event] = []  # ascending id
        self.by_id: dict[str, Market] = {}
        self.by_token: dict[str, Market] = {}
        self.by_condition: dict[str, Market] = {}
        self.events_by_id: dict[str, Event] = {}
        self.open: list[Market] = []
        self.trades = TradeLog(config.trades_kept)
        self.transactions = 0
        self.level_changes = 0
        self.now_ms = start_ms
        self._next_market_id = FIRST_MARKET_ID
        self._next_event_id = FIRST_EVENT_ID
        self._next_seq = 1
        while len(self.markets) < config.markets:
            self._create_event(start_ms, min(config.markets - len(self.markets), 4))
        self._next_trade = start_ms + self._gap(self._trades_rng, config.trade_rate)
        self._next_quote = start_ms + self._gap(self._quotes_rng, config.quote_rate)
        self._next_new = start_ms + _every(config.new_market_every_secs)
        self._next_resolve = start_ms + _every(config.resolve_market_every_secs)

    # ---------------------------------------------------------------------------------------
    def advance(self, now_ms: int, budget: int = 20_000) -> int:
        """Run the events due by `now_ms` (at most `budget`); returns how many ran."""
        done = 0
        while done < budget:
            due = min(self._next_trade, self._next_quote, self._next_new, self._next_resolve)
            if due > now_ms:
                break
            ts = int(due)
            self.now_ms = max(self.now_ms, ts)
            if due == self._next_new:
                self._next_new += _every(self.config.new_market_every_secs)
                self._create_event(ts, 1, announce=True)
            elif due == self._next_resolve:
                self._next_resolve += _every(self.config.resolve_market_every_secs)
                self._resolve(ts)
            elif due == self._next_trade:
                self._next_trade += self._gap(self._trades_rng, self.config.trade_rate)
                self._trade(ts)
            else:
                self._next_quote += self._gap(self._quotes_rng, self.config.quote_rate)
                self._quote(ts)
            done += 1
        if done < budget:
            self.now_ms = max(self.now_ms, now_ms)
        return done

    def token(self, token_id: str) -> tuple[Market, int] | None:
        market = self.by_token.get(token_id)
        if market is None:
            return None
        return market, market.token_index(token_id)

    @property
    def active_tokens(self) -> int:
        return 2 * len(self.open)

    # ---------------------------------------------------------------------------------------
    @staticmethod
    def _gap(rng: random.Random, rate: float) -> float:
        if rate <= 0:
            return math.inf
        return rng.expovariate(rate) * 1000.0

    def _create_event(self, now_ms: int, max_markets: int, *, announce: bool = False) -> None:
        rng = self._world if not announce else self._life_rng
        created_ms = now_ms if announce else now_ms - rng.randrange(1, 180 * DAY_MS)
        event = new_event(rng, self._next_event_id, created_ms, now_ms)
        self._next_event_id += rng.randint(1, 7)
        count = 1 if max_markets == 1 or rng.random() < 0.6 else rng.randint(2, max_markets)
        for _ in range(count):
            market = new_market(rng, self._next_market_id, event, self.seed)
            self._next_market_id += rng.randint(1, 30)
            self.markets.append(market)
            self.by_id[market.id] = market
            self.by_condition[market.condition_id] = market
            for token in market.tokens:
                self.by_token[token] = market
            market.open_pos = len(self.open)
            self.open.append(market)
            if announce:
                for listener in self.listeners:
                    listener.on_new_market(market, now_ms)
        self.events.append(event)
        self.events_by_id[event.id] = event

    def _resolve(self, now_ms: int) -> None:
        if not self.open:
            return
        market = self.open[self._life_rng.randrange(len(self.open))]
        winner = 0 if market.fair >= ONE / 2 else 1
        last = self.open.pop()
        if last is not market:
            self.open[market.open_pos] = last
            last.open_pos = market.open_pos
        market.open_pos = -1
        market.close(now_ms, winner)
        for listener in self.listeners:
            listener.on_market_resolved(market, now_ms)

    def _pick(self, rng: random.Random) -> Market | None:
        """An open market; a few are much busier than the rest."""
        if not self.open:
            return None
        return self.open[int(len(self.open) * rng.random() ** 2)]

    # ---------------------------------------------------------------------------------------
    def _trade(self, now_ms: int) -> None:
        rng = self._trades_rng
        market = self._pick(rng)
        if market is None:
            return
        book = market.book
        before = (book.best_bid, book.best_ask)
        mid = (before[0] + before[1]) / 2
        lean = max(-0.3, min(0.3, (market.fair - mid) / (10 * market.tick)))
        buy_yes = rng.random() < 0.5 + lean
        outcome = 0 if rng.random() < 0.5 else 1
        side = "BUY" if buy_yes == (outcome == 0) else "SELL"
        amount = int((1 + rng.lognormvariate(3.2, 1.3)) * 100)
        if rng.random() < 0.25:  # a sweep through more than the best level
            amount += book.sides("ask" if buy_yes else "bid")[1][-1]
        taken = book.take("ask" if buy_yes else "bid", amount, rng.randint(1, 3))
        if not taken:
            return
        self.transactions += 1
        tx = tx_hash(self.seed, self.start_ms, self.transactions)
        taker = rng.randrange(WALLETS)
        fills: list[Fill] = []
        seen: Counter[tuple[int, int]] = Counter()
        for yes_price, size in taken:
            price = yes_price if outcome == 0 else ONE - yes_price
            for part in _split(rng, size):
                fill = Fill(
                    seq=self._next_seq,
                    tx=self.transactions,
                    tx_hash=tx,
                    market=market,
                    outcome=outcome,
                    side=side,
                    price=price,
                    size=part,
                    match_ms=now_ms,
                    taker=taker,
                    maker=rng.randrange(WALLETS),
                    fill_index=len(fills),
                    occurrence=seen[(price, part)],
                )
                seen[(price, part)] += 1
                self._next_seq += 1
                fills.append(fill)
                self.trades.add(fill)
                market.volume = round(market.volume + price * part / 100_000, 6)
        last = fills[-1]
        market.last_trade, market.last_token, market.last_side = last.price, outcome, side
        market.quote_bid, market.quote_ask = book.best_bid, book.best_ask
        market.updated_ms = now_ms
        best_changed = before != (book.best_bid, book.best_ask)
        for listener in self.listeners:
            listener.on_trade(market, now_ms, fills, best_changed)
        self._check_tick(market, now_ms)

    def _quote(self, now_ms: int) -> None:
        rng = self._quotes_rng
        market = self._pick(rng)
        if market is None:
            return
        book, tick = market.book, market.tick
        market.fair = min(max(market.fair + rng.gauss(0, 0.3 * tick), tick), ONE - tick)
        bid, ask = book.best_bid, book.best_ask
        up = market.fair > (bid + ask) / 2
        roll = rng.random()
        if book.depth("bid") > MAX_LEVELS or book.depth("ask") > MAX_LEVELS:
            side = "bid" if book.depth("bid") > MAX_LEVELS else "ask"
            price, size = book.sides(side)[0][0], 0  # drop the worst level
        elif roll < 0.3 and ask - bid > tick:  # improve toward the fair price
            side, price = ("bid", bid + tick) if up else ("ask", ask - tick)
            size = random_size(rng)
        elif roll < 0.45 and book.depth("ask" if up else "bid") > MIN_LEVELS:
            side = "ask" if up else "bid"  # the side away from fair gives way
            price, size = book.sides(side)[0][-1], 0
        else:  # resize one of the top levels
            side = "bid" if rng.random() < 0.5 else "ask"
            px, sz = book.sides(side)
            i = len(px) - 1 - min(int(rng.expovariate(0.5)), len(px) - 1)
            price = px[i]
            if roll < 0.75:
                size = sz[i] + random_size(rng)
            elif len(px) > MIN_LEVELS and rng.random() < 0.4:
                size = 0
            else:
                size = max(100, int(sz[i] * rng.uniform(0.2, 0.9)))
        book.set_level(side, price, size)
        self.level_changes += 1
        best_changed = (bid, ask) != (book.best_bid, book.best_ask)
        for listener in self.listeners:
            listener.on_level_change(market, now_ms, side, price, best_changed)
        self._check_tick(market, now_ms)

    def _check_tick(self, market: Market, now_ms: int) -> None:
        """The CLOB refines the tick to 0.001 when the book nears 0 or 1 (< 0.04, > 0.96)."""
        book = market.book
        if market.tick == 10 and (book.best_bid < 40 or book.best_ask > ONE - 40):
            market.tick = 1
            market.updated_ms = now_ms
            for listener in self.listeners:
                listener.on_tick_size_change(market, now_ms, 10)


def _split(rng: random.Random, size: int) -> list[int]:
    """How one level's taken size divides among makers: often one, sometimes several, and
    sometimes equal parts (identical fills in one transaction)."""
    roll = rng.random()
    if roll < 0.2 and size >= 200 and size % 2 == 0:
        return [size // 2, size // 2]
    if roll < 0.4 and size >= 300:
        first = rng.randrange(100, size - 100)
        return [first, size - first]
    return [size]


def _every(secs: float) -> float:
    return secs * 1000.0 if secs > 0 else math.inf
