"""`pmpipe kafka-engine-ddl` (pmpipe.kafka_engine) against the real ClickHouse engine.

* Every generated statement is parsed by the engine (`formatQuery` on the embedded endpoint,
  chdb in a child process); the Kafka tables' SETTINGS are ones the Kafka engine knows.
* The Kafka tables' columns map every Avro field of the topic's schema to the right type, and
  equal the target tables' columns (types read from system.columns of a migrated database).
* Everything except the Kafka tables is created for real, with a Null stand-in for each Kafka
  table (the same columns plus the Kafka engine's virtual columns): records written with the
  real schemas flow to exactly the rows the Python sink stores, and `_error` rows to
  kafka_errors.

A Kafka-engine CREATE is never executed here: it fails in chdb and damages its data directory
(`_execute` refuses it).
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import fastavro
import pytest
from clickhouse_connect.driver.client import Client

from pmpipe.errors import PipelineError
from pmpipe.kafka_engine import (
    DEFAULT_GROUP,
    ERRORS_TABLE,
    KAFKA_ENGINE_TOPICS,
    Statement,
    avro_columns,
    avro_to_clickhouse,
    kafka_engine_ddl,
    kafka_engine_statements,
    kafka_engine_topic,
)
from pmpipe.migrations import TOPIC_TABLES, apply_migrations
from pmpipe.topics import BOOKS, DLQ, MARKETS, PRICES, TRADES, WS_RAW, get_topic
from tests.sink.sinkstack import ChServeProcess

pytestmark = pytest.mark.integration

BROKERS = "redpanda:9092"
REGISTRY = "http://redpanda:8081"

# The Kafka engine's settings (ClickHouse src/Storages/Kafka/KafkaSettings.cpp,
# KAFKA_RELATED_SETTINGS); every other setting of a Kafka table must be a format setting.
KAFKA_ENGINE_SETTINGS = frozenset(
    {
        "kafka_broker_list",
        "kafka_topic_list",
        "kafka_group_name",
        "kafka_format",
        "kafka_schema",
        "kafka_num_consumers",
        "kafka_max_block_size",
        "kafka_skip_broken_messages",
        "kafka_commit_every_batch",
        "kafka_client_id",
        "kafka_poll_timeout_ms",
        "kafka_poll_max_batch_size",
        "kafka_consumers_pool_ttl_ms",
        "kafka_flush_interval_ms",
        "kafka_thread_per_consumer",
        "kafka_handle_error_mode",
        "kafka_commit_on_select",
        "kafka_max_rows_per_message",
        "kafka_keeper_path",
        "kafka_replica_name",
        "kafka_security_protocol",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
    }
)
# The Kafka engine's virtual columns in kafka_handle_error_mode = 'stream' (ClickHouse
# StorageKafkaUtils createVirtuals), for the Null stand-in of a Kafka table.
KAFKA_VIRTUALS = (
    "_topic LowCardinality(String), _key String, _offset UInt64, _partition UInt64, "
    "_timestamp Nullable(DateTime), _timestamp_ms Nullable(DateTime64(3)), "
    "_raw_message String, _error String"
)
# Every Avro type our schemas use and the ClickHouse type it must be read into (the mapping in
# clickhouse/README.md). A new kind of field in a schema fails
# test_every_avro_type_of_the_schemas_is_mapped until it is added here.
DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 6}
MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
MICROS = {"type": "long", "logicalType": "timestamp-micros"}
EXPECTED_TYPES: list[tuple[Any, str]] = [
    ("string", "String"),
    ("bytes", "String"),
    ("boolean", "Bool"),
    ("int", "Int32"),
    ("long", "Int64"),
    (DECIMAL, "Decimal(18, 6)"),
    (MILLIS, "DateTime64(3, 'UTC')"),
    (MICROS, "DateTime64(6, 'UTC')"),
    (["null", "string"], "Nullable(String)"),
    (["null", "boolean"], "Nullable(Bool)"),
    (["null", "int"], "Nullable(Int32)"),
    (["null", "long"], "Nullable(Int64)"),
    (["null", "bytes"], "Nullable(String)"),
    (["null", DECIMAL], "Nullable(Decimal(18, 6))"),
    (["null", MILLIS], "Nullable(DateTime64(3, 'UTC'))"),
    ({"type": "array", "items": "string"}, "Array(String)"),
    ({"type": "array", "items": DECIMAL}, "Array(Decimal(18, 6))"),
]


def _canonical(avro_type: Any) -> str:
    return json.dumps(avro_type, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# fixtures: one embedded ClickHouse endpoint (chdb in a child process) for this module


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    base: Path = tmp_path_factory.mktemp("kafka-engine-ch")
    server = ChServeProcess(base / "data", base / "chserve.log")
    server.start()
    ch = clickhouse_connect.get_client(host=server.endpoint.host, port=server.endpoint.port)
    try:
        yield ch
    finally:
        ch.close()
        if server.process is not None:
            server.process.terminate()
            server.process.wait(15)


@pytest.fixture
def migrated(client: Client) -> Iterator[str]:
    name = f"pmtest_{uuid.uuid4().hex[:12]}"
    apply_migrations(client, name)
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name}")


def _execute(client: Client, statement: Statement) -> None:
    if statement.is_kafka_engine:
        raise AssertionError(f"refusing to create the Kafka-engine table {statement.name} here")
    client.command(statement.sql)


def _format_query(client: Client, sql: str) -> str:
    rows = client.query("SELECT formatQuery({q:String})", parameters={"q": sql}).result_rows
    return str(rows[0][0])


def _strip_low_cardinality(type_name: str) -> str:
    previous = None
    while previous != type_name:
        previous = type_name
        type_name = re.sub(r"LowCardinality\(((?:[^()]|\([^()]*\))*)\)", r"\1", type_name)
    return type_name


def _create_with_stand_ins(client: Client, database: str, statements: list[Statement]) -> None:
    """Everything, with a Null table in place of each Kafka table."""
    specs = {kafka_engine_topic(t).kafka_table: kafka_engine_topic(t) for t in KAFKA_ENGINE_TOPICS}
    for statement in statements:
        if statement.is_kafka_engine:
            columns = ", ".join(f"{c.name} {c.type}" for c in specs[statement.name].columns)
            client.command(
                f"CREATE TABLE {database}.{statement.name} ({columns}, {KAFKA_VIRTUALS}) "
                "ENGINE = Null"
            )
        else:
            _execute(client, statement)


# ---------------------------------------------------------------------------------------------
# records written with the real schemas


def _sample(avro_type: Any, variant: int, name: str, now_ms: int) -> Any:
    """A value of `avro_type`; variant 1 has nulls and empty arrays."""
    if isinstance(avro_type, list):
        (inner,) = [t for t in avro_type if t != "null"]
        return None if variant == 1 else _sample(inner, 0, name, now_ms)
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical == "decimal":
            return Decimal("0.123456") + variant
        if logical == "timestamp-millis":
            return now_ms + variant
        if logical == "timestamp-micros":
            return now_ms * 1000 + 789 + variant
        if avro_type["type"] == "array":
            if variant == 1:
                return []
            return [_sample(avro_type["items"], 0, name, now_ms) for _ in range(2)]
        return _sample(avro_type["type"], variant, name, now_ms)
    values = {
        "string": f"{name}-{variant}",
        "bytes": bytes([0, 1, 0xFF, variant]),
        "boolean": variant == 0,
        "int": 7 + variant,
        "long": 1000 + variant,
    }
    return values[avro_type]


def _container(topic_name: str) -> bytes:
    """Two records of the topic (one with every optional value, one with nulls), written with
    its schema as an Avro object container; trades are Data API fills (they feed the rollups)."""
    schema = get_topic(topic_name).schema()
    now_ms = int(time.time() * 1000)
    records = [
        {f["name"]: _sample(f["type"], variant, f["name"], now_ms) for f in schema["fields"]}
        for variant in (0, 1)
    ]
    if topic_name == TRADES:
        for record in records:
            record["source"] = "data_api"
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), records, codec="null")
    return buf.getvalue()


def _rows_missing(client: Client, table: str, other: str) -> int:
    """How many rows of `table` are not in `other` (every stored, non-MATERIALIZED column)."""
    query = f"SELECT count() FROM (SELECT * FROM {table} EXCEPT SELECT * FROM {other})"
    return int(client.query(query).result_rows[0][0])


def _stored_table(topic_name: str) -> str:
    """Where a topic's rows end up (books: through the Null table into orderbook_snapshots)."""
    return "orderbook_snapshots" if topic_name == BOOKS else TOPIC_TABLES[topic_name]


