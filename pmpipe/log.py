"""Structured logging: one JSON object per line, with the component name.

Secrets never reach a log line: `redact` scrubs passwords and credentials in URLs from any
message, and the config object's repr never contains the password.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
_SECRET_VALUES: set[str] = set()

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message"}


def register_secret(value: str | None) -> None:
    """Remember a secret so that it is replaced by *** wherever it would be logged."""
    if value:
        _SECRET_VALUES.add(value)


def redact(text: str) -> str:
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***:***@", text)
    for secret in _SECRET_VALUES:
        text = text.replace(secret, "***")
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Human-friendly lines for an interactive terminal (PMPIPE_LOG_FORMAT=text)."""

    def __init__(self, component: str) -> None:
        super().__init__("%(asctime)s %(levelname)-5s " + component + " %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(component: str, level: str | None = None) -> None:
    """Configure the root logger once per process: JSON lines on stderr by default."""
    level = (level or os.environ.get("PMPIPE_LOG_LEVEL") or "INFO").upper()
    fmt = os.environ.get("PMPIPE_LOG_FORMAT", "json").lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component) if fmt == "json" else TextFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp.access", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
