"""Gamma market and event objects with the live field names, order and encodings.

Modelled on the live captures (set_b/gamma_keyset/*): `outcomes`, `outcomePrices` and
`clobTokenIds` are JSON strings inside the JSON, `volume`/`liquidity` strings on markets with
`*Num` number twins, numbers on events, ISO dates with microseconds and `Z`, `closedTime` in the
Postgres form Gamma serves. Prices, flags and `updatedAt` come from the market's state, so the
object changes exactly when `updatedAt` does.
"""

from __future__ import annotations

import json
from typing import Any

from producers.simulator.book import ONE
from producers.simulator.ids import iso_time, iso_time_pg
from producers.simulator.model import Event, Market, Tag

__all__ = ["event_json", "market_json"]

_IMAGE = "https://polymarket-upload.s3.us-east-2.amazonaws.com/sim-{}.png"
_RESOLVER = "0x6A9D222616C90FcA5754cd1333cFD9b7fb6a4F74"
_SUBMITTER = "0x91430CaD2d3975766499717fA0D66A78D814E5c5"


def _json_list(values: tuple[str, ...] | list[str]) -> str:
    """Gamma's JSON-in-JSON arrays: '["Yes", "No"]' (with the space Gamma writes)."""
    return json.dumps(list(values))


def _tag_json(tag: Tag) -> dict[str, Any]:
    return {
        "id": tag.id,
        "label": tag.label,
        "slug": tag.slug,
        "forceShow": False,
        "createdAt": "2023-11-02T21:03:54.564Z",
        "updatedAt": "2026-03-09T22:28:03.349847Z",
        "requiresTranslation": False,
    }


def market_json(market: Market, *, include_tag: bool = False) -> dict[str, Any]:
    """One market object as /markets/keyset, /markets and /markets/{id} serve it."""
    m = market
    event = m.event
    yes, no = m.outcome_prices()
    bid, ask = m.quote_bid, m.quote_ask
    out: dict[str, Any] = {
        "id": m.id,
        "question": m.question,
        "conditionId": m.condition_id,
        "slug": m.slug,
        "resolutionSource": "",
        "endDate": iso_time(m.end_ms),
        "liquidity": repr(m.liquidity),
        "startDate": iso_time(m.created_ms),
        "image": _IMAGE.format(event.id),
        "icon": _IMAGE.format(event.id),
        "description": (
            f'This market will resolve to "{m.outcomes[0]}" if the event described in the '
            f'question happens before the end date. Otherwise it resolves to "{m.outcomes[1]}".'
        ),
        "outcomes": _json_list(m.outcomes),
        "outcomePrices": _json_list([yes, no]),
        "volume": repr(m.volume),
        "active": True,
        "closed": m.closed,
        "marketMakerAddress": "",
        "createdAt": iso_time(m.created_ms),
        "updatedAt": iso_time(m.updated_ms),
    }
    if m.closed:
        out["closedTime"] = iso_time_pg(m.closed_ms)
    out |= {
        "new": False,
        "featured": False,
        "submitted_by": _SUBMITTER,
        "archived": False,
        "resolvedBy": _RESOLVER,
        "restricted": True,
        "groupItemTitle": m.group_item_title if len(event.markets) > 1 else "",
        "groupItemThreshold": str(event.markets.index(m)),
        "questionID": m.question_id,
        "enableOrderBook": True,
        "orderPriceMinTickSize": m.tick / ONE,
        "orderMinSize": m.min_size,
    }
    if m.closed:
        out["umaResolutionStatus"] = "resolved"
    out |= {
        "volumeNum": m.volume,
        "liquidityNum": m.liquidity,
        "endDateIso": iso_time(m.end_ms)[:10],
        "startDateIso": iso_time(m.created_ms)[:10],
        "hasReviewedDates": True,
        "volume24hr": m.volume / 40,
        "volume1wk": m.volume / 8,
        "volume1mo": m.volume / 3,
        "volume1yr": m.volume,
        "clobTokenIds": _json_list(m.tokens),
        "comboStatus": "disabled",
        "umaBond": "500",
        "umaReward": "5",
        "volume24hrClob": m.volume / 40,
        "volumeClob": m.volume,
        "liquidityClob": m.liquidity,
        "makerBaseFee": 1000,
        "takerBaseFee": 1000,
        "customLiveness": 0,
        "acceptingOrders": not m.closed,
        "negRisk": m.neg_risk,
        "negRiskRequestID": "",
        "events": [event_json(event, nested_markets=False)],
        "ready": False,
        "funded": False,
        "acceptingOrdersTimestamp": iso_time(m.accepting_ms)[:19] + "Z",
    }
    if include_tag:
        out["tags"] = [_tag_json(t) for t in event.tags]
    out |= {
        "cyom": False,
        "competitive": 0.9999750006249843,
        "pagerDutyNotificationEnabled": False,
        "approved": True,
        "rewardsMinSize": 0,
        "rewardsMaxSpread": 0,
        "spread": (ask - bid) / ONE,
        "oneDayPriceChange": 0,
        "lastTradePrice": m.last_trade / ONE if m.last_trade else 0,
        "bestBid": bid / ONE,
        "bestAsk": ask / ONE,
        "automaticallyActive": True,
        "clearBookOnStart": True,
        "seriesColor": "",
        "showGmpSeries": False,
        "showGmpOutcome": False,
        "manualActivation": False,
        "negRiskOther": False,
        "umaResolutionStatuses": "[]",
        "pendingDeployment": False,
        "deploying": False,
        "rfqEnabled": False,
        "holdingRewardsEnabled": False,
        "feesEnabled": True,
        "requiresTranslation": False,
        "feeType": "general_fees",
        "feeSchedule": {"exponent": 1, "rate": 0.05, "takerOnly": True, "rebateRate": 0.25},
    }
    return out


