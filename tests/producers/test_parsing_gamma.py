"""Gamma markets/events -> Market records, on real payloads."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from producers.parsing.gamma import (
    gamma_datetime_ms,
    next_cursor,
    parse_events,
    parse_market,
    parse_markets,
)
from tests.producers import RECEIVED_TS, load_fixture

BTC_UP = "94242206871221370391055736153305071391564432448684801902267396130896523340261"
BTC_DOWN = "22943400237250229318795315882775337816951160275867284205243766113690886285726"


def ms(text: str) -> int:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def test_market_detail_every_field() -> None:
    raw = load_fixture("gamma_market.json")
    result = parse_markets(raw, RECEIVED_TS)
    assert result.errors == []
    [m] = result.records
    assert m.condition_id == "0xba3509c3c29a52bb2f8cf8204755314a38461825e61e77e6350f5abd4b848e05"
    assert m.market_id == "1669969"
    assert m.question_id == "0x261553ac1c50df33b3cde1f92b876f1642ef613d60c28d69bb01cddecb81afb7"
    assert m.slug == "btc-updown-5m-1774165800"
    assert m.outcomes == ("Up", "Down")
    assert m.outcome_prices == (Decimal("0.005"), Decimal("0.995"))
    assert m.token_ids == (BTC_UP, BTC_DOWN)
    assert (m.event_id, m.event_slug) == ("292275", "btc-updown-5m-1774165800")
    assert m.event_title == "Bitcoin Up or Down - March 22, 3:50AM-3:55AM ET"
    assert (m.active, m.closed, m.archived) == (True, False, False)
    assert (m.accepting_orders, m.enable_order_book, m.neg_risk) == (True, True, False)
    assert m.tick_size == Decimal("0.001")
    assert m.min_order_size == Decimal("5")
    assert m.volume == Decimal("61531.934766")  # volumeNum 61531.93476599994, half-even
    assert m.volume_24h == Decimal("70934.079025")
    assert m.liquidity == Decimal("19748.9135")
    assert m.start_date == ms("2026-03-21T07:58:17.582")
    assert m.end_date == ms("2026-03-22T07:55:00")
    assert m.created_at == ms("2026-03-21T07:57:03.211")
    assert m.updated_at == ms("2026-03-22T07:55:14.901")
    assert m.closed_time is None
    assert m.source_ts == m.updated_at
    assert m.received_ts == RECEIVED_TS
    assert m.raw_json is not None
    assert m.raw_json == json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    assert m.key() == m.condition_id


def test_keyset_page_uses_market_tags_and_exposes_cursor() -> None:
    page = load_fixture("gamma_markets_keyset.json")
    result = parse_markets(page, RECEIVED_TS)
    assert result.errors == []
    [m] = result.records
    assert m.market_id == "540817"
    assert m.tags == ("politics", "pop-culture", "all", "gta-vi")
    assert m.event_id == "23784"
    assert m.outcome_prices == (Decimal("0.505"), Decimal("0.495"))
    assert next_cursor(page) == page["next_cursor"]
    assert next_cursor({"markets": []}) is None


def test_event_markets_carry_the_event() -> None:
    event = load_fixture("gamma_event.json")
    result = parse_events(event, RECEIVED_TS)
    assert result.errors == []
    assert [m.condition_id for m in result.records] == [
        "0xdde06286a7b9464d344f410ab0b3d2ebc6469904e72c27fd982f65fdbf78768d",
        "0xa7cb4135c6d9c36da0e343874dd5b455de739c6d1b9f9f5583dd9320aacf5db2",
    ]
    for m in result.records:
        assert (m.event_id, m.event_slug) == ("101772", "fed-decision-in-june-825")
        assert m.event_title == "Fed Decision in June?"
        assert m.tags == (
            "economic-policy",
            "jerome-powell",
            "fed-rates",
            "fed",
            "politics",
            "economy",
            "fomc",
        )
        assert m.neg_risk is True
        assert m.raw_json is not None
    first = result.records[0]
    assert first.token_ids[0] == (
        "65193234666628291664907888364936366210889305490897648116746073820519263548476"
    )
    assert json.loads(first.raw_json or "") == event["markets"][0]


def test_events_page_skips_undeployed_market_without_error() -> None:
    page = load_fixture("gamma_events_keyset.json")
    result = parse_events(page, RECEIVED_TS)
    assert result.errors == []
    assert [m.market_id for m in result.records] == ["691547"]
    assert [path for path, _ in result.skipped] == ["$.events[0].markets[1]"]


def test_events_array_and_bare_market_array() -> None:
    event = load_fixture("gamma_event.json")
    assert len(parse_events([event, event], RECEIVED_TS).records) == 4
    assert len(parse_events({"events": [event]}, RECEIVED_TS).records) == 2
    market = load_fixture("gamma_market.json")
    assert len(parse_markets([market, market], RECEIVED_TS).records) == 2
    assert parse_markets({"data": [market]}, RECEIVED_TS).records[0].market_id == "1669969"
    assert parse_events({"events": [{"id": "1", "title": "no markets key"}]}, RECEIVED_TS).ok


def test_native_arrays_and_trimmed_objects_are_tolerated() -> None:
    raw = {
        "id": "519589",
        "conditionId": "0x270d5aa3b23be0d4e713361d603b187dd1919c71c74226ad867699f33972c5f2",
        "slug": "kamala-harris-divorce-in-2025",
        "liquidity": "9384.9344",
        "volume": "101887.832649",
        "clobTokenIds": [BTC_UP, BTC_DOWN],
        "outcomes": ["Yes", "No"],
        "outcomePrices": [".41", 0.59],
        "someFutureField": {"nested": True},
    }
    m = parse_market(raw, RECEIVED_TS)
    assert m is not None
    assert m.token_ids == (BTC_UP, BTC_DOWN)
    assert m.outcome_prices == (Decimal("0.41"), Decimal("0.59"))
    assert m.volume == Decimal("101887.832649")
    assert m.liquidity == Decimal("9384.9344")
    assert m.question == ""
    assert (m.active, m.accepting_orders) == (False, False)
    assert m.source_ts == RECEIVED_TS // 1000


@pytest.mark.parametrize("clob_token_ids", [None, "", "[]", '["", ""]', [None, None]])
def test_hydration_pending_gives_no_token_ids(clob_token_ids: object) -> None:
    raw = {"id": "1", "conditionId": "0x01", "clobTokenIds": clob_token_ids}
    m = parse_market(raw, RECEIVED_TS)
    assert m is not None
    assert m.token_ids == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-11T09:29:01.328428Z", "2026-03-11T09:29:01.328"),
        ("2026-06-30T00:00:00Z", "2026-06-30T00:00:00"),
        ("2026-06-15 06:04:30+00", "2026-06-15T06:04:30"),
        ("2024-07-18 00:10:37.491895+00", "2024-07-18T00:10:37.491"),
        ("2023-02-23T16:36:44.22Z", "2023-02-23T16:36:44.220"),
        ("2026-03-12", "2026-03-12T00:00:00"),
        ("2026-03-12T02:00:00+02:00", "2026-03-12T00:00:00"),
    ],
)
def test_gamma_date_formats(text: str, expected: str) -> None:
    assert gamma_datetime_ms(text) == ms(expected)


def test_end_date_falls_back_to_date_only_iso() -> None:
    m = parse_market({"id": "1", "conditionId": "0x01", "endDateIso": "2026-03-12"}, 0)
    assert m is not None
    assert m.end_date == ms("2026-03-12T00:00:00")


def test_one_bad_market_does_not_lose_the_others() -> None:
    good = load_fixture("gamma_market.json")
    bad = copy.deepcopy(good)
    bad["outcomePrices"] = '["0.5", "abc"]'
    no_id = {"id": "2", "question": "no condition id"}
    result = parse_markets([good, bad, no_id, "not a market", good], RECEIVED_TS)
    assert len(result.records) == 2
    assert [e.path for e in result.errors] == [
        "$[1].outcomePrices[1]",
        "$[2].conditionId",
        "$[3]",
    ]
    assert result.errors[0].item is bad
    assert "not a decimal number: 'abc'" in str(result.errors[0])


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("endDate", "next tuesday", "$.endDate"),
        ("outcomes", "[not json", "$.outcomes"),
        ("clobTokenIds", '["0xabc"]', "$.clobTokenIds[0]"),
        ("active", "maybe", "$.active"),
        ("orderMinSize", float("nan"), "$.orderMinSize"),
    ],
)
def test_malformed_fields_are_located(field: str, value: object, path: str) -> None:
    raw = {"id": "1", "conditionId": "0x01", field: value}
    result = parse_markets(raw, RECEIVED_TS)
    assert result.records == []
    assert [e.path for e in result.errors] == [path]


def test_payload_of_wrong_shape() -> None:
    result = parse_markets("nope", RECEIVED_TS)
    assert result.records == []
    assert [e.path for e in result.errors] == ["$"]
