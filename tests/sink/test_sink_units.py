"""The sink's pure parts: Avro container framing, batching and re-formed ranges, poison
isolation, error classification; and the progress table's resume plans on real ClickHouse."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE, Message

from pmpipe.errors import ConfigError
from pmpipe.topics import TRADES, get_topic
from sink import avro_container
from sink.avro_container import build_container, split_by_schema, zigzag_long
from sink.batch import Batch, BatchLimits, OffsetRange
from sink.errors import DataRefusedError
from sink.faults import CrashPoints
from sink.partition import PartitionState
from sink.poison import decode_failures, isolate
from sink.progress import COMMITTED, PENDING, ProgressRow, ProgressStore, ResumePlan
from sink.schemas import WriterSchema, record_fullname
from sink.writer import classify
from tests.sink.test_avro_insert import trade_record

SCHEMA = get_topic(TRADES).schema()
PARSED = fastavro.parse_schema(SCHEMA)
WRITER = WriterSchema.from_text(42, json.dumps(SCHEMA))
LIMITS = BatchLimits(max_records=3, max_bytes=1 << 20, max_secs=60.0)


def framed(record: dict[str, Any], schema_id: int = 42) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, PARSED, record)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def message(offset: int, value: bytes | None, key: bytes | None = None, ts: int = 0) -> Message:
    """A consumed message as confluent-kafka builds it."""
    timestamp = (TIMESTAMP_CREATE_TIME, ts) if ts else (TIMESTAMP_NOT_AVAILABLE, 0)
    return Message(topic="t", partition=0, offset=offset, key=key, value=value, timestamp=timestamp)


def trades(n: int) -> list[dict[str, Any]]:
    return [trade_record(i, price=Decimal("0.25"), size=Decimal(i + 1)) for i in range(n)]


# --- framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
        (300, b"\xd8\x04"),
    ],
)
def test_zigzag_long(n: int, encoded: bytes) -> None:
    assert zigzag_long(n) == encoded


@pytest.mark.parametrize("block_records", [1, 4, 65_536])
def test_container_is_what_fastavro_reads(monkeypatch: pytest.MonkeyPatch, block_records: int):
    monkeypatch.setattr(avro_container, "BLOCK_RECORDS", block_records)
    monkeypatch.setattr(avro_container, "PIECE_RECORDS", 3)
    values = [framed(r) for r in trades(10)]
    records = [fastavro.schemaless_reader(io.BytesIO(v[5:]), PARSED, None) for v in values]
    data = build_container(WRITER.header, WRITER.sync, values)
    reader = fastavro.reader(io.BytesIO(data))
    assert isinstance(reader.writer_schema, dict)
    assert reader.writer_schema["name"] == "polymarket.pipeline.Trade"
    assert list(reader) == records
    # a subset by index, in the given order
    subset = build_container(WRITER.header, WRITER.sync, values, [7, 2, 9])
    assert list(fastavro.reader(io.BytesIO(subset))) == [records[7], records[2], records[9]]


def test_split_one_schema_is_one_group() -> None:
    values = [framed(r) for r in trades(5)]
    split = split_by_schema(values)
    assert split.groups == {42: [0, 1, 2, 3, 4]}
    assert split.unframed == []


def test_split_mixed_ids_and_unframed_values() -> None:
    good = [framed(r, 42) for r in trades(3)]
    newer = framed(trade_record(9), 43)
    values = [good[0], newer, b"\x01rubbish", good[1], b"", b"\x00\x00", good[2]]
    split = split_by_schema(values)
    assert split.groups == {42: [0, 3, 6], 43: [1]}
    assert [i for i, _ in split.unframed] == [2, 4, 5]
    assert "tombstone" in split.unframed[1][1]
    assert "magic byte" in split.unframed[0][1]


def test_writer_schema_from_registry_text() -> None:
    assert WRITER.fullname == record_fullname(SCHEMA) == "polymarket.pipeline.Trade"
    assert WRITER.field_names[:2] == ("trade_key", "token_id")
    assert WRITER.header.startswith(b"Obj\x01") and WRITER.header.endswith(WRITER.sync)


# --- batches and re-formed ranges -------------------------------------------------------------


def feed(st: PartitionState, offsets: Sequence[int]) -> None:
    for offset in offsets:
        st.add(offset, message(offset, b"\x00\x00\x00\x00\x01x"), LIMITS)


def ranges(batches: Sequence[Batch]) -> list[tuple[int, int, list[int]]]:
    return [(b.range.first, b.range.last, b.offsets) for b in batches]


def test_batches_close_by_count_and_carry_their_token() -> None:
    st = PartitionState("polymarket.trades", 4, incarnation="inc1/abc", ready=True)
    feed(st, range(7))
    assert ranges(st.sealed) == [(0, 2, [0, 1, 2]), (3, 5, [3, 4, 5])]
    assert st.open is not None and st.open.offsets == [6]
    assert st.sealed[0].token == "inc1/abc:polymarket.trades:4:0-2"
    assert st.sealed[1].next_offset == 6


def test_batches_close_by_bytes_and_age() -> None:
    batch = Batch("t", 0, "inc")
    limits = BatchLimits(max_records=100, max_bytes=10, max_secs=5.0)
    batch.add(0, message(0, b"12345", key=b"k", ts=1_700_000_000_000))
    assert not batch.full(limits) and not batch.due(limits, batch.opened + 1)
    assert batch.due(limits, batch.opened + 5)
    batch.add(1, message(1, None))  # a tombstone: no bytes
    assert not batch.full(limits)
    batch.add(2, message(2, b"67890"))
    assert batch.full(limits)
    assert batch.values == [b"12345", b"", b"67890"]
    assert (batch.key(0), batch.timestamp(0)) == (b"k", 1_700_000_000_000)
    assert (batch.key(1), batch.timestamp(1)) == (None, None)
    with pytest.raises(ValueError, match="offset 2 after 2"):
        batch.add(2, message(2, b"x"))


def test_reformed_ranges_take_exactly_their_offsets() -> None:
    """Recorded ranges (10-14) and (15-30) are re-formed with their bounds whatever the current
    limits; records after them form new batches again."""
    st = PartitionState("t", 0, incarnation="inc", ready=True)
    st.reform.extend([OffsetRange(10, 14), OffsetRange(15, 30)])
    feed(st, [10, 11, 12, 13, 14, 15, 17, 20, 25, 30, 31, 32, 33, 34])
    assert ranges(st.sealed) == [
        (10, 14, [10, 11, 12, 13, 14]),
        (15, 30, [15, 17, 20, 25, 30]),
        (31, 33, [31, 32, 33]),
    ]
    assert all(b.recorded for b in list(st.sealed)[:2]) and not st.sealed[2].recorded
    assert not st.reform


def test_reformed_range_whose_tail_is_gone_keeps_its_bounds() -> None:
    st = PartitionState("t", 0, incarnation="inc", ready=True)
    st.reform.extend([OffsetRange(5, 9), OffsetRange(20, 25)])
    feed(st, [5, 6, 40])  # 7-9 gone; 20-25 entirely gone
    assert ranges(st.sealed) == [(5, 9, [5, 6])]
    assert st.sealed[0].token.endswith(":5-9")
    assert st.open is not None and st.open.offsets == [40] and st.open.reformed is None


def test_reformed_batch_is_never_sealed_by_age() -> None:
    st = PartitionState("t", 0, incarnation="inc", ready=True)
    st.reform.append(OffsetRange(0, 5))
    feed(st, [0, 1])
    assert st.open is not None
    st.seal_due(LIMITS, st.open.opened + 3600, force=True)
    assert st.open is not None and not st.sealed


def test_age_does_not_seal_while_an_earlier_batch_waits() -> None:
    """A partition behind ClickHouse grows its batch instead of cutting one per max_secs."""
    st = PartitionState("t", 0, incarnation="inc", ready=True)
    feed(st, range(4))  # one sealed (0-2), one open (3)
    assert st.open is not None
    later = st.open.opened + LIMITS.max_secs
    st.seal_due(LIMITS, later)
    assert len(st.sealed) == 1 and st.open is not None  # held: 0-2 is not stored yet
    st.sealed.popleft()  # stored and committed
    st.seal_due(LIMITS, later)
    assert [b.offsets for b in st.sealed] == [[3]] and st.open is None
    feed(st, [4])
    st.seal_due(LIMITS, later, force=True)  # over the memory budget: seal anyway
    assert [b.offsets for b in st.sealed] == [[3], [4]]


def test_reset_forgets_every_batch() -> None:
    st = PartitionState("t", 0, incarnation="inc", ready=True, expected=0)
    st.reform.append(OffsetRange(100, 200))
    feed(st, range(5))
    assert len(st.sealed) == 1 and st.open is not None
    assert st.buffered_bytes == 5 * 6
    assert st.reset() == 2
    assert not st.ready and st.expected is None and not st.reform and st.buffered_bytes == 0


# --- poison isolation -------------------------------------------------------------------------


class FakeTable:
    """Refuses any insert holding one of `refused`; remembers accepted tokens and records."""

    def __init__(self, refused: set[int]) -> None:
        self.refused = refused
        self.tokens: list[str] = []
        self.accepted: list[int] = []

    def insert(self, indexes: Sequence[int], token: str) -> None:
        self.tokens.append(token)
        bad = self.refused.intersection(indexes)
        if bad:
            raise DataRefusedError(f"Code: 407. DECIMAL_OVERFLOW at {sorted(bad)}", code=407)
        self.accepted += list(indexes)


def test_undecodable_bodies_are_filtered_out_with_a_deterministic_token() -> None:
    values = [framed(r) for r in trades(6)]
    values[2] = values[2][:9]  # truncated body
    values[4] = values[4] + b"\x00\x01"  # trailing bytes
    table = FakeTable(refused=set())
    letters = isolate(
        table.insert, WRITER, values, list(range(100, 106)), range(6), "tok", DataRefusedError("x")
    )
    assert sorted((le.index, le.error_type) for le in letters) == [(2, "decode"), (4, "decode")]
    assert "trailing" in next(le.error for le in letters if le.index == 4)
    assert table.tokens == ["tok:dlq-filtered"]
    assert table.accepted == [0, 1, 3, 5]


def test_values_only_clickhouse_refuses_are_found_by_bisection() -> None:
    values = [framed(r) for r in trades(8)]
    offsets = list(range(50, 58))
    table = FakeTable(refused={1, 6})
    letters = isolate(table.insert, WRITER, values, offsets, range(8), "tok", DataRefusedError("x"))
    assert sorted(le.index for le in letters) == [1, 6]
    assert {le.error_type for le in letters} == {"insert"}
    assert sorted(table.accepted) == [0, 2, 3, 4, 5, 7]  # each good record exactly once
    # the same batch takes the same path: same tokens in the same order
    again = FakeTable(refused={1, 6})
    isolate(again.insert, WRITER, values, offsets, range(8), "tok", DataRefusedError("x"))
    assert again.tokens == table.tokens
    assert table.tokens[0] == "tok:50-53"


def test_decode_failures_accepts_good_bodies() -> None:
    values = [framed(r) for r in trades(3)]
    assert decode_failures(WRITER, values, range(3)) == []


# --- classification, crash points -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (DatabaseError("Code: 27. Cannot parse input", code=27), "data"),
        (DatabaseError("Code: 407. Decimal overflow", code=407), "data"),
        (
            DatabaseError(
                "Code: 1002. std::exception. Code: 1001, type: avro::Exception, e.what() = EOF",
                code=1002,
            ),
            "data",
        ),
        (DatabaseError("Code: 1002. std::bad_alloc", code=1002), "unavailable"),
        (DatabaseError("Code: 60. Table x does not exist", code=60), "unavailable"),
        (DatabaseError("Code: 241. Memory limit exceeded", code=241), "unavailable"),
        (DatabaseError("HTTP driver received HTTP status 503"), "unavailable"),
        (OperationalError("Error executing HTTP request"), "unavailable"),
    ],
)
def test_classify(error: Exception, kind: str) -> None:
    assert classify(error) == kind  # type: ignore[arg-type]


def test_crash_points_from_env() -> None:
    points = CrashPoints.from_env({"PMPIPE_SINK_CRASH": "after_insert:0.25, after_commit:0"})
    assert points.probabilities == {"after_insert": 0.25, "after_commit": 0.0}
    points.hit("after_commit")  # probability 0: never
    with pytest.raises(ConfigError, match="PMPIPE_SINK_CRASH"):
        CrashPoints.from_env({"PMPIPE_SINK_CRASH": "before_lunch:0.5"})
    with pytest.raises(ConfigError, match="bad probability"):
        CrashPoints.from_env({"PMPIPE_SINK_CRASH": "after_insert:often"})


# --- resume plans from the progress table -----------------------------------------------------


@pytest.mark.integration
def test_resume_plans(clickhouse_client: Client, migrated_database: str) -> None:
    store = ProgressStore(clickhouse_client, migrated_database)

    def row(partition: int, first: int, last: int, state: str, inc: str = "inc1") -> ProgressRow:
        return ProgressRow(inc, "polymarket.trades", partition, OffsetRange(first, last), state)

    store.record(
        [
            # p0: batches 0-99, 100-199 committed; 200-249 recorded, not committed
            row(0, 0, 99, PENDING),
            row(0, 100, 199, PENDING),
            row(0, 200, 249, PENDING),
            # p1: the table is ahead of the group (commit lost)
            row(1, 0, 9, PENDING),
            row(1, 10, 19, PENDING),
            # another incarnation of p0: ignored
            row(0, 0, 999, PENDING, inc="inc0"),
        ]
    )
    store.record([row(0, 0, 99, COMMITTED), row(0, 100, 199, COMMITTED), row(1, 0, 9, COMMITTED)])
    store.record([row(1, 10, 19, COMMITTED)])

    assert store.plan("inc1", "polymarket.trades", 0, 200) == ResumePlan(
        200, (OffsetRange(200, 249),)
    )
    # group offsets lost: the committed marks skip what is stored, the pending range is re-formed
    assert store.plan("inc1", "polymarket.trades", 0, None) == ResumePlan(
        200, (OffsetRange(200, 249),)
    )
    assert store.plan("inc1", "polymarket.trades", 1, 10) == ResumePlan(20, ())
    assert store.plan("inc1", "polymarket.trades", 1, 20) == ResumePlan(20, ())
    assert store.plan("inc1", "polymarket.trades", 2, None) == ResumePlan(None, ())
    assert store.plan("inc2", "polymarket.trades", 0, 5) == ResumePlan(5, ())
