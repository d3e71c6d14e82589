"""A compact binary-market order book and its wire form.

One book per market, kept for the first (YES) token: prices are integer thousandths (1..999),
sizes integer hundredths of a share, in `array`s, in the order the CLOB serves them (bids
ascending, asks descending: the best level is the last). The second token's book is the mirror
(its bids are the YES asks at 1 - price and vice versa), which is how Polymarket's two books of a
market relate, so the tokens stay complementary for free.

The served text and its `hash` follow the current recipe of producers.parsing.book_hash: the
summary fields in CURRENT_RECIPE order, compact JSON, SHA-1 with `"hash": ""`.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from bisect import bisect_left
from dataclasses import dataclass

from producers.parsing.book_hash import CURRENT_RECIPE

__all__ = [
    "MAX_LEVELS",
    "MIN_LEVELS",
    "ONE",
    "Book",
    "BookMeta",
    "decimal_text",
    "price_text",
    "served_book",
    "size_text",
    "trade_price_text",
]

ONE = 1000  # price unit: 1/1000
MIN_LEVELS = 5
MAX_LEVELS = 40
MAX_SIZE = 40_000_000 * 100  # hundredths; fits array 'I'

_PRICE_TEXT = tuple(
    "0" if m == 0 else "1" if m == ONE else ("0." + f"{m:03d}".rstrip("0")) for m in range(ONE + 1)
)


def price_text(milli: int) -> str:
    """0.5 / 0.51 / 0.001: the CLOB's shortest form."""
    return _PRICE_TEXT[milli]


def trade_price_text(milli: int) -> str:
    """`last_trade_price` on books is served with three decimals ('0.500')."""
    return f"{milli // ONE}.{milli % ONE:03d}"


def size_text(centi: int) -> str:
    """Hundredths of a share -> '22.84', '380', '9.7'."""
    whole, part = divmod(centi, 100)
    if part == 0:
        return str(whole)
    if part % 10 == 0:
        return f"{whole}.{part // 10}"
    return f"{whole}.{part:02d}"


def decimal_text(numerator: int, denominator: int) -> str:
    """An exact short decimal string of numerator/denominator (denominator a power of ten)."""
    digits = len(str(denominator)) - 1
    whole, part = divmod(numerator, denominator)
    if part == 0:
        return str(whole)
    return f"{whole}." + f"{part:0{digits}d}".rstrip("0")


def _neg(value: int) -> int:
    return -value


class Book:
    """The YES-token book. `side` arguments are 'bid' or 'ask' of that token."""

    __slots__ = ("ask_px", "ask_sz", "bid_px", "bid_sz")

    def __init__(self) -> None:
        self.bid_px = array("H")  # ascending
        self.bid_sz = array("I")
        self.ask_px = array("H")  # descending
        self.ask_sz = array("I")

    @classmethod
    def generate(cls, rng: random.Random, best_bid: int, best_ask: int, tick: int) -> Book:
        """A book with 5-40 levels a side whose best levels are `best_bid` / `best_ask`."""
        book = cls()
        for side, start, step in (("bid", best_bid, -tick), ("ask", best_ask, tick)):
            prices: list[int] = []
            price = start
            for _ in range(rng.randint(MIN_LEVELS, MAX_LEVELS)):
                if not tick <= price <= ONE - tick:
                    break
                prices.append(price)
                price += step * (1 if rng.random() < 0.7 else rng.randint(2, 4))
            prices.reverse()  # served order: worst first, best last
            px, sz = book.sides(side)
            px.extend(prices)
            sz.extend(random_size(rng) for _ in prices)
        return book

    def sides(self, side: str) -> tuple[array[int], array[int]]:
        return (self.bid_px, self.bid_sz) if side == "bid" else (self.ask_px, self.ask_sz)

    @property
    def best_bid(self) -> int:
        return self.bid_px[-1] if self.bid_px else 0

    @property
    def best_ask(self) -> int:
        return self.ask_px[-1] if self.ask_px else ONE

    def depth(self, side: str) -> int:
        return len(self.sides(side)[0])

    def find(self, side: str, price: int) -> tuple[int, bool]:
        """(index where `price` is or would go, whether it is there)."""
        px = self.sides(side)[0]
        i = bisect_left(px, price) if side == "bid" else bisect_left(px, -price, key=_neg)
        return i, i < len(px) and px[i] == price

    def size_at(self, side: str, price: int) -> int:
        i, found = self.find(side, price)
        return self.sides(side)[1][i] if found else 0

    def set_level(self, side: str, price: int, size: int) -> None:
        """Set the aggregate size at `price` (0 removes the level)."""
        px, sz = self.sides(side)
        i, found = self.find(side, price)
        size = min(size, MAX_SIZE)
        if found and size > 0:
            sz[i] = size
        elif found:
            del px[i]
            del sz[i]
        elif size > 0:
            px.insert(i, price)
            sz.insert(i, size)

    def take(self, side: str, amount: int, max_levels: int) -> list[tuple[int, int]]:
        """Consume up to `amount` from the best levels of `side`: [(price, taken), ...].

        Never leaves fewer than MIN_LEVELS levels (the last one keeps at least one share).
        """
        px, sz = self.sides(side)
        taken: list[tuple[int, int]] = []
        while amount > 0 and px and len(taken) < max_levels:
            size = sz[-1]
            if amount >= size and len(px) > MIN_LEVELS:
                taken.append((px[-1], size))
                amount -= size
                px.pop()
                sz.pop()
                continue
            take = min(amount, size - 100)
            if take > 0:
                taken.append((px[-1], take))
                sz[-1] = size - take
            break
        return taken

    def levels_json(self, yes: bool) -> tuple[str, str]:
        """(bids, asks) as served JSON arrays for the YES (`yes`) or the NO token."""
        if yes:
            bids = _levels(self.bid_px, self.bid_sz, False)
            asks = _levels(self.ask_px, self.ask_sz, False)
        else:
            bids = _levels(self.ask_px, self.ask_sz, True)
            asks = _levels(self.bid_px, self.bid_sz, True)
        return bids, asks

    def best(self, yes: bool) -> tuple[int, int]:
        """(best bid, best ask) of the YES or the NO token."""
        if yes:
            return self.best_bid, self.best_ask
        return ONE - self.best_ask, ONE - self.best_bid