def event_json(
    event: Event, *, nested_markets: bool = True, include_tags: bool = True
) -> dict[str, Any]:
    """An event as /events/keyset serves it (with its markets), or the summary nested in a
    market's `events[]` (`nested_markets=False`: no markets, no tags)."""
    volume = sum(m.volume for m in event.markets)
    liquidity = sum(m.liquidity for m in event.markets)
    closed = event.closed
    out: dict[str, Any] = {
        "id": event.id,
        "ticker": event.slug,
        "slug": event.slug,
        "title": event.title,
        "description": f"Markets on: {event.title}",
        "resolutionSource": "",
        "startDate": iso_time(event.created_ms),
        "creationDate": iso_time(event.created_ms),
        "endDate": iso_time(event.end_ms),
        "image": _IMAGE.format(event.id),
        "icon": _IMAGE.format(event.id),
        "active": True,
        "closed": closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": liquidity,
        "volume": volume,
        "openInterest": round(volume / 12, 6),
        "createdAt": iso_time(event.created_ms),
        "updatedAt": iso_time(event.updated_ms),
        "competitive": 0.9366804046459348,
        "volume24hr": volume / 40,
        "volume1wk": volume / 8,
        "volume1mo": volume / 3,
        "volume1yr": volume,
        "enableOrderBook": True,
        "liquidityClob": liquidity,
        "negRisk": event.neg_risk,
        "commentCount": event.comment_count,
    }
    if nested_markets:
        out["markets"] = [market_json(m) for m in event.markets]
    if nested_markets and include_tags:
        out["tags"] = [_tag_json(t) for t in event.tags]
    out |= {
        "cyom": False,
        "showAllOutcomes": True,
        "showMarketImages": False,
        "enableNegRisk": event.neg_risk,
        "automaticallyActive": True,
        "negRiskAugmented": False,
        "pendingDeployment": False,
        "deploying": False,
        "requiresTranslation": False,
    }
    return out
