"""Crash test: the sink is SIGKILLed at random points, at least 20 times over 200,000+ trades
(and records of every other topic), including between its inserts and its offset commit; each
time it is restarted. Afterwards every table holds exactly what was produced and every rollup
equals an independent recomputation: 0 lost, 0 duplicated."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from pmpipe.kafka import RecordProducer
from pmpipe.topics import BOOKS, EVENTS, MARKETS, PRICES, TRADES, WS_RAW
from tests.sink.sinkstack import SinkStack, wait_until
from tests.sink.test_avro_insert import (
    NOW_US,
    _as_utc,
    _candles,
    _day,
    _hour,
    _minute,
    book_records,
    event_records,
    market_records,
    price_records,
    trade_record,
    ws_raw_records,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHUNKS = 24
TRADES_PER_CHUNK = 8_500  # 204,000 trades
OTHERS_PER_CHUNK = 120  # per other topic
MIN_KILLS = 20
GROUP_RUNS = 2  # the last runs join the consumer group (a rejoin after SIGKILL takes ~11 s)
CRASH = "after_pending:0.03,after_insert:0.12,after_commit:0.04"
TABLES = {
    MARKETS: "markets",
    PRICES: "market_prices",
    TRADES: "market_trades",
    BOOKS: "orderbook_snapshots",
    EVENTS: "market_events",
    WS_RAW: "ws_raw_frames",
}


def chunk_records(chunk: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Distinct records of every topic for one chunk."""
    tokens = [str(rng.getrandbits(250)) for _ in range(6)] + [str(10**76 + k) for k in range(18)]
    start = 1_769_900_000_000  # 2026-01-31T22:53:20Z: candles cross an hour, a day, a month
    trades = []
    for i in range(chunk * TRADES_PER_CHUNK, (chunk + 1) * TRADES_PER_CHUNK):
        source = "ws" if rng.random() < 0.05 else "data_api"
        trades.append(
            trade_record(
                i,
                token=tokens[rng.randrange(len(tokens))],
                price=Decimal(rng.randrange(1, 1000)) / 1000,
                size=Decimal(rng.randrange(1, 10**9)) / 10**6,
                source=source,
                source_ts=start + rng.randrange(0, 6 * 3600) * 1000,
                side=rng.choice(["BUY", "SELL"]),
            )
        )
    out: dict[str, list[dict[str, Any]]] = {TRADES: trades}
    makers = {
        MARKETS: market_records,
        PRICES: price_records,
        BOOKS: book_records,
        EVENTS: event_records,
        WS_RAW: ws_raw_records,
    }
    for name, make in makers.items():
        records = []
        for k in range(OTHERS_PER_CHUNK):
            n = chunk * OTHERS_PER_CHUNK + k
            record = dict(make()[k % 2])
            record["received_ts"] = NOW_US - 3_000_000_000 + n
            if name == MARKETS:
                record["condition_id"] = f"0x{n:064x}"  # distinct: nothing is replaced
            elif name == WS_RAW:
                record["seq"] = n
            else:
                record["token_id"] = tokens[n % len(tokens)]
            records.append(record)
        out[name] = records
    return out


def produce(stack: SinkStack, producer: RecordProducer, records: dict[str, list[Any]]) -> None:
    for name, values in records.items():
        topic = stack.topic(name)
        for record in values:
            producer.produce(topic, str(record.get(topic.key_field) or "none"), record)
    assert producer.flush(60) == 0


def all_committed(stack: SinkStack, producer: RecordProducer) -> bool:
    ends = producer.next_offsets
    for name in TABLES:
        committed = stack.committed(name)
        for (topic, partition), end in ends.items():
            if topic == stack.prefix + name and committed.get(partition) != end:
                return False
    return True


def run_until_killed(stack: SinkStack, *, group: bool, rng: random.Random) -> int:
    """One sink run, SIGKILLed by its crash points or from here; returns its exit code."""
    sink = stack.start_sink(
        PMPIPE_SINK_CRASH=CRASH,
        PMPIPE_SINK_STATIC_ASSIGNMENT="false" if group else "true",
        PMPIPE_SINK_BATCH_MAX_RECORDS="1500",
    )
    kill_at = time.monotonic() + (rng.uniform(13.0, 16.0) if group else rng.uniform(1.2, 3.5))
    while sink.alive() and time.monotonic() < kill_at:
        time.sleep(0.05)
    sink.kill()
    return sink.process.returncode


