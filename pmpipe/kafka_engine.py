"""`pmpipe kafka-engine-ddl`: the ClickHouse Kafka-engine path, for self-hosted ClickHouse.

An alternative to the Python sink: ClickHouse itself consumes the topics (``ENGINE = Kafka``,
``kafka_format = 'AvroConfluent'``, schemas fetched from the registry by the id in each
message) and materialized views write the rows into the SAME tables the sink writes
(`pmpipe.migrations.TOPIC_TABLES`), so the rollups, the dashboard and `pmpipe status` work
unchanged. ClickHouse Cloud has no Kafka engine (ClickPipes is its managed equivalent); there
the Python sink is the path.

Per topic (templates in clickhouse/kafka_engine/):

* ``kafka_<schema>``: the Kafka table, one column per Avro field with the ClickHouse type of
  its Avro type (`avro_to_clickhouse`), ``kafka_handle_error_mode = 'stream'``;
* ``kafka_<schema>_stream``: a Null table (stores nothing) with the same columns plus the
  Kafka virtual columns, fed by ``kafka_<schema>_mv``, the only view on the Kafka table;
* ``kafka_<schema>_rows_mv``: rows with an empty ``_error`` into the target table, by name;
* ``kafka_<schema>_errors_mv``: rows with an ``_error`` (and their ``_raw_message``) into
  ``kafka_errors``, a MergeTree created by the same output.

A Kafka table starts consuming when the first view on it is attached; with both routes behind
one view, created last, no message is read while only one route exists.

This module only prints SQL; it never creates anything. Never create a Kafka-engine table in
chdb (the embedded endpoint): it fails and damages the data directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pmpipe.errors import PipelineError
from pmpipe.migrations import TOPIC_TABLES, check_identifier, table_settings_clause
from pmpipe.paths import clickhouse_dir
from pmpipe.topics import Topic, get_topic

__all__ = [
    "DEFAULT_GROUP",
    "ERRORS_TABLE",
    "KAFKA_ENGINE_TOPICS",
    "STREAM_VIRTUAL_COLUMNS",
    "Column",
    "KafkaEngineTopic",
    "Statement",
    "avro_columns",
    "avro_to_clickhouse",
    "kafka_engine_ddl",
    "kafka_engine_statements",
    "kafka_engine_topic",
    "templates_dir",
]

COMPONENT = "kafka-engine"
DEFAULT_GROUP = "clickhouse-pmpipe"
ERRORS_TABLE = "kafka_errors"
KAFKA_ENGINE_TOPICS: tuple[str, ...] = tuple(TOPIC_TABLES)
"""Every topic the sink stores (markets, prices, trades, books, events, ws_raw), in that order;
polymarket.dlq stays a topic."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str


STREAM_VIRTUAL_COLUMNS: tuple[Column, ...] = (
    Column("_topic", "LowCardinality(String)"),
    Column("_partition", "UInt64"),
    Column("_offset", "UInt64"),
    Column("_timestamp_ms", "Nullable(DateTime64(3, 'UTC'))"),
    Column("_error", "String"),
    Column("_raw_message", "String"),
)
"""The Kafka engine's virtual columns carried to the stream table (``_error`` and
``_raw_message`` exist in ``kafka_handle_error_mode = 'stream'``)."""

_PRIMITIVES = {
    "string": "String",
    "bytes": "String",
    "boolean": "Bool",
    "int": "Int32",
    "long": "Int64",
    "float": "Float32",
    "double": "Float64",
}
_TIMESTAMPS = {"timestamp-millis": 3, "timestamp-micros": 6}
_PLACEHOLDER = re.compile(r"\{(?P<name>[a-z_]+)\}")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|\Z)")
_CREATED_NAME = re.compile(
    r"^CREATE\s+(?:TABLE|MATERIALIZED\s+VIEW)\s+IF\s+NOT\s+EXISTS\s+\w+\.(?P<name>\w+)"
)
_KAFKA_ENGINE = re.compile(r"\bENGINE\s*=\s*Kafka\b")
_GROUP = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Statement:
    """One rendered statement (no trailing ``;``)."""

    name: str
    """The table or view it creates (unqualified)."""
    sql: str

    @property
    def is_kafka_engine(self) -> bool:
        """Creates a Kafka-engine table: needs a reachable broker, never run it in chdb."""
        return bool(_KAFKA_ENGINE.search(self.sql))


