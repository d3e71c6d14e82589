"""The embedded schema registry over HTTP, driven by the real confluent-kafka client and serdes,
plus raw httpx calls for Confluent's error shapes and the Redpanda Console endpoints."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from pmpipe.paths import schemas_dir
from pmpipe.registry import store as store_module
from pmpipe.registry.server import RegistryThread, make_app
from pmpipe.registry.store import (
    RegistryError,
    RegistryStore,
    RegistryStoreError,
    store_path_for,
)

DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 6}
TRADE_V1: dict[str, Any] = {
    "type": "record",
    "name": "Trade",
    "namespace": "polymarket",
    "fields": [
        {"name": "trade_key", "type": "string"},
        {"name": "price", "type": DECIMAL},
        {"name": "ts_ms", "type": "long"},
    ],
}
TRADE_V2: dict[str, Any] = {
    **TRADE_V1,
    "fields": [
        *TRADE_V1["fields"],
        {"name": "maker", "type": ["null", "string"], "default": None},
    ],
}
TRADE_BAD: dict[str, Any] = {
    **TRADE_V1,
    "fields": [
        {"name": "trade_key", "type": "string"},
        {"name": "price", "type": "string"},
        {"name": "ts_ms", "type": "long"},
    ],
}
SUBJECT = "polymarket.trades-value"
CT = "application/vnd.schemaregistry.v1+json"


def avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    with RegistryThread(tmp_path) as running:
        yield running


@pytest.fixture
def client(registry: RegistryThread) -> Iterator[SchemaRegistryClient]:
    sr = SchemaRegistryClient({"url": registry.url})
    yield sr
    sr.close()


def post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, content=json.dumps(body), headers={"Content-Type": CT})


# -- the real confluent-kafka client -----------------------------------------------------------


def test_register_lookup_and_read_back(
    client: SchemaRegistryClient, registry: RegistryThread
) -> None:
    first = client.register_schema(SUBJECT, avro(TRADE_V1))
    assert first == 1
    # registering the identical schema again: same id, no new version
    assert client.register_schema(SUBJECT, avro(TRADE_V1)) == first
    # same canonical schema (other spelling) under another subject: same global id
    respelled = {**TRADE_V1, "name": "polymarket.Trade"}
    del respelled["namespace"]
    assert client.register_schema("other-value", avro(respelled)) == first

    found = client.lookup_schema(SUBJECT, avro(TRADE_V1))
    assert (found.schema_id, found.version, found.subject) == (first, 1, SUBJECT)

    by_id = SchemaRegistryClient({"url": registry.url}).get_schema(first)  # uncached
    assert by_id.schema_str is not None and json.loads(by_id.schema_str) == TRADE_V1
    assert by_id.schema_type == "AVRO"

    second = client.register_schema(SUBJECT, avro(TRADE_V2))
    assert second == 2
    latest = client.get_latest_version(SUBJECT)
    assert (latest.schema_id, latest.version) == (second, 2)
    assert json.loads(latest.schema.schema_str or "null") == TRADE_V2
    v1 = client.get_version(SUBJECT, 1)
    assert (v1.schema_id, v1.version) == (first, 1)
    assert client.get_versions(SUBJECT) == [1, 2]
    assert client.get_subjects() == ["other-value", SUBJECT]
    assert client.get_schema_types() == ["AVRO"]
    pairs = {(v.subject, v.version) for v in client.get_schema_versions(first)}
    assert pairs == {(SUBJECT, 1), ("other-value", 1)}
    assert sorted(client.get_subjects_by_schema_id(first)) == ["other-value", SUBJECT]


def test_project_schemas_register_with_distinct_ids(client: SchemaRegistryClient) -> None:
    files = sorted(schemas_dir().glob("*.avsc"))
    assert files
    ids = [client.register_schema(f"{p.stem}-value", Schema(p.read_text(), "AVRO")) for p in files]
    assert ids == list(range(1, len(files) + 1))
    for path, schema_id in zip(files, ids, strict=True):
        stored = client.get_version(f"{path.stem}-value", 1)
        assert stored.schema_id == schema_id
        assert json.loads(stored.schema.schema_str or "null") == json.loads(path.read_text())


def test_compatibility_enforced_tested_and_configurable(client: SchemaRegistryClient) -> None:
    client.register_schema(SUBJECT, avro(TRADE_V1))
    assert client.get_compatibility() == "BACKWARD"
    assert client.test_compatibility(SUBJECT, avro(TRADE_V2)) is True
    assert client.test_compatibility(SUBJECT, avro(TRADE_BAD), version=1) is False

    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(SUBJECT, avro(TRADE_BAD))
    assert refused.value.http_status_code == 409
    assert refused.value.error_code == 409
    assert "field 'price' in record polymarket.Trade" in refused.value.error_message
    assert "bytes/decimal(18,6) to string" in refused.value.error_message
    assert client.get_versions(SUBJECT) == [1]

    client.set_compatibility(SUBJECT, "NONE")
    assert client.get_compatibility(SUBJECT) == "NONE"
    assert client.get_compatibility() == "BACKWARD"  # global untouched
    assert client.test_compatibility(SUBJECT, avro(TRADE_BAD)) is True
    assert client.register_schema(SUBJECT, avro(TRADE_BAD)) == 2

    client.delete_config(SUBJECT)
    with pytest.raises(SchemaRegistryError) as unset:
        client.get_config(SUBJECT)
    assert unset.value.error_code == 40408  # Confluent: no subject-level config any more


def test_delete_config_reverts_to_the_global_level(registry: RegistryThread) -> None:
    url = registry.url
    assert httpx.put(f"{url}/config/s", json={"compatibility": "FULL"}).json() == {
        "compatibility": "FULL"
    }
    assert httpx.get(f"{url}/config/s").json() == {"compatibilityLevel": "FULL"}
    deleted = httpx.delete(f"{url}/config/s")
    assert deleted.json()["compatibility"] == "FULL"
    missing = httpx.get(f"{url}/config/s")
    assert (missing.status_code, missing.json()["error_code"]) == (404, 40408)
    fallback = httpx.get(f"{url}/config/s", params={"defaultToGlobal": "true"})
    assert fallback.json() == {"compatibilityLevel": "BACKWARD"}


def test_avro_serde_round_trip_through_the_registry(registry: RegistryThread) -> None:
    producer_side = SchemaRegistryClient({"url": registry.url})
    serializer = AvroSerializer(producer_side, json.dumps(TRADE_V1))
    ctx = SerializationContext("polymarket.trades", MessageField.VALUE)
    record = {"trade_key": "0xabc|1|BUY", "price": Decimal("0.512300"), "ts_ms": 1_700_000_000_000}
    payload = serializer(record, ctx)
    assert payload is not None
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert magic == 0
    assert schema_id == producer_side.get_latest_version(SUBJECT).schema_id

    # a fresh client (empty cache) must fetch the writer schema by id from the registry
    consumer_side = SchemaRegistryClient({"url": registry.url})
    deserializer = AvroDeserializer(consumer_side)
    assert deserializer(payload, ctx) == record


def test_evolved_reader_reads_old_data(registry: RegistryThread) -> None:
    sr = SchemaRegistryClient({"url": registry.url})
    ctx = SerializationContext("polymarket.trades", MessageField.VALUE)
    old = {"trade_key": "k", "price": Decimal("1.000000"), "ts_ms": 5}
    payload = AvroSerializer(sr, json.dumps(TRADE_V1))(old, ctx)
    AvroSerializer(sr, json.dumps(TRADE_V2))(
        {**old, "maker": "0xmaker"}, ctx
    )  # registers v2 (BACKWARD ok)
    reader = AvroDeserializer(SchemaRegistryClient({"url": registry.url}), json.dumps(TRADE_V2))
    assert reader(payload, ctx) == {**old, "maker": None}


# -- persistence ---------------------------------------------------------------------------------


def test_restart_preserves_ids_versions_and_config(tmp_path: Path) -> None:
    with RegistryThread(tmp_path) as first:
        sr = SchemaRegistryClient({"url": first.url})
        id1 = sr.register_schema(SUBJECT, avro(TRADE_V1))
        id2 = sr.register_schema(SUBJECT, avro(TRADE_V2))
        sr.set_compatibility(SUBJECT, "FULL")
        sr.set_compatibility(level="FORWARD")
    state = store_path_for(tmp_path)
    assert state.is_file()
    assert not list(state.parent.glob("*.tmp"))

    with RegistryThread(tmp_path) as second:
        sr = SchemaRegistryClient({"url": second.url})
        assert sr.get_versions(SUBJECT) == [1, 2]
        assert sr.get_latest_version(SUBJECT).schema_id == id2
        assert json.loads(sr.get_schema(id1).schema_str or "null") == TRADE_V1
        assert sr.get_compatibility(SUBJECT) == "FULL"
        assert sr.get_compatibility() == "FORWARD"
        assert sr.register_schema(SUBJECT, avro(TRADE_V1)) == id1  # still known
        other = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}
        assert sr.register_schema("fresh-value", avro(other)) == 3  # ids are never reused


def test_corrupt_state_file_is_an_error_not_a_reset(tmp_path: Path) -> None:
    path = store_path_for(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{ half a file", encoding="utf-8")
    with pytest.raises(RegistryStoreError, match="cannot load schema registry state"):
        make_app(path)
    assert path.read_text(encoding="utf-8") == "{ half a file"


def test_failed_write_rolls_back_and_reports_50001(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = RegistryStore(store_path_for(tmp_path))

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "atomic_write", disk_full)
    with pytest.raises(RegistryError) as failed:
        reg.register(SUBJECT, json.dumps(TRADE_V1))
    assert (failed.value.status, failed.value.code) == (500, 50001)
    assert reg.subjects() == []
    monkeypatch.undo()
    assert reg.register(SUBJECT, json.dumps(TRADE_V1)).schema_id == 1


def test_concurrent_registrations_share_ids(registry: RegistryThread) -> None:
    errors: list[BaseException] = []
    ids: dict[str, int] = {}

    def work(n: int) -> None:
        try:
            sr = SchemaRegistryClient({"url": registry.url})
            ids[f"same-{n}"] = sr.register_schema(f"same-{n}", avro(TRADE_V1))
            own = {"type": "record", "name": f"R{n}", "fields": [{"name": "x", "type": "int"}]}
            ids[f"own-{n}"] = sr.register_schema(f"own-{n}", avro(own))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {ids[f"same-{n}"] for n in range(8)} == {ids["same-0"]}
    own_ids = {ids[f"own-{n}"] for n in range(8)}
    assert len(own_ids) == 8 and ids["same-0"] not in own_ids
    saved = json.loads(store_path_for(registry.data_dir).read_text(encoding="utf-8"))
    assert len(saved["schemas"]) == 9 and saved["next_id"] == 10


# -- Confluent error shapes ------------------------------------------------------------------------


def expect_error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(CT)
    body = response.json()
    assert body["error_code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def test_not_found_errors(registry: RegistryThread) -> None:
    url = registry.url
    message = expect_error(httpx.get(f"{url}/subjects/nope/versions"), 404, 40401)
    assert message == "Subject 'nope' not found."
    expect_error(httpx.get(f"{url}/subjects/nope/versions/latest"), 404, 40401)
    post(f"{url}/subjects/s/versions", {"schema": json.dumps(TRADE_V1)}).raise_for_status()
    expect_error(httpx.get(f"{url}/subjects/s/versions/7"), 404, 40402)
    expect_error(httpx.get(f"{url}/schemas/ids/999"), 404, 40403)
    expect_error(httpx.get(f"{url}/schemas/ids/abc"), 404, 40403)
    expect_error(post(f"{url}/subjects/s", {"schema": json.dumps(TRADE_V2)}), 404, 40403)
    expect_error(httpx.get(f"{url}/no/such/route"), 404, 404)


def test_unprocessable_errors(registry: RegistryThread) -> None:
    url = registry.url
    expect_error(httpx.get(f"{url}/subjects/s/versions/abc"), 422, 42202)
    expect_error(httpx.get(f"{url}/subjects/s/versions/0"), 422, 42202)
    expect_error(httpx.put(f"{url}/config", json={"compatibility": "SIDEWAYS"}), 422, 42203)
    expect_error(httpx.put(f"{url}/config/s", json={}), 422, 42203)
    bad = expect_error(
        post(f"{url}/subjects/s/versions", {"schema": '{"type": "nope"}'}), 422, 42201
    )
    assert "Invalid schema" in bad
    refs = {
        "schema": json.dumps(TRADE_V1),
        "references": [{"name": "x", "subject": "y", "version": 1}],
    }
    assert "references are not supported" in expect_error(
        post(f"{url}/subjects/s/versions", refs), 422, 42201
    )
    proto = {"schema": "syntax = 'proto3';", "schemaType": "PROTOBUF"}
    assert "AVRO only" in expect_error(post(f"{url}/subjects/s/versions", proto), 422, 42201)
    expect_error(post(f"{url}/subjects/s/versions", {}), 422, 42201)
    expect_error(post(f"{url}/subjects/s/versions", {"schema": 12}), 422, 42201)
    malformed = httpx.post(
        f"{url}/subjects/s/versions", content=b"{oops", headers={"Content-Type": CT}
    )
    expect_error(malformed, 400, 400)


def test_incompatible_register_is_409_naming_the_field(registry: RegistryThread) -> None:
    url = registry.url
    post(f"{url}/subjects/{SUBJECT}/versions", {"schema": json.dumps(TRADE_V1)}).raise_for_status()
    added = {**TRADE_V1, "fields": [*TRADE_V1["fields"], {"name": "fee", "type": "long"}]}
    message = expect_error(
        post(f"{url}/subjects/{SUBJECT}/versions", {"schema": json.dumps(added)}), 409, 409
    )
    assert "field 'fee' added to record polymarket.Trade without a default" in message
    verbose = post(
        f"{url}/compatibility/subjects/{SUBJECT}/versions/latest?verbose=true",
        {"schema": json.dumps(added)},
    ).json()
    assert verbose["is_compatible"] is False
    assert any("'fee'" in m for m in verbose["messages"])
    ok = post(
        f"{url}/compatibility/subjects/{SUBJECT}/versions?verbose=true",
        {"schema": json.dumps(TRADE_V2)},
    ).json()
    assert ok == {"is_compatible": True, "messages": []}


# -- what Redpanda Console and probes use -----------------------------------------------------


def test_console_and_probe_endpoints(registry: RegistryThread) -> None:
    url = registry.url
    assert httpx.get(f"{url}/").json() == {}
    assert httpx.get(f"{url}/health").status_code == 200
    created = post(f"{url}/subjects/{SUBJECT}/versions", {"schema": json.dumps(TRADE_V1)}).json()
    assert created["id"] == 1 and created["version"] == 1

    assert httpx.get(f"{url}/subjects").json() == [SUBJECT]
    assert httpx.get(f"{url}/subjects/{SUBJECT}/versions").json() == [1]
    latest = httpx.get(f"{url}/subjects/{SUBJECT}/versions/latest").json()
    assert {k: latest[k] for k in ("subject", "version", "id")} == {
        "subject": SUBJECT,
        "version": 1,
        "id": 1,
    }
    assert json.loads(latest["schema"]) == TRADE_V1
    assert httpx.get(f"{url}/subjects/{SUBJECT}/versions/-1").json()["version"] == 1
    raw = httpx.get(f"{url}/subjects/{SUBJECT}/versions/1/schema")
    assert json.loads(raw.text) == TRADE_V1
    assert httpx.get(f"{url}/subjects/{SUBJECT}/versions/1/referencedby").json() == []
    by_id = httpx.get(f"{url}/schemas/ids/1").json()
    assert json.loads(by_id["schema"]) == TRADE_V1
    assert httpx.get(f"{url}/schemas/guids/{by_id['guid']}").json() == by_id
    assert httpx.get(f"{url}/schemas/ids/1/versions").json() == [{"subject": SUBJECT, "version": 1}]
    assert len(httpx.get(f"{url}/schemas").json()) == 1
    assert httpx.get(f"{url}/schemas/types").json() == ["AVRO"]
    assert httpx.get(f"{url}/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert httpx.get(f"{url}/mode").json() == {"mode": "READWRITE"}
    expect_error(httpx.get(f"{url}/mode/{SUBJECT}"), 404, 40409)
    assert httpx.get(f"{url}/contexts").json() == ["."]
    expect_error(httpx.put(f"{url}/mode", json={"mode": "READONLY"}), 422, 42205)


def test_soft_and_permanent_delete(client: SchemaRegistryClient, registry: RegistryThread) -> None:
    url = registry.url
    schema_id = client.register_schema(SUBJECT, avro(TRADE_V1))
    client.register_schema(SUBJECT, avro(TRADE_V2))
    expect_error(httpx.delete(f"{url}/subjects/{SUBJECT}?permanent=true"), 404, 40405)
    assert client.delete_subject(SUBJECT) == [1, 2]
    assert client.get_subjects() == []
    assert client.get_subjects(deleted=True) == [SUBJECT]
    assert client.get_versions(SUBJECT, deleted=True) == [1, 2]
    expect_error(httpx.get(f"{url}/subjects/{SUBJECT}/versions"), 404, 40401)
    expect_error(httpx.delete(f"{url}/subjects/{SUBJECT}"), 404, 40404)
    # ids stay resolvable so old messages still decode
    assert json.loads(httpx.get(f"{url}/schemas/ids/{schema_id}").json()["schema"]) == TRADE_V1
    # re-registering after a soft delete continues the version numbering (raw POST: the
    # client would answer from its own cache)
    again = post(f"{url}/subjects/{SUBJECT}/versions", {"schema": json.dumps(TRADE_V1)}).json()
    assert (again["id"], again["version"]) == (schema_id, 3)
    assert client.get_versions(SUBJECT) == [3]
    assert client.delete_version(SUBJECT, 3) == 3
    assert client.delete_version(SUBJECT, 3, permanent=True) == 3
    assert client.delete_subject(SUBJECT, permanent=True) == [1, 2]
    assert client.get_subjects(deleted=True) == []


# -- the standalone process ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_process_logs_readiness_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "pmpipe.registry.server"),
            *("--port", str(port), "--data-dir", str(tmp_path)),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PMPIPE_LOG_FORMAT": "json"},
    )
    try:
        assert proc.stderr is not None
        ready: dict[str, Any] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not ready:
            line = proc.stderr.readline()
            if not line:
                break
            entry = json.loads(line)
            if entry["msg"].startswith("schema registry ready"):
                ready = entry
        assert (
            ready["msg"] == f"schema registry ready url=http://127.0.0.1:{port} data_dir={tmp_path}"
        )
        assert ready["component"] == "schema-registry"
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "schema registry stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
