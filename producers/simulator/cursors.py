"""Opaque, signed pagination cursors in the shapes the live APIs use.

Gamma keyset: base64url(signature) followed by base64url of
`{"v":1,"k":"markets","oh":<filter hash>,"keys":[{"t":"string","v":"<last id>"}]}`.
Data API v2: base64 of `{"data":{"type":"trades","params":{...}},"sig":"..."}`.
A cursor that was tampered with, comes from another run, or is replayed with other filters is
rejected (the caller answers 422 / 400).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

__all__ = [
    "CursorError",
    "filter_hash",
    "gamma_cursor",
    "read_gamma_cursor",
    "read_v2_cursor",
    "v2_cursor",
]

_SIG_CHARS = 43  # base64url of 32 bytes, unpadded


class CursorError(ValueError):
    """A cursor this server did not issue for this query."""


def filter_hash(*parts: object) -> str:
    text = json.dumps(parts, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def gamma_cursor(secret: bytes, kind: str, filters: str, last_id: str) -> str:
    payload = json.dumps(
        {"v": 1, "k": kind, "oh": filters, "keys": [{"t": "string", "v": last_id}]},
        separators=(",", ":"),
    ).encode()
    sig = hmac.new(secret, payload, hashlib.sha256).digest()
    return _b64(sig) + _b64(payload)


def read_gamma_cursor(secret: bytes, cursor: str, kind: str, filters: str) -> str:
    """The last id of the previous page."""
    try:
        sig, payload = _unb64(cursor[:_SIG_CHARS]), _unb64(cursor[_SIG_CHARS:])
        data = json.loads(payload)
    except (binascii.Error, ValueError) as e:
        raise CursorError("malformed cursor") from e
    if not hmac.compare_digest(sig, hmac.new(secret, payload, hashlib.sha256).digest()):
        raise CursorError("invalid cursor signature")
    if data.get("k") != kind or data.get("oh") != filters:
        raise CursorError("cursor does not belong to this query (filters changed?)")
    try:
        return str(data["keys"][0]["v"])
    except (KeyError, IndexError, TypeError) as e:
        raise CursorError("malformed cursor") from e


def v2_cursor(secret: bytes, kind: str, params: dict[str, Any]) -> str:
    data = {"type": kind, "params": params}
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    sig = hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:32]
    body = json.dumps({"data": data, "sig": sig}, separators=(",", ":"))
    return base64.b64encode(body.encode()).decode()


def read_v2_cursor(secret: bytes, cursor: str, kind: str) -> dict[str, Any]:
    try:
        body = json.loads(base64.b64decode(cursor, validate=True))
        data, sig = body["data"], body["sig"]
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise CursorError("malformed cursor") from e
    expected = hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:32]
    if not isinstance(sig, str) or not hmac.compare_digest(sig, expected):
        raise CursorError("invalid cursor signature")
    if not isinstance(data, dict) or data.get("type") != kind:
        raise CursorError("cursor of another feed")
    params = data.get("params")
    if not isinstance(params, dict):
        raise CursorError("malformed cursor")
    return params
