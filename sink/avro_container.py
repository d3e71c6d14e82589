"""Confluent-framed Avro payloads -> one Avro object container, by byte concatenation.

A Confluent payload is `0x00 | schema id (4 bytes, big endian) | Avro body`. The bodies of one
schema id, stripped of those 5 bytes and written back to back, are exactly the data of an Avro
object-container block; with the container header (magic, the writer schema, codec null, a sync
marker) in front, `INSERT ... FORMAT Avro` lets ClickHouse decode them. Nothing is decoded in
Python: the per-record work is a slice.

Container layout (Avro 1.11 spec, "Object Container Files"):
`Obj\\x01 | metadata map | 16-byte sync` then blocks of
`record count (zigzag long) | byte size (zigzag long) | bodies | sync`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "HEADER_SIZE",
    "Split",
    "build_container",
    "container_header",
    "container_parts",
    "split_by_schema",
    "sync_marker",
    "zigzag_long",
]

HEADER_SIZE = 5
MAGIC = b"Obj\x01"
BLOCK_RECORDS = 65_536
"""Records per container block: bounds ClickHouse's per-block buffer, not the insert size."""
PIECE_RECORDS = 8_192
"""Records per piece of the streamed body (~2-4 MB)."""


def zigzag_long(n: int) -> bytes:
    """Avro's `long`: zigzag, then base-128 varint, least significant group first."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _avro_bytes(data: bytes) -> bytes:
    return zigzag_long(len(data)) + data


def sync_marker(schema_text: str) -> bytes:
    """A 16-byte sync marker derived from the schema (any value works; fixed is reproducible)."""
    return hashlib.md5(schema_text.encode(), usedforsecurity=False).digest()


def container_header(schema_text: str, sync: bytes) -> bytes:
    """Magic, metadata map {avro.schema, avro.codec: null}, sync marker."""
    entries = (_avro_bytes(b"avro.schema") + _avro_bytes(schema_text.encode())) + (
        _avro_bytes(b"avro.codec") + _avro_bytes(b"null")
    )
    return MAGIC + zigzag_long(2) + entries + zigzag_long(0) + sync


def container_parts(
    header: bytes,
    sync: bytes,
    values: Sequence[bytes],
    indexes: Sequence[int] | None = None,
) -> Iterator[bytes]:
    """One container from Confluent payloads (`values[i]` for i in `indexes`, else all), each
    stripped of its 5-byte header, as consecutive pieces (an HTTP body streamed chunk by chunk:
    no copy of the whole). The caller has checked the framing (see `split_by_schema`)."""
    chosen = values if indexes is None else [values[i] for i in indexes]
    yield header
    for start in range(0, len(chosen), BLOCK_RECORDS):
        block = chosen[start : start + BLOCK_RECORDS]
        size = sum(map(len, block)) - HEADER_SIZE * len(block)
        yield zigzag_long(len(block)) + zigzag_long(size)
        for piece in range(0, len(block), PIECE_RECORDS):
            yield b"".join([v[HEADER_SIZE:] for v in block[piece : piece + PIECE_RECORDS]])
        yield sync


def build_container(
    header: bytes,
    sync: bytes,
    values: Sequence[bytes],
    indexes: Sequence[int] | None = None,
) -> bytes:
    """The container of `container_parts` as one bytes object."""
    return b"".join(container_parts(header, sync, values, indexes))


@dataclass
class Split:
    """A batch's values grouped by schema id, plus what is not Confluent-framed at all."""

    groups: dict[int, list[int]] = field(default_factory=dict)
    """schema id -> indexes into the batch, in offset order."""
    unframed: list[tuple[int, str]] = field(default_factory=list)
    """(index, why) of values without the magic byte and a 4-byte schema id."""


def split_by_schema(values: Sequence[bytes]) -> Split:
    """Group a batch's values by schema id. The common case (one schema id, every value framed)
    costs one set comprehension over the 5-byte headers."""
    heads = {v[:HEADER_SIZE] for v in values}
    if len(heads) == 1:
        (head,) = heads
        if len(head) == HEADER_SIZE and head[0] == 0:
            return Split(groups={int.from_bytes(head[1:], "big"): list(range(len(values)))})
    split = Split()
    for i, value in enumerate(values):
        if not value:
            split.unframed.append((i, "empty value (tombstone)"))
        elif len(value) < HEADER_SIZE or value[0] != 0:
            split.unframed.append(
                (i, "not a Confluent wire-format message (missing magic byte 0 + schema id)")
            )
        else:
            split.groups.setdefault(int.from_bytes(value[1:HEADER_SIZE], "big"), []).append(i)
    return split
