"""Storing one batch: split by schema id, frame, insert, isolate poison.

`BatchFlusher.store(batch)` makes every insert of a batch and returns what it stored and the
dead letters to send; it raises `UnavailableError` when ClickHouse or the registry cannot be used
(the caller keeps the batch and retries; the same tokens make the retry idempotent).

Tokens: the batch token `<incarnation>:<topic>:<partition>:<first>-<last>`, suffixed with
`:s<schema id>` when the batch holds several schema ids (one insert per id, e.g. across a schema
evolution). Whether to suffix depends only on the batch's bytes, never on the registry's answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sink.avro_container import container_parts, split_by_schema
from sink.batch import Batch
from sink.dlq import Letter
from sink.errors import DataRefusedError
from sink.poison import isolate
from sink.schemas import UnknownSchemaError, WriterSchema, WriterSchemas
from sink.writer import ClickHouseWriter

__all__ = ["BatchFlusher", "Stored", "Target"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """Where a consumed topic's records go, and the record type its writer schemas must have."""

    table: str
    record_fullname: str


@dataclass
class Stored:
    table: str
    rows: int = 0
    inserts: int = 0
    insert_secs: float = 0.0
    letters: list[Letter] = field(default_factory=list)


class BatchFlusher:
    def __init__(
        self, writer: ClickHouseWriter, schemas: WriterSchemas, targets: Mapping[str, Target]
    ) -> None:
        self.writer = writer
        self.schemas = schemas
        self.targets = targets

    def store(self, batch: Batch) -> Stored:
        target = self.targets[batch.topic]
        stored = Stored(table=target.table)
        split = split_by_schema(batch.values)
        stored.letters += [Letter(i, "decode", why) for i, why in split.unframed]
        several = len(split.groups) > 1
        for schema_id in sorted(split.groups):
            indexes = split.groups[schema_id]
            writer = self._writer_schema(schema_id, target, indexes, stored)
            if writer is None:
                continue
            token = f"{batch.token}:s{schema_id}" if several else batch.token
            self._insert_group(batch, target, writer, indexes, token, stored)
        return stored

    def _writer_schema(
        self, schema_id: int, target: Target, indexes: Sequence[int], stored: Stored
    ) -> WriterSchema | None:
        """The group's writer schema, or None after dead-lettering the group."""
        try:
            writer = self.schemas.get(schema_id)
        except UnknownSchemaError as e:
            stored.letters += [Letter(i, "decode", str(e), schema_id) for i in indexes]
            return None
        if writer.fullname != target.record_fullname:
            why = (
                f"schema id {schema_id} is a {writer.fullname} record; {target.table} stores "
                f"{target.record_fullname} records"
            )
            stored.letters += [Letter(i, "schema", why, schema_id) for i in indexes]
            return None
        return writer

    def _insert_group(
        self,
        batch: Batch,
        target: Target,
        writer: WriterSchema,
        indexes: list[int],
        token: str,
        stored: Stored,
    ) -> None:
        def insert(chosen: Sequence[int], chosen_token: str) -> None:
            every = len(chosen) == len(batch.values)  # the common case: no index list to build
            data = container_parts(
                writer.header, writer.sync, batch.values, None if every else chosen
            )
            stored.insert_secs += self.writer.insert_avro(
                target.table,
                writer.field_names,
                data,
                token=chosen_token,
                rows=len(chosen),
                topic=batch.topic,
                partition=batch.partition,
            )
            stored.inserts += 1
            stored.rows += len(chosen)

        try:
            insert(indexes, token)
        except DataRefusedError as refused:
            stored.letters += isolate(
                insert, writer, batch.values, batch.offsets, indexes, token, refused
            )
