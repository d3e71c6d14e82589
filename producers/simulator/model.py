"""The simulated catalogue: events, their binary markets, and the fills markets trade.

A market's state is what Gamma serves (ids, flags, dates, cached prices and volume) plus its
order book, which is generated on first use from the market's own seed: a market nobody has
looked at or traded costs no book memory, and, since the book only changes through seeded
engine events, when it is first built does not change what it contains.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from producers.simulator.book import (
    ONE,
    Book,
    BookMeta,
    decimal_text,
    price_text,
    trade_price_text,
)
from producers.simulator.ids import hex32, question_text, slugify, token_id

__all__ = ["DAY_MS", "TAGS", "Event", "Fill", "Market", "Tag", "new_event", "new_market"]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Tag:
    id: str
    label: str
    slug: str


TAGS = (
    Tag("2", "Politics", "politics"),
    Tag("21", "Crypto", "crypto"),
    Tag("100639", "Sports", "sports"),
    Tag("120", "Finance", "finance"),
    Tag("596", "Culture", "pop-culture"),
    Tag("1401", "Tech", "tech"),
    Tag("100215", "All", "all"),
)


@dataclass(slots=True, eq=False)
class Event:
    id: str
    slug: str
    title: str
    created_ms: int
    end_ms: int
    neg_risk: bool
    tags: tuple[Tag, ...]
    comment_count: int
    markets: list[Market] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return all(m.closed for m in self.markets)

    @property
    def updated_ms(self) -> int:
        return max((m.updated_ms for m in self.markets), default=self.created_ms)


class Market:
    """One binary market: two tokens, outcome 0 (YES/first) and outcome 1 (NO/second)."""

    __slots__ = (
        "_book",
        "accepting_ms",
        "closed",
        "closed_ms",
        "condition_id",
        "created_ms",
        "end_ms",
        "event",
        "fair",
        "group_item_title",
        "id",
        "id_num",
        "init_ask",
        "init_bid",
        "last_side",
        "last_token",
        "last_trade",
        "liquidity",
        "min_size",
        "neg_risk",
        "open_pos",
        "outcomes",
        "question",
        "question_id",
        "quote_ask",
        "quote_bid",
        "seed",
        "slug",
        "tick",
        "tokens",
        "updated_ms",
        "volume",
        "winner",
    )

    def __init__(
        self, id_num: int, event: Event, rng: random.Random, now_ms: int, seed: int
    ) -> None:
        self.id_num = id_num
        self.id = str(id_num)
        self.event = event
        self.condition_id = hex32(rng)
        self.question_id = hex32(rng)
        self.tokens = (token_id(rng), token_id(rng))
        self.end_ms = event.end_ms
        self.question = question_text(rng, self.end_ms)
        self.slug = slugify(self.question, self.id)
        self.group_item_title = " ".join(self.question.split(" ")[1:4])
        self.outcomes = ("Yes", "No") if rng.random() < 0.85 else ("Up", "Down")
        self.neg_risk = event.neg_risk
        self.min_size = 5
        fair = rng.betavariate(1.3, 1.3) * ONE
        self.tick = 1 if fair < 40 or fair > 960 or rng.random() < 0.1 else 10
        self.fair = min(max(fair, 2.0 * self.tick), ONE - 2.0 * self.tick)
        bid = int(self.fair) // self.tick * self.tick
        self.init_bid = max(bid, self.tick)
        self.init_ask = min(self.init_bid + self.tick * rng.randint(1, 3), ONE - self.tick)
        self.quote_bid, self.quote_ask = self.init_bid, self.init_ask
        self.last_trade = 0  # milli of the last fill, as traded; 0 = never traded
        self.last_token = 0
        self.last_side = ""
        self.volume = round(rng.lognormvariate(9.0, 2.0), 6)
        self.liquidity = round(rng.lognormvariate(8.0, 1.5), 4)
        self.created_ms = now_ms
        self.accepting_ms = now_ms
        self.updated_ms = now_ms
        self.closed = False
        self.closed_ms = 0
        self.winner = -1
        self.open_pos = -1
        self.seed = seed * 1_000_003 + id_num
        self._book: Book | None = None

    @property
    def book(self) -> Book:
        """The order book (built from the market's seed on first use). Closed markets have
        none: asking for it is a bug."""
        if self.closed:
            raise LookupError(f"market {self.id} is closed: no order book")
        if self._book is None:
            rng = random.Random(self.seed)
            self._book = Book.generate(rng, self.init_bid, self.init_ask, self.tick)
        return self._book

    @property
    def has_book(self) -> bool:
        return self._book is not None

    def close(self, now_ms: int, winner: int) -> None:
        self.closed = True
        self.closed_ms = now_ms
        self.updated_ms = now_ms
        self.winner = winner
        self._book = None

    def token_index(self, token: str) -> int:
        return self.tokens.index(token)

    def book_meta(self) -> BookMeta:
        return BookMeta(
            market=self.condition_id,
            min_order_size=str(self.min_size),
            tick_size=price_text(self.tick),
            neg_risk=self.neg_risk,
            last_trade_price=trade_price_text(self.last_trade) if self.last_trade else "",
        )

    def outcome_prices(self) -> tuple[str, str]:
        """Gamma's outcomePrices: the cached mid (and 1 - mid); '1'/'0' once resolved."""
        if self.closed:
            return ("1", "0") if self.winner == 0 else ("0", "1")
        twice_mid = self.quote_bid + self.quote_ask
        return _half(twice_mid), _half(2 * ONE - twice_mid)


def _half(twice_milli: int) -> str:
    return decimal_text(twice_milli * 5, 10_000)


class Fill:
    """One maker fill of a taker order, as the Data API shows it (taker side, taker wallet).

    `price` is the traded token's price; `occurrence` is the ordinal of this fill among the
    identical (token, side, price, size) fills of its transaction.
    """

    __slots__ = (
        "block_s",
        "fill_index",
        "maker",
        "market",
        "match_ms",
        "occurrence",
        "outcome",
        "price",
        "seq",
        "side",
        "size",
        "taker",
        "tx",
        "tx_hash",
    )

    def __init__(
        self,
        *,
        seq: int,
        tx: int,
        tx_hash: str,
        market: Market,
        outcome: int,
        side: str,
        price: int,
        size: int,
        match_ms: int,
        taker: int,
        maker: int,
        fill_index: int,
        occurrence: int,
    ) -> None:
        self.seq = seq
        self.tx = tx
        self.tx_hash = tx_hash
        self.market = market
        self.outcome = outcome
        self.side = side
        self.price = price
        self.size = size
        self.match_ms = match_ms
        self.block_s = match_ms // 1000 + 2  # mined in the next ~2 s Polygon block
        self.taker = taker
        self.maker = maker
        self.fill_index = fill_index
        self.occurrence = occurrence

    @property
    def token(self) -> str:
        return self.market.tokens[self.outcome]


def new_event(rng: random.Random, id_num: int, created_ms: int, now_ms: int) -> Event:
    """An event created at `created_ms` that ends some days after `now_ms`."""
    end_ms = now_ms + rng.randint(2, 400) * DAY_MS + rng.randrange(DAY_MS)
    title_seed = rng.randrange(1_000_000)
    n_tags = rng.randint(1, 3)
    tags = (*rng.sample(TAGS[:-1], n_tags), TAGS[-1])
    return Event(
        id=str(id_num),
        slug=f"sim-event-{id_num}-{title_seed}",
        title=f"Simulated event {id_num}",
        created_ms=created_ms,
        end_ms=end_ms,
        neg_risk=rng.random() < 0.3,
        tags=tags,
        comment_count=rng.randrange(500),
    )


def new_market(rng: random.Random, id_num: int, event: Event, seed: int) -> Market:
    market = Market(id_num, event, rng, event.created_ms, seed)
    event.markets.append(market)
    if len(event.markets) == 1:
        event.title = market.question
    return market