# ---------------------------------------------------------------------------------------------
# the mapping


def test_every_avro_type_of_the_schemas_is_mapped() -> None:
    expected = {_canonical(avro): ch for avro, ch in EXPECTED_TYPES}
    for avro, ch in EXPECTED_TYPES:
        assert avro_to_clickhouse(avro) == ch, avro
    for topic_name in KAFKA_ENGINE_TOPICS:
        for field in get_topic(topic_name).schema()["fields"]:
            assert _canonical(field["type"]) in expected, (
                f"{topic_name}.{field['name']}: Avro type {field['type']} has no expected "
                "ClickHouse type in EXPECTED_TYPES"
            )


def test_kafka_columns_are_the_avro_fields_with_their_types() -> None:
    expected = {_canonical(avro): ch for avro, ch in EXPECTED_TYPES}
    for topic_name in KAFKA_ENGINE_TOPICS:
        fields = get_topic(topic_name).schema()["fields"]
        columns = kafka_engine_topic(topic_name).columns
        assert [c.name for c in columns] == [f["name"] for f in fields], topic_name
        for column, field in zip(columns, fields, strict=True):
            assert column.type == expected[_canonical(field["type"])], (topic_name, column)


@pytest.mark.parametrize(
    "avro_type",
    [
        ["null", "string", "long"],
        ["string", "long"],
        ["null", {"type": "array", "items": "string"}],
        {"type": "map", "values": "string"},
        {"type": "enum", "name": "E", "symbols": ["A"]},
        {"type": "record", "name": "R", "fields": []},
        {"type": "fixed", "name": "F", "size": 4},
        "null",
        42,
    ],
)
def test_avro_types_without_a_column_type_are_refused(avro_type: Any) -> None:
    with pytest.raises(PipelineError):
        avro_to_clickhouse(avro_type)


