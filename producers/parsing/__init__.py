"""Pure parsing of every Polymarket source into pipeline records (no I/O).

Each parser takes a decoded payload (raw frame text/bytes for the WebSocket) and the local
receive time `received_ts` (epoch µs) and returns a `ParseResult`: the records, plus one
`ParseError` per item it had to drop (with the item and its JSON path), so a caller can send
the bad item to the DLQ and keep the rest.
"""

from producers.parsing.book_hash import book_hash, matching_recipe, verify_book_hash
from producers.parsing.clob import (
    combine_price_polls,
    parse_book,
    parse_books,
    parse_midpoints,
    parse_prices,
    parse_spreads,
)
from producers.parsing.common import ParseResult
from producers.parsing.data_api import parse_trades, trades_cursor
from producers.parsing.errors import ParseError
from producers.parsing.gamma import next_cursor, parse_events, parse_market, parse_markets
from producers.parsing.market_ws import CONTROL_MESSAGES, parse_frame, parse_message

__all__ = [
    "CONTROL_MESSAGES",
    "ParseError",
    "ParseResult",
    "book_hash",
    "combine_price_polls",
    "matching_recipe",
    "next_cursor",
    "parse_book",
    "parse_books",
    "parse_events",
    "parse_frame",
    "parse_market",
    "parse_markets",
    "parse_message",
    "parse_midpoints",
    "parse_prices",
    "parse_spreads",
    "parse_trades",
    "trades_cursor",
    "verify_book_hash",
]
