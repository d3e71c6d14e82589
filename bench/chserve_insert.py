"""Insert throughput through the embedded ClickHouse endpoint (`pmpipe serve`).

Starts `python -m pmpipe.chserve` on a temporary data directory, inserts 1,000,000 rows of a
trade-like table with clickhouse-connect (lz4 — the default —, zstd, uncompressed, and from a
pandas DataFrame) and prints rows/s for each, client serialization included; then posts a
pre-serialized Native body (`raw_insert`) to show the server side alone.

    .venv/bin/python bench/chserve_insert.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import lz4.frame

COLUMNS = "id UInt64, market LowCardinality(String), side Enum8('BUY' = 1, 'SELL' = 2), "
COLUMNS += "price Float64, size Float64, ts DateTime64(3, 'UTC')"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pmpipe.chserve", "--port", str(port), "--data-dir", str(data_dir)],
        env={**os.environ, "CLICKHOUSE_PASSWORD": ""},
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def make_columns(rows: int) -> list[list[Any]]:
    ts = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)
    return [
        list(range(rows)),
        [f"0x{i % 500:040x}" for i in range(rows)],
        ["BUY" if i % 2 else "SELL" for i in range(rows)],
        [0.01 * (i % 100) for i in range(rows)],
        [float(i % 1000) for i in range(rows)],
        [ts + datetime.timedelta(milliseconds=i) for i in range(rows)],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rows: int = args.rows
    columns = make_columns(rows)
    names = ["id", "market", "side", "price", "size", "ts"]
    with tempfile.TemporaryDirectory() as tmp:
        process, port = start(Path(tmp) / "data")
        try:
            admin = clickhouse_connect.get_client(host="127.0.0.1", port=port)
            admin.command("CREATE DATABASE bench")
            for compress in ("lz4", "zstd", False):
                table = f"bench.t_{compress or 'none'}"
                admin.command(f"CREATE TABLE {table} ({COLUMNS}) ENGINE = MergeTree ORDER BY id")
                client = clickhouse_connect.get_client(
                    host="127.0.0.1", port=port, compress=compress
                )
                started = time.perf_counter()
                client.insert(table, columns, column_names=names, column_oriented=True)
                elapsed = time.perf_counter() - started
                stored = admin.command(f"SELECT count() FROM {table}")
                label = f"compress={compress}"
                print(
                    f"{label:<16} {rows / elapsed:>12,.0f} rows/s  ({elapsed:.2f}s, {stored} rows)"
                )
            native = admin.raw_query("SELECT * FROM bench.t_lz4", fmt="Native")
            for compression in ("lz4", None):
                table = f"bench.raw_{compression or 'none'}"
                admin.command(f"CREATE TABLE {table} ({COLUMNS}) ENGINE = MergeTree ORDER BY id")
                body = lz4.frame.compress(native) if compression else native
                started = time.perf_counter()
                admin.raw_insert(
                    table, names, insert_block=body, fmt="Native", compression=compression
                )
                elapsed = time.perf_counter() - started
                label = f"raw Native {compression or 'plain'}"
                print(f"{label:<16} {rows / elapsed:>12,.0f} rows/s  ({elapsed:.2f}s, server only)")
            frame = admin.query_df("SELECT * FROM bench.t_lz4")
            admin.command(f"CREATE TABLE bench.t_df ({COLUMNS}) ENGINE = MergeTree ORDER BY id")
            started = time.perf_counter()
            admin.insert_df("bench.t_df", frame)
            elapsed = time.perf_counter() - started
            print(f"{'insert_df lz4':<16} {rows / elapsed:>12,.0f} rows/s  ({elapsed:.2f}s)")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