def test_a_field_without_a_column_type_is_named() -> None:
    schema = {"type": "record", "name": "X", "fields": [{"name": "m", "type": "null"}]}
    with pytest.raises(PipelineError, match="field m of X"):
        avro_columns(schema)


def test_kafka_columns_match_the_target_tables(client: Client, migrated: str) -> None:
    for topic_name in KAFKA_ENGINE_TOPICS:
        spec = kafka_engine_topic(topic_name)
        assert spec.target_table == TOPIC_TABLES[topic_name]
        rows = client.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} "
            "AND table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') "
            "ORDER BY position",
            parameters={"db": migrated, "t": spec.target_table},
        ).result_rows
        target = {str(name): _strip_low_cardinality(str(type_)) for name, type_ in rows}
        assert set(target) == {c.name for c in spec.columns}, topic_name
        for column in spec.columns:
            canonical = client.query(
                "SELECT toTypeName(defaultValueOfTypeName({t:String}))",
                parameters={"t": column.type},
            ).result_rows[0][0]
            assert canonical == target[column.name], (topic_name, column.name)


# ---------------------------------------------------------------------------------------------
# the statements


def test_every_statement_parses_in_the_engine(client: Client) -> None:
    statements = kafka_engine_statements("polymarket", BROKERS, REGISTRY)
    assert len(statements) == 1 + 5 * len(KAFKA_ENGINE_TOPICS)
    for statement in statements:
        formatted = _format_query(client, statement.sql)
        assert formatted.startswith("CREATE "), statement.name
        assert f"polymarket.{statement.name}" in formatted
        assert _format_query(client, formatted) == formatted  # stable: nothing lost


