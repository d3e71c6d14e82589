"""Book hash recipes (shared/polymarket/book-hash.md) on fixtures and on every hashed capture."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers.parsing.book_hash import (
    CURRENT_RECIPE,
    RECIPES,
    book_hash,
    matching_recipe,
    verify_book_hash,
)
from tests.producers import captures_dir, load_fixture

CURRENT, OCT_2025, NOV_2024, OCT_2024 = (recipe.name for recipe in RECIPES)


def test_current_recipe_reproduces_a_served_rest_hash() -> None:
    book = load_fixture("clob_book.json")
    assert book_hash(book) == book["hash"] == "14b1ea7f9e2c09b793d30523699b49c0a4fb6842"
    assert matching_recipe(book) is CURRENT_RECIPE
    assert verify_book_hash(book) is True


def test_post_books_hashes_verify() -> None:
    for book in load_fixture("clob_books_post.json"):
        assert verify_book_hash(book) is True


def test_older_era_recipe_is_recognised() -> None:
    book = load_fixture("clob_book_2024.json")
    recipe = matching_recipe(book)
    assert recipe is not None
    assert recipe.name == OCT_2024
    assert verify_book_hash(book) is True


def test_changed_level_is_a_mismatch_when_the_book_is_complete() -> None:
    book = copy.deepcopy(load_fixture("clob_book.json"))
    book["bids"][0]["size"] = "29758.28"
    assert verify_book_hash(book) is False
    book = copy.deepcopy(load_fixture("clob_book.json"))
    book["bids"][0]["price"] = "0.010"  # same value, other text: the hash is over the text
    assert verify_book_hash(book) is False


def test_levels_are_hashed_as_served_not_sorted() -> None:
    book = copy.deepcopy(load_fixture("clob_book.json"))
    book["asks"].reverse()
    assert verify_book_hash(book) is False


def test_missing_last_trade_price_counts_as_empty_string() -> None:
    book = copy.deepcopy(load_fixture("clob_book.json"))
    book["last_trade_price"] = ""
    rehashed = book_hash(book)
    del book["last_trade_price"]
    assert book_hash(book) == rehashed


def test_uncheckable_books_give_none() -> None:
    ws_book = load_fixture("ws_book_array.json")[0]  # no tick_size/min_order_size/neg_risk
    assert verify_book_hash(ws_book) is None
    no_hash = {k: v for k, v in load_fixture("clob_book.json").items() if k != "hash"}
    assert verify_book_hash(no_hash) is None
    assert verify_book_hash({"hash": "abc", "bids": "garbage"}) is None


# --------------------------------------------------------------------------------------------
# every capture named in book-hash.md (plus polymercado_book.json, which it does not list)

CURRENT_REST = [
    "set_b/clob_book/gopolymarket_book_hashvector_1.json",
    "set_b/clob_book/gopolymarket_book_hashvector_2.json",
    "set_b/clob_book/gopolymarket_book_hashvector_3.json",
    "set_b/clob_book/trebuchet_clob_books_POST_books.json",
    "set_b/clob_book/vtrade_clob_book.json",
    "set_b/clob_book/ra1nty_book.json",
    "set_b/clob_book/polymercado_book.json",
]

# (file, which books in it, expected matching recipe or None, expected verify result)
EXPECTED: list[tuple[str, str, str | None, bool | None]] = [
    *[(name, "all", CURRENT, True) for name in CURRENT_REST],
    (
        "set_b/ws_market/polypy_oct2025_book_pricechange_restbook_sequence.json",
        "rest",
        OCT_2025,
        True,
    ),
    (
        "set_b/ws_market/polypy_oct2025_book_pricechange_restbook_sequence.json",
        "ws",
        None,
        None,
    ),
    ("set_b/ws_market/polypy_legacy_dec2024_multi_asset_frames.json", "all", NOV_2024, True),
    ("set_b/ws_market/polypy_legacy_dec2024_stream_frames.json", "all", NOV_2024, True),
    ("set_b/ws_market/polypy_ws_msg_book_yes.json", "all", NOV_2024, True),
    ("set_a/http_responses/book.json", "all", OCT_2024, True),
    ("set_a/ws_messages/book.json", "all", OCT_2024, True),
    # levels cut by the capturing tool: complete metadata, so a real mismatch
    ("set_b/clob_book/ccxt_book_fetchOrderBook.json", "all", None, False),
    # levels cut and no metadata: cannot be checked
    ("set_b/ws_market/pmresearch_book_no_event_type_truncated.json", "all", None, None),
    # WebSocket books without tick_size/min_order_size/neg_risk (Dec 2025 on): not checkable
    ("set_b/ws_market/polybotv2_frame1_book_array_2assets.json", "all", None, None),
    ("set_b/ws_market/polybotv2_frame3_book_single_object.json", "all", None, None),
    ("set_b/ws_market/polymercado_ws_book.json", "all", None, None),
]


def _books(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _books(item)
    elif isinstance(value, dict) and "bids" in value and "hash" in value:
        yield value


@pytest.mark.parametrize(("name", "which", "recipe", "verified"), EXPECTED)
def test_capture_hashes(name: str, which: str, recipe: str | None, verified: bool | None) -> None:
    path: Path = captures_dir() / name
    books = list(_books(json.loads(path.read_text(encoding="utf-8"))))
    if which == "rest":
        books = [b for b in books if "event_type" not in b]
    elif which == "ws":
        books = [b for b in books if "event_type" in b]
    assert books, f"no book with a hash in {name}"
    for book in books:
        found = matching_recipe(book)
        assert (found.name if found else None) == recipe, book.get("asset_id")
        assert verify_book_hash(book) is verified
