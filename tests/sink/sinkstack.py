"""Helpers of the sink's end-to-end tests: the sink as a subprocess, one test's topics and
database (`SinkStack`), and an embedded ClickHouse a test may kill and start again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition

from pmpipe.avro import AvroCodec
from pmpipe.broker import TopicSpec, ensure_topics
from pmpipe.config import Config
from pmpipe.kafka import RecordProducer
from pmpipe.topics import Topic, get_topic, load_topics
from tests.sink.conftest import Endpoint, _free_port, _wait_for_ping

__all__ = ["ChServeProcess", "SinkProcess", "SinkStack", "wait_until"]


def wait_until(
    predicate: Callable[[], bool], timeout_secs: float, what: str, interval_secs: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout_secs
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_secs:g} s waiting for {what}")
        time.sleep(interval_secs)


class SinkProcess:
    """`python -m sink` as a child process, its log appended to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sink"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()  # SIGKILL
        self.process.wait(10)

    def stop(self, timeout_secs: float = 60.0) -> int:
        """SIGTERM, then wait for the clean exit; returns the exit code."""
        if self.alive():
            self.process.terminate()  # SIGTERM
        try:
            return self.process.wait(timeout_secs)
        except subprocess.TimeoutExpired as e:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"sink ignored SIGTERM for {timeout_secs} s: {self.tail()}") from e

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class SinkStack:
    """Broker + registry + ClickHouse database + the topic prefix and group of one test."""

    bootstrap: str
    registry_url: str
    endpoint: Endpoint
    database: str
    prefix: str
    group_id: str
    log_dir: Path
    client: Client

    @property
    def config(self) -> Config:
        return Config.load(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "SCHEMA_REGISTRY_URL": self.registry_url,
                "CLICKHOUSE_HOST": self.endpoint.host,
                "CLICKHOUSE_PORT": str(self.endpoint.port),
                "CLICKHOUSE_DATABASE": self.database,
            }
        )

    def topic(self, name: str) -> Topic:
        """The catalogue topic `name` under this test's prefix (same schema, subject rule)."""
        base = get_topic(name)
        return Topic(self.prefix + base.name, base.schema_name, base.key_field, base.partitions)

    def create_topics(self) -> None:
        ensure_topics(
            {"bootstrap.servers": self.bootstrap},
            [TopicSpec(self.prefix + t.name, t.partitions) for t in load_topics()],
        )

    def producer(self) -> RecordProducer:
        config = self.config
        return RecordProducer(config, "sink-test", AvroCodec(config.schema_registry_config()))

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "CLICKHOUSE_", "SCHEMA_REGISTRY_", "PMPIPE_"))
        }
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "SCHEMA_REGISTRY_URL": self.registry_url,
                "CLICKHOUSE_HOST": self.endpoint.host,
                "CLICKHOUSE_PORT": str(self.endpoint.port),
                "CLICKHOUSE_USER": self.endpoint.username,
                "CLICKHOUSE_PASSWORD": self.endpoint.password,
                "CLICKHOUSE_SECURE": "true" if self.endpoint.secure else "false",
                "CLICKHOUSE_DATABASE": self.database,
                "PMPIPE_SINK_GROUP_ID": self.group_id,
                "PMPIPE_SINK_TOPIC_PREFIX": self.prefix,
                "PMPIPE_SINK_BATCH_MAX_SECS": "0.2",
                "PMPIPE_SINK_PROGRESS_INTERVAL_SECS": "2",
                "PMPIPE_LOG_FORMAT": "text",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def start_sink(self, **extra_env: str) -> SinkProcess:
        return SinkProcess(self.env(**extra_env), self.log_dir / "sink.log")

    def count(self, table: str, where: str = "") -> int:
        sql = f"SELECT count() FROM {self.database}.{table}" + (f" WHERE {where}" if where else "")
        return int(self.client.query(sql).result_rows[0][0])

    def committed(self, topic: str) -> dict[int, int]:
        """The group's committed offset per partition of a catalogue topic (< 0: none)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group_id})
        try:
            parts = [
                TopicPartition(self.prefix + topic, p) for p in range(get_topic(topic).partitions)
            ]
            return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
        finally:
            consumer.close()


class ChServeProcess:
    """An embedded ClickHouse endpoint a test may kill and start again (same port and data)."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.endpoint = Endpoint(host="127.0.0.1", port=_free_port())
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD")
        }
        argv = [sys.executable, "-m", "pmpipe.chserve", "--port", str(self.endpoint.port)]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [*argv, "--data-dir", str(self.data_dir)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_for_ping(self.endpoint, self.process, self.log_path)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(15)
        self.process = None