def test_kafka_tables_have_the_settings_the_engine_knows(client: Client) -> None:
    statements = kafka_engine_statements("polymarket", BROKERS, REGISTRY, group="g1")
    kafka_tables = [s for s in statements if s.is_kafka_engine]
    assert [s.name for s in kafka_tables] == [
        kafka_engine_topic(t).kafka_table for t in KAFKA_ENGINE_TOPICS
    ]
    format_settings = {
        str(r[0]) for r in client.query("SELECT name FROM system.settings").result_rows
    }
    for statement, topic_name in zip(kafka_tables, KAFKA_ENGINE_TOPICS, strict=True):
        formatted = _format_query(client, statement.sql)
        assert "ENGINE = Kafka" in formatted
        clause = formatted.split("\nSETTINGS ", 1)[1]
        pairs = re.findall(r"(\w+) = ('(?:[^'\\]|\\.)*'|[^,\s]+)", clause)
        settings = dict(pairs)
        assert len(settings) == len(pairs)
        unknown = {
            name
            for name in settings
            if name not in KAFKA_ENGINE_SETTINGS and name not in format_settings
        }
        assert not unknown, f"{statement.name}: settings no engine knows: {unknown}"
        schema_name = get_topic(topic_name).schema_name
        assert settings["kafka_broker_list"] == f"'{BROKERS}'"
        assert settings["kafka_topic_list"] == f"'{topic_name}'"
        assert settings["kafka_group_name"] == f"'g1-{schema_name}'"
        assert settings["kafka_format"] == "'AvroConfluent'"
        assert settings["format_avro_schema_registry_url"] == f"'{REGISTRY}'"
        assert settings["kafka_num_consumers"] == "1"
        assert settings["kafka_handle_error_mode"] == "'stream'"


def test_consumers_are_capped_at_the_partitions() -> None:
    statements = {
        s.name: s.sql for s in kafka_engine_statements("db", BROKERS, REGISTRY, consumers=4)
    }
    for topic_name in (MARKETS, PRICES):
        spec = kafka_engine_topic(topic_name, consumers=4)
        partitions = get_topic(topic_name).partitions
        assert spec.consumers == min(4, partitions)
        sql = statements[spec.kafka_table]
        assert f"kafka_num_consumers = {min(4, partitions)}," in sql
        assert "kafka_thread_per_consumer = 1," in sql
    one = {s.name: s.sql for s in kafka_engine_statements("db", BROKERS, REGISTRY)}
    assert "kafka_thread_per_consumer = 0," in one["kafka_trades"]