@dataclass(frozen=True)
class KafkaEngineTopic:
    """The objects of one topic and what they are rendered from."""

    topic: Topic
    target_table: str
    group: str
    consumers: int
    columns: tuple[Column, ...]

    @property
    def kafka_table(self) -> str:
        return f"kafka_{self.topic.schema_name}"

    @property
    def stream_table(self) -> str:
        return f"kafka_{self.topic.schema_name}_stream"

    @property
    def consumer_view(self) -> str:
        return f"kafka_{self.topic.schema_name}_mv"

    @property
    def rows_view(self) -> str:
        return f"kafka_{self.topic.schema_name}_rows_mv"

    @property
    def errors_view(self) -> str:
        return f"kafka_{self.topic.schema_name}_errors_mv"


# --------------------------------------------------------------------------------------------
# Avro -> ClickHouse


def avro_to_clickhouse(avro_type: Any) -> str:
    """The ClickHouse column type an Avro type is read into (the mapping the sink relies on,
    clickhouse/README.md): string/bytes -> String, boolean -> Bool, int -> Int32, long -> Int64,
    decimal(p, s) -> Decimal(p, s), timestamp-millis/-micros -> DateTime64(3/6, 'UTC'),
    array<T> -> Array(T), ["null", T] -> Nullable(T).

    Raises PipelineError for what has no column type here (records, maps, enums, fixed
    without decimal, unions other than null + one type, a nullable array)."""
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(avro_type) != 2 or len(branches) != 1:
            raise PipelineError(
                f'Avro union {avro_type!r}: only ["null", T] maps to a column (Nullable(T))',
                component=COMPONENT,
            )
        inner = avro_to_clickhouse(branches[0])
        if inner.startswith("Array("):
            raise PipelineError(
                f"Avro union {avro_type!r}: ClickHouse has no Nullable(Array(...))",
                component=COMPONENT,
            )
        return f"Nullable({inner})"
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return _PRIMITIVES[avro_type]
        raise PipelineError(f"Avro type {avro_type!r} has no column type", component=COMPONENT)
    if isinstance(avro_type, Mapping):
        logical = avro_type.get("logicalType")
        base = avro_type.get("type")
        if logical == "decimal" and base in ("bytes", "fixed"):
            precision = int(avro_type["precision"])
            scale = int(avro_type.get("scale", 0))
            return f"Decimal({precision}, {scale})"
        if logical in _TIMESTAMPS and base == "long":
            return f"DateTime64({_TIMESTAMPS[str(logical)]}, 'UTC')"
        if base == "array":
            return f"Array({avro_to_clickhouse(avro_type['items'])})"
        if isinstance(base, str) and base in _PRIMITIVES:
            return _PRIMITIVES[base]  # {"type": "string"}, or a logical type ClickHouse ignores
        raise PipelineError(
            f"Avro type {dict(avro_type)!r} has no column type here", component=COMPONENT
        )
    raise PipelineError(f"not an Avro type: {avro_type!r}", component=COMPONENT)


def avro_columns(schema: Mapping[str, Any]) -> tuple[Column, ...]:
    """One column per field of an Avro record schema, in field order."""
    if schema.get("type") != "record":
        raise PipelineError(
            f"schema {schema.get('name')!r} is not an Avro record", component=COMPONENT
        )
    columns = []
    for avro_field in schema["fields"]:
        name = str(avro_field["name"])
        try:
            columns.append(Column(name, avro_to_clickhouse(avro_field["type"])))
        except PipelineError as e:
            raise PipelineError(
                f"field {name} of {schema.get('name')}: {e.message}", component=COMPONENT
            ) from e
    return tuple(columns)


