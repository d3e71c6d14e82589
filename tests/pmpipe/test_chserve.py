"""The embedded ClickHouse endpoint (pmpipe.chserve): pure helpers, then a real server process
(chdb) driven by the real clients: clickhouse-connect and plain HTTP (httpx)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import gzip
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import lz4.block
import lz4.frame
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from pmpipe.chserve import codecs, sqlscan
from pmpipe.chserve.codecs import choose_response_encoding, make_decoder
from pmpipe.chserve.protocol import (
    ERROR_NAMES,
    ClickHouseError,
    Stats,
    check_credentials,
    error_from_chdb,
    extract_credentials,
    http_status_for,
    parse_request,
    summary_header,
)
from pmpipe.chserve.sqlscan import SplitStatus

try:
    from backports import zstd
except ImportError:  # pragma: no cover - Python 3.14+
    from compression import zstd  # type: ignore[import-not-found,no-redef]

PASSWORD = "s3cret:p@ss w%rd"
USER = "default"


# === pure helpers ===============================================================================


class TestSplitInsert:
    def test_native_data_starts_after_the_newline_even_with_leading_space_bytes(self) -> None:
        text = "INSERT INTO db.t (`a`, `b`) FORMAT Native\n" + "\x20\x01binary"
        status, split = sqlscan.split_insert(text, final=False)
        assert status is SplitStatus.SPLIT and split is not None
        assert split.statement == "INSERT INTO db.t (`a`, `b`)"
        assert split.fmt == "Native"
        assert text[split.data_offset :] == "\x20\x01binary"

    def test_spaces_then_data_on_the_same_line(self) -> None:
        status, split = sqlscan.split_insert("INSERT INTO t FORMAT CSV   1,2\n", final=True)
        assert status is SplitStatus.SPLIT and split is not None
        assert "INSERT INTO t FORMAT CSV   1,2\n"[split.data_offset :] == "1,2\n"

    def test_incomplete_heads_ask_for_more(self) -> None:
        for head in (
            "INS",
            "INSERT INTO t",
            "INSERT INTO t FORMAT Nat",
            "INSERT INTO t FORMAT CSV  ",
        ):
            assert sqlscan.split_insert(head, final=False)[0] is SplitStatus.NEED_MORE, head
        status, split = sqlscan.split_insert("INSERT INTO t FORMAT CSV", final=True)
        assert status is SplitStatus.SPLIT and split is not None and split.fmt == "CSV"

    def test_values_settings_and_keywords_in_names_and_literals(self) -> None:
        text = "INSERT INTO format SETTINGS x = 'FORMAT JSON' VALUES (1, 'FORMAT')"
        status, split = sqlscan.split_insert(text, final=True)
        assert status is SplitStatus.SPLIT and split is not None
        assert split.statement == "INSERT INTO format SETTINGS x = 'FORMAT JSON'"
        assert split.fmt == "Values"
        assert text[split.data_offset :] == " (1, 'FORMAT')"
        commented = "/* FORMAT x */ INSERT INTO t (format) -- FORMAT y\n FORMAT TSV\n1\n"
        status, split = sqlscan.split_insert(commented, final=True)
        assert split is not None and split.fmt == "TSV" and commented[split.data_offset :] == "1\n"

    def test_not_streamed(self) -> None:
        assert sqlscan.split_insert("SELECT 1", final=True)[0] is SplitStatus.NOT_INSERT
        assert sqlscan.split_insert("INSERT INTO t SELECT 1", final=False)[0] is SplitStatus.NO_DATA


def test_format_clause_and_refused_engine() -> None:
    formats = {"native": "Native", "jsoneachrow": "JSONEachRow", "tsv": "TSV"}
    assert sqlscan.format_clause("SELECT 1\n FORMAT Native", formats) == "Native"
    assert (
        sqlscan.format_clause("SELECT 1 FORMAT jsoneachrow SETTINGS a=1", formats) == "JSONEachRow"
    )
    assert sqlscan.format_clause("SELECT x AS format FROM t", formats) is None
    assert sqlscan.format_clause("SELECT format('{}', 'Native')", formats) is None
    assert sqlscan.format_clause("SELECT (SELECT 1 FORMAT TSV)", formats) is None
    assert sqlscan.refused_engine("CREATE TABLE k (a String) ENGINE = Kafka('b:9092')") == "Kafka"
    assert (
        sqlscan.refused_engine("create table k (a String) engine=`kafka` settings x=1") == "kafka"
    )
    assert sqlscan.refused_engine("CREATE TABLE k (a String) ENGINE Kafka") == "Kafka"
    assert sqlscan.refused_engine("SELECT 'ENGINE = Kafka'") is None
    assert sqlscan.refused_engine("CREATE TABLE m (a String) ENGINE = MergeTree ORDER BY a") is None


class TestCodecs:
    PAYLOAD = b"".join(f"row {i}\n".encode() for i in range(50_000))

    @staticmethod
    def _pieces(data: bytes, size: int = 7_919) -> Iterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    def _roundtrip(self, encoding: str, body: bytes, native: bool = False) -> bytes:
        decoder = make_decoder(encoding, native)
        out = b"".join(decoder.decode(piece) for piece in self._pieces(body))
        return out + decoder.flush()

    def test_every_concatenated_frame_is_decoded(self) -> None:
        parts = [self.PAYLOAD[i : i + 65_536] for i in range(0, len(self.PAYLOAD), 65_536)]
        assert len(parts) > 3
        lz4_body = b"".join(lz4.frame.compress(p) for p in parts)
        zstd_body = b"".join(zstd.compress(p) for p in parts)
        gzip_body = b"".join(gzip.compress(p) for p in parts)
        assert self._roundtrip("lz4", lz4_body) == self.PAYLOAD
        assert self._roundtrip("zstd", zstd_body) == self.PAYLOAD
        assert self._roundtrip("gzip", gzip_body) == self.PAYLOAD
        assert self._roundtrip("deflate", zlib.compress(self.PAYLOAD)) == self.PAYLOAD
        assert self._roundtrip("", self.PAYLOAD) == self.PAYLOAD

    def test_native_blocks(self) -> None:
        blocks = [self.PAYLOAD[:100_000], self.PAYLOAD[100_000:]]
        body = native_blocks(blocks[0], method=0x82) + native_blocks(blocks[1], method=0x02)
        decoder = codecs.NativeBlocks(verify_checksums=False)
        out = b"".join(decoder.decode(piece) for piece in self._pieces(body)) + decoder.flush()
        assert out == self.PAYLOAD

    def test_truncated_and_unknown_bodies_fail(self) -> None:
        body = lz4.frame.compress(self.PAYLOAD)
        with pytest.raises(ClickHouseError) as truncated:
            self._roundtrip("lz4", body[:-10])
        assert truncated.value.code == 271
        with pytest.raises(ClickHouseError) as unknown:
            make_decoder("xz", False)
        assert unknown.value.code == 89

    def test_response_encoding_negotiation(self) -> None:
        assert choose_response_encoding("lz4,zstd,gzip,deflate") == "zstd"
        assert choose_response_encoding("gzip, deflate") == "gzip"
        assert choose_response_encoding("zstd;q=0, lz4") == "lz4"
        assert choose_response_encoding("identity") is None
        assert choose_response_encoding("*") == "zstd"
        for name in ("zstd", "lz4", "gzip", "deflate"):
            encoded = codecs.encode_response(self.PAYLOAD, name)
            assert self._roundtrip(name, encoded) == self.PAYLOAD


def native_blocks(data: bytes, method: int) -> bytes:
    """One ClickHouse compressed block (checksum left zero: the server verifies it only when
    clickhouse-cityhash is installed)."""
    payload = lz4.block.compress(data, store_size=False) if method == 0x82 else data
    header = struct.pack("<BII", method, len(payload) + 9, len(data))
    return b"\0" * 16 + header + payload


class TestProtocol:
    def test_chdb_error_text_is_parsed(self) -> None:
        error = error_from_chdb(
            RuntimeError(
                "Code: 27. DB::Exception: Cannot parse input: expected ','.\n: While "
                "executing CSVRowInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED) "
                "(version 26.9.2.1)"
            )
        )
        assert error.code == 27 and error.status == 400
        assert error.body("26.9") == (
            "Code: 27. DB::Exception: Cannot parse input: expected ','.\n: While executing "
            "CSVRowInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED) (version 26.9)\n"
        )
        assert error_from_chdb(RuntimeError("boom")).code == 1002

    def test_status_mapping(self) -> None:
        assert http_status_for(516) == 403
        assert http_status_for(62) == 400
        assert http_status_for(60) == 404
        assert http_status_for(164) == 500

    def test_error_names_match_chdb(self) -> None:
        import chdb  # in-memory engine, only for this check

        codes = ",".join(str(code) for code in ERROR_NAMES)
        rows = chdb.query(f"SELECT arrayJoin([{codes}]) AS c, errorCodeToName(c)", "TSV")  # type: ignore[no-untyped-call]
        names = dict(line.split("\t") for line in rows.bytes().decode().splitlines())
        assert {int(code): name for code, name in names.items()} == ERROR_NAMES

    def test_parameters_are_split(self) -> None:
        spec = parse_request(
            [
                ("query", "SELECT {x:String}"),
                ("param_x", "a"),
                ("database", "polymarket"),
                ("wait_end_of_query", "1"),
                ("session_id", "s1"),
                ("max_threads", "2"),
                ("max_threads", "3"),
                ("enable_http_compression", "1"),
            ],
            readonly=False,
            query_id="q1",
        )
        assert spec.query_params == {"x": "a"}
        assert spec.settings == {"max_threads": "3"}
        assert spec.database == "polymarket" and spec.session_id == "s1"
        assert spec.http_compression and spec.query_id == "q1"
        with pytest.raises(ClickHouseError) as bad:
            parse_request([("session_timeout", "99999")], readonly=False, query_id="q")
        assert bad.value.code == 374

    def test_credentials(self) -> None:
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        for headers, params in (
            ({"Authorization": basic}, {}),
            ({"X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD}, {}),
            ({}, {"user": USER, "password": PASSWORD}),
        ):
            check_credentials(extract_credentials(headers, params), USER, PASSWORD)
        with pytest.raises(ClickHouseError) as wrong:
            check_credentials(extract_credentials({}, {"password": "nope"}), USER, PASSWORD)
        assert wrong.value.code == 516 and wrong.value.status == 403
        assert PASSWORD not in repr(extract_credentials({}, {"password": PASSWORD}))
        check_credentials(extract_credentials({}, {"password": "x"}), USER, "")  # no password set

    def test_summary_numbers_are_strings(self) -> None:
        summary = json.loads(summary_header(Stats(written_rows=5, read_rows=7), 123))
        assert summary["written_rows"] == "5" and summary["elapsed_ns"] == "123"
        assert set(summary) >= {"read_bytes", "written_bytes", "total_rows_to_read", "result_rows"}


# === a real server ==============================================================================


@dataclass
class Server:
    url: str
    host: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, **kwargs: Any) -> Client:
        options: dict[str, Any] = {"username": USER, "password": PASSWORD}
        options.update(kwargs)
        return clickhouse_connect.get_client(host=self.host, port=self.port, **options)

    def http(self, method: str, **kwargs: object) -> httpx.Response:
        auth = kwargs.pop("auth", (USER, PASSWORD))
        return httpx.request(method, self.url + "/", auth=auth, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(data_dir: Path, password: str = PASSWORD) -> Server:
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-{port}.log"
    env = {
        **os.environ,
        "CLICKHOUSE_PASSWORD": password,
        "PMPIPE_LOG_FORMAT": "text",
        "PMPIPE_LOG_LEVEL": "DEBUG",
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pmpipe.chserve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, data_dir, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/ping", timeout=1).text == "Ok.\n":
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start: {log_path.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("chserve") / "data")
    yield running
    running.stop()
    assert running.process.returncode == 0, running.log_path.read_text()
    assert PASSWORD not in running.log_path.read_text()


@pytest.fixture(scope="module")
def client(server: Server) -> Client:
    c = server.client()
    c.command("CREATE DATABASE IF NOT EXISTS pm")
    return c


def fresh_table(client: Client, columns: str, settings: str = "") -> str:
    name = f"pm.t_{uuid.uuid4().hex[:8]}"
    client.command(
        f"CREATE TABLE {name} ({columns}) ENGINE = MergeTree ORDER BY tuple() {settings}"
    )
    return name


@pytest.mark.integration
class TestClickHouseConnect:
    def test_handshake_ping_and_headers(self, server: Server, client: Client) -> None:
        assert client.ping()
        version, timezone = client.query("SELECT version(), timezone()").result_rows[0]
        assert version.startswith("26.") and timezone == "UTC"
        response = server.http(
            "POST", content=b"SELECT 1 FORMAT JSONEachRow", params={"query_id": "qid-1"}
        )
        assert response.status_code == 200 and response.text == '{"1":1}\n'
        assert response.headers["X-ClickHouse-Format"] == "JSONEachRow"
        assert response.headers["X-ClickHouse-Query-Id"] == "qid-1"
        assert response.headers["X-ClickHouse-Timezone"] == "UTC"
        assert response.headers["X-ClickHouse-Server-Display-Name"]
        assert '"result_rows":"1"' in response.headers["X-ClickHouse-Summary"]

    def test_million_rows_compressed_insert_keeps_every_frame(self, client: Client) -> None:
        table = fresh_table(
            client, "id UInt64, market LowCardinality(String), price Float64, ts DateTime64(3)"
        )
        n = 1_000_000
        ts = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
        columns: list[list[Any]] = [
            list(range(n)),
            [f"m{i % 97}" for i in range(n)],
            [i / 1000 for i in range(n)],
            [ts] * n,
        ]
        summary = client.insert(table, columns, column_oriented=True)  # lz4: one frame per block
        assert summary.written_rows == n
        count, total, markets = client.query(
            f"SELECT count(), sum(id), uniqExact(market) FROM {table}"
        ).result_rows[0]
        assert (count, total, markets) == (n, n * (n - 1) // 2, 97)
        frame = client.query_df(f"SELECT * FROM {table} ORDER BY id LIMIT 200000")
        assert len(frame) == 200_000 and frame["id"].iloc[-1] == 199_999
        assert str(frame["ts"].iloc[0].tz) in ("UTC", "None")

    @pytest.mark.parametrize("compress", ["zstd", "gzip", False])
    def test_insert_compression_variants(self, server: Server, compress: object) -> None:
        c = server.client(compress=compress)
        table = fresh_table(c, "id UInt64, s String")
        n = 300_000  # several blocks, so several frames
        c.insert(table, [list(range(n)), [f"v{i}" for i in range(n)]], column_oriented=True)
        assert c.command(f"SELECT count() FROM {table}") == n
        assert c.query(f"SELECT s FROM {table} WHERE id = 299999").result_rows == [("v299999",)]

    def test_typed_parameters_round_trip_hostile_strings(self, client: Client) -> None:
        hostile = [
            "it's",
            "'; DROP TABLE pm.x; --",
            'back\\slash "quotes" \t tab \n newline',
            "ünïcödé 🚀 中文",
            "x" * 10_240,  # large enough for clickhouse-connect to switch to multipart form data
            "",
        ]
        for value in hostile:
            rows = client.query(
                "SELECT {token:String} AS v, length({token:String})", parameters={"token": value}
            ).result_rows
            assert rows == [(value, len(value.encode()))]
        assert client.query(
            "SELECT {n:UInt32} + 1, {a:Array(String)}", parameters={"n": 41, "a": ["a'b", "c"]}
        ).result_rows == [(42, ["a'b", "c"])]

    def test_query_arrow(self, client: Client) -> None:
        pytest.importorskip("pyarrow")
        table = client.query_arrow("SELECT number AS n, toString(number) AS s FROM numbers(1000)")
        assert table.num_rows == 1000 and table.column_names == ["n", "s"]

    def test_settings_apply_per_request_and_dedup_token(self, server: Server) -> None:
        c = server.client()
        table = fresh_table(c, "x UInt64", "SETTINGS non_replicated_deduplication_window = 100")
        for _ in range(2):
            c.insert(
                table,
                [[1], [2]],
                column_names=["x"],
                settings={"insert_deduplication_token": "tok-1"},
            )
        assert c.command(f"SELECT count() FROM {table}") == 2
        c.insert(table, [[3]], column_names=["x"])  # no token: must not reuse tok-1
        c.insert(table, [[4]], column_names=["x"], settings={"insert_deduplication_token": "tok-2"})
        assert c.command(f"SELECT count() FROM {table}") == 4
        assert c.query(
            "SELECT getSetting('max_block_size')", settings={"max_block_size": 1234}
        ).result_rows == [(1234,)]
        assert c.command("SELECT getSetting('max_block_size')") != 1234
        with pytest.raises(DatabaseError) as unknown:
            c.query("SELECT 1", settings={"no_such_setting_xyz": 1})
        assert unknown.value.code == 115

    def test_sessions_keep_set_and_temporary_tables(self, server: Server) -> None:
        c = server.client()
        c.command("SET max_threads = 1")
        c.command("CREATE TEMPORARY TABLE scratch (a UInt8)")
        c.command("INSERT INTO scratch VALUES (1), (2)")
        assert c.command("SELECT count() FROM scratch") == 2
        assert c.command("SELECT getSetting('max_threads')") == 1
        other = server.client()
        assert other.command("SELECT getSetting('max_threads')") != 1
        with pytest.raises(DatabaseError):
            other.command("SELECT count() FROM scratch")

    def test_database_parameter(self, server: Server, client: Client) -> None:
        table = fresh_table(client, "x UInt8")
        c = server.client(database="pm")
        c.insert(table.split(".")[1], [[7]], column_names=["x"])
        assert c.command(f"SELECT sum(x) FROM {table.split('.')[1]}") == 7
        assert c.command("SELECT currentDatabase()") == "pm"

    def test_errors_carry_the_clickhouse_code(self, server: Server, client: Client) -> None:
        with pytest.raises(DatabaseError) as missing:
            client.query("SELECT * FROM pm.does_not_exist")
        assert missing.value.code == 60
        with pytest.raises(DatabaseError) as syntax:
            client.command("SELEC 1")
        assert syntax.value.code == 62
        with pytest.raises(DatabaseError) as multi:
            client.command("SELECT 1; SELECT 2")
        assert multi.value.code == 62
        response = server.http("POST", content=b"SELECT * FROM pm.nope")
        assert response.status_code == 404
        assert response.headers["X-ClickHouse-Exception-Code"] == "60"
        assert response.text.startswith("Code: 60. DB::Exception: ")
        assert "(UNKNOWN_TABLE) (version 26." in response.text

    def test_kafka_engine_is_refused(self, server: Server, client: Client) -> None:
        ddl = (
            "CREATE TABLE pm.k (a String) ENGINE = Kafka('127.0.0.1:9092', 't', 'g', 'JSONEachRow')"
        )
        with pytest.raises(DatabaseError) as refused:
            client.command(ddl)
        assert refused.value.code == 344
        assert server.http("POST", content=ddl.encode()).status_code == 400
        assert client.command("EXISTS TABLE pm.k") == 0

    def test_parallel_reads(self, server: Server) -> None:
        clients = [server.client() for _ in range(2)]
        results: list[Any] = []

        def read(c: Client) -> None:
            results.append(c.command("SELECT sleep(1) + 1"))

        started = time.monotonic()
        threads = [threading.Thread(target=read, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        assert results == [1, 1]
        assert elapsed < 1.8, f"two 1 s reads took {elapsed:.2f}s: they did not run in parallel"


@pytest.mark.integration
class TestPlainHttp:
    def test_health_endpoints(self, server: Server) -> None:
        for path in ("/ping", "/", "/replicas_status"):
            response = httpx.get(server.url + path)
            assert (response.status_code, response.text) == (200, "Ok.\n")
        assert httpx.get(server.url + "/nope").status_code == 404

    def test_get_query_is_read_only(self, server: Server, client: Client) -> None:
        response = server.http("GET", params={"query": "SELECT 1"})
        assert (response.status_code, response.text) == (200, "1\n")
        table = fresh_table(client, "x UInt8")
        for statement in (
            f"INSERT INTO {table} VALUES (1)",
            f"INSERT INTO {table} FORMAT TSV\n1\n",
            f"DROP TABLE {table}",
            f"ALTER TABLE {table} DELETE WHERE 1",
            "CREATE TABLE pm.get_made (x UInt8) ENGINE = Memory",
        ):
            refused = server.http("GET", params={"query": statement})
            assert refused.headers["X-ClickHouse-Exception-Code"] == "164", statement
            assert refused.status_code >= 400
        assert client.command(f"SELECT count() FROM {table}") == 0
        assert client.command("EXISTS TABLE pm.get_made") == 0

    def test_authentication(self, server: Server) -> None:
        for auth in (None, (USER, "wrong")):
            response = server.http("GET", params={"query": "SELECT 1"}, auth=auth)
            assert response.status_code == 403
            assert response.headers["X-ClickHouse-Exception-Code"] == "516"
        with pytest.raises(DatabaseError) as failed:
            clickhouse_connect.get_client(
                host=server.host, port=server.port, username=USER, password="wrong"
            )
        assert failed.value.code == 516
        headers = {"X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD}
        assert (
            server.http("GET", params={"query": "SELECT 2"}, headers=headers, auth=None).text
            == "2\n"
        )
        params = {"query": "SELECT 3", "user": USER, "password": PASSWORD}
        assert server.http("GET", params=params, auth=None).text == "3\n"

    def test_insert_bodies_query_param_and_encodings(self, server: Server, client: Client) -> None:
        table = fresh_table(client, "x UInt32, s String")
        rows = b"".join(f"{i}\tv{i}\n".encode() for i in range(10_000))
        query = {"query": f"INSERT INTO {table} FORMAT TSV"}
        assert server.http("POST", params=query, content=rows).status_code == 200
        gz = server.http(
            "POST", params=query, content=gzip.compress(rows), headers={"Content-Encoding": "gzip"}
        )
        assert gz.status_code == 200
        assert '"written_rows":"10000"' in gz.headers["X-ClickHouse-Summary"]
        values = server.http(
            "POST", content=f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')".encode()
        )
        assert values.status_code == 200
        if codecs._cityhash128() is None:  # the test's zero checksums are only skipped then
            native = native_blocks(rows[:50_000], 0x82) + native_blocks(rows[50_000:], 0x82)
            decompress = server.http("POST", params={**query, "decompress": "1"}, content=native)
            assert decompress.status_code == 200, decompress.text
        expected = 20_002 + (10_000 if codecs._cityhash128() is None else 0)
        assert client.command(f"SELECT count() FROM {table}") == expected
        bad = server.http("POST", params=query, content=b"not-a-number\tx\n")
        assert bad.headers["X-ClickHouse-Exception-Code"] == "27"

    def test_response_compression_when_asked(self, server: Server) -> None:
        params = {"query": "SELECT number FROM numbers(100000)", "enable_http_compression": "1"}
        with httpx.Client(auth=(USER, PASSWORD)) as http:
            response = http.get(
                server.url + "/", params=params, headers={"Accept-Encoding": "gzip"}
            )
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.text.count("\n") == 100_000
            plain = http.get(
                server.url + "/", params={"query": "SELECT 1"}, headers={"Accept-Encoding": "gzip"}
            )
            assert "Content-Encoding" not in plain.headers  # enable_http_compression not set


@pytest.mark.integration
def test_data_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    try:
        c = first.client()
        c.command("CREATE DATABASE keep")
        c.command("CREATE TABLE keep.t (x UInt32) ENGINE = MergeTree ORDER BY x")
        c.insert("keep.t", [[i] for i in range(1000)], column_names=["x"])
    finally:
        first.stop()
    assert first.process.returncode == 0
    second = start_server(data_dir)
    try:
        assert second.client().command("SELECT sum(x) FROM keep.t") == 499_500
    finally:
        second.stop()


@pytest.mark.integration
def test_session_lock_and_check(server: Server) -> None:
    session = {"session_id": f"s-{uuid.uuid4()}"}
    missing = server.http("POST", params={**session, "session_check": "1"}, content=b"SELECT 1")
    assert missing.headers["X-ClickHouse-Exception-Code"] == "372"
    outcome: dict[str, httpx.Response] = {}

    def slow() -> None:
        outcome["slow"] = server.http("POST", params=session, content=b"SELECT sleep(0.8)")

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)
    locked = server.http("POST", params=session, content=b"SELECT 1")
    worker.join()
    assert locked.headers["X-ClickHouse-Exception-Code"] == "373"
    assert outcome["slow"].status_code == 200
    again = server.http("POST", params={**session, "session_check": "1"}, content=b"SELECT 1")
    assert again.text == "1\n"


@pytest.mark.integration
def test_make_app_in_process(tmp_path: Path) -> None:
    """make_app() opens chdb on startup and closes it on cleanup (the directory can then be
    opened again in this process)."""
    import chdb  # imported first: the app then leaves this process's TZ alone  # noqa: F401
    from aiohttp.test_utils import TestClient, TestServer

    from pmpipe.chserve import make_app

    data_dir = tmp_path / "inproc"

    async def scenario() -> tuple[int, str, str, str]:
        app = make_app(data_dir, password="pw", pool_size=2)
        async with TestClient(TestServer(app)) as http:
            auth = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": "pw"}
            await http.post(
                "/", data=b"CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x", headers=auth
            )
            insert = await http.post(
                "/", params={"query": "INSERT INTO t FORMAT CSV"}, data=b"1\n2\n", headers=auth
            )
            denied = await http.post("/", data=b"SELECT 1")
            selected = await http.get("/", params={"query": "SELECT sum(x) FROM t"}, headers=auth)
            return (
                insert.status,
                await denied.text(),
                await selected.text(),
                await (await http.get("/ping")).text(),
            )

    status, denied, total, ping = asyncio.run(scenario())
    assert status == 200 and total == "3\n" and ping == "Ok.\n"
    assert denied.startswith("Code: 516. DB::Exception: default: Authentication failed")
    from chdb import _chdb

    reopened = _chdb.connect(str(data_dir.resolve()))  # type: ignore[attr-defined]  # the app released the directory
    try:
        assert reopened.query("SELECT count() FROM t", "TSV").bytes() == b"2\n"
    finally:
        reopened.close()


@pytest.mark.integration
def test_second_process_on_the_same_directory_fails_clearly(server: Server) -> None:
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "pmpipe.chserve",
            "--port",
            str(free_port()),
            "--data-dir",
            str(server.data_dir),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PMPIPE_LOG_FORMAT": "text"},
    )
    assert second.returncode == 1
    assert "one process per data directory" in second.stderr
    assert server.client().ping()  # the running server is unaffected
