"""The migration runner against a real ClickHouse endpoint (embedded by default)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from pmpipe.errors import PipelineError
from pmpipe.migrations import (
    BOOKKEEPING_TABLES,
    DEDUP_WINDOW,
    MIGRATIONS_TABLE,
    TOPIC_TABLES,
    SchemaParams,
    apply_migrations,
    detect_replicated,
    load_migrations,
    migrations_dir,
    pending_migrations,
    render,
    tables_without_dedup_window,
)
from pmpipe.topics import get_topic

pytestmark = pytest.mark.integration

EXPECTED_ENGINES = {
    "markets": "ReplacingMergeTree",
    "market_prices": "MergeTree",
    "market_trades": "MergeTree",
    "orderbook_snapshots": "MergeTree",
    "orderbook_snapshots_in": "Null",
    "orderbook_snapshots_mv": "MaterializedView",
    "market_events": "MergeTree",
    "ws_raw_frames": "MergeTree",
    "sink_progress": "ReplacingMergeTree",
    "ohlcv_1m": "AggregatingMergeTree",
    "ohlcv_1m_mv": "MaterializedView",
    "ohlcv_1m_candles": "View",
    "ohlcv_1h": "AggregatingMergeTree",
    "ohlcv_1h_mv": "MaterializedView",
    "ohlcv_1h_candles": "View",
    "volume_daily": "AggregatingMergeTree",
    "volume_daily_mv": "MaterializedView",
    "volume_daily_totals": "View",
    "market_latest_price": "AggregatingMergeTree",
    "market_latest_price_quotes_mv": "MaterializedView",
    "market_latest_price_trades_mv": "MaterializedView",
    "latest_prices": "View",
    MIGRATIONS_TABLE: "ReplacingMergeTree",
}
WINDOW = re.compile(r"non_replicated_deduplication_window = (\d+)")


def _tables(client: Client, database: str) -> dict[str, tuple[str, str]]:
    rows = client.query(
        "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    return {str(name): (str(engine), str(create)) for name, engine, create in rows}


def test_apply_creates_the_schema_and_records_it(clickhouse_client: Client, fresh_database: str):
    files = load_migrations()
    assert [m.label for m in files] == ["0001_base_tables", "0002_rollups"]
    assert [m.label for m in pending_migrations(clickhouse_client, fresh_database)] == [
        m.label for m in files
    ]

    applied = apply_migrations(clickhouse_client, fresh_database)

    assert applied == [m.label for m in files]
    tables = _tables(clickhouse_client, fresh_database)
    # ClickHouse Cloud reports SharedMergeTree etc. for the same DDL
    engines = {name: re.sub(r"^(Shared|Replicated)", "", e) for name, (e, _) in tables.items()}
    assert engines == EXPECTED_ENGINES
    rows = clickhouse_client.query(
        f"SELECT version, name, checksum, applied_at FROM {fresh_database}.{MIGRATIONS_TABLE}"
        " FINAL ORDER BY version"
    ).result_rows
    assert [(r[0], r[1], r[2]) for r in rows] == [(m.version, m.name, m.checksum) for m in files]
    assert all(r[3] is not None for r in rows)
    assert pending_migrations(clickhouse_client, fresh_database) == []


def test_reapply_is_a_noop(clickhouse_client: Client, migrated_database: str):
    before = clickhouse_client.query(
        f"SELECT version, applied_at FROM {migrated_database}.{MIGRATIONS_TABLE} ORDER BY version"
    ).result_rows

    assert apply_migrations(clickhouse_client, migrated_database) == []

    after = clickhouse_client.query(
        f"SELECT version, applied_at FROM {migrated_database}.{MIGRATIONS_TABLE} ORDER BY version"
    ).result_rows
    assert after == before  # not recorded again


def test_statements_are_idempotent(clickhouse_client: Client, migrated_database: str):
    """Re-running every statement (as after a crash before the file was recorded) succeeds
    and changes nothing."""
    before = _tables(clickhouse_client, migrated_database)
    params = SchemaParams(replicated=False)
    for migration in load_migrations():
        for statement in migration.statements(migrated_database, params):
            clickhouse_client.command(statement)
    assert _tables(clickhouse_client, migrated_database) == before


def test_every_target_table_has_a_dedup_window(clickhouse_client: Client, migrated_database: str):
    if detect_replicated(clickhouse_client, migrated_database):
        pytest.skip("replicated engines (ClickHouse Cloud): the server's replicated window applies")
    tables = _tables(clickhouse_client, migrated_database)
    targets = {
        name
        for name, (engine, _) in tables.items()
        if engine.endswith("MergeTree") and name not in BOOKKEEPING_TABLES
    }
    assert targets == {
        "markets",
        "market_prices",
        "market_trades",
        "orderbook_snapshots",
        "market_events",
        "ws_raw_frames",
        "ohlcv_1m",
        "ohlcv_1h",
        "volume_daily",
        "market_latest_price",
    }
    for name in targets:
        match = WINDOW.search(tables[name][1])
        assert match, f"{name} has no non_replicated_deduplication_window"
        assert int(match[1]) == DEDUP_WINDOW
    assert tables_without_dedup_window(clickhouse_client, migrated_database) == []
    # the probe table used to detect the engine is gone
    assert "_pmpipe_engine_probe" not in tables


def test_avro_fields_are_columns_and_extra_columns_are_computed(
    clickhouse_client: Client, migrated_database: str
):
    """Every field of each stored topic is a column of its insert table (so FORMAT Avro maps
    by name), and no insert table has a column the Avro records do not fill, except computed
    ones (an ordinary DEFAULT column would make `INSERT ... FORMAT Avro` without a column list
    fail with 'Field not found in Avro schema')."""
    for topic_name, table in TOPIC_TABLES.items():
        fields = [f["name"] for f in get_topic(topic_name).schema()["fields"]]
        rows = clickhouse_client.query(
            "SELECT name, default_kind FROM system.columns"
            " WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            parameters={"db": migrated_database, "t": table},
        ).result_rows
        plain = [name for name, kind in rows if kind == ""]
        computed = {name for name, kind in rows if kind in ("MATERIALIZED", "ALIAS")}
        assert plain == fields, f"{table} columns differ from {topic_name} fields"
        assert len(plain) + len(computed) == len(rows), f"{table} has DEFAULT columns"


def test_changed_checksum_is_refused(
    clickhouse_client: Client, fresh_database: str, tmp_path: Path
):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    apply_migrations(clickhouse_client, fresh_database, directory=folder)

    first = folder / "0001_base_tables.sql"
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")

    with pytest.raises(PipelineError, match="0001_base_tables was changed after it was applied"):
        apply_migrations(clickhouse_client, fresh_database, directory=folder)
    with pytest.raises(PipelineError, match="changed after it was applied"):
        pending_migrations(clickhouse_client, fresh_database, directory=folder)


def test_new_migration_is_applied_once_in_order(
    clickhouse_client: Client, fresh_database: str, tmp_path: Path
):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    apply_migrations(clickhouse_client, fresh_database, directory=folder)
    (folder / "0003_extra_table.sql").write_text(
        "-- a later migration\n"
        "CREATE TABLE IF NOT EXISTS {database}.extra (k String, n UInt32)\n"
        "ENGINE = MergeTree ORDER BY k\n"
        "{table_settings};\n"
        "CREATE VIEW IF NOT EXISTS {database}.extra_view AS\n"
        "SELECT k, sum(n) AS n FROM {database}.extra GROUP BY k;\n"
    )
    assert [
        m.label for m in pending_migrations(clickhouse_client, fresh_database, directory=folder)
    ] == ["0003_extra_table"]
    assert apply_migrations(clickhouse_client, fresh_database, directory=folder) == [
        "0003_extra_table"
    ]
    assert apply_migrations(clickhouse_client, fresh_database, directory=folder) == []
    tables = _tables(clickhouse_client, fresh_database)
    assert tables["extra_view"][0] == "View"
    assert WINDOW.search(tables["extra"][1])


def test_database_newer_than_the_code_is_refused(
    clickhouse_client: Client, fresh_database: str, tmp_path: Path
):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    (folder / "0003_later.sql").write_text("CREATE VIEW IF NOT EXISTS {database}.v AS SELECT 1;\n")
    apply_migrations(clickhouse_client, fresh_database, directory=folder)
    (folder / "0003_later.sql").unlink()

    with pytest.raises(PipelineError, match="newer than this code"):
        apply_migrations(clickhouse_client, fresh_database, directory=folder)


def test_failed_statement_names_the_migration_and_is_not_recorded(
    clickhouse_client: Client, fresh_database: str, tmp_path: Path
):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {database}.a (k String) ENGINE = MergeTree ORDER BY k\n"
        "{table_settings};\n"
    )
    (folder / "0002_broken.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {database}.b (k String) ENGINE = MergeTree ORDER BY k\n"
        "{table_settings};\n"
        "CREATE VIEW IF NOT EXISTS {database}.c AS SELECT no_such_column FROM {database}.b;\n"
    )
    with pytest.raises(PipelineError, match=r"0002_broken failed at statement 2/2") as info:
        apply_migrations(clickhouse_client, fresh_database, directory=folder)
    assert info.value.component == "migrate"
    assert [
        m.label for m in pending_migrations(clickhouse_client, fresh_database, directory=folder)
    ] == ["0002_broken"]


def test_ws_raw_ttl_is_a_parameter(clickhouse_client: Client, fresh_database: str):
    apply_migrations(clickhouse_client, fresh_database, ws_raw_ttl_days=7)
    create = _tables(clickhouse_client, fresh_database)["ws_raw_frames"][1]
    assert "TTL toDateTime(received_ts) + toIntervalDay(7)" in create
    assert "ttl_only_drop_parts = 1" in create


# ---------------------------------------------------------------------------------------------
# rendering (no server needed)


def test_rendering_for_replicated_engines_leaves_the_window_out():
    created = re.compile(r"CREATE TABLE IF NOT EXISTS db\.(\w+)")
    for migration in load_migrations():
        for replicated in (False, True):
            params = SchemaParams(replicated=replicated)
            for statement in migration.statements("db", params):
                assert not re.search(r"\{\w", statement), statement[:80]  # all rendered
                match = created.match(statement)
                is_target = (
                    match is not None
                    and match[1] not in BOOKKEEPING_TABLES
                    and re.search(r"ENGINE = \w*MergeTree", statement) is not None
                )
                has_window = "non_replicated_deduplication_window" in statement
                assert has_window == (is_target and not replicated), statement[:80]
    events = next(
        s
        for s in load_migrations()[0].statements("db", SchemaParams(replicated=True))
        if s.startswith("CREATE TABLE IF NOT EXISTS db.market_events")
    )
    assert events.rstrip().endswith("SETTINGS allow_nullable_key = 1")


def test_render_rejects_unknown_placeholders_and_bad_names():
    params = SchemaParams()
    with pytest.raises(PipelineError, match="unknown placeholder"):
        render("SELECT {nope}", database="db", params=params)
    with pytest.raises(PipelineError, match="plain identifier"):
        render("SELECT 1", database="db; DROP TABLE x", params=params)
    with pytest.raises(PipelineError, match="book_depth"):
        SchemaParams(book_depth=-1)
    with pytest.raises(PipelineError, match="ws_raw_ttl_days"):
        SchemaParams(ws_raw_ttl_days=0)


def test_badly_named_file_is_refused(tmp_path: Path):
    (tmp_path / "1_first.sql").write_text("SELECT 1;\n")
    with pytest.raises(PipelineError, match=re.escape("NNNN_<lower_case_name>.sql")):
        load_migrations(tmp_path)


def test_sink_progress_keeps_the_latest_state_per_range(
    clickhouse_client: Client, migrated_database: str
):
    table = f"{migrated_database}.sink_progress"
    columns = "(incarnation, topic, partition, first_offset, last_offset, state)"
    for state in ("pending", "committed"):
        clickhouse_client.command(
            f"INSERT INTO {table} {columns} VALUES"
            f" ('inc-1', 'polymarket.trades', 3, 0, 499, '{state}')"
        )
    clickhouse_client.command(
        f"INSERT INTO {table} {columns} VALUES"
        " ('inc-1', 'polymarket.trades', 3, 500, 999, 'pending')"
    )
    rows = clickhouse_client.query(
        f"SELECT partition, first_offset, last_offset, state FROM {table} FINAL"
        " ORDER BY first_offset"
    ).result_rows
    assert rows == [(3, 0, 499, "committed"), (3, 500, 999, "pending")]