def kafka_engine_topic(
    topic_name: str, *, group: str = DEFAULT_GROUP, consumers: int = 1
) -> KafkaEngineTopic:
    """What `kafka_engine_statements` renders for one topic: its target table, its consumer
    group ``<group>-<schema>`` (one group per Kafka table, so a table joining or leaving never
    rebalances the others) and its consumer count (capped at the topic's partitions: a consumer
    beyond them would get none)."""
    if topic_name not in TOPIC_TABLES:
        raise PipelineError(
            f"topic {topic_name} has no target table (known: {', '.join(KAFKA_ENGINE_TOPICS)})",
            component=COMPONENT,
        )
    _check_group(group)
    if consumers < 1:
        raise PipelineError(f"consumers must be >= 1, got {consumers}", component=COMPONENT)
    topic = get_topic(topic_name)
    return KafkaEngineTopic(
        topic=topic,
        target_table=TOPIC_TABLES[topic_name],
        group=f"{group}-{topic.schema_name}",
        consumers=min(consumers, topic.partitions),
        columns=avro_columns(topic.schema()),
    )


# --------------------------------------------------------------------------------------------
# rendering


def templates_dir() -> Path:
    return clickhouse_dir() / "kafka_engine"


def kafka_engine_statements(
    database: str,
    brokers: str,
    registry_url: str,
    *,
    consumers: int = 1,
    group: str = DEFAULT_GROUP,
) -> list[Statement]:
    """Every statement of the Kafka-engine path, in the order to run them: the errors table,
    then per topic the Kafka table, the stream table, the rows and errors views, and last the
    view that starts consumption.

    `brokers` and `registry_url` are the addresses the ClickHouse SERVER reaches (in
    docker-compose: redpanda:9092 and http://redpanda:8081). The registry URL must have no
    path: ClickHouse drops it and asks ``<scheme>://<host>:<port>/schemas/ids/<id>``."""
    check_identifier(database)
    brokers = _check_brokers(brokers)
    registry_url = _check_registry_url(registry_url)
    statements = _render_file(
        "errors_table.sql",
        {
            "database": database,
            "errors_table": ERRORS_TABLE,
            "table_settings": table_settings_clause(replicated=False),
        },
    )
    for name in KAFKA_ENGINE_TOPICS:
        spec = kafka_engine_topic(name, group=group, consumers=consumers)
        field_list = ",\n".join(f"    {c.name}" for c in spec.columns)
        statements += _render_file(
            "topic.sql",
            {
                "database": database,
                "errors_table": ERRORS_TABLE,
                "target_table": spec.target_table,
                "kafka_table": spec.kafka_table,
                "stream_table": spec.stream_table,
                "consumer_view": spec.consumer_view,
                "rows_view": spec.rows_view,
                "errors_view": spec.errors_view,
                "kafka_columns": _column_lines(spec.columns),
                "stream_columns": _column_lines(spec.columns + STREAM_VIRTUAL_COLUMNS),
                "field_list": field_list,
                "virtual_list": ",\n".join(f"    {c.name}" for c in STREAM_VIRTUAL_COLUMNS),
                "brokers": _sql_string(brokers),
                "topic": _sql_string(spec.topic.name),
                "group": _sql_string(spec.group),
                "registry_url": _sql_string(registry_url),
                "consumers": str(spec.consumers),
                "thread_per_consumer": "1" if spec.consumers > 1 else "0",
            },
        )
    return statements


