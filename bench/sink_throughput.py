"""Sink throughput: the sink end to end vs the ClickHouse ceiling vs a naive consumer.

Starts the embedded stack on temporary directories (Tansu, the schema registry, `pmpipe.chserve`),
pre-fills `polymarket.trades` (6 partitions) with realistic Confluent-framed Avro trades, then
measures, in one run on this machine, through the same ClickHouse endpoint:

* sink: `sink.consumer.Sink` (default batching, static assignment) from its start until every
  offset is committed: consume + Avro container framing + INSERT ... FORMAT Avro + commit;
* ceiling: ClickHouse inserting the same records from one local Avro file in one statement
  (`INSERT INTO market_trades SELECT ... FROM file(..., 'Avro')`);
* naive: per-record `poll()`, `fastavro.schemaless_reader`, one `client.insert` per 1,000 rows,
  commit after each insert.

Each writes into a database of its own (same tables and materialized views). Besides rows/s,
each phase reports the CPU seconds it cost in this process (the sink or the naive consumer), in
ClickHouse and in the broker: on a shared machine wall-clock ratios move with other load, the CPU
split says where the time goes.

    .venv/bin/python bench/sink_throughput.py [--rows 1000000] [--naive-rows 200000]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import fastavro
import httpx
import psutil
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema

from pmpipe.avro import make_registry_client
from pmpipe.broker import TansuProcess, TopicSpec, ensure_topics, free_port, wait_for_broker
from pmpipe.config import Config
from pmpipe.kafka import consumer_config
from pmpipe.migrations import apply_migrations
from pmpipe.registry.server import RegistryThread
from pmpipe.topics import TRADES, get_topic, load_topics
from sink.avro_container import build_container
from sink.batch import BatchLimits
from sink.consumer import SinkOptions
from sink.run import build_sink, topic_targets
from sink.schemas import WriterSchema
from sink.writer import connect

SCHEMA = get_topic(TRADES).schema()
PARSED = fastavro.parse_schema(SCHEMA)
FIELDS = [f["name"] for f in SCHEMA["fields"]]


def start_clickhouse(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
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
    raise SystemExit("the embedded ClickHouse did not start")


def trade(i: int, rng: random.Random, tokens: list[str]) -> dict[str, Any]:
    """A Data API-like fill (5% WebSocket), second-precision times over one day."""
    token = tokens[int(rng.paretovariate(1.2)) % len(tokens)]
    side = rng.choice(("BUY", "SELL"))
    price = Decimal(rng.randrange(1, 1000)) / 1000
    size = Decimal(rng.randrange(1, 5_000_000_000)) / 1_000_000
    ts = 1_767_225_600_000 + rng.randrange(86_400) * 1000
    tx = f"0x{rng.getrandbits(256):064x}"
    ws = rng.random() < 0.05
    return {
        "trade_key": f"{tx}|{token}|{side}|{price}|{size}|0",
        "token_id": token,
        "condition_id": f"0x{hash(token) & (2**256 - 1):064x}",
        "transaction_hash": None if ws else tx,
        "side": side,
        "price": price,
        "size": size,
        "fee_rate_bps": None,
        "proxy_wallet": None if ws else f"0x{rng.getrandbits(160):040x}",
        "outcome": rng.choice(("Yes", "No")),
        "outcome_index": rng.randrange(2),
        "occurrence": 0,
        "source": "ws" if ws else "data_api",
        "source_ts": ts,
        "received_ts": ts * 1000 + rng.randrange(60_000_000),
    }


def prefill(bootstrap: str, schema_id: int, rows: int) -> list[bytes]:
    """Produce `rows` framed trades; returns the values (for the ceiling's file)."""
    rng = random.Random(1)
    tokens = [str(rng.getrandbits(255)) for _ in range(500)]
    header = b"\x00" + schema_id.to_bytes(4, "big")
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "compression.type": "zstd"}
    )
    values = []
    for i in range(rows):
        record = trade(i, rng, tokens)
        body = io.BytesIO()
        fastavro.schemaless_writer(body, PARSED, record)
        value = header + body.getvalue()
        values.append(value)
        while True:
            try:
                producer.produce(TRADES, value=value, key=record["token_id"].encode())
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise SystemExit("prefill: messages left undelivered")
    return values


class CpuMeter:
    """CPU seconds (user + system) of this process and of the given child processes."""

    def __init__(self, **pids: int) -> None:
        self.processes = {"python": psutil.Process()} | {
            name: psutil.Process(pid) for name, pid in pids.items()
        }
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {name: sum(process.cpu_times()[:2]) for name, process in self.processes.items()}

    def used(self) -> dict[str, float]:
        now = self._read()
        return {name: now[name] - self.start[name] for name in now}


def measure_sink(config: Config, rows: int, concurrency: int) -> float:
    options = SinkOptions(
        targets=topic_targets(),
        limits=BatchLimits(
            config.sink_batch_max_records, config.sink_batch_max_bytes, config.sink_batch_max_secs
        ),
        static_assignment=True,
        progress_interval_secs=3600,
        insert_concurrency=concurrency,
    )
    sink = build_sink(config, connect(config), options)
    started = time.perf_counter()
    sink.start()
    while sink.counters.rows["market_trades"] < rows or any(
        st.sealed for st in sink.parts.values()
    ):
        sink.step()
    elapsed = time.perf_counter() - started
    sink.close()
    return elapsed


