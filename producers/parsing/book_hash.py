"""Recompute the `hash` Polymarket serves with every order book (shared/polymarket/book-hash.md).

The recipe: SHA-1 (hex) over compact JSON (separators ',' and ':') of the book summary with
`"hash": ""`, price levels exactly as served (strings unchanged, served order). The list of
fields changed several times without announcement, so every known era is kept, newest first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CURRENT_RECIPE",
    "RECIPES",
    "HashRecipe",
    "book_hash",
    "matching_recipe",
    "verify_book_hash",
]


@dataclass(frozen=True, slots=True)
class HashRecipe:
    """One era of the server's hash: the summary fields, in hashing order."""

    name: str
    fields: tuple[str, ...]


_BASE = ("market", "asset_id", "timestamp", "hash", "bids", "asks")
_META = ("min_order_size", "tick_size", "neg_risk")

RECIPES: tuple[HashRecipe, ...] = (
    HashRecipe("2025-12 (current)", (*_BASE, *_META, "last_trade_price")),
    HashRecipe("2025-10", (*_BASE, *_META)),
    HashRecipe("2024-11", _BASE),
    HashRecipe("2024-10", ("market", "asset_id", "hash", "bids", "asks")),
)
CURRENT_RECIPE = RECIPES[0]


def book_hash(raw_book: Mapping[str, Any], recipe: HashRecipe = CURRENT_RECIPE) -> str:
    """The hash of `raw_book` (a book object as served) under `recipe`.

    Raises KeyError/TypeError when the book lacks a field the recipe needs or a level is not a
    {price, size} object. A missing `last_trade_price` counts as "", a numeric timestamp (some
    archives re-serialised it) is hashed as the string the server sent.
    """
    summary: dict[str, Any] = {}
    for name in recipe.fields:
        if name == "hash":
            summary[name] = ""
        elif name in ("bids", "asks"):
            levels = raw_book.get(name) or []
            summary[name] = [{"price": lvl["price"], "size": lvl["size"]} for lvl in levels]
        elif name == "timestamp":
            summary[name] = str(raw_book["timestamp"])
        elif name == "last_trade_price":
            summary[name] = raw_book.get(name) or ""
        else:
            summary[name] = raw_book[name]
    text = json.dumps(summary, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def matching_recipe(raw_book: Mapping[str, Any]) -> HashRecipe | None:
    """The newest recipe that reproduces the served hash, or None."""
    served = raw_book.get("hash")
    if not isinstance(served, str) or not served:
        return None
    for recipe in RECIPES:
        if any(name not in raw_book for name in _META if name in recipe.fields):
            continue
        try:
            if book_hash(raw_book, recipe) == served.lower():
                return recipe
        except (KeyError, TypeError):
            continue
    return None


def verify_book_hash(raw_book: Mapping[str, Any]) -> bool | None:
    """Whether the served hash is reproduced; None when it cannot be checked.

    True: some known recipe reproduces it (a SHA-1 match is proof the levels are intact).
    False: nothing matches although the book carries every field of the current recipe.
    None: no hash served, or the book lacks min_order_size/tick_size/neg_risk (WebSocket book
    events and old archives): then a mismatch proves nothing.
    """
    served = raw_book.get("hash")
    if not isinstance(served, str) or not served:
        return None
    if matching_recipe(raw_book) is not None:
        return True
    if all(name in raw_book for name in _META):
        try:
            book_hash(raw_book)
        except (KeyError, TypeError):
            return None
        return False
    return None
