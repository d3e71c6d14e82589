"""Versioned, idempotent ClickHouse migrations (clickhouse/migrations/NNNN_<name>.sql).

One code path for every deployment: a clickhouse-connect HTTP client, whether it talks to the
embedded endpoint (`pmpipe serve`) or to ClickHouse Cloud.

File format (see clickhouse/README.md):

* ``NNNN_<name>.sql``: a 4-digit version and a lower-case name; applied in version order;
* statements end with ``;`` at the end of a line; full-line ``--`` comments are dropped;
* every statement is idempotent (``CREATE ... IF NOT EXISTS``), so a run interrupted halfway
  is completed by the next run;
* placeholders, rendered here:
  ``{database}`` the target database (every name in a file is qualified with it),
  ``{table_settings}`` / ``{table_settings:k = v, ...}`` the SETTINGS clause of a MergeTree
  table: the extra settings plus ``non_replicated_deduplication_window`` on self-hosted or
  embedded ClickHouse (so `insert_deduplication_token` deduplicates), nothing of ours on
  ClickHouse Cloud / replicated engines (their replicated window applies),
  ``{ws_raw_ttl_days}`` the raw-frame archive's TTL in days,
  ``{book_depth}`` the order-book levels kept per side (0 = all).

Applied files are recorded in ``<database>.schema_migrations`` (version, name, checksum,
applied_at). The checksum is the SHA-256 of the file's bytes (before rendering): an applied
file that changed is refused, since its change would never reach existing databases; write a
new migration instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from pmpipe.errors import PipelineError
from pmpipe.paths import clickhouse_dir
from pmpipe.topics import BOOKS, EVENTS, MARKETS, PRICES, TRADES, WS_RAW

log = logging.getLogger(__name__)

COMPONENT = "migrate"
MIGRATIONS_TABLE = "schema_migrations"
DEDUP_WINDOW = 10_000
"""non_replicated_deduplication_window of every data and rollup table (self-hosted/embedded):
how many of its most recent insert blocks (one per batch and month partition touched) a table
remembers by deduplication token. A redelivered batch is dropped only if fewer blocks than this
reached the table since its first insert: 10,000 (ClickHouse's replicated default) covers about
15 minutes of every sink instance inserting 10 batches a second into the same table."""
DEFAULT_WS_RAW_TTL_DAYS = 30
DEFAULT_BOOK_DEPTH = 0
TOPIC_TABLES = {
    MARKETS: "markets",
    PRICES: "market_prices",
    TRADES: "market_trades",
    BOOKS: "orderbook_snapshots_in",
    EVENTS: "market_events",
    WS_RAW: "ws_raw_frames",
}
"""The table the sink inserts each topic's records into (`INSERT ... FORMAT Avro`); its columns
are the topic's Avro fields. Books go through a Null table whose view caps the depth and writes
orderbook_snapshots."""
BOOKKEEPING_TABLES = frozenset({MIGRATIONS_TABLE, "sink_progress"})
"""Tables without a deduplication window: every write to them must land."""

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_PLACEHOLDER = re.compile(r"\{(?P<name>[a-z_]+)(?::(?P<extra>[^{}]*))?\}")
_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?(?:\n|\Z)")
_WINDOW_SETTING = re.compile(r"non_replicated_deduplication_window\s*=\s*(\d+)")
_REPLICATED_ENGINE = re.compile(r"^(Replicated|Shared)")
_PROBE_TABLE = "_pmpipe_engine_probe"


@dataclass(frozen=True)
class SchemaParams:
    """What the placeholders of the migration files are rendered with."""

    replicated: bool = False
    """Replicated/shared engines (ClickHouse Cloud): leave the dedup window to the server."""
    ws_raw_ttl_days: int = DEFAULT_WS_RAW_TTL_DAYS
    book_depth: int = DEFAULT_BOOK_DEPTH
    """Order-book levels kept per side in orderbook_snapshots; 0 keeps every level."""

    def __post_init__(self) -> None:
        if self.ws_raw_ttl_days < 1:
            raise PipelineError(
                f"ws_raw_ttl_days must be >= 1, got {self.ws_raw_ttl_days}", component=COMPONENT
            )
        if self.book_depth < 0:
            raise PipelineError(
                f"book_depth must be >= 0 (0 keeps every level), got {self.book_depth}",
                component=COMPONENT,
            )


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path
    checksum: str
    text: str

    @property
    def label(self) -> str:
        """``NNNN_<name>``, the file name without ``.sql``."""
        return f"{self.version:04d}_{self.name}"

    def statements(self, database: str, params: SchemaParams) -> list[str]:
        """The rendered statements of this file, in order."""
        body = "\n".join(
            line for line in self.text.splitlines() if not line.lstrip().startswith("--")
        )
        rendered = render(body, database=database, params=params, source=self.label)
        return [s.strip() for s in _STATEMENT_END.split(rendered) if s.strip()]


@dataclass(frozen=True)
class AppliedMigration:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: Any


# --------------------------------------------------------------------------------------------
# files


def migrations_dir() -> Path:
    return clickhouse_dir() / "migrations"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every ``NNNN_<name>.sql`` of `directory` (default clickhouse/migrations), by version."""
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise PipelineError(f"migrations folder {directory} is missing", component=COMPONENT)
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise PipelineError(
                f"migration file {path.name} is not named NNNN_<lower_case_name>.sql",
                component=COMPONENT,
            )
        version = int(match["version"])
        if version in migrations:
            raise PipelineError(
                f"two migrations share version {version}: {migrations[version].path.name} "
                f"and {path.name}",
                component=COMPONENT,
            )
        data = path.read_bytes()
        migrations[version] = Migration(
            version=version,
            name=match["name"],
            path=path,
            checksum=hashlib.sha256(data).hexdigest(),
            text=data.decode("utf-8"),
        )
    return [migrations[v] for v in sorted(migrations)]


def render(text: str, *, database: str, params: SchemaParams, source: str = "<text>") -> str:
    """Substitute the placeholders of a migration; an unknown placeholder is an error."""
    check_identifier(database)

    def substitute(match: re.Match[str]) -> str:
        name, extra = match["name"], match["extra"]
        if name == "table_settings":
            return table_settings_clause(replicated=params.replicated, extra=extra)
        if extra is not None:
            raise PipelineError(
                f"{source}: placeholder {match[0]} takes no argument", component=COMPONENT
            )
        if name == "database":
            return database
        if name == "ws_raw_ttl_days":
            return str(int(params.ws_raw_ttl_days))
        if name == "book_depth":
            return str(int(params.book_depth))
        raise PipelineError(f"{source}: unknown placeholder {match[0]}", component=COMPONENT)

    return _PLACEHOLDER.sub(substitute, text)


def table_settings_clause(*, replicated: bool, extra: str | None = None) -> str:
    """``SETTINGS ...`` of a MergeTree table: `extra` plus our deduplication window when the
    engine is not replicated; empty when there is nothing to set."""
    settings = [s.strip() for s in (extra or "").split(",") if s.strip()]
    if not replicated:
        settings.append(f"non_replicated_deduplication_window = {DEDUP_WINDOW}")
    return f"SETTINGS {', '.join(settings)}" if settings else ""


def check_identifier(database: str) -> None:
    ok = bool(database) and all(c.isalnum() or c == "_" for c in database)
    if not ok or database[0].isdigit() or not database.isascii():
        raise PipelineError(
            f"database name must be a plain identifier (letters, digits, _), got {database!r}",
            component=COMPONENT,
        )


# --------------------------------------------------------------------------------------------
# server state


def detect_replicated(client: Client, database: str) -> bool:
    """Whether MergeTree tables created in `database` are replicated (ClickHouse Cloud's
    SharedMergeTree, or a Replicated database): then the replicated deduplication window
    applies and ``non_replicated_deduplication_window`` is not ours to set.

    Asks ``cloud_mode`` first, then creates (and drops) a probe MergeTree table and reads the
    engine the server actually gave it. `database` must exist."""
    check_identifier(database)
    rows = _rows(client, "SELECT value FROM system.settings WHERE name = 'cloud_mode'")
    if rows and str(rows[0][0]).strip().lower() in {"1", "true"}:
        log.info("cloud_mode is on: replicated engines, server deduplication window applies")
        return True
    probe = f"{database}.{_PROBE_TABLE}"
    _command(client, f"CREATE TABLE IF NOT EXISTS {probe} (x UInt8) ENGINE = MergeTree ORDER BY x")
    try:
        rows = _rows(
            client,
            "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            {"db": database, "t": _PROBE_TABLE},
        )
    finally:
        _command(client, f"DROP TABLE IF EXISTS {probe}")
    if not rows:
        raise PipelineError(
            f"probe table {probe} vanished before its engine could be read", component=COMPONENT
        )
    engine = str(rows[0][0])
    replicated = bool(_REPLICATED_ENGINE.match(engine))
    log.info(
        "database %s creates MergeTree tables as %s (replicated=%s)", database, engine, replicated
    )
    return replicated


def ensure_database(client: Client, database: str) -> None:
    check_identifier(database)
    _command(client, f"CREATE DATABASE IF NOT EXISTS {database}")


def ensure_migrations_table(client: Client, database: str) -> None:
    check_identifier(database)
    _command(
        client,
        f"CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE} ("
        " version UInt32, name String, checksum String,"
        " applied_at DateTime64(3, 'UTC') DEFAULT now64(3)"
        ") ENGINE = ReplacingMergeTree(applied_at) ORDER BY version",
    )


def applied_migrations(client: Client, database: str) -> dict[int, AppliedMigration]:
    """What ``schema_migrations`` records (nothing if the table does not exist yet)."""
    check_identifier(database)
    exists = _rows(
        client,
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": database, "t": MIGRATIONS_TABLE},
    )
    if not exists or int(exists[0][0]) == 0:
        return {}
    rows = _rows(
        client,
        f"SELECT version, name, checksum, applied_at FROM {database}.{MIGRATIONS_TABLE} FINAL"
        " ORDER BY version",
    )
    return {
        int(r[0]): AppliedMigration(
            version=int(r[0]), name=str(r[1]), checksum=str(r[2]), applied_at=r[3]
        )
        for r in rows
    }


def pending_migrations(
    client: Client, database: str, *, directory: Path | None = None
) -> list[Migration]:
    """The migrations not applied to `database` yet, in order. Read-only.

    Raises PipelineError when an applied migration's file changed (checksum) or is gone."""
    migrations = load_migrations(directory)
    applied = applied_migrations(client, database)
    _verify_applied(migrations, applied, database)
    return [m for m in migrations if m.version not in applied]


def apply_migrations(
    client: Client,
    database: str,
    *,
    replicated: bool | None = None,
    directory: Path | None = None,
    ws_raw_ttl_days: int = DEFAULT_WS_RAW_TTL_DAYS,
    book_depth: int = DEFAULT_BOOK_DEPTH,
) -> list[str]:
    """Bring `database` to the newest schema; returns the labels (``NNNN_<name>``) applied.

    Creates the database and ``schema_migrations`` if missing, refuses to run when an applied
    file changed, then applies each pending file's statements in order and records it.
    `replicated`: None detects it (see `detect_replicated`); True/False forces the rendering of
    the deduplication window. `ws_raw_ttl_days` and `book_depth` are rendered into the files
    that create the raw archive and the order-book view (later changes: clickhouse/README.md).
    Finally checks that every non-replicated data and rollup table has a deduplication window,
    since exactly-once inserts depend on it."""
    check_identifier(database)
    SchemaParams(ws_raw_ttl_days=ws_raw_ttl_days, book_depth=book_depth)  # validates early
    migrations = load_migrations(directory)
    ensure_database(client, database)
    ensure_migrations_table(client, database)
    applied = applied_migrations(client, database)
    _verify_applied(migrations, applied, database)
    pending = [m for m in migrations if m.version not in applied]
    if not pending:
        log.info("database %s is up to date (%d migrations applied)", database, len(applied))
        return []
    if replicated is None:
        replicated = detect_replicated(client, database)
    params = SchemaParams(
        replicated=replicated, ws_raw_ttl_days=ws_raw_ttl_days, book_depth=book_depth
    )
    newest = max(applied, default=0)
    done: list[str] = []
    for migration in pending:
        if migration.version < newest:
            log.warning(
                "applying migration %s after the newer %04d (out of order)",
                migration.label,
                newest,
            )
        statements = migration.statements(database, params)
        for index, statement in enumerate(statements, start=1):
            try:
                client.command(statement)
            except ClickHouseError as e:
                raise PipelineError(
                    f"migration {migration.label} failed at statement {index}/{len(statements)} "
                    f"on database {database}: {e}\n--- statement ---\n{statement}",
                    component=COMPONENT,
                ) from e
        _command(
            client,
            f"INSERT INTO {database}.{MIGRATIONS_TABLE} (version, name, checksum)"
            " SELECT {v:UInt32}, {n:String}, {c:String}",
            {"v": migration.version, "n": migration.name, "c": migration.checksum},
        )
        log.info(
            "applied migration %s to %s (%d statements)", migration.label, database, len(statements)
        )
        done.append(migration.label)
    if not replicated:
        missing = tables_without_dedup_window(client, database)
        if missing:
            raise PipelineError(
                f"tables in {database} lack non_replicated_deduplication_window > 0, so "
                f"deduplication tokens would be ignored: {', '.join(missing)}",
                component=COMPONENT,
            )
    return done


def tables_without_dedup_window(client: Client, database: str) -> list[str]:
    """Non-replicated MergeTree-family tables of `database` (bookkeeping tables aside) whose
    ``non_replicated_deduplication_window`` is missing or 0."""
    check_identifier(database)
    rows = _rows(
        client,
        "SELECT name, engine, create_table_query FROM system.tables"
        " WHERE database = {db:String} AND engine LIKE '%MergeTree' ORDER BY name",
        {"db": database},
    )
    missing = []
    for name, engine, create in rows:
        if name in BOOKKEEPING_TABLES or _REPLICATED_ENGINE.match(str(engine)):
            continue
        match = _WINDOW_SETTING.search(str(create))
        if not match or int(match[1]) <= 0:
            missing.append(str(name))
    return missing


# --------------------------------------------------------------------------------------------


def _verify_applied(
    migrations: Sequence[Migration], applied: dict[int, AppliedMigration], database: str
) -> None:
    files = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        migration = files.get(version)
        if migration is None:
            raise PipelineError(
                f"database {database} has migration {version:04d}_{row.name} applied but no "
                f"such file exists: the database is newer than this code",
                component=COMPONENT,
            )
        if migration.checksum != row.checksum:
            raise PipelineError(
                f"migration {migration.label} was changed after it was applied to {database} "
                f"(checksum {row.checksum[:12]} applied, {migration.checksum[:12]} on disk); "
                f"restore the file and put the change in a new migration",
                component=COMPONENT,
            )


def _command(client: Client, sql: str, parameters: dict[str, Any] | None = None) -> None:
    try:
        client.command(sql, parameters=parameters)
    except ClickHouseError as e:
        raise PipelineError(
            f"ClickHouse refused: {e}\n--- statement ---\n{sql}", component=COMPONENT
        ) from e


def _rows(
    client: Client, sql: str, parameters: dict[str, Any] | None = None
) -> list[Sequence[Any]]:
    try:
        result = client.query(sql, parameters=parameters)
    except ClickHouseError as e:
        raise PipelineError(
            f"ClickHouse query failed: {e}\n--- query ---\n{sql}", component=COMPONENT
        ) from e
    rows: list[Sequence[Any]] = list(result.result_rows)
    return rows