def measure_ceiling(client: Client, database: str, values: list[bytes], path: Path) -> float:
    writer = WriterSchema.from_text(0, json.dumps(SCHEMA))
    path.write_bytes(build_container(writer.header, writer.sync, values))
    columns = ", ".join(FIELDS)
    started = time.perf_counter()
    client.command(
        f"INSERT INTO {database}.market_trades ({columns})"
        f" SELECT {columns} FROM file('{path}', 'Avro')",
        settings={"insert_deduplication_token": "ceiling", "async_insert": 0},
    )
    return time.perf_counter() - started


def measure_naive(config: Config, client: Client, database: str, rows: int) -> float:
    consumer = Consumer(consumer_config(config, "bench-naive"))
    consumer.assign([TopicPartition(TRADES, p) for p in range(6)])
    pending: list[list[Any]] = []
    done = 0
    started = time.perf_counter()
    while done < rows:
        msg = consumer.poll(1.0)
        if msg is None or msg.error() is not None:
            continue
        value = msg.value() or b""
        record = fastavro.schemaless_reader(io.BytesIO(value[5:]), PARSED, None)
        assert isinstance(record, dict)
        pending.append([record[f] for f in FIELDS])
        if len(pending) == 1000 or done + len(pending) == rows:
            client.insert(f"{database}.market_trades", pending, column_names=FIELDS)
            consumer.commit(asynchronous=True)
            done += len(pending)
            pending = []
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=200_000)
    defaults = Config()
    parser.add_argument(
        "--batch-records",
        type=int,
        default=defaults.sink_batch_max_records,
        help="PMPIPE_SINK_BATCH_MAX_RECORDS of the sink run",
    )
    parser.add_argument(
        "--batch-bytes",
        type=int,
        default=defaults.sink_batch_max_bytes,
        help="PMPIPE_SINK_BATCH_MAX_BYTES of the sink run",
    )
    parser.add_argument("--insert-concurrency", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = tempfile.TemporaryDirectory(prefix="sink-bench-")
    tmp = Path(workdir.name)
    clickhouse, port = start_clickhouse(tmp / "clickhouse")
    registry = RegistryThread(tmp / "registry")
    try:
        registry_url = registry.start()
        with TansuProcess(log_path=tmp / "tansu.log") as broker:
            wait_for_broker(broker.bootstrap, 10)
            ensure_topics(
                {"bootstrap.servers": broker.bootstrap},
                [TopicSpec(t.name, t.partitions) for t in load_topics()],
            )
            client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
            for database in ("bench_sink", "bench_ceiling", "bench_naive"):
                apply_migrations(client, database)
            config = Config.load(
                {
                    "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                    "SCHEMA_REGISTRY_URL": registry_url,
                    "CLICKHOUSE_PORT": str(port),
                    "CLICKHOUSE_DATABASE": "bench_sink",
                    "PMPIPE_SINK_BATCH_MAX_RECORDS": str(args.batch_records),
                    "PMPIPE_SINK_BATCH_MAX_BYTES": str(args.batch_bytes),
                }
            )
            schema_id = make_registry_client(config.schema_registry_config()).register_schema(
                get_topic(TRADES).subject, Schema(json.dumps(SCHEMA), "AVRO")
            )
            t0 = time.perf_counter()
            values = prefill(broker.bootstrap, schema_id, args.rows)
            print(f"prefilled {args.rows:,} trades in {time.perf_counter() - t0:.1f} s")

            pids = {"clickhouse": clickhouse.pid, "broker": broker.pid or 0}
            cpu = {}
            meter = CpuMeter(**pids)
            sink_secs = measure_sink(config, args.rows, args.insert_concurrency)
            cpu["sink"] = meter.used()
            meter = CpuMeter(**pids)
            ceiling_secs = measure_ceiling(client, "bench_ceiling", values, tmp / "trades.avro")
            cpu["ceiling"] = meter.used()
            naive_rows = min(args.naive_rows, args.rows)
            meter = CpuMeter(**pids)
            naive_secs = measure_naive(config, client, "bench_naive", naive_rows)
            cpu["naive"] = meter.used()
            for database, expected in (("bench_sink", args.rows), ("bench_ceiling", args.rows)):
                got = client.query(f"SELECT count() FROM {database}.market_trades").result_rows
                if got[0][0] != expected:
                    raise SystemExit(f"{database}: {got[0][0]} rows, expected {expected}")
    finally:
        registry.stop()
        clickhouse.terminate()
        clickhouse.wait(30)
        workdir.cleanup()
    sink_rate = args.rows / sink_secs
    ceiling_rate = args.rows / ceiling_secs
    naive_rate = naive_rows / naive_secs
    phases = {
        "sink": (sink_rate, args.rows, sink_secs),
        "ceiling": (ceiling_rate, args.rows, ceiling_secs),
        "naive": (naive_rate, naive_rows, naive_secs),
    }
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; sink batches"
        f" of {args.batch_records:,} records / {args.batch_bytes >> 20} MiB,"
        f" {args.insert_concurrency} inserts in parallel"
    )
    for name, (rate, n, secs) in phases.items():
        used = "  ".join(f"{k} {v / n * 1e6:5.1f}" for k, v in cpu[name].items())
        print(
            f"{name:8s} {rate:>10,.0f} rows/s  ({n:,} rows in {secs:5.2f} s)"
            f"  CPU s per 1M rows: {used}"
        )
    print(f"sink / ceiling = {sink_rate / ceiling_rate:.0%}   (target >= 60%)")
    print(f"sink / naive   = {sink_rate / naive_rate:.1f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