def kafka_engine_ddl(
    database: str,
    brokers: str,
    registry_url: str,
    *,
    consumers: int = 1,
    group: str = DEFAULT_GROUP,
) -> str:
    """The Kafka-engine path as one SQL script for ``clickhouse-client --multiquery``:
    `kafka_engine_statements` with a comment header per topic, each statement ending in
    ``;``. Run the migrations first (the target tables must exist)."""
    statements = kafka_engine_statements(
        database, brokers, registry_url, consumers=consumers, group=group
    )
    by_name = {s.name: s for s in statements}
    lines = [
        "-- polymarket-pipeline: the ClickHouse Kafka-engine path, generated by",
        "-- `pmpipe kafka-engine-ddl`. Self-hosted ClickHouse only (ClickHouse Cloud has no",
        "-- Kafka engine: there the Python sink is the path).",
        f"-- database {database}, brokers {brokers}, schema registry {registry_url}",
        "-- (addresses as the ClickHouse server reaches them).",
        "-- Apply the migrations first (`pmpipe migrate`): the views write the tables the",
        "-- Python sink writes. Stop the sink first: both paths would store every record.",
        "-- At-least-once: a batch inserted but not yet committed is read again after a failure.",
        f"-- Messages that cannot be decoded land in {database}.{ERRORS_TABLE}.",
        "",
        by_name[ERRORS_TABLE].sql + ";",
    ]
    for name in KAFKA_ENGINE_TOPICS:
        spec = kafka_engine_topic(name, group=group, consumers=consumers)
        lines += [
            "",
            f"-- {spec.topic.name} -> {database}.{spec.target_table}: group {spec.group}, "
            f"{spec.consumers} consumer(s) ({spec.topic.partitions} partitions)",
            f"-- pause: DETACH TABLE {database}.{spec.consumer_view}; resume: ATTACH TABLE "
            f"{database}.{spec.consumer_view};",
        ]
        for object_name in (
            spec.kafka_table,
            spec.stream_table,
            spec.rows_view,
            spec.errors_view,
            spec.consumer_view,
        ):
            lines += ["", by_name[object_name].sql + ";"]
    return "\n".join(lines) + "\n"


def _render_file(file_name: str, values: Mapping[str, str]) -> list[Statement]:
    path = templates_dir() / file_name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PipelineError(f"cannot read template {path}: {e}", component=COMPONENT) from e
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))

    def substitute(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in values:
            raise PipelineError(f"{file_name}: unknown placeholder {match[0]}", component=COMPONENT)
        return values[name]

    rendered = _PLACEHOLDER.sub(substitute, body)
    statements = []
    for sql in (s.strip() for s in _STATEMENT_END.split(rendered)):
        if not sql:
            continue
        created = _CREATED_NAME.match(sql)
        if not created:
            raise PipelineError(
                f"{file_name}: a statement that creates no table or view: {sql[:80]!r}",
                component=COMPONENT,
            )
        statements.append(Statement(created["name"], sql))
    return statements


def _column_lines(columns: Sequence[Column]) -> str:
    width = max(len(c.name) for c in columns)
    return ",\n".join(f"    {c.name:<{width}} {c.type}" for c in columns)


def _sql_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _check_group(group: str) -> None:
    if not _GROUP.match(group):
        raise PipelineError(
            f"consumer group must be letters, digits, '.', '_' or '-', got {group!r}",
            component=COMPONENT,
        )


def _check_brokers(brokers: str) -> str:
    servers = [s.strip() for s in brokers.split(",") if s.strip()]
    if not servers:
        raise PipelineError("no broker given (expected host:port[,...])", component=COMPONENT)
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise PipelineError(f"expected host:port, got {server!r}", component=COMPONENT)
    return ",".join(servers)


def _check_registry_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PipelineError(
            f"schema registry URL must be http(s)://host[:port], got {url!r}", component=COMPONENT
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise PipelineError(
            f"schema registry URL {url!r} has a path: ClickHouse's AvroConfluent drops it and "
            "asks <scheme>://<host>:<port>/schemas/ids/<id>, so serve the registry at the root",
            component=COMPONENT,
        )
    return url.strip().rstrip("/")
