"""Request-body decoders and response encoders, as ClickHouse's HTTP interface uses them.

Request bodies may carry an HTTP `Content-Encoding` (gzip, deflate, zstd, lz4, br when the
brotli module is installed) and, independently, ClickHouse's own block compression
(`?decompress=1`). Clients concatenate frames freely: clickhouse-connect sends one LZ4 frame
(or zstd frame) per insert block, so every decoder here keeps decoding after the end of a
frame — decoding only the first one silently drops all rows past the first block.

Decoders are incremental (`decode(chunk)` then `flush()`), not thread-safe, and raise
`ClickHouseError` (CANNOT_DECOMPRESS / UNKNOWN_COMPRESSION_METHOD) on bad input.
"""

from __future__ import annotations

import importlib
import struct
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import lz4.block
import lz4.frame

from pmpipe.chserve.protocol import ClickHouseError

try:  # Python 3.14 has compression.zstd; earlier versions use the backport
    from compression import zstd as _zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from backports import zstd as _zstd  # type: ignore[no-redef,import-not-found,unused-ignore]
    except ImportError:
        _zstd = None

_brotli: Any
try:
    _brotli = importlib.import_module("brotli")
except ImportError:
    _brotli = None


def _cannot_decompress(what: str, error: BaseException | str) -> ClickHouseError:
    return ClickHouseError(271, f"Cannot decompress {what} request body: {error}")


