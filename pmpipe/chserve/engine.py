"""The chdb side: one embedded ClickHouse engine per data directory, and connections to it.

chdb 4.4 hosts a single engine per process, bound to one data directory (a second *process*
on the same directory fails with "Cannot lock file .../status"). Inside the process any number
of connections to that directory may be open at once (`chdb._chdb.connect(path)`); each keeps
its own session state (current database, SET settings) and queries on different connections
run in parallel (chdb releases the GIL). Opening one costs ~0.1 ms. The engine shuts down when
the last connection closes, so `ChdbEngine` keeps an anchor connection open for its lifetime.

Everything here is synchronous and must run off the event loop. A `ChConnection` is used by
one request at a time (the pool and the session registry guarantee it).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from pmpipe.chserve.protocol import ClickHouseError, Stats, error_from_chdb
from pmpipe.errors import PipelineError

log = logging.getLogger(__name__)

SERVER_TIMEZONE = "UTC"
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNKNOWN = "\x00unknown"  # an override whose value on the connection is not known


class EngineError(PipelineError):
    """The embedded engine could not be opened (directory locked, bad path...)."""


class RawResult(Protocol):
    def bytes(self) -> bytes: ...
    def rows_read(self) -> int: ...
    def bytes_read(self) -> int: ...
    def rows_written(self) -> int: ...
    def bytes_written(self) -> int: ...
    def storage_rows_read(self) -> int: ...
    def storage_bytes_read(self) -> int: ...


class RawConnection(Protocol):
    """The subset of `chdb._chdb.connect` used here (pybind11, no stubs)."""

    def query(self, query_str: str, format: str = ..., *, params: dict[str, str]) -> RawResult: ...
    def send_insert(self, query_str: str, format: str = ...) -> Any: ...
    def insert_append(self, handle: Any, data: bytes) -> None: ...
    def insert_done(self, handle: Any) -> RawResult: ...
    def insert_cancel(self, handle: Any) -> None: ...
    def classify_query(self, sql: str, target_database: str = ...) -> dict[str, Any]: ...
    def close(self) -> None: ...


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Outcome:
    """What one request produced: the response body, the output format when the statement
    produces a result, and statistics."""

    body: bytes = b""
    fmt: str | None = None
    stats: Stats = field(default_factory=Stats)
    control: bool = False  # a SET/USE-like statement changed the connection's state


class ChConnection:
    """One chdb connection plus what this server changed on it.

    URL settings of a request must apply to that request only, yet chdb has no per-query
    settings API: `apply()` SETs them on the connection and, at the next request, resets the
    ones that request does not send (to the value the session itself chose, or DEFAULT).
    Identical settings on consecutive requests (clickhouse-connect sends the same ones every
    time) cost no extra statement.
    """

    def __init__(self, raw: RawConnection, *, readonly: bool, baseline: Mapping[str, str]) -> None:
        self.raw = raw
        self.readonly = readonly
        self.tainted = False  # state cannot be reset (readonly changed...): do not reuse
        self._overrides: dict[str, str] = {}
        self._baseline = dict(baseline)
        self._home_db = "default"
        self._current_db: str | None = "default"

    # --- statements -----------------------------------------------------------------------
    def run(
        self, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None
    ) -> RawResult:
        try:
            return self.raw.query(sql, fmt, params=dict(params or {}))
        except RuntimeError as e:
            raise error_from_chdb(e) from None

    def scalar(self, sql: str) -> str:
        return self.run(sql).bytes().decode().rstrip("\n")

    def classify(self, sql: str) -> tuple[str, int]:
        """chdb's own classification: (READ_ONLY|MUTATING|MUTATING_GLOBAL|CONTROL|UNKNOWN,
        number of statements). Never executes anything."""
        info = self.raw.classify_query(sql)
        return str(info["query_class"].name), int(info["statement_count"])

    # --- per-request state ----------------------------------------------------------------
    def apply(self, database: str | None, settings: Mapping[str, str]) -> None:
        """Make `settings` (and nothing else from earlier requests) and `database` current."""
        for name in settings:
            if not _SETTING_NAME.match(name):
                raise ClickHouseError(115, f"Unknown setting '{name}'")
        changes: dict[str, str | None] = {}
        for name in self._overrides:
            if name not in settings:
                changes[name] = self._baseline.get(name)
        for name, value in settings.items():
            if self._overrides.get(name) != value:
                changes[name] = value
        if changes:
            assignments = ", ".join(
                f"{name} = {'DEFAULT' if value is None else quote_literal(value)}"
                for name, value in changes.items()
            )
            try:
                self.run(f"SET {assignments}")
            except ClickHouseError:
                for name in changes:
                    self._overrides[name] = _UNKNOWN
                raise
            for name in changes:
                if name in settings:
                    self._overrides[name] = settings[name]
                else:
                    self._overrides.pop(name, None)
            if "readonly" in changes:
                self.tainted = True
        target = database or self._home_db
        if self._current_db != target:
            self._current_db = None
            self.run(f"USE {quote_identifier(target)}")
            self._current_db = target

    def adopt_session_state(self) -> None:
        """After a SET/USE/... statement in a session: whatever the session now has becomes
        its own state, restored after later requests' URL settings."""
        current = self.scalar("SELECT currentDatabase()")
        if current != self._current_db:
            self._home_db = current
        self._current_db = current
        rows = self.run("SELECT name, value FROM system.settings WHERE changed", "TSVRaw")
        changed: dict[str, str] = {}
        for line in rows.bytes().decode().splitlines():
            name, _, value = line.partition("\t")
            changed[name] = value
        for name, value in list(self._overrides.items()):
            if changed.get(name) != value:
                del self._overrides[name]  # the session's own SET replaced ours
        self._baseline = {n: v for n, v in changed.items() if n not in self._overrides}

    # --- inserts --------------------------------------------------------------------------
    def begin_insert(self, statement: str, fmt: str) -> InsertStream:
        try:
            handle = self.raw.send_insert(statement, fmt)
        except RuntimeError as e:
            raise error_from_chdb(e) from None
        return InsertStream(self.raw, handle)

    def close(self) -> None:
        try:
            self.raw.close()
        except RuntimeError as e:  # closing must not stop a shutdown
            log.warning("closing a chdb connection failed: %s", e)


