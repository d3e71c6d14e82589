"""`pmpipe replay` against the real broker (Tansu), registry and ClickHouse (chdb over HTTP):
a replay of a whole topic into the sink's own database changes nothing (tables and rollups
still equal an independent recomputation from the trades), a replay into another database
rebuilds the same tables and rollups there, `--from` / `--to` select the right records,
`--renormalize` stores what the current WebSocket parsers make of the raw frames, and bad input
ends with exit code 2 and one line."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from pmpipe.kafka import RecordProducer
from pmpipe.migrations import TOPIC_TABLES
from pmpipe.records import WsFrame
from pmpipe.topics import BOOKS, EVENTS, PRICES, TRADES, WS_RAW
from producers.parsing.market_ws import parse_frame
from sink.batch import OffsetRange
from sink.replay_progress import eta_text, progress_text
from sink.replay_window import (
    AtOffset,
    AtTime,
    Earliest,
    LogEnd,
    RangeIndex,
    Selector,
    parse_from,
    parse_to,
    plan_partition,
)
from tests.sink.conftest import _free_port
from tests.sink.sinkstack import SinkStack, wait_until
from tests.sink.test_avro_insert import (
    TOKEN_A,
    _as_utc,
    _candles,
    _day,
    _generate_trades,
    _hour,
    _minute,
    assert_same,
    expected,
    read_back,
    trade_record,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "polymarket"
REPLAY_TIMEOUT_SECS = 300.0
SINK_WAIT_SECS = 180.0


# ---------------------------------------------------------------------------------------------
# helpers


def replay(stack: SinkStack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m pmpipe replay ARGS` against the test's broker, registry and ClickHouse."""
    return subprocess.run(
        [sys.executable, "-m", "pmpipe", "replay", *args],
        env=stack.env(**env),
        capture_output=True,
        text=True,
        timeout=REPLAY_TIMEOUT_SECS,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    assert "replay progress" in result.stderr and "records/s" in result.stderr  # not a TTY
    return result.stdout


def summary_row(stdout: str, table: str) -> tuple[int, int, int]:
    """(rows sent, rows before, rows after) of `table` in the printed summary."""
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == table:
            sent, before, after = (int(p.replace(",", "")) for p in parts[1:4])
            return sent, before, after
    raise AssertionError(f"no summary row for {table}:\n{stdout}")


def batches(stdout: str) -> tuple[int, int]:
    """(re-formed, new) batches in the printed summary."""
    found = re.search(r"batches re-formed ([\d,]+), new ([\d,]+)", stdout)
    assert found is not None, stdout
    reformed, new = (int(g.replace(",", "")) for g in found.groups())
    return reformed, new


def produce_trades(
    stack: SinkStack, producer: RecordProducer, trades: list[dict[str, Any]]
) -> None:
    topic = stack.topic(TRADES)
    for record in trades:
        producer.produce(topic, record["token_id"], record)
    assert producer.flush(60) == 0


def sink_everything(stack: SinkStack, producer: RecordProducer) -> None:
    """Run the sink until every produced offset is committed, then stop it."""
    sink = stack.start_sink(
        PMPIPE_SINK_BATCH_MAX_RECORDS="1000", PMPIPE_SINK_STATIC_ASSIGNMENT="true"
    )
    ends = dict(producer.next_offsets)

    def done() -> bool:
        committed = stack.committed(TRADES)
        return all(committed.get(p) == end for (_, p), end in ends.items())

    try:
        wait_until(done, SINK_WAIT_SECS, "every produced offset committed", 0.5)
    finally:
        assert sink.stop() == 0, sink.tail()


def snapshot(client: Client, database: str) -> dict[str, Any]:
    """Everything a duplicate would change: counts, sums and every rollup row."""
    out: dict[str, Any] = {
        "trades": client.query(
            f"SELECT count(), uniqExact(trade_key), sum(size), sum(price * size)"
            f" FROM {database}.market_trades"
        ).result_rows
    }
    for view in ("ohlcv_1m_candles", "ohlcv_1h_candles"):
        out[view] = sorted(
            client.query(
                f"SELECT token_id, bucket, open, high, low, close, volume, notional, trades"
                f" FROM {database}.{view}"
            ).result_rows
        )
    out["volume_daily_totals"] = sorted(
        client.query(
            f"SELECT token_id, day, volume, notional, trades FROM {database}.volume_daily_totals"
        ).result_rows
    )
    return out


def assert_equals_recomputation(
    client: Client, database: str, trades: list[dict[str, Any]]
) -> None:
    """Tables and rollups equal an independent recomputation from the produced trades."""
    got = client.query(
        f"SELECT count(), uniqExact(trade_key), sum(size) FROM {database}.market_trades"
    ).result_rows
    assert got == [(len(trades), len(trades), sum(t["size"] for t in trades))]
    for view, bucket_of in (("ohlcv_1m_candles", _minute), ("ohlcv_1h_candles", _hour)):
        rows = client.query(
            f"SELECT token_id, bucket, open, high, low, close, volume, notional, trades"
            f" FROM {database}.{view}"
        ).result_rows
        assert {(r[0], _as_utc(r[1])): tuple(r[2:]) for r in rows} == _candles(trades, bucket_of)
    rows = client.query(
        f"SELECT token_id, day, volume, notional, trades FROM {database}.volume_daily_totals"
    ).result_rows
    daily = _candles(trades, _day)
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == {k: v[4:] for k, v in daily.items()}


def trade_keys(client: Client, database: str) -> list[str]:
    rows = client.query(f"SELECT trade_key FROM {database}.market_trades").result_rows
    return sorted(str(k) for (k,) in rows)


@pytest.fixture
def other_databases(clickhouse_client: Client) -> Iterator[list[str]]:
    """Names of databases a test lets the replay create (dropped afterwards)."""
    names = [f"pmreplay_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    yield names
    for name in names:
        clickhouse_client.command(f"DROP DATABASE IF EXISTS {name}")


# ---------------------------------------------------------------------------------------------
# pure: bounds and selection


def test_bounds_parse() -> None:
    assert parse_from("earliest") == Earliest()
    assert parse_from("120") == AtOffset(120)
    assert parse_from("2026-01-31T22:53:20Z") == AtTime(1_769_900_000_000)
    assert parse_from("2026-01-31T22:53:20.5") == AtTime(1_769_900_000_500)  # UTC by default
    assert parse_to("end") == LogEnd()
    assert parse_to("7") == AtOffset(7)
    for bad in ("yesterday", "-3", "2026-13-01"):
        with pytest.raises(ValueError):
            parse_from(bad)


def test_selection_is_widened_to_whole_recorded_batches() -> None:
    ranges = RangeIndex([OffsetRange(0, 9), OffsetRange(10, 19), OffsetRange(20, 29)])
    plan = plan_partition(
        AtOffset(13), AtOffset(22), ranges=ranges, watermarks=(0, 30), started_ms=0
    )
    assert plan.seek == 10
    taken = [o for o in range(40) for o, _ in plan.selector.offer(o, 1, o)]
    assert taken == list(range(10, 30))  # 13..21 widened to the batches [10-19] and [20-29]


def test_a_time_start_inside_a_recorded_batch_takes_the_batch_from_its_start() -> None:
    ranges = RangeIndex([OffsetRange(0, 9), OffsetRange(10, 19)])
    selector: Selector[int] = Selector(start=0, from_ms=1_000, ranges=ranges)
    taken = []
    for offset in range(25):
        stamp = 500 if offset < 14 else 1_000 + offset  # the start is at offset 14
        taken += [o for o, _ in selector.offer(offset, stamp, offset)]
    assert taken == list(range(10, 25))
    # a time end inside a batch ends after the batch
    ends: Selector[int] = Selector(start=0, to_ms=1_000, ranges=ranges)
    got = [o for off in range(25) for o, _ in ends.offer(off, 500 if off < 12 else 2_000, off)]
    assert got == list(range(20)) and ends.done


def test_progress_line_shows_rate_and_eta() -> None:
    line = progress_text("polymarket.trades", 500, 1_000, 400, 10.0, bar=True)
    assert "[############------------]" in line and "50% 500/1,000 offsets" in line
    assert "40 records/s" in line and "ETA 0:00:10" in line
    assert eta_text(1_200, 1_000, 50.0) == "?"  # past an under-reported total: unknown
    assert "ETA ?" in progress_text("t", 10, None, 10, 1.0, bar=False)


# ---------------------------------------------------------------------------------------------
# against the real broker and ClickHouse


@pytest.mark.integration
def test_replay_into_the_same_database_changes_nothing(sink_stack: SinkStack) -> None:
    """Sink a trades topic, then replay the whole topic (and a slice of it) into the same
    database: counts and every rollup stay equal to an independent recomputation."""
    stack = sink_stack
    trades = _generate_trades(12_000, seed=11)
    producer = stack.producer()
    produce_trades(stack, producer, trades)
    sink_everything(stack, producer)
    before = snapshot(stack.client, stack.database)
    assert_equals_recomputation(stack.client, stack.database, trades)
    committed = stack.committed(TRADES)
    progress_rows = stack.count("sink_progress")

    out = ok(replay(stack, "--topic", "trades"))
    assert summary_row(out, "market_trades") == (len(trades), len(trades), len(trades))
    reformed, new = batches(out)
    assert reformed >= len(trades) // 1000 and new == 0
    assert snapshot(stack.client, stack.database) == before
    assert_equals_recomputation(stack.client, stack.database, trades)

    # a slice starting and ending inside sink batches: widened to whole batches, still nothing
    out = ok(replay(stack, "--topic", "polymarket.trades", "--from", "333", "--to", "1555"))
    sent, rows_before, rows_after = summary_row(out, "market_trades")
    assert 0 < sent < len(trades) and rows_before == rows_after == len(trades)
    assert snapshot(stack.client, stack.database) == before
    # the live sink's group did not move, and no batch was cut anew
    assert stack.committed(TRADES) == committed
    assert stack.count("sink_progress") == progress_rows


@pytest.mark.integration
def test_replay_into_another_database_rebuilds_tables_and_rollups(
    sink_stack: SinkStack, other_databases: list[str]
) -> None:
    stack = sink_stack
    other = other_databases[0]
    trades = _generate_trades(8_000, seed=12)
    producer = stack.producer()
    produce_trades(stack, producer, trades)
    sink_everything(stack, producer)

    out = ok(replay(stack, "--topic", "trades", "--database", other))
    assert summary_row(out, "market_trades") == (len(trades), 0, len(trades))
    assert snapshot(stack.client, other) == snapshot(stack.client, stack.database)
    assert_equals_recomputation(stack.client, other, trades)
    # its own progress: a second replay re-forms the batches it recorded, nothing lands twice
    out = ok(replay(stack, "--topic", "trades", "--database", other))
    assert batches(out)[1] == 0
    assert summary_row(out, "market_trades") == (len(trades), len(trades), len(trades))
    assert_equals_recomputation(stack.client, other, trades)


@pytest.mark.integration
def test_from_and_to_select_the_right_records(
    sink_stack: SinkStack, other_databases: list[str]
) -> None:
    """One partition: phases A (offsets 0-299), B (300-499), C (500-599), a second apart."""
    stack = sink_stack
    producer = stack.producer()
    phases: list[list[dict[str, Any]]] = []
    marks: list[str] = []
    for n, count in enumerate((300, 200, 100)):
        if n:
            time.sleep(1.2)
            marks.append(datetime.now(UTC).isoformat(timespec="milliseconds"))
            time.sleep(0.3)
        phase = [trade_record(10_000 * (n + 1) + i, token=TOKEN_A) for i in range(count)]
        produce_trades(stack, producer, phase)
        phases.append(phase)
    a, b, c = phases
    t1, t2 = marks
    by_time, by_offset = other_databases[0], other_databases[1]

    def keys(records: list[dict[str, Any]]) -> list[str]:
        return sorted(r["trade_key"] for r in records)

    ok(replay(stack, "--topic", "trades", "--from", t1, "--to", t2, "--database", by_time))
    assert trade_keys(stack.client, by_time) == keys(b)
    ok(replay(stack, "--topic", "trades", "--from", t2, "--database", by_time))
    assert trade_keys(stack.client, by_time) == keys(b + c)

    ok(replay(stack, "--topic", "trades", "--from", "100", "--to", "250", "--database", by_offset))
    assert trade_keys(stack.client, by_offset) == keys(a[100:250])
    # overlapping the recorded batch [100-249]: it is re-formed whole, then 250-349 is new
    ok(replay(stack, "--topic", "trades", "--from", "200", "--to", "350", "--database", by_offset))
    assert trade_keys(stack.client, by_offset) == keys(a[100:] + b[:50])
    # a time start inside the recorded batch [250-349] (B starts at 300): the batch is taken
    # from its first offset, so nothing is cut differently
    out = ok(replay(stack, "--topic", "trades", "--from", t1, "--database", by_offset))
    assert trade_keys(stack.client, by_offset) == keys(a[100:] + b + c)
    assert batches(out) == (1, 1)  # [250-349] re-formed, [350-599] new
    ranges = stack.client.query(
        f"SELECT DISTINCT first_offset, last_offset FROM {by_offset}.sink_progress ORDER BY 1"
    ).result_rows
    assert ranges == [(100, 249), (250, 349), (350, 599)]


def ws_frames() -> list[str]:
    """Real market-channel frames (tests/fixtures/polymarket), a control message and a
    malformed frame."""
    frames = []
    for path in sorted(FIXTURES.glob("ws_*")):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            frames += [line for line in text.splitlines() if line.strip()]
        else:
            frames.append(text)
    return [*frames, "PONG", '{"event_type": "last_trade_price", "price": "x"}']


def _canonical(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: repr(sorted(r.items())))


@pytest.mark.integration
def test_renormalize_stores_what_the_parsers_yield(
    sink_stack: SinkStack, other_databases: list[str]
) -> None:
    stack = sink_stack
    target = other_databases[0]
    producer = stack.producer()
    frames = ws_frames()
    received = time.time_ns() // 1000 - 60_000_000
    raw = stack.topic(WS_RAW)
    wanted: dict[str, list[dict[str, Any]]] = {PRICES: [], TRADES: [], BOOKS: [], EVENTS: []}
    errors = 0
    for seq, frame in enumerate(frames):
        record = WsFrame(
            connection_id=f"conn-{seq % 3}",
            seq=seq,
            url="wss://ws-subscriptions-clob.polymarket.com/ws/market",
            shard=0,
            is_binary=False,
            payload=frame.encode(),
            received_ts=received + seq,
        )
        producer.produce(raw, record.key(), record.to_avro())
        result = parse_frame(frame, received + seq, connection_id=record.connection_id)
        errors += len(result.errors)
        for parsed in result.records:
            wanted[parsed.TOPIC].append(parsed.to_avro())
    assert producer.flush(60) == 0
    assert all(wanted.values()) and errors >= 1

    out = ok(replay(stack, "--renormalize", "--database", target))
    tables = {PRICES: "market_prices", TRADES: "market_trades", BOOKS: "orderbook_snapshots"}
    tables[EVENTS] = TOPIC_TABLES[EVENTS]
    for topic, table in tables.items():
        rows = read_back(stack.client, target, table, topic, "received_ts")
        assert_same(_canonical(rows), _canonical(expected(topic, wanted[topic])))
        assert summary_row(out, table)[2] == len(wanted[topic])
    assert f"parse errors {errors}," in out and "control frames 1" in out
    assert stack.count("market_trades") == 0  # the sink's own database is untouched

    # again: the recorded raw-frame batches are re-formed, their tokens drop every row
    out = ok(replay(stack, "--renormalize", "--database", target))
    for table in tables.values():
        sent, rows_before, rows_after = summary_row(out, table)
        assert sent > 0 and rows_before == rows_after, out


@pytest.mark.integration
def test_bad_input_exits_2_with_one_line(sink_stack: SinkStack) -> None:
    stack = sink_stack
    nothing = str(_free_port())
    cases = [
        (["--from", "yesterday"], {}, "--from"),
        (["--to", "-5"], {}, "--to"),
        (["--from", "10", "--to", "10"], {}, "not before"),
        (["--topic", "nope"], {}, "unknown topic"),
        (["--renormalize"], {}, "--database"),
        (["--renormalize", "--topic", "trades", "--database", "x"], {}, "ws_raw"),
        (["--database", "bad-name"], {}, "database name"),
        ([], {"CLICKHOUSE_PORT": nothing}, "ClickHouse"),
        ([], {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{nothing}"}, "broker"),
        ([], {"PMPIPE_SINK_TOPIC_PREFIX": "absent."}, "do not exist"),
    ]
    for args, env, needle in cases:
        result = replay(stack, *args, **env)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (args, env, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, env, lines)
        assert needle in lines[0], (args, env, lines)
