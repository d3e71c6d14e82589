"""Writer schemas by registry id, fetched once per id, with their container header ready.

An id the registry does not know makes its records poison (dead-letter topic); a registry that
cannot be reached is `UnavailableError` (the batch waits). A writer schema whose record is not the
topic's record type (a producer wrote a Market onto the trades topic) is poison too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import fastavro
import httpx2
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pmpipe.errors import PipelineError
from sink.avro_container import container_header, sync_marker
from sink.errors import UnavailableError

__all__ = ["UnknownSchemaError", "WriterSchema", "WriterSchemas", "record_fullname"]

log = logging.getLogger(__name__)

_NOT_FOUND = 404


class UnknownSchemaError(PipelineError):
    """The registry has no schema with this id (or it is not an Avro record schema)."""


def record_fullname(schema: dict[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


@dataclass(frozen=True)
class WriterSchema:
    schema_id: int
    text: str
    fullname: str
    field_names: tuple[str, ...]
    header: bytes = field(repr=False)
    sync: bytes = field(repr=False)
    parsed: Any = field(repr=False, compare=False)
    """fastavro's parsed schema, for decoding suspects of a refused insert."""

    @classmethod
    def from_text(cls, schema_id: int, text: str) -> WriterSchema:
        try:
            schema = json.loads(text)
            parsed = fastavro.parse_schema(schema)
        except (ValueError, TypeError, fastavro.schema.SchemaParseException) as e:
            raise UnknownSchemaError(
                f"schema id {schema_id} is not a valid Avro schema: {e}"
            ) from e
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise UnknownSchemaError(f"schema id {schema_id} is not an Avro record schema")
        sync = sync_marker(text)
        return cls(
            schema_id=schema_id,
            text=text,
            fullname=record_fullname(schema),
            field_names=tuple(str(f["name"]) for f in schema.get("fields", [])),
            header=container_header(text, sync),
            sync=sync,
            parsed=parsed,
        )


class WriterSchemas:
    """Schema id -> WriterSchema, through the registry client (which caches by id too)."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._cache: dict[int, WriterSchema] = {}

    def get(self, schema_id: int) -> WriterSchema:
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        try:
            schema = self._registry.get_schema(schema_id)
        except SchemaRegistryError as e:
            if e.http_status_code == _NOT_FOUND:
                raise UnknownSchemaError(f"schema id {schema_id} is unknown to the registry") from e
            raise UnavailableError(
                f"schema registry refused schema id {schema_id}: {e}", component="sink"
            ) from e
        except (httpx2.HTTPError, OSError) as e:
            raise UnavailableError(f"schema registry unreachable: {e}", component="sink") from e
        if (schema.schema_type or "AVRO").upper() != "AVRO" or schema.schema_str is None:
            raise UnknownSchemaError(f"schema id {schema_id} is a {schema.schema_type} schema")
        writer = WriterSchema.from_text(schema_id, schema.schema_str)
        self._cache[schema_id] = writer
        log.info("writer schema id=%d record=%s", schema_id, writer.fullname)
        return writer
