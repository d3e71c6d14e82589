"""One request's statement, from raw body bytes to an `Outcome` (synchronous, off the loop).

As in ClickHouse, the statement is the `query` URL parameter, a newline, then the request
body. An `INSERT ... FORMAT x` (or `... VALUES`) is streamed: once its head is complete the
rest of the body goes to chdb's streaming insert in chunks, never held whole. Any other
statement is accumulated (bounded) and run with `query`.

Calls happen in order from one thread at a time: `start()`, `feed()`..., `finish()`, or
`abort()` after a failure.
"""

from __future__ import annotations

import logging

from pmpipe.chserve import sqlscan
from pmpipe.chserve.codecs import make_decoder
from pmpipe.chserve.engine import ChConnection, InsertStream, Outcome, result_stats
from pmpipe.chserve.protocol import ClickHouseError, RequestSpec
from pmpipe.chserve.sqlscan import SplitStatus

log = logging.getLogger(__name__)

INSERT_HEAD_LIMIT = 1 << 20  # an INSERT whose FORMAT/VALUES is not found in 1 MiB is run whole
DEFAULT_MAX_QUERY_BYTES = 64 << 20  # other statements are read whole, up to this size

READONLY_MESSAGE = (
    "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
    "readonly. You should use method POST for modifying queries"
)


class StatementRunner:
    def __init__(
        self,
        conn: ChConnection,
        spec: RequestSpec,
        *,
        content_encoding: str,
        output_formats: dict[str, str],
        max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES,
    ) -> None:
        self._conn = conn
        self._spec = spec
        self._formats = output_formats
        self._max_query_bytes = max_query_bytes
        self._decoder = make_decoder(content_encoding, spec.native_decompress)
        self._head = bytearray(spec.query_text.encode() + b"\n" if spec.query_text else b"")
        self._insert: InsertStream | None = None
        self._whole = False  # decided: not a streamed insert, run the whole text

    def start(self) -> None:
        self._conn.apply(self._spec.database, self._spec.settings)

    def feed(self, raw: bytes) -> None:
        self._route(self._decoder.decode(raw), final=False)

    def finish(self) -> Outcome:
        self._route(self._decoder.flush(), final=True)
        if self._insert is not None:
            stats = self._insert.finish()
            self._insert = None
            return Outcome(stats=stats)
        return self._run_whole()

    def abort(self) -> None:
        if self._insert is not None:
            self._insert.cancel()
            self._insert = None

    # ------------------------------------------------------------------------------------------
    def _route(self, data: bytes, *, final: bool) -> None:
        if self._insert is not None:
            if data:
                self._insert.append(data)
            return
        self._head += data
        if not self._whole:
            status, split = sqlscan.split_insert(self._head.decode("latin-1"), final)
            if status is SplitStatus.SPLIT and split is not None:
                self._start_insert(split)
                return
            if status is not SplitStatus.NEED_MORE or len(self._head) > INSERT_HEAD_LIMIT:
                self._whole = True
        if len(self._head) > self._max_query_bytes:
            raise ClickHouseError(
                229, f"Max query size exceeded: the query is over {self._max_query_bytes} bytes"
            )

    def _start_insert(self, split: sqlscan.InsertSplit) -> None:
        statement = _utf8(split.statement.encode("latin-1"))
        if self._spec.readonly:
            raise ClickHouseError(164, READONLY_MESSAGE)
        data = bytes(self._head[split.data_offset :])
        if data.startswith(b";"):
            raise ClickHouseError(
                62,
                "You have excessive ';' symbol before data for INSERT. Note that there is no "
                "';' just after format name, you need to put at least one whitespace symbol "
                "before the data",
            )
        self._head.clear()
        self._insert = self._conn.begin_insert(statement, split.fmt)
        if data:
            self._insert.append(data)

    def _check(self, sql: str) -> str:
        """Refusals that do not need chdb to run anything; returns chdb's query class."""
        engine = sqlscan.refused_engine(sql)
        if engine is not None:
            raise ClickHouseError(
                344,
                f"The {engine} table engine is not available in the embedded ClickHouse "
                "(chdb cannot run it and it damages the data directory); consume topics with "
                "the pipeline's sink instead",
                status=400,
            )
        query_class, statements = self._conn.classify(sql)
        if statements > 1:
            raise ClickHouseError(62, "Multi-statements are not allowed", status=400)
        if self._spec.readonly and query_class not in ("READ_ONLY", "UNKNOWN"):
            raise ClickHouseError(164, READONLY_MESSAGE)
        return query_class

    def _run_whole(self) -> Outcome:
        sql = _utf8(bytes(self._head))
        if not sql.strip():
            raise ClickHouseError(62, "Empty query", status=400)
        query_class = self._check(sql)
        result = self._conn.run(sql, self._spec.default_format, self._spec.query_params)
        produces = query_class == "READ_ONLY"
        fmt = sqlscan.format_clause(sql, self._formats) or self._spec.default_format
        return Outcome(
            # a copy: chdb's get_memview() does not keep the result buffer alive
            body=result.bytes(),
            fmt=fmt if produces else None,
            stats=result_stats(result),
            control=query_class == "CONTROL",
        )


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClickHouseError(62, f"The query is not valid UTF-8: {e}", status=400) from None
