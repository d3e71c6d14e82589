"""The sink's fast path against the real schema: records of each topic, written with fastavro as
one Avro object container, inserted with `INSERT INTO <table> FORMAT Avro` (clickhouse-connect's
raw_insert), read back exactly; deduplication tokens in tables and views; the rollups equal an
independent recomputation."""

from __future__ import annotations

import io
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from pmpipe.migrations import TOPIC_TABLES, apply_migrations
from pmpipe.topics import BOOKS, EVENTS, MARKETS, PRICES, TRADES, WS_RAW, get_topic

pytestmark = pytest.mark.integration

TOKEN_A = str(2**256 - 1)  # 78 digits, the largest uint256
TOKEN_B = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
CONDITION = "0x" + "5f" * 32
T0_MS = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z
NOW_US = int(time.time() * 1_000_000)
D = Decimal
HALF = D("0.5")
TEN = D("10")


# ---------------------------------------------------------------------------------------------
# helpers


def container(topic: str, records: Iterable[dict[str, Any]], schema: Any = None) -> bytes:
    """One Avro object container (header with the writer schema, codec null)."""
    parsed = fastavro.parse_schema(schema or get_topic(topic).schema())
    buf = io.BytesIO()
    fastavro.writer(buf, parsed, list(records), codec="null")
    return buf.getvalue()


def insert(
    client: Client,
    database: str,
    topic: str,
    data: bytes,
    token: str,
    *,
    column_names: Sequence[str] | None = None,
    table: str | None = None,
) -> None:
    client.raw_insert(
        f"{database}.{table or TOPIC_TABLES[topic]}",
        column_names=column_names,
        insert_block=data,
        fmt="Avro",
        settings={
            "insert_deduplication_token": token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
        },
    )