class Decoder(Protocol):
    def decode(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class Identity:
    def decode(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _FrameChain:
    """Decodes a sequence of self-delimiting frames, starting a new decoder at each frame end."""

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self._name = name
        self._factory = factory
        self._current: Any = None
        self._in_frame = False

    def decode(self, data: bytes) -> bytes:
        out = bytearray()
        while data:
            if self._current is None:
                self._current = self._factory()
            try:
                out += self._current.decompress(data)
            except Exception as e:
                raise _cannot_decompress(self._name, e) from None
            self._in_frame = True
            if self._current.eof:
                data = bytes(self._current.unused_data or b"")
                self._current = None
                self._in_frame = False
            else:
                data = b""
        return bytes(out)

    def flush(self) -> bytes:
        if self._in_frame:
            raise _cannot_decompress(self._name, "the body ends inside a frame")
        return b""


def _lz4_factory() -> Any:
    return lz4.frame.LZ4FrameDecompressor()


def _zstd_factory() -> Any:
    if _zstd is None:  # pragma: no cover - depends on the interpreter
        raise ClickHouseError(89, "zstd Content-Encoding needs the backports.zstd module")
    return _zstd.ZstdDecompressor()


def _gzip_factory() -> Any:
    return zlib.decompressobj(wbits=47)  # gzip or zlib header, detected


def _deflate_factory() -> Any:
    return zlib.decompressobj(wbits=15)


class _Brotli:
    def __init__(self) -> None:
        self._decoder = _brotli.Decompressor()

    def decode(self, data: bytes) -> bytes:
        try:
            return bytes(self._decoder.process(data))
        except Exception as e:
            raise _cannot_decompress("br", e) from None

    def flush(self) -> bytes:
        if not self._decoder.is_finished():
            raise _cannot_decompress("br", "the body ends inside the stream")
        return b""


# --- ClickHouse native block compression (?decompress=1) --------------------------------------

_NATIVE_HEADER = 16 + 9  # checksum, then method byte, compressed size, decompressed size
_METHOD_NONE, _METHOD_LZ4, _METHOD_ZSTD = 0x02, 0x82, 0x90
_MAX_NATIVE_BLOCK = 1 << 30


def _cityhash128() -> Callable[[bytes], int] | None:
    """clickhouse-cityhash's CityHash128 when installed (checksums are then verified)."""
    try:
        module = importlib.import_module("clickhouse_cityhash.cityhash")
    except ImportError:
        return None
    function: Callable[[bytes], int] = module.CityHash128
    return function


class NativeBlocks:
    """ClickHouse's compressed-block framing: [16-byte CityHash128][method][u32 size incl.
    9-byte header][u32 decompressed size][payload]. Checksums are verified when the
    clickhouse-cityhash module is installed, skipped otherwise."""

    def __init__(self, verify_checksums: bool = True) -> None:
        self._buffer = bytearray()
        self._hash = _cityhash128() if verify_checksums else None

    def decode(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while len(self._buffer) >= _NATIVE_HEADER:
            method, size, raw_size = struct.unpack_from("<BII", self._buffer, 16)
            if size < 9 or size > _MAX_NATIVE_BLOCK or raw_size > _MAX_NATIVE_BLOCK:
                raise _cannot_decompress("native", f"bad block header (size {size})")
            if len(self._buffer) < 16 + size:
                break
            block = bytes(self._buffer[16 : 16 + size])
            self._check(bytes(self._buffer[:16]), block)
            out += _decode_native_block(method, block[9:], raw_size)
            del self._buffer[: 16 + size]
        return bytes(out)

    def _check(self, checksum: bytes, block: bytes) -> None:
        if self._hash is None:
            return
        value = self._hash(block)
        expected = (value & ((1 << 64) - 1)).to_bytes(8, "little") + (value >> 64).to_bytes(
            8, "little"
        )
        if expected != checksum:
            raise ClickHouseError(40, "Checksum doesn't match: corrupted data (native block)")

    def flush(self) -> bytes:
        if self._buffer:
            raise _cannot_decompress("native", "the body ends inside a block")
        return b""


def _decode_native_block(method: int, payload: bytes, raw_size: int) -> bytes:
    try:
        if method == _METHOD_NONE:
            return payload
        if method == _METHOD_LZ4:
            return bytes(lz4.block.decompress(payload, uncompressed_size=raw_size))
        if method == _METHOD_ZSTD and _zstd is not None:
            return bytes(_zstd.decompress(payload))
    except Exception as e:
        raise _cannot_decompress("native", e) from None
    raise ClickHouseError(89, f"Unknown compression method 0x{method:02x} in a native block")


class Chain:
    """HTTP Content-Encoding first, then ClickHouse native blocks (the order ClickHouse uses)."""

    def __init__(self, outer: Decoder, inner: Decoder) -> None:
        self._outer = outer
        self._inner = inner

    def decode(self, data: bytes) -> bytes:
        return self._inner.decode(self._outer.decode(data))

    def flush(self) -> bytes:
        tail = self._inner.decode(self._outer.flush())
        return tail + self._inner.flush()


def make_decoder(content_encoding: str, native_blocks: bool) -> Decoder:
    """The decoder for a request body. Unknown encodings raise UNKNOWN_COMPRESSION_METHOD."""
    encoding = content_encoding.strip().lower()
    outer: Decoder
    if encoding in ("", "identity", "none"):
        outer = Identity()
    elif encoding == "lz4":
        outer = _FrameChain("lz4", _lz4_factory)
    elif encoding == "zstd":
        outer = _FrameChain("zstd", _zstd_factory)
    elif encoding in ("gzip", "x-gzip"):
        outer = _FrameChain("gzip", _gzip_factory)
    elif encoding == "deflate":
        outer = _FrameChain("deflate", _deflate_factory)
    elif encoding == "br" and _brotli is not None:
        outer = _Brotli()
    else:
        raise ClickHouseError(
            89, f"Unknown Content-Encoding {content_encoding!r} (supported: {supported_list()})"
        )
    return Chain(outer, NativeBlocks()) if native_blocks else outer


def supported_list() -> str:
    names = ["gzip", "deflate", "lz4"]
    if _zstd is not None:
        names.append("zstd")
    if _brotli is not None:
        names.append("br")
    return ", ".join(names)


# --- response compression -------------------------------------------------------------------

# ClickHouse's server-side preference order for Accept-Encoding negotiation.
_PREFERENCE = ("zstd", "br", "lz4", "gzip", "deflate")


def _available(name: str) -> bool:
    if name == "zstd":
        return _zstd is not None
    if name == "br":
        return _brotli is not None
    return True


def choose_response_encoding(accept_encoding: str) -> str | None:
    """Pick a Content-Encoding from an Accept-Encoding header as ClickHouse does: the server's
    preference order among the acceptable tokens (q=0 excludes one, `*` allows any)."""
    accepted: set[str] = set()
    wildcard = False
    for item in accept_encoding.split(","):
        token, _, params = item.strip().partition(";")
        token = token.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0 or not token:
            continue
        if token == "*":
            wildcard = True
        else:
            accepted.add(token)
    for name in _PREFERENCE:
        if (name in accepted or wildcard) and _available(name):
            return name
    return None


def encode_response(body: bytes, encoding: str) -> bytes:
    """Compress a whole response body with an encoding from choose_response_encoding."""
    if encoding == "zstd" and _zstd is not None:
        return bytes(_zstd.compress(body))
    if encoding == "br" and _brotli is not None:
        return bytes(_brotli.compress(body))
    if encoding == "lz4":
        return bytes(lz4.frame.compress(body))
    if encoding == "gzip":
        compressor = zlib.compressobj(level=3, wbits=31)
        return compressor.compress(body) + compressor.flush()
    if encoding == "deflate":
        return zlib.compress(body, 3)
    raise ValueError(f"unsupported response encoding {encoding!r}")
