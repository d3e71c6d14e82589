"""`pmpipe normalize SOURCE FILE`: run a saved Polymarket payload through its parser and print
one JSON line per record (record type name, topic, key, then the fields; decimals as strings,
token ids as strings). Malformed items are reported one line each on stderr, with the file and
the JSON path of the item, and the exit code is 1.

Files: one response per file for the REST sources. For `clob-prices` the file is a /prices,
/midpoints or /spreads response, or one poll combined as {"prices": ..., "midpoints": ...,
"spreads": ...}. For `ws-market` it is one frame (a JSON object or array), a JSON array of
frames, or one frame per line (JSON lines or raw text, control messages included).
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from pmpipe.errors import PipelineError
from pmpipe.records import Record, decimal_str
from producers.parsing.clob import combine_price_polls, parse_books
from producers.parsing.common import ParseResult
from producers.parsing.data_api import parse_trades
from producers.parsing.errors import ParseError
from producers.parsing.gamma import parse_events, parse_markets
from producers.parsing.market_ws import parse_frame, parse_message

__all__ = ["SOURCES", "NormalizeError", "normalize_command", "normalize_file", "record_to_json"]

SOURCES = ("gamma-markets", "gamma-events", "clob-books", "clob-prices", "data-trades", "ws-market")
PRICE_ENDPOINTS = ("auto", "prices", "midpoints", "spreads")

logger = logging.getLogger(__name__)

_PARSERS: Mapping[str, Callable[[Any, int], ParseResult[Any]]] = {
    "gamma-markets": parse_markets,
    "gamma-events": parse_events,
    "clob-books": parse_books,
    "data-trades": parse_trades,
}


class NormalizeError(PipelineError):
    """A file (or items in it) could not be normalised; `errors` has one entry per item."""

    def __init__(self, path: Path, errors: list[ParseError]) -> None:
        self.file = path
        self.errors = errors
        first = errors[0] if errors else None
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{path}: {first}{more}", component="normalize")


def normalize_file(
    source: str,
    path: Path,
    *,
    received_ts: int | None = None,
    token_id: str | None = None,
    endpoint: str = "auto",
) -> Iterator[dict[str, Any]]:
    """The records of a saved payload as JSON-ready dicts, in payload order.

    `received_ts` (epoch µs) defaults to now; `token_id` names the token of single-token
    price responses ({"mid": ...}); `endpoint` says which price endpoint a clob-prices file
    holds when its shape cannot tell (a token -> number map is /midpoints or /spreads).
    Raises NormalizeError after yielding every good record if any item was malformed.
    """
    if source not in SOURCES:
        raise NormalizeError(path, [ParseError("$", f"unknown source {source!r}")])
    received = received_ts if received_ts is not None else time.time_ns() // 1000
    text = _read(path)
    errors: list[ParseError] = []
    if source == "ws-market":
        results: Iterator[ParseResult[Any]] = _ws_results(text, received)
    else:
        payload = _json(text, path)
        if source == "clob-prices":
            results = iter([_price_poll(payload, received, token_id, endpoint)])
        else:
            results = iter([_PARSERS[source](payload, received)])
    for result in results:
        yield from (record_to_json(record) for record in result.records)
        errors.extend(result.errors)
        for where, reason in result.skipped:
            logger.info("%s: %s: skipped: %s", path, where, reason)
    if errors:
        raise NormalizeError(path, errors)


def record_to_json(record: Record) -> dict[str, Any]:
    """{"record": type name, "topic", "key", then every field} with JSON-safe values."""
    out: dict[str, Any] = {
        "record": type(record).__name__,
        "topic": record.TOPIC,
        "key": record.key(),
    }
    for name, value in record.to_avro().items():
        out[name] = _json_value(value)
    return out


@click.command("normalize")
@click.argument("source", type=click.Choice(SOURCES))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--received-ts",
    type=int,
    default=None,
    help="Receive time to stamp on the records, epoch microseconds (default: now).",
)
@click.option(
    "--token-id",
    default=None,
    help="Token of a single-token price response such as GET /midpoint {'mid': ...}.",
)
@click.option(
    "--endpoint",
    type=click.Choice(PRICE_ENDPOINTS),
    default="auto",
    show_default=True,
    help="clob-prices only: which endpoint the file holds when its shape cannot tell.",
)
def normalize_command(
    source: str, file: Path, received_ts: int | None, token_id: str | None, endpoint: str
) -> None:
    """Parse a saved Polymarket payload FILE from SOURCE; print one JSON line per record."""
    out = sys.stdout
    try:
        for row in normalize_file(
            source, file, received_ts=received_ts, token_id=token_id, endpoint=endpoint
        ):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    except NormalizeError as e:
        out.flush()
        for error in e.errors:
            click.echo(f"error: {file}: {error}", err=True)
        sys.exit(1)


# --------------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise NormalizeError(path, [ParseError("$", f"cannot read the file: {e}")]) from e


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        reason = f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        raise NormalizeError(path, [ParseError("$", reason)]) from e


def _ws_results(text: str, received_ts: int) -> Iterator[ParseResult[Any]]:
    """One result per frame: a whole-file JSON frame or array of frames, else one per line."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        payload = None
    if isinstance(payload, str):
        yield parse_frame(payload, received_ts)
    elif isinstance(payload, list) and not all(isinstance(item, Mapping) for item in payload):
        for i, item in enumerate(payload):
            if isinstance(item, str):
                result = parse_frame(item, received_ts)
            else:
                result = parse_message(item, received_ts)
            yield _located(result, f"$[{i}]")
    elif payload is not None:
        yield parse_message(payload, received_ts)
    else:
        yield from _ws_lines(text, received_ts)


def _ws_lines(text: str, received_ts: int) -> Iterator[ParseResult[Any]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield _located(parse_frame(line, received_ts), f"line {n}: $")


def _located(result: ParseResult[Any], prefix: str) -> ParseResult[Any]:
    result.errors = [error.at(prefix) for error in result.errors]
    return result


def _price_poll(
    payload: Any, received_ts: int, token_id: str | None, endpoint: str
) -> ParseResult[Any]:
    """A clob-prices file -> PriceUpdates, recognising the response by its shape."""
    if endpoint == "auto":
        endpoint = _price_endpoint(payload)
    if endpoint == "combined":
        parts = payload if isinstance(payload, Mapping) else {}
        return combine_price_polls(
            received_ts=received_ts,
            prices=parts.get("prices"),
            midpoints=parts.get("midpoints"),
            spreads=parts.get("spreads"),
            token_id=token_id,
        )
    if endpoint == "ambiguous":
        reason = "a token -> number map can be /midpoints or /spreads: pass --endpoint"
        return ParseResult(errors=[ParseError("$", reason)])
    return combine_price_polls(received_ts=received_ts, token_id=token_id, **{endpoint: payload})


def _price_endpoint(payload: Any) -> str:
    if not isinstance(payload, Mapping):
        return "prices"  # reported as "expected an object keyed by token id"
    keys = set(payload)
    if keys & {"mid", "mid_price"}:
        return "midpoints"
    if "spread" in keys or (keys == {"spreads"}):
        return "spreads"
    if keys and keys <= {"prices", "midpoints", "spreads"}:
        return "combined"
    if payload and all(isinstance(value, Mapping) for value in payload.values()):
        return "prices"
    return "ambiguous" if payload else "prices"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value