def test_the_script_is_the_statements_in_a_safe_order() -> None:
    statements = kafka_engine_statements("polymarket", BROKERS, REGISTRY)
    ddl = kafka_engine_ddl("polymarket", BROKERS, REGISTRY)
    body = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    parts = [p.strip() for p in re.split(r";[ \t]*(?:\n|$)", body) if p.strip()]
    assert parts == [s.sql for s in statements]
    assert ddl.endswith(";\n")
    names = [s.name for s in statements]
    assert names[0] == ERRORS_TABLE
    for topic_name in KAFKA_ENGINE_TOPICS:
        spec = kafka_engine_topic(topic_name)
        # consumption starts with the view on the Kafka table: it comes after both routes
        assert names.index(spec.consumer_view) > max(
            names.index(spec.kafka_table),
            names.index(spec.stream_table),
            names.index(spec.rows_view),
            names.index(spec.errors_view),
        )
        assert f"DETACH TABLE polymarket.{spec.consumer_view}" in ddl
    # exactly one view reads each Kafka table
    for spec in (kafka_engine_topic(t) for t in KAFKA_ENGINE_TOPICS):
        readers = [
            s.name for s in statements if f"FROM polymarket.{spec.kafka_table}\n" in s.sql + "\n"
        ]
        assert readers == [spec.consumer_view]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"database": "bad-name"}, "plain identifier"),
        ({"brokers": ""}, "no broker"),
        ({"brokers": "redpanda"}, "host:port"),
        ({"brokers": "redpanda:99999"}, "host:port"),
        ({"registry_url": "redpanda:8081"}, "http"),
        ({"registry_url": "http://redpanda:8081/apis/ccompat/v7"}, "has a path"),
        ({"consumers": 0}, "consumers"),
        ({"group": "bad group'"}, "consumer group"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"database": "db", "brokers": BROKERS, "registry_url": REGISTRY}
    args.update(kwargs)
    with pytest.raises(PipelineError, match=message):
        kafka_engine_statements(**args)


def test_values_are_quoted_as_sql_strings(client: Client) -> None:
    statements = kafka_engine_statements(
        "db", "a:9092, b:9093", "https://registry.example:8081/", group=DEFAULT_GROUP
    )
    sql = next(s.sql for s in statements if s.is_kafka_engine)
    assert "kafka_broker_list = 'a:9092,b:9093'," in sql
    assert "format_avro_schema_registry_url = 'https://registry.example:8081'," in sql
    assert _format_query(client, sql).startswith("CREATE TABLE IF NOT EXISTS db.kafka_")


def test_the_dlq_topic_has_no_kafka_table() -> None:
    assert DLQ not in KAFKA_ENGINE_TOPICS
    assert set(KAFKA_ENGINE_TOPICS) == set(TOPIC_TABLES)
    with pytest.raises(PipelineError, match="no target table"):
        kafka_engine_topic(DLQ)


# ---------------------------------------------------------------------------------------------
# the views, for real (Null stand-ins for the Kafka tables)


def test_rows_reach_the_tables_the_sink_writes(client: Client, migrated: str) -> None:
    """The Kafka path stores exactly what the Python sink stores for the same records."""
    statements = kafka_engine_statements(migrated, BROKERS, REGISTRY)
    _create_with_stand_ins(client, migrated, statements)
    sink_db = f"pmtest_{uuid.uuid4().hex[:12]}"
    apply_migrations(client, sink_db)
    try:
        for topic_name in KAFKA_ENGINE_TOPICS:
            spec = kafka_engine_topic(topic_name)
            data = _container(topic_name)
            fields = [c.name for c in spec.columns]
            # the Kafka path: what a Kafka table decodes, into its stand-in
            client.raw_insert(
                f"{migrated}.{spec.kafka_table}", column_names=fields, insert_block=data, fmt="Avro"
            )
            # the Python sink's path
            client.raw_insert(
                f"{sink_db}.{TOPIC_TABLES[topic_name]}",
                column_names=fields,
                insert_block=data,
                fmt="Avro",
            )
            table = _stored_table(topic_name)
            counts = [
                client.query(f"SELECT count() FROM {db}.{table}").result_rows[0][0]
                for db in (migrated, sink_db)
            ]
            assert counts == [2, 2], topic_name
            for a, b in ((migrated, sink_db), (sink_db, migrated)):
                assert _rows_missing(client, f"{a}.{table}", f"{b}.{table}") == 0, (
                    f"{topic_name}: {a}.{table} has rows {b}.{table} lacks"
                )
        assert client.query(f"SELECT count() FROM {migrated}.{ERRORS_TABLE}").result_rows == [(0,)]
        # the rollups are fed through market_trades as with the sink (data_api trades)
        candles = [
            client.query(f"SELECT count() FROM {db}.ohlcv_1m_candles").result_rows[0][0]
            for db in (migrated, sink_db)
        ]
        assert candles == [2, 2]
        for a, b in ((migrated, sink_db), (sink_db, migrated)):
            assert _rows_missing(client, f"{a}.ohlcv_1m_candles", f"{b}.ohlcv_1m_candles") == 0
    finally:
        client.command(f"DROP DATABASE IF EXISTS {sink_db}")


