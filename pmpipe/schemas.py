"""`pmpipe schemas check|register`: our .avsc files against a Confluent-compatible registry.

The registry's own verdict is authoritative (Redpanda's, or the embedded one); to name the
offending field even when a registry answers only true/false, the same change is also run
through our BACKWARD checker (pmpipe.registry.compat) against the subject's latest schema.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pmpipe.errors import PipelineError, SchemaCompatibilityError
from pmpipe.registry.compat import check_compatibility
from pmpipe.topics import Topic

log = logging.getLogger(__name__)

SR_NOT_FOUND = (40401, 40402, 40403)


@dataclass
class SchemaCheck:
    topic: str
    subject: str
    status: str  # "new" | "unchanged" | "compatible" | "incompatible"
    messages: list[str] = field(default_factory=list)
    latest_version: int | None = None

    @property
    def ok(self) -> bool:
        return self.status != "incompatible"


def _canonical(schema: str | dict[str, Any]) -> str:
    obj = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _registry_call(url: str, what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SchemaRegistryError:
        raise
    except (httpx.HTTPError, httpx2.HTTPError, OSError) as e:
        # confluent-kafka's registry client speaks httpx2, our own calls httpx.
        raise PipelineError(f"cannot reach schema registry at {url} ({what}): {e}") from e


def _registry_verdict(
    url: str, subject: str, schema_text: str, auth: tuple[str, str] | None
) -> tuple[bool, list[str]]:
    """POST /compatibility/subjects/{s}/versions/latest?verbose=true (Confluent REST API)."""
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/compatibility/subjects/{subject}/versions/latest",
            params={"verbose": "true"},
            json={"schema": schema_text, "schemaType": "AVRO"},
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            auth=auth,
            timeout=10.0,
        )
    except httpx.HTTPError as e:
        raise PipelineError(f"cannot reach schema registry at {url}: {e}") from e
    if response.status_code >= 400:
        raise PipelineError(
            f"schema registry refused the compatibility check for {subject}: "
            f"HTTP {response.status_code} {response.text[:300]}"
        )
    body = response.json()
    return bool(body.get("is_compatible")), [str(m) for m in body.get("messages") or []]


def check_schemas(
    client: SchemaRegistryClient,
    url: str,
    topics: list[Topic],
    auth: tuple[str, str] | None = None,
) -> list[SchemaCheck]:
    results = []
    for topic in topics:
        text = topic.schema_text()
        try:
            latest = _registry_call(
                url, "get latest version", client.get_latest_version, topic.subject
            )
        except SchemaRegistryError as e:
            if e.error_code in SR_NOT_FOUND or e.http_status_code == 404:
                results.append(SchemaCheck(topic.name, topic.subject, "new"))
                continue
            raise PipelineError(f"schema registry error for {topic.subject}: {e}") from e
        old_text = latest.schema.schema_str
        if _canonical(old_text) == _canonical(text):
            results.append(
                SchemaCheck(topic.name, topic.subject, "unchanged", latest_version=latest.version)
            )
            continue
        ok, messages = _registry_verdict(url, topic.subject, json.dumps(json.loads(text)), auth)
        local = check_compatibility(reader=text, writer=old_text)
        if not ok and local:
            # Our checker names the field; registries word the same finding differently
            # (ours prefixes "version N, ..."), so show ours alone.
            messages = local
        elif not ok and not messages:
            messages = ["the registry reports the change as incompatible"]
        results.append(
            SchemaCheck(
                topic.name,
                topic.subject,
                "compatible" if ok else "incompatible",
                messages if not ok else local,
                latest.version,
            )
        )
    return results


def register_schemas(
    client: SchemaRegistryClient,
    url: str,
    topics: list[Topic],
    auth: tuple[str, str] | None = None,
) -> list[tuple[str, int]]:
    """Check, then register every topic's schema; (subject, schema id) per topic.

    Refuses (SchemaCompatibilityError naming the fields) before registering anything when a
    schema is not compatible.
    """
    checks = check_schemas(client, url, topics, auth)
    bad = [c for c in checks if not c.ok]
    if bad:
        detail = "; ".join(f"{c.subject}: {', '.join(c.messages)}" for c in bad)
        raise SchemaCompatibilityError(f"incompatible schema change refused: {detail}")
    registered = []
    for topic in topics:
        schema = Schema(json.dumps(json.loads(topic.schema_text())), "AVRO")
        try:
            schema_id = _registry_call(
                url, "register", client.register_schema, topic.subject, schema
            )
        except SchemaRegistryError as e:
            raise PipelineError(f"registering {topic.subject} failed: {e}") from e
        log.info("schema registered subject=%s id=%s", topic.subject, schema_id)
        registered.append((topic.subject, int(schema_id)))
    return registered