def random_size(rng: random.Random) -> int:
    """A resting size in hundredths: mostly tens to thousands of shares, sometimes huge."""
    shares = 5 + rng.lognormvariate(4.2, 1.6)
    return min(int(shares * 100), MAX_SIZE)


def _levels(px: array[int], sz: array[int], mirror: bool) -> str:
    texts = _PRICE_TEXT
    if mirror:
        items = [
            '{"price":"' + texts[ONE - p] + '","size":"' + size_text(s) + '"}'
            for p, s in zip(px, sz, strict=True)
        ]
    else:
        items = [
            '{"price":"' + texts[p] + '","size":"' + size_text(s) + '"}'
            for p, s in zip(px, sz, strict=True)
        ]
    return "[" + ",".join(items) + "]"


@dataclass(frozen=True, slots=True)
class BookMeta:
    """What the summary carries besides the levels (per market, the same on both tokens)."""

    market: str
    min_order_size: str
    tick_size: str
    neg_risk: bool
    last_trade_price: str  # '' before the first trade


def served_book(
    meta: BookMeta,
    asset_id: str,
    timestamp_ms: int,
    bids: str,
    asks: str,
    *,
    corrupt_hash: bool = False,
) -> tuple[str, str]:
    """(the book summary as served, its hash) under the current recipe.

    The served object has exactly the recipe's fields in the recipe's order (which is also
    the order the live CLOB serves); `corrupt_hash` serves a wrong hash (fault injection).
    """
    values = {
        "market": '"' + meta.market + '"',
        "asset_id": '"' + asset_id + '"',
        "timestamp": '"' + str(timestamp_ms) + '"',
        "bids": bids,
        "asks": asks,
        "min_order_size": '"' + meta.min_order_size + '"',
        "tick_size": '"' + meta.tick_size + '"',
        "neg_risk": "true" if meta.neg_risk else "false",
        "last_trade_price": '"' + meta.last_trade_price + '"',
    }
    names = CURRENT_RECIPE.fields
    values["hash"] = '""'
    unsigned = "{" + ",".join('"' + name + '":' + values[name] for name in names) + "}"
    digest = hashlib.sha1(unsigned.encode(), usedforsecurity=False).hexdigest()
    if corrupt_hash:
        digest = hashlib.sha1(digest.encode(), usedforsecurity=False).hexdigest()
    values["hash"] = '"' + digest + '"'
    served = "{" + ",".join('"' + name + '":' + values[name] for name in names) + "}"
    return served, digest
