"""Gamma API payloads -> Market records. Pure functions, no I/O.

Accepted shapes: keyset pages ({"markets": [...], "next_cursor": ...} and {"events": [...]}),
legacy bare arrays, {"data": [...]} wrappers and single objects (GET /markets/{id},
/events/slug/{slug}). Gamma's JSON-in-JSON fields (outcomes, outcomePrices, clobTokenIds) are
decoded, native arrays tolerated; unknown fields are ignored (the whole market object is kept
in `raw_json`). An event's nested markets become Market records carrying the event's id, slug,
title, category and tags.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pmpipe.records import Market
from producers.parsing.common import (
    ParseResult,
    compact_json,
    dec,
    first_present,
    flag,
    key_path,
    mapping,
    opt_dec,
    opt_str,
    sequence,
    token_id,
)
from producers.parsing.errors import ParseError

__all__ = [
    "gamma_datetime_ms",
    "next_cursor",
    "parse_events",
    "parse_market",
    "parse_markets",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def parse_markets(payload: Any, received_ts: int) -> ParseResult[Market]:
    """/markets/keyset page, /markets array or one market object -> Market records."""
    result: ParseResult[Market] = ParseResult()
    items, base = _unwrap(payload, "markets")
    if items is None:
        result.errors.append(ParseError("$", "expected a market, an array or a keyset page"))
        return result
    for i, item in enumerate(items):
        path = f"{base}[{i}]" if base else "$"
        try:
            _add(result, parse_market(item, received_ts, path=path), path)
        except ParseError as e:
            result.errors.append(e.with_item(item))
    return result


def parse_events(payload: Any, received_ts: int) -> ParseResult[Market]:
    """/events/keyset page, /events array or one event object -> its markets as Market records."""
    result: ParseResult[Market] = ParseResult()
    items, base = _unwrap(payload, "events")
    if items is None:
        result.errors.append(ParseError("$", "expected an event, an array or a keyset page"))
        return result
    for i, item in enumerate(items):
        path = f"{base}[{i}]" if base else "$"
        try:
            event = mapping(item, path)
            markets = sequence(event.get("markets"), key_path(path, "markets"), allow_null=True)
        except ParseError as e:
            result.errors.append(e.with_item(item))
            continue
        for j, market in enumerate(markets):
            at = f"{key_path(path, 'markets')}[{j}]"
            try:
                market_record = parse_market(
                    market, received_ts, event=event, event_path=path, path=at
                )
                _add(result, market_record, at)
            except ParseError as e:
                result.errors.append(e.with_item(market))
    return result


def next_cursor(payload: Any) -> str | None:
    """The keyset cursor of a page (absent on the last page)."""
    if isinstance(payload, Mapping):
        cursor = payload.get("next_cursor")
        if isinstance(cursor, str) and cursor:
            return cursor
    return None


def parse_market(
    raw: Any,
    received_ts: int,
    *,
    event: Mapping[str, Any] | None = None,
    event_path: str = "$",
    path: str = "$",
) -> Market | None:
    """One Gamma market object -> Market (raises ParseError located under `path`).

    None for a market that is not deployed yet: `conditionId` is served but empty or null
    (seen in live events: no condition id, no token ids, active false), so there is nothing
    to key it by until it is deployed. A market object without `conditionId` is an error.
    `event` (found at `event_path`) is the parent event when the market came nested in one;
    otherwise the first of the market's own `events[]` is used. Gamma always serves id, slug
    and question; trimmed archives may not, and then they are "" rather than a lost market.
    """
    m = mapping(raw, path)
    if "conditionId" not in m:
        raise ParseError(key_path(path, "conditionId"), "missing")
    condition_id = opt_str(m, "conditionId", path)
    if condition_id is None:
        return None
    if event is None:
        event_path = f"{key_path(path, 'events')}[0]"
        event = _first_event(m, path)
    parent = _Parent(event, event_path)
    updated_at = _date(m, "updatedAt", path)
    return Market(
        condition_id=condition_id,
        market_id=opt_str(m, "id", path) or "",
        question_id=opt_str(m, "questionID", path) or opt_str(m, "questionId", path),
        slug=opt_str(m, "slug", path) or "",
        question=opt_str(m, "question", path) or "",
        description=opt_str(m, "description", path),
        outcomes=tuple(_strings(m, "outcomes", path)),
        outcome_prices=_prices(m, path),
        token_ids=_token_ids(m, path),
        event_id=parent.text("id"),
        event_slug=parent.text("slug"),
        event_title=parent.text("title"),
        category=opt_str(m, "category", path) or parent.text("category"),
        tags=_tags(m, parent, path),
        active=_bool(m, "active", path),
        closed=_bool(m, "closed", path),
        archived=_bool(m, "archived", path),
        accepting_orders=_bool(m, "acceptingOrders", path),
        enable_order_book=_bool(m, "enableOrderBook", path),
        neg_risk=_bool(m, "negRisk", path),
        tick_size=opt_dec(m, "orderPriceMinTickSize", path),
        min_order_size=opt_dec(m, "orderMinSize", path),
        volume=_number(m, ("volumeNum", "volume"), path),
        volume_24h=opt_dec(m, "volume24hr", path),
        liquidity=_number(m, ("liquidityNum", "liquidity"), path),
        start_date=_date(m, first_present(m, ("startDate", "startDateIso")), path),
        end_date=_date(m, first_present(m, ("endDate", "endDateIso")), path),
        created_at=_date(m, "createdAt", path),
        updated_at=updated_at,
        closed_time=_date(m, "closedTime", path),
        source_ts=updated_at if updated_at is not None else received_ts // 1000,
        received_ts=received_ts,
        raw_json=compact_json(m),
    )


def gamma_datetime_ms(value: str) -> int:
    """A Gamma date/time -> epoch ms (UTC).

    Handles '2026-03-11T09:29:01.328428Z', '2026-06-30T00:00:00Z', '2026-06-15 06:04:30+00',
    any fraction length, and date-only '2026-03-12' (midnight UTC). A time without an offset
    is taken as UTC. Raises ValueError for anything else.
    """
    text = value.strip()
    if len(text) == 10:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


# --------------------------------------------------------------------------------------------

NOT_DEPLOYED = "market not deployed yet (empty conditionId): no record until it is"


def _add(result: ParseResult[Market], market: Market | None, path: str) -> None:
    if market is None:
        result.skipped.append((path, NOT_DEPLOYED))
    else:
        result.records.append(market)


def _unwrap(payload: Any, key: str) -> tuple[list[Any] | None, str | None]:
    """(items, JSON path of the array) for every accepted envelope; (None, _) if none fits."""
    if isinstance(payload, list):
        return payload, "$"
    if isinstance(payload, Mapping):
        for wrapper in (key, "data"):
            if isinstance(payload.get(wrapper), list):
                return payload[wrapper], f"$.{wrapper}"
        if key in payload and payload[key] is None:
            return [], None
        return [payload], None
    return None, None


def _first_event(m: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    events = sequence(m.get("events"), key_path(path, "events"), allow_null=True)
    if not events:
        return None
    return mapping(events[0], f"{key_path(path, 'events')}[0]")


@dataclass(frozen=True, slots=True)
class _Parent:
    """The market's parent event (or none) and where it sits in the payload."""

    event: Mapping[str, Any] | None
    path: str

    def text(self, key: str) -> str | None:
        return None if self.event is None else opt_str(self.event, key, self.path)


