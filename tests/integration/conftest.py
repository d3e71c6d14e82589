"""Fixtures for integration tests: the embedded schema registry (the broker fixture,
`tansu_broker`, is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pmpipe.registry.server import RegistryThread


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("registry")
    with RegistryThread(data_dir) as thread:
        yield thread.url