class InsertStream:
    """A streaming INSERT: chdb parses appended bytes as they come, in constant memory."""

    def __init__(self, raw: RawConnection, handle: Any) -> None:
        self._raw = raw
        self._handle = handle
        self._open = True

    def append(self, data: bytes) -> None:
        try:
            self._raw.insert_append(self._handle, data)
        except RuntimeError as e:
            self.cancel()
            raise error_from_chdb(e) from None

    def finish(self) -> Stats:
        self._open = False
        try:
            result = self._raw.insert_done(self._handle)
        except RuntimeError as e:
            raise error_from_chdb(e) from None
        return Stats(written_rows=result.rows_written(), written_bytes=result.bytes_written())

    def cancel(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            self._raw.insert_cancel(self._handle)
        except RuntimeError as e:
            log.warning("cancelling a streaming insert failed: %s", e)


def result_stats(result: RawResult) -> Stats:
    return Stats(
        read_rows=result.storage_rows_read(),
        read_bytes=result.storage_bytes_read(),
        written_rows=result.rows_written(),
        written_bytes=result.bytes_written(),
        result_rows=result.rows_read(),
        result_bytes=result.bytes_read(),
    )


# --- the engine ------------------------------------------------------------------------------


def _use_utc_process_timezone() -> None:
    """The server's timezone is UTC (as on ClickHouse Cloud). chdb reads TZ when it starts,
    which is at `import chdb`; connections also get session_timezone=UTC, which covers a
    process that imported chdb earlier."""
    if "chdb" not in sys.modules and os.environ.get("TZ") != SERVER_TIMEZONE:
        os.environ["TZ"] = SERVER_TIMEZONE
        time.tzset()


class ChdbEngine:
    """The embedded engine on `data_dir`: opens connections and knows the server's facts."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.version = ""
        self.output_formats: dict[str, str] = {}  # lower-case name -> canonical name
        self._module: Any = None
        self._anchor: ChConnection | None = None

    def open(self) -> None:
        _use_utc_process_timezone()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        from chdb import _chdb  # imported here, after the TZ is set

        self._module = _chdb
        self._anchor = self.connect(readonly=False)
        self.version = self._anchor.scalar("SELECT version()")
        rows = self._anchor.run("SELECT name FROM system.formats WHERE is_output", "TSVRaw")
        self.output_formats = {n.lower(): n for n in rows.bytes().decode().splitlines()}
        log.debug("chdb %s opened on %s", self.version, self.data_dir)

    def connect(self, *, readonly: bool) -> ChConnection:
        """A new connection; `readonly` ones run with readonly=2 (as ClickHouse runs GET)."""
        if self._module is None:
            raise EngineError("the chdb engine is not open", component="chserve")
        options = f"session_timezone={SERVER_TIMEZONE}" + ("&readonly=2" if readonly else "")
        try:
            raw = cast(RawConnection, self._module.connect(f"{self.data_dir}?{options}"))
        except RuntimeError as e:
            raise EngineError(
                f"cannot open chdb on {self.data_dir}: {e} (chdb allows one process per data "
                "directory: is another `pmpipe serve` or chdb user running on it?)",
                component="chserve",
            ) from None
        return ChConnection(raw, readonly=readonly, baseline={"session_timezone": SERVER_TIMEZONE})

    def close(self) -> None:
        """Close the anchor; with the last connection closed chdb flushes and shuts down."""
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None
