"""Where the project's data files live: schemas/, clickhouse/, redpanda/.

In a source checkout (editable install) they are the top-level folders; in a wheel they are
packaged under pmpipe/_data/.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def project_dir(name: str) -> Path:
    for candidate in (_PKG.parent / name, _PKG / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ folder next to the pmpipe package")


def schemas_dir() -> Path:
    """schemas/, or PMPIPE_SCHEMAS_DIR (to check a proposed change before it is committed)."""
    override = os.environ.get("PMPIPE_SCHEMAS_DIR")
    return Path(override) if override else project_dir("schemas")


def clickhouse_dir() -> Path:
    return project_dir("clickhouse")


def redpanda_dir() -> Path:
    return project_dir("redpanda")