def _json_list(m: Mapping[str, Any], key: str, path: str) -> list[Any]:
    """A JSON-encoded array string (or a native array) -> list; absent/null/"" -> []."""
    at = key_path(path, key)
    value = m.get(key)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ParseError(at, f"not a JSON-encoded array: {e.msg}") from e
    return sequence(value, at, allow_null=True)


def _strings(m: Mapping[str, Any], key: str, path: str) -> list[str]:
    out = []
    for i, item in enumerate(_json_list(m, key, path)):
        if not isinstance(item, str):
            raise ParseError(f"{key_path(path, key)}[{i}]", "expected a string")
        out.append(item)
    return out


def _prices(m: Mapping[str, Any], path: str) -> tuple[Decimal, ...]:
    at = key_path(path, "outcomePrices")
    return tuple(dec(v, f"{at}[{i}]") for i, v in enumerate(_json_list(m, "outcomePrices", path)))


def _token_ids(m: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """clobTokenIds; empty while CLOB hydration is pending (null, [] or "" entries)."""
    raw = _json_list(m, "clobTokenIds", path)
    if any(item is None or item == "" for item in raw):
        return ()
    at = key_path(path, "clobTokenIds")
    return tuple(token_id(item, f"{at}[{i}]") for i, item in enumerate(raw))


def _tags(m: Mapping[str, Any], parent: _Parent, path: str) -> tuple[str, ...]:
    """Tag slugs of the market (include_tag=true), else of its event."""
    source, at = m, key_path(path, "tags")
    if not m.get("tags") and parent.event is not None:
        source, at = parent.event, key_path(parent.path, "tags")
    slugs = []
    for i, tag in enumerate(sequence(source.get("tags"), at, allow_null=True)):
        if isinstance(tag, str):
            slugs.append(tag)
        elif isinstance(tag, Mapping):
            slug = opt_str(tag, "slug", f"{at}[{i}]") or opt_str(tag, "label", f"{at}[{i}]")
            if slug:
                slugs.append(slug)
        else:
            raise ParseError(f"{at}[{i}]", "expected a tag object or a tag slug")
    return tuple(slugs)


def _bool(m: Mapping[str, Any], key: str, path: str) -> bool:
    return flag(m, key, path) or False


def _number(m: Mapping[str, Any], keys: tuple[str, ...], path: str) -> Decimal | None:
    key = first_present(m, keys)
    return None if key is None else opt_dec(m, key, path)


def _date(m: Mapping[str, Any], key: str | None, path: str) -> int | None:
    if key is None:
        return None
    value = m.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(key_path(path, key), "expected an ISO-8601 date string")
    try:
        return gamma_datetime_ms(value)
    except ValueError as e:
        raise ParseError(key_path(path, key), f"not a date: {value!r}") from e
