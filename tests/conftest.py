"""Session-wide fixtures shared by every test module."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pmpipe.broker import TansuProcess, wait_for_broker

logger = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ONE real, memory-only Tansu broker for the whole session: yields "127.0.0.1:PORT".

    It never forgets anything, so tests use unique topic names (and group ids). The broker
    is stopped at session end, and killed by the kernel if the test process dies first.
    """
    broker = TansuProcess(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    broker.start()
    try:
        wait_for_broker(broker.bootstrap, timeout_secs=10)
        yield broker.bootstrap
    finally:
        if not broker.running():
            logger.warning("the session broker died during the tests (see %s)", broker.log_path)
        broker.stop()