def _base_type(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        (base,) = [t for t in avro_type if t != "null"]
        return base
    return avro_type


def read_back(
    client: Client, database: str, table: str, topic: str, order_by: str
) -> list[dict[str, Any]]:
    """Rows of `table` as Avro-shaped dicts: timestamps as epoch ms/µs ints, bytes as hex."""
    fields = get_topic(topic).schema()["fields"]
    exprs = []
    for field in fields:
        name, base = field["name"], _base_type(field["type"])
        logical = base.get("logicalType") if isinstance(base, dict) else None
        if logical == "timestamp-millis":
            exprs.append(f"toUnixTimestamp64Milli({name})")
        elif logical == "timestamp-micros":
            exprs.append(f"toUnixTimestamp64Micro({name})")
        elif base == "bytes":
            exprs.append(f"hex({name})")
        else:
            exprs.append(name)
    rows = client.query(
        f"SELECT {', '.join(exprs)} FROM {database}.{table} ORDER BY {order_by}"
    ).result_rows
    return [dict(zip([f["name"] for f in fields], row, strict=True)) for row in rows]


def expected(topic: str, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    fields = get_topic(topic).schema()["fields"]
    out = []
    for record in records:
        row = {}
        for field in fields:
            value = record[field["name"]]
            if _base_type(field["type"]) == "bytes" and isinstance(value, bytes):
                value = value.hex().upper()
            row[field["name"]] = value
        out.append(row)
    return out


def assert_same(actual: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> None:
    """Equal values of the same Python types (a Decimal must not come back as a float, a
    Bool not as an int)."""
    assert actual == wanted
    for got, want in zip(actual, wanted, strict=True):
        for name, value in want.items():
            for g, w in zip(_flat(got[name]), _flat(value), strict=True):
                assert w is None or type(g) is type(w), (name, g, w)


def _flat(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def count(client: Client, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


# ---------------------------------------------------------------------------------------------
# records of every stored topic


def market_records() -> list[dict[str, Any]]:
    full = {
        "condition_id": CONDITION,
        "market_id": "512345",
        "question_id": "0x" + "ab" * 32,
        "slug": "will-it-rain",
        "question": "Will it rain? ☔",
        "description": "Resolves YES if…",
        "outcomes": ["Yes", "No"],
        "outcome_prices": [D("0.001"), D("0.999")],
        "token_ids": [TOKEN_A, TOKEN_B],
        "event_id": "9001",
        "event_slug": "weather",
        "event_title": "Weather",
        "category": "Science",
        "tags": ["weather", "climate"],
        "active": True,
        "closed": False,
        "archived": False,
        "accepting_orders": True,
        "enable_order_book": True,
        "neg_risk": True,
        "tick_size": D("0.001"),
        "min_order_size": D("5"),
        "volume": D("9000023.58"),
        "volume_24h": D("123.456789"),
        "liquidity": D("999999999999.999999"),
        "start_date": T0_MS - 86_400_000,
        "end_date": T0_MS + 86_400_000,
        "created_at": T0_MS - 2 * 86_400_000,
        "updated_at": T0_MS,
        "closed_time": T0_MS + 1,
        "source_ts": T0_MS,
        "received_ts": T0_MS * 1000 + 456,
        "raw_json": '{"id":"512345","question":"Will it rain? \\u2614"}',
    }
    empty: dict[str, Any] = {
        **{k: None for k, v in full.items() if v is not None},
        "condition_id": "0x" + "00" * 32,
        "market_id": "1",
        "slug": "",
        "question": "",
        "outcomes": [],
        "outcome_prices": [],
        "token_ids": [],
        "tags": [],
        "active": False,
        "closed": True,
        "archived": True,
        "accepting_orders": False,
        "enable_order_book": False,
        "neg_risk": False,
        "source_ts": T0_MS + 5,
        "received_ts": T0_MS * 1000 + 5_000_001,
    }
    return [full, empty]


def price_records() -> list[dict[str, Any]]:
    poll = {
        "token_id": TOKEN_A,
        "condition_id": CONDITION,
        "source": "clob",
        "kind": "poll",
        "best_bid": D("0.001"),
        "best_ask": D("0.999"),
        "mid": D("0.5"),
        "spread": D("0.998"),
        "last_trade_price": D("0.501"),
        "last_trade_side": "BUY",
        "change_side": None,
        "change_price": None,
        "change_size": None,
        "order_hash": None,
        "source_ts": T0_MS,
        "received_ts": T0_MS * 1000 + 1,
    }
    change = {
        "token_id": TOKEN_B,
        "condition_id": None,
        "source": "ws",
        "kind": "price_change",
        "best_bid": None,
        "best_ask": D("0.52"),
        "mid": None,
        "spread": None,
        "last_trade_price": None,
        "last_trade_side": None,
        "change_side": "SELL",
        "change_price": D("0.52"),
        "change_size": D("9000023.58"),
        "order_hash": "0x" + "cd" * 32,
        "source_ts": T0_MS + 1,
        "received_ts": T0_MS * 1000 + 2,
    }
    return [poll, change]


def trade_record(
    i: int,
    *,
    token: str = TOKEN_A,
    price: Decimal = HALF,
    size: Decimal = TEN,
    source: str = "data_api",
    source_ts: int = T0_MS,
    side: str = "BUY",
) -> dict[str, Any]:
    tx = "0x" + f"{i:064x}"
    return {
        "trade_key": f"{tx}|{token}|{side}|{price}|{size}|0"
        if source == "data_api"
        else f"ws|{token}|{source_ts}|{side}|{price}|{size}|{i}",
        "token_id": token,
        "condition_id": CONDITION,
        "transaction_hash": tx if source == "data_api" else None,
        "side": side,
        "price": price,
        "size": size,
        "fee_rate_bps": None,
        "proxy_wallet": "0x" + "12" * 20 if source == "data_api" else None,
        "outcome": "Yes",
        "outcome_index": 0,
        "occurrence": 0,
        "source": source,
        "source_ts": source_ts,
        "received_ts": source_ts * 1000 + i % 1000,
    }


def trade_records() -> list[dict[str, Any]]:
    first = trade_record(1, price=D("0.001"), size=D("9000023.58"))
    second = {
        **trade_record(2, token=TOKEN_B, price=D("0.999"), size=D("0.000001"), source="ws"),
        "condition_id": None,
        "outcome": None,
        "outcome_index": None,
        "fee_rate_bps": 0,
        "occurrence": 3,
    }
    return [first, second]


def book_records() -> list[dict[str, Any]]:
    deep = {
        "token_id": TOKEN_A,
        "condition_id": CONDITION,
        "source": "clob",
        "bid_prices": [D("0.5"), D("0.49"), D("0.001")],
        "bid_sizes": [D("9000023.58"), D("1"), D("0.000001")],
        "ask_prices": [D("0.51")],
        "ask_sizes": [D("100")],
        "hash": "a" * 40,
        "hash_ok": True,
        "tick_size": D("0.001"),
        "min_order_size": D("5"),
        "neg_risk": False,
        "last_trade_price": D("0.5"),
        "source_ts": T0_MS,
        "received_ts": T0_MS * 1000 + 7,
    }
    empty: dict[str, Any] = {
        "token_id": TOKEN_B,
        "condition_id": None,
        "source": "ws",
        "bid_prices": [],
        "bid_sizes": [],
        "ask_prices": [],
        "ask_sizes": [],
        "hash": None,
        "hash_ok": None,
        "tick_size": None,
        "min_order_size": None,
        "neg_risk": None,
        "last_trade_price": None,
        "source_ts": T0_MS + 60_000,
        "received_ts": T0_MS * 1000 + 60_000_008,
    }
    return [deep, empty]


def event_records() -> list[dict[str, Any]]:
    tick = {
        "event_type": "tick_size_change",
        "category": "market",
        "token_id": TOKEN_A,
        "condition_id": CONDITION,
        "market_id": None,
        "token_ids": [TOKEN_A, TOKEN_B],
        "connection_id": "c-1",
        "gap_start": None,
        "gap_end": None,
        "old_tick_size": D("0.01"),
        "new_tick_size": D("0.001"),
        "winning_token_id": None,
        "winning_outcome": None,
        "detail": None,
        "source": "ws",
        "source_ts": T0_MS,
        "received_ts": T0_MS * 1000 + 1,
    }
    gap: dict[str, Any] = {
        "event_type": "gap",
        "category": "continuity",
        "token_id": None,
        "condition_id": None,
        "market_id": None,
        "token_ids": [],
        "connection_id": "c-1",
        "gap_start": T0_MS - 5_000,
        "gap_end": T0_MS,
        "old_tick_size": None,
        "new_tick_size": None,
        "winning_token_id": None,
        "winning_outcome": None,
        "detail": "reconnected after 5 s",
        "source": "pipeline",
        "source_ts": T0_MS,
        "received_ts": T0_MS * 1000 + 2,
    }
    return [tick, gap]


def ws_raw_records() -> list[dict[str, Any]]:
    # recent receive times: older rows would fall under the 30-day TTL
    return [
        {
            "connection_id": "c-1",
            "seq": 0,
            "url": "wss://example.invalid/ws/market",
            "shard": 0,
            "is_binary": False,
            "payload": b'[{"event_type":"book","asset_id":"1"}]',
            "source_ts": None,
            "received_ts": NOW_US - 3_600_000_000,
        },
        {
            "connection_id": "c-1",
            "seq": 1,
            "url": "wss://example.invalid/ws/market",
            "shard": 3,
            "is_binary": True,
            "payload": bytes(range(256)),
            "source_ts": T0_MS,
            "received_ts": NOW_US - 3_599_000_000,
        },
        {
            "connection_id": "c-2",
            "seq": 9_000_000_000,
            "url": "wss://example.invalid/ws/market",
            "shard": 1,
            "is_binary": False,
            "payload": b"",
            "source_ts": None,
            "received_ts": NOW_US - 3_598_000_000,
        },
    ]


ROUND_TRIPS = {
    MARKETS: (market_records, "markets"),
    PRICES: (price_records, "market_prices"),
    TRADES: (trade_records, "market_trades"),
    BOOKS: (book_records, "orderbook_snapshots"),
    EVENTS: (event_records, "market_events"),
    WS_RAW: (ws_raw_records, "ws_raw_frames"),
}


# ---------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("topic", list(ROUND_TRIPS))
def test_avro_container_round_trip(clickhouse_client: Client, migrated_database: str, topic: str):
    make, read_table = ROUND_TRIPS[topic]
    records = make()
    # no column list: the table's columns are matched to the Avro fields by name
    insert(clickhouse_client, migrated_database, topic, container(topic, records), "rt:1")

    rows = read_back(clickhouse_client, migrated_database, read_table, topic, "received_ts")

    assert_same(rows, expected(topic, sorted(records, key=lambda r: r["received_ts"])))


def test_computed_columns(clickhouse_client: Client, migrated_database: str):
    db = migrated_database
    insert(clickhouse_client, db, MARKETS, container(MARKETS, market_records()), "m")
    insert(clickhouse_client, db, BOOKS, container(BOOKS, book_records()), "b")

    versions = clickhouse_client.query(
        f"SELECT toUnixTimestamp64Micro(version) FROM {db}.markets ORDER BY received_ts"
    ).result_rows
    assert [v for (v,) in versions] == sorted(r["received_ts"] for r in market_records())
    books = clickhouse_client.query(
        f"SELECT best_bid, best_ask, bid_levels, ask_levels FROM {db}.orderbook_snapshots"
        " ORDER BY received_ts"
    ).result_rows
    assert books == [(D("0.5"), D("0.51"), 3, 1), (None, None, 0, 0)]


def test_markets_keep_the_newest_version(clickhouse_client: Client, migrated_database: str):
    db = migrated_database
    old, _ = market_records()
    new = {**old, "question": "Will it rain tomorrow?", "received_ts": old["received_ts"] + 10}
    # newest first: the version, not the insert order, decides
    insert(clickhouse_client, db, MARKETS, container(MARKETS, [new]), "m:2")
    insert(clickhouse_client, db, MARKETS, container(MARKETS, [old]), "m:1")
    rows = clickhouse_client.query(
        f"SELECT question FROM {db}.markets FINAL WHERE condition_id = {{c:String}}",
        parameters={"c": CONDITION},
    ).result_rows
    assert rows == [("Will it rain tomorrow?",)]


def test_older_writer_schema_needs_the_column_list(
    clickhouse_client: Client, migrated_database: str
):
    """A record written with an older schema (here: markets before `tags` existed) lands with
    the column's default when the insert names the writer's fields; without a column list
    ClickHouse refuses the block (every non-computed column must be in the Avro schema)."""
    db = migrated_database
    schema = get_topic(MARKETS).schema()
    old_schema = {**schema, "fields": [f for f in schema["fields"] if f["name"] != "tags"]}
    record = {k: v for k, v in market_records()[0].items() if k != "tags"}
    data = container(MARKETS, [record], old_schema)

    with pytest.raises(DatabaseError, match="tags"):
        insert(clickhouse_client, db, MARKETS, data, "old:1")
    insert(
        clickhouse_client,
        db,
        MARKETS,
        data,
        "old:2",
        column_names=[f["name"] for f in old_schema["fields"]],
    )
    rows = clickhouse_client.query(f"SELECT tags, token_ids FROM {db}.markets").result_rows
    assert rows == [([], [TOKEN_A, TOKEN_B])]


def test_book_depth_is_capped_by_the_view(clickhouse_client: Client, fresh_database: str):
    db = fresh_database
    apply_migrations(clickhouse_client, db, book_depth=2)
    insert(clickhouse_client, db, BOOKS, container(BOOKS, book_records()), "b:1")
    rows = clickhouse_client.query(
        f"SELECT bid_prices, bid_sizes, ask_prices, ask_sizes, bid_levels"
        f" FROM {db}.orderbook_snapshots ORDER BY received_ts"
    ).result_rows
    assert rows == [
        ([D("0.5"), D("0.49")], [D("9000023.58"), D("1")], [D("0.51")], [D("100")], 2),
        ([], [], [], [], 0),
    ]


# ---------------------------------------------------------------------------------------------
# exactly once: deduplication tokens in tables and views


def _trade_totals(client: Client, db: str) -> tuple[Any, ...]:
    row = client.query(
        f"""SELECT
            (SELECT count() FROM {db}.market_trades),
            (SELECT sum(trades) FROM {db}.ohlcv_1m_candles),
            (SELECT sum(volume) FROM {db}.ohlcv_1m_candles),
            (SELECT sum(notional) FROM {db}.ohlcv_1h_candles),
            (SELECT sum(trades) FROM {db}.ohlcv_1h_candles),
            (SELECT sum(volume) FROM {db}.volume_daily_totals),
            (SELECT sum(trades) FROM {db}.volume_daily_totals),
            (SELECT countMerge(trades) FROM {db}.ohlcv_1m)"""
    ).result_rows[0]
    return tuple(row)


def test_same_token_is_inserted_once_in_tables_and_views(
    clickhouse_client: Client, migrated_database: str
):
    db = migrated_database
    trades = [
        trade_record(i, token=TOKEN_A if i % 2 else TOKEN_B, source_ts=T0_MS + i * 7_000)
        for i in range(200)
    ]
    ws = [trade_record(1000 + i, source="ws", source_ts=T0_MS + i) for i in range(5)]
    data = container(TRADES, trades + ws)
    books = container(BOOKS, book_records())

    insert(clickhouse_client, db, TRADES, data, "inc1:polymarket.trades:0:0-204")
    insert(clickhouse_client, db, BOOKS, books, "inc1:polymarket.books:0:0-1")
    once = _trade_totals(clickhouse_client, db)
    assert once == (205, 200, D("2000"), D("1000"), 200, D("2000"), 200, 200)

    # redelivery of the same batches: dropped in the tables and in every view
    insert(clickhouse_client, db, TRADES, data, "inc1:polymarket.trades:0:0-204")
    insert(clickhouse_client, db, BOOKS, books, "inc1:polymarket.books:0:0-1")
    assert _trade_totals(clickhouse_client, db) == once
    assert count(clickhouse_client, f"SELECT count() FROM {db}.orderbook_snapshots") == 2

    # another token is another batch (e.g. a recreated topic's new incarnation)
    insert(clickhouse_client, db, TRADES, data, "inc2:polymarket.trades:0:0-204")
    insert(clickhouse_client, db, BOOKS, books, "inc2:polymarket.books:0:0-1")
    assert _trade_totals(clickhouse_client, db) == (
        410,
        400,
        D("4000"),
        D("2000"),
        400,
        D("4000"),
        400,
        400,
    )
    assert count(clickhouse_client, f"SELECT count() FROM {db}.orderbook_snapshots") == 4


def test_latest_prices(clickhouse_client: Client, migrated_database: str):
    db = migrated_database
    poll, _ = price_records()
    later = {
        **poll,
        "source": "ws",
        "kind": "best_bid_ask",
        "best_bid": D("0.45"),
        "mid": None,
        "spread": D("0.1"),
        "source_ts": T0_MS + 1_000,
        "received_ts": poll["received_ts"] + 1_000_000,
    }
    # the later observation is inserted first: argMax by time decides, not insert order
    insert(clickhouse_client, db, PRICES, container(PRICES, [later]), "p:2")
    insert(clickhouse_client, db, PRICES, container(PRICES, [poll]), "p:1")
    trades = [
        trade_record(1, price=D("0.4"), source_ts=T0_MS + 500),
        trade_record(2, price=D("0.47"), source="ws", source_ts=T0_MS + 2_000, side="SELL"),
        trade_record(3, token=TOKEN_B, price=D("0.9"), source_ts=T0_MS),
    ]
    insert(clickhouse_client, db, TRADES, container(TRADES, trades), "t:1")

    rows = clickhouse_client.query(
        f"SELECT token_id, best_bid, best_ask, mid, spread, toUnixTimestamp64Milli(quote_ts),"
        f" last_trade_price, last_trade_side, toUnixTimestamp64Milli(last_trade_ts)"
        f" FROM {db}.latest_prices ORDER BY token_id"
    ).result_rows
    assert rows == (
        [
            # best_bid/best_ask/spread from the later WS quote, mid (NULL there) from the poll
            (
                TOKEN_A,
                D("0.45"),
                D("0.999"),
                D("0.5"),
                D("0.1"),
                T0_MS + 1_000,
                D("0.47"),
                "SELL",
                T0_MS + 2_000,
            ),
            (TOKEN_B, None, None, None, None, None, D("0.9"), "BUY", T0_MS),
        ]
    )


# ---------------------------------------------------------------------------------------------
# rollups equal an independent recomputation


def _generate_trades(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    tokens = [TOKEN_A, TOKEN_B, str(rng.getrandbits(200)), str(rng.getrandbits(250))]
    start = 1_769_902_200_000  # 2026-01-31T23:30:00Z: candles cross an hour, a day, a month
    records = []
    for i in range(n):
        # Data API times have second precision: many fills share a timestamp
        source_ts = start + rng.randrange(0, 90 * 60) * 1000
        source = "ws" if rng.random() < 0.05 else "data_api"
        records.append(
            trade_record(
                i,
                token=rng.choice(tokens),
                price=D(rng.randrange(1, 1000)) / 1000,
                size=D(rng.randrange(1, 10**10)) / 10**6,
                source=source,
                source_ts=source_ts + (rng.randrange(1000) if source == "ws" else 0),
                side=rng.choice(["BUY", "SELL"]),
            )
        )
    return records


def _candles(
    trades: list[dict[str, Any]], bucket_of: Any
) -> dict[tuple[str, Any], tuple[Any, ...]]:
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for t in trades:
        if t["source"] == "data_api":
            groups[(t["token_id"], bucket_of(t["source_ts"]))].append(t)
    out = {}
    for key, group in groups.items():
        ordered = sorted(group, key=lambda t: (t["source_ts"], t["trade_key"]))
        prices = [t["price"] for t in group]
        out[key] = (
            ordered[0]["price"],
            max(prices),
            min(prices),
            ordered[-1]["price"],
            sum(t["size"] for t in group),
            sum(t["price"] * t["size"] for t in group),
            len(group),
        )
    return out


def _minute(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 60_000 * 60, UTC)


def _hour(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 3_600_000 * 3600, UTC)


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def _as_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def test_rollups_equal_an_independent_recomputation(
    clickhouse_client: Client, migrated_database: str
):
    db = migrated_database
    trades = _generate_trades(10_000)
    batches = [trades[i : i + 2_500] for i in range(0, len(trades), 2_500)]
    random.Random(3).shuffle(batches)  # batch order must not matter
    for n, batch in enumerate(batches):
        insert(clickhouse_client, db, TRADES, container(TRADES, batch), f"gen:trades:0:{n}")
    # one batch redelivered: no effect
    insert(clickhouse_client, db, TRADES, container(TRADES, batches[0]), "gen:trades:0:0")

    assert count(clickhouse_client, f"SELECT count() FROM {db}.market_trades") == len(trades)
    queries = {
        "ohlcv_1m_candles": _minute,
        "ohlcv_1h_candles": _hour,
    }
    for view, bucket_of in queries.items():
        rows = clickhouse_client.query(
            f"SELECT token_id, bucket, open, high, low, close, volume, notional, trades"
            f" FROM {db}.{view}"
        ).result_rows
        got = {(r[0], _as_utc(r[1])): tuple(r[2:]) for r in rows}
        assert got == _candles(trades, bucket_of), view

    daily = _candles(trades, _day)
    rows = clickhouse_client.query(
        f"SELECT token_id, day, volume, notional, trades, condition_id"
        f" FROM {db}.volume_daily_totals"
    ).result_rows
    assert {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows} == {
        key: value[4:] for key, value in daily.items()
    }
    assert {r[5] for r in rows} == {CONDITION}

    # the same numbers straight from market_trades in SQL
    recomputed = clickhouse_client.query(
        f"""SELECT token_id, toStartOfMinute(source_ts) AS bucket,
                argMin(price, (source_ts, trade_key)), max(price), min(price),
                argMax(price, (source_ts, trade_key)), sum(size),
                sum(CAST(price AS Decimal(38, 6)) * size), count()
            FROM {db}.market_trades WHERE source = 'data_api'
            GROUP BY token_id, bucket"""
    ).result_rows
    assert {(r[0], _as_utc(r[1])): tuple(r[2:]) for r in recomputed} == _candles(trades, _minute)

    # WebSocket fills are stored but never counted in volume
    ws_size = sum(t["size"] for t in trades if t["source"] == "ws")
    assert ws_size > 0
    api_size = sum(t["size"] for t in trades if t["source"] == "data_api")
    assert count(clickhouse_client, f"SELECT sum(volume) FROM {db}.volume_daily_totals") == (
        api_size
    )
    assert count(
        clickhouse_client, f"SELECT sum(size) FROM {db}.market_trades WHERE source = 'ws'"
    ) == (ws_size)