def test_sigkill_at_random_points_loses_and_duplicates_nothing(sink_stack: SinkStack) -> None:
    stack = sink_stack
    rng = random.Random(20260131)
    producer = stack.producer()
    produced: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    exits: Counter[int] = Counter()
    runs = 0
    started = time.monotonic()
    for chunk in range(CHUNKS):
        records = chunk_records(chunk, rng)
        produce(stack, producer, records)
        for name, values in records.items():
            produced[name] += values
        exits[run_until_killed(stack, group=chunk >= CHUNKS - GROUP_RUNS, rng=rng)] += 1
        runs += 1
    while exits[-9] < MIN_KILLS:
        exits[run_until_killed(stack, group=True, rng=rng)] += 1
        runs += 1

    final = stack.start_sink()  # no crash injection: finish the job
    wait_until(lambda: all_committed(stack, producer), 120, "every offset committed", 1.0)
    assert final.stop() == 0, final.tail()
    log = final.log_path.read_text(errors="replace")
    elapsed = time.monotonic() - started

    assert exits[-9] >= MIN_KILLS, exits
    assert log.count("crash injection: SIGKILL at after_insert") >= 1  # between insert and commit
    assert re.search(r"reform=\['\d+-\d+'", log)  # recorded ranges were re-formed after kills

    # 0 lost, 0 duplicated: every table
    for name, table in TABLES.items():
        assert stack.count(table) == len(produced[name]), (table, elapsed)
    trades = produced[TRADES]
    assert len(trades) >= 200_000
    distinct = stack.client.query(
        f"SELECT uniqExact(trade_key), sum(size) FROM {stack.database}.market_trades"
    ).result_rows[0]
    assert distinct == (len(trades), sum(t["size"] for t in trades))

    # every rollup equals an independent recomputation, bucket by bucket
    for view, bucket_of in (("ohlcv_1m_candles", _minute), ("ohlcv_1h_candles", _hour)):
        rows = stack.client.query(
            f"SELECT token_id, bucket, open, high, low, close, volume, notional, trades"
            f" FROM {stack.database}.{view}"
        ).result_rows
        assert {(r[0], _as_utc(r[1])): tuple(r[2:]) for r in rows} == _candles(trades, bucket_of)
    rows = stack.client.query(
        f"SELECT token_id, day, volume, notional, trades FROM {stack.database}.volume_daily_totals"
    ).result_rows
    daily = _candles(trades, _day)
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == {k: v[4:] for k, v in daily.items()}
    print(f"crash test: {runs} runs, exits {dict(exits)}, {elapsed:.0f} s")


def test_sinks_sharing_the_group_hand_partitions_over_exactly_once(sink_stack: SinkStack) -> None:
    """Two sinks share the group; one is SIGKILLed mid-stream, a third joins, the second leaves
    with SIGTERM: every rebalance hands partitions over (recorded ranges re-formed by the new
    owner, rounds in flight committed before a revocation), and every trade lands once."""
    stack = sink_stack
    rng = random.Random(5)
    producer = stack.producer()
    first = chunk_records(0, rng)[TRADES] + chunk_records(1, rng)[TRADES]
    produce(stack, producer, {TRADES: first})
    small = {"PMPIPE_SINK_BATCH_MAX_RECORDS": "700"}
    a, b = stack.start_sink(**small), stack.start_sink(**small)
    wait_until(lambda: stack.count("market_trades") > 3_000, 60, "the first rows")
    a.kill()
    killed = time.monotonic()
    c = stack.start_sink(**small)
    # Let the group settle before the next member leaves: Tansu's coordinator stalls the group
    # for good when a member leaves while a SIGKILLed member's session (6 s) is still pending
    # (reproduced: 2 of 3 runs; a fresh membership does not help). The rebalance after the
    # dead member expired assigns partitions again.
    time.sleep(max(0.0, killed + 6.5 - time.monotonic()))
    mark = len(c.log_path.read_text(errors="replace"))
    wait_until(
        lambda: "assigned" in c.log_path.read_text(errors="replace")[mark:],
        120,
        "the rebalance after the killed sink's session expired",
    )
    second = chunk_records(2, rng)[TRADES] + chunk_records(3, rng)[TRADES]
    produce(stack, producer, {TRADES: second})
    wait_until(lambda: stack.count("market_trades") > len(first) + 3_000, 90, "more rows")
    assert b.stop() == 0, b.tail()
    ends = producer.next_offsets

    def done() -> bool:
        committed = stack.committed(TRADES)
        return all(committed.get(p) == end for (t, p), end in ends.items() if t.endswith(TRADES))

    # rebalances on a loaded 2-core machine can take minutes (a busy member rejoins late)
    wait_until(done, 240, "every offset committed", 1.0)
    assert c.stop() == 0, c.tail()
    log = c.log_path.read_text(errors="replace")
    assert "revoked" in log and "assigned" in log
    trades = first + second
    got = stack.client.query(
        f"SELECT count(), uniqExact(trade_key), sum(size) FROM {stack.database}.market_trades"
    ).result_rows
    assert got == [(len(trades), len(trades), sum(t["size"] for t in trades))]
    rollup = stack.client.query(
        f"SELECT sum(trades), sum(volume) FROM {stack.database}.volume_daily_totals"
    ).result_rows
    api = [t for t in trades if t["source"] == "data_api"]
    assert rollup == [(len(api), sum(t["size"] for t in api))]