def test_undecodable_messages_reach_kafka_errors_only(client: Client, migrated: str) -> None:
    statements = kafka_engine_statements(migrated, BROKERS, REGISTRY)
    _create_with_stand_ins(client, migrated, statements)
    spec = kafka_engine_topic(TRADES)
    raw = b"\x00\x00\x00\x00\x07not avro\xff"
    client.command(
        f"INSERT INTO {migrated}.{spec.kafka_table} "
        "(_topic, _partition, _offset, _timestamp_ms, _error, _raw_message) "
        "SELECT {t:String}, 3, 41, toDateTime64('2026-01-02 03:04:05.678', 3, 'UTC'), "
        "{e:String}, unhex({raw:String})",
        parameters={"t": TRADES, "e": "Cannot read Avro", "raw": raw.hex()},
    )
    rows = client.query(
        "SELECT topic, partition, offset, toUnixTimestamp64Milli(message_ts), error, "
        "hex(raw_message), received_ts > now64(6) - INTERVAL 1 MINUTE "
        f"FROM {migrated}.{ERRORS_TABLE}"
    ).result_rows
    assert rows == [(TRADES, 3, 41, 1767323045678, "Cannot read Avro", raw.hex().upper(), True)]
    assert client.query(f"SELECT count() FROM {migrated}.market_trades").result_rows == [(0,)]


def test_the_errors_table_keeps_migrate_happy(client: Client, migrated: str) -> None:
    """`pmpipe migrate` refuses a database with a MergeTree table lacking the dedup window;
    kafka_errors has it, and the Kafka path's other objects are not MergeTree tables."""
    statements = kafka_engine_statements(migrated, BROKERS, REGISTRY)
    _create_with_stand_ins(client, migrated, statements)
    from pmpipe.migrations import tables_without_dedup_window

    assert tables_without_dedup_window(client, migrated) == []
    assert apply_migrations(client, migrated) == []  # already up to date, nothing refused
    # running the (non-Kafka) statements again is a no-op: everything is IF NOT EXISTS
    for statement in statements:
        if not statement.is_kafka_engine:
            _execute(client, statement)


def test_ws_raw_payload_bytes_survive(client: Client, migrated: str) -> None:
    statements = kafka_engine_statements(migrated, BROKERS, REGISTRY)
    _create_with_stand_ins(client, migrated, statements)
    spec = kafka_engine_topic(WS_RAW)
    client.raw_insert(
        f"{migrated}.{spec.kafka_table}",
        column_names=[c.name for c in spec.columns],
        insert_block=_container(WS_RAW),
        fmt="Avro",
    )
    rows = client.query(
        f"SELECT hex(payload) FROM {migrated}.ws_raw_frames ORDER BY seq"
    ).result_rows
    assert rows == [("0001FF00",), ("0001FF01",)]


# ---------------------------------------------------------------------------------------------
# the command


def test_pmpipe_kafka_engine_ddl_prints_the_script() -> None:
    from click.testing import CliRunner

    from pmpipe.cli import cli

    env = {
        "KAFKA_BOOTSTRAP_SERVERS": BROKERS,
        "SCHEMA_REGISTRY_URL": REGISTRY,
        "CLICKHOUSE_DATABASE": "analytics",
    }
    result = CliRunner().invoke(cli, ["kafka-engine-ddl"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == kafka_engine_ddl("analytics", BROKERS, REGISTRY)
    result = CliRunner().invoke(
        cli, ["kafka-engine-ddl", "--consumers", "3", "--group", "ch", "--database", "x"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output == kafka_engine_ddl("x", BROKERS, REGISTRY, consumers=3, group="ch")
