"""Finding the culprits of an insert ClickHouse refused because of its data.

Off the hot path: only a refused group is decoded in Python. Step 1 decodes every body with
fastavro and the writer schema; what does not decode (or leaves trailing bytes) is a dead letter,
and the rest is inserted with the token `<token>:dlq-filtered`. Step 2, when that is refused too
(or nothing failed to decode: ClickHouse refuses a value fastavro accepts, e.g. a decimal out of
range), bisects: each half is inserted with `<prefix>:<first offset>-<last offset>` of its
records until single refused records remain, which are dead letters.

Every token depends only on the batch's bytes and on what ClickHouse accepts, so a batch re-formed
after a crash takes the same path and its already-inserted parts are deduplicated.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence

import fastavro

from sink.avro_container import HEADER_SIZE
from sink.dlq import Letter
from sink.errors import DataRefusedError
from sink.schemas import WriterSchema

__all__ = ["DECODE_ERRORS", "decode_failures", "isolate"]

log = logging.getLogger(__name__)

DECODE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
)
"""What fastavro raises on corrupt bodies (truncated, bad varints, bad union index, bad UTF-8)."""

Insert = Callable[[Sequence[int], str], None]
"""Insert the records at these batch indexes with this token (raises DataRefusedError or
UnavailableError)."""


def decode_failures(
    writer: WriterSchema, values: Sequence[bytes], indexes: Sequence[int]
) -> list[tuple[int, str]]:
    """(index, error) of the bodies that do not decode exactly with the writer schema."""
    failures = []
    for i in indexes:
        body = values[i][HEADER_SIZE:]
        stream = io.BytesIO(body)
        try:
            fastavro.schemaless_reader(stream, writer.parsed, None)
        except DECODE_ERRORS as e:
            failures.append(
                (i, f"Avro body does not decode with schema id {writer.schema_id}: {e!r}")
            )
            continue
        if stream.tell() != len(body):
            failures.append(
                (i, f"{len(body) - stream.tell()} trailing byte(s) after the Avro record")
            )
    return failures


def isolate(
    insert: Insert,
    writer: WriterSchema,
    values: Sequence[bytes],
    offsets: Sequence[int],
    indexes: Sequence[int],
    token: str,
    refused: DataRefusedError,
) -> list[Letter]:
    """Insert what can be inserted of a refused group; returns the dead letters."""
    log.warning("isolating poison in %d record(s) token=%s: %s", len(indexes), token, refused)
    letters = [
        Letter(index=i, error_type="decode", error=error, schema_id=writer.schema_id)
        for i, error in decode_failures(writer, values, indexes)
    ]
    if not letters:
        return _bisect(insert, writer, offsets, list(indexes), token, refused)
    bad = {letter.index for letter in letters}
    good = [i for i in indexes if i not in bad]
    if not good:
        return letters
    filtered = f"{token}:dlq-filtered"
    try:
        insert(good, filtered)
    except DataRefusedError as e:
        return letters + _bisect(insert, writer, offsets, good, filtered, e)
    return letters


def _bisect(
    insert: Insert,
    writer: WriterSchema,
    offsets: Sequence[int],
    indexes: list[int],
    prefix: str,
    refused: DataRefusedError,
) -> list[Letter]:
    """`indexes` were refused together under `prefix`: split until the culprits are alone."""
    if len(indexes) == 1:
        return [
            Letter(
                index=indexes[0],
                error_type="insert",
                error=str(refused),
                schema_id=writer.schema_id,
            )
        ]
    middle = len(indexes) // 2
    letters: list[Letter] = []
    for half in (indexes[:middle], indexes[middle:]):
        token = f"{prefix}:{offsets[half[0]]}-{offsets[half[-1]]}"
        try:
            insert(half, token)
        except DataRefusedError as e:
            letters += _bisect(insert, writer, offsets, half, token, e)
    return letters
