"""Tests of the producers package, and where their payloads live.

Fixtures: small real payloads in tests/fixtures/polymarket/ (always present). Captures: the
whole shared capture folder, `PMPIPE_CAPTURES_DIR` or ../shared/polymarket/captures next to
the repository; tests that need it skip when it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "polymarket"
RECEIVED_TS = 1_790_000_000_123_456  # epoch µs stamped on every parsed record in tests


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def fixture_text(name: str) -> str:
    return fixture_path(name).read_text(encoding="utf-8")


def load_fixture(name: str) -> Any:
    return json.loads(fixture_text(name))


def captures_dir() -> Path:
    """The shared captures folder (skips the calling test when it is absent)."""
    env = os.environ.get("PMPIPE_CAPTURES_DIR")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parents[2].parent / "shared/polymarket/captures",
        Path("/work/shared/polymarket/captures"),  # the team machines' shared folder
    ]
    for folder in candidates:
        if folder.is_dir():
            return folder
    pytest.skip(f"captures folder not found in {candidates} (set PMPIPE_CAPTURES_DIR)")
