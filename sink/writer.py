"""ClickHouse inserts of Avro containers through clickhouse-connect, and the error classifier.

One code path for the embedded endpoint and ClickHouse Cloud: `raw_insert(table,
column_names=<writer fields that are columns>, insert_block=<container>, fmt="Avro",
settings={insert_deduplication_token, deduplicate_blocks_in_dependent_materialized_views: 1,
...})` posts `INSERT INTO t (cols) FORMAT Avro` with the container as the body.

Errors are sorted into two kinds (`classify`): `DataRefusedError` when ClickHouse's error code
says the data is at fault (parse, type, range errors; Avro decoding errors arrive as code
1001/1002 wrapping an `avro::Exception`), `UnavailableError` for everything else (connection
refused, timeouts, HTTP 5xx without a data-error code, a missing table): those are retried,
never dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from pmpipe.config import Config
from sink.errors import DataRefusedError, MissingTableError, UnavailableError

__all__ = ["DATA_ERROR_CODES", "ClickHouseWriter", "classify", "connect"]

log = logging.getLogger(__name__)

DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        33,  # CANNOT_READ_ALL_DATA
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        128,  # TOO_LARGE_ARRAY_SIZE
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a view's throwIf)
        407,  # DECIMAL_OVERFLOW
        467,  # CANNOT_PARSE_BOOL
    }
)
_WRAPPED_CODES = frozenset({1001, 1002})  # STD_EXCEPTION / UNKNOWN_EXCEPTION
_AVRO_MARKERS = ("avro::exception", "avro exception", "invalid avro")
_NOT_COLUMNS = ("MATERIALIZED", "ALIAS", "EPHEMERAL")
MIN_INSERT_BLOCK_ROWS = 1_048_576
"""An insert is parsed as one block (so a refused insert writes nothing) as long as
`max_insert_block_size` is at least its row count."""


def classify(error: ClickHouseError) -> str:
    """'data' when ClickHouse refused the rows themselves, else 'unavailable'."""
    code = getattr(error, "code", None)
    if code in DATA_ERROR_CODES:
        return "data"
    if code in _WRAPPED_CODES and any(m in str(error).lower() for m in _AVRO_MARKERS):
        return "data"
    return "unavailable"


def connect(config: Config, *, timeout_secs: float = 120.0) -> Client:
    """A clickhouse-connect HTTP client; `UnavailableError` if ClickHouse does not answer."""
    try:
        return clickhouse_connect.get_client(
            host=config.clickhouse_host,
            port=config.clickhouse_port,
            username=config.clickhouse_user,
            password=config.clickhouse_password,
            secure=config.clickhouse_secure,
            connect_timeout=5,
            send_receive_timeout=timeout_secs,
            autogenerate_session_id=False,
            query_retries=0,
        )
    except ClickHouseError as e:
        raise UnavailableError(
            f"ClickHouse at {config.clickhouse_url} is unavailable: {e}", component="sink"
        ) from e


def _stream(pieces: Iterator[bytes]) -> Generator[bytes, None, None]:
    """clickhouse-connect streams a generator body (anything else but bytes/str/file objects
    would be rejected; bytes would be copied behind the statement)."""
    yield from pieces


class ClickHouseWriter:
    """Inserts into `<database>.<table>`; knows each table's insertable columns."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database
        self._columns: dict[str, frozenset[str]] = {}

    def columns(self, table: str) -> frozenset[str]:
        """The columns an insert may name (not MATERIALIZED / ALIAS)."""
        cached = self._columns.get(table)
        if cached is not None:
            return cached
        try:
            rows = self.client.query(
                "SELECT name, default_kind FROM system.columns"
                " WHERE database = {db:String} AND table = {t:String}",
                parameters={"db": self.database, "t": table},
            ).result_rows
        except ClickHouseError as e:
            raise UnavailableError(
                f"cannot read the columns of {table}: {e}", component="sink"
            ) from e
        if not rows:
            raise MissingTableError(
                f"table {self.database}.{table} does not exist (run `pmpipe migrate`)",
                component="sink",
            )
        found = frozenset(str(name) for name, kind in rows if kind not in _NOT_COLUMNS)
        self._columns[table] = found
        return found

    def insert_avro(
        self,
        table: str,
        field_names: Sequence[str],
        data: Iterator[bytes],
        *,
        token: str,
        rows: int,
        topic: str,
        partition: int,
    ) -> float:
        """Insert one container, streamed from its pieces (chunked HTTP body: the statement goes
        in the URL, nothing is copied whole); returns the seconds until ClickHouse acknowledged.
        """
        columns = self.columns(table)
        names = [f for f in field_names if f in columns]
        settings: dict[str, Any] = {
            "insert_deduplication_token": token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            "insert_deduplicate": 1,
            "async_insert": 0,
            "max_insert_block_size": max(MIN_INSERT_BLOCK_ROWS, rows),
        }
        started = time.monotonic()
        try:
            self.client.raw_insert(
                f"{self.database}.{table}",
                column_names=names,
                insert_block=_stream(data),
                fmt="Avro",
                settings=settings,
            )
        except ClickHouseError as e:
            if classify(e) == "data":
                raise DataRefusedError(
                    f"ClickHouse refused {rows} row(s) for {table}: {e}",
                    code=getattr(e, "code", None),
                    topic=topic,
                    partition=partition,
                ) from e
            raise UnavailableError(
                f"insert into {table} failed: {e}", topic=topic, partition=partition
            ) from e
        return time.monotonic() - started
