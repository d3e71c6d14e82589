"""A real ClickHouse endpoint for the sink tests, reached with clickhouse-connect over HTTP.

By default the embedded endpoint (`python -m pmpipe.chserve`, chdb behind the ClickHouse HTTP
interface) is started once per session on a free port with a temporary data directory.
PMPIPE_TEST_CLICKHOUSE_URL=http(s)://user:password@host:port runs the same tests against another
server instead (e.g. ClickHouse Cloud). Every test works in databases of its own
(`pmtest_<random>`), dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from pmpipe.migrations import apply_migrations

logger = logging.getLogger(__name__)

START_TIMEOUT_SECS = 30.0
URL_ENV = "PMPIPE_TEST_CLICKHOUSE_URL"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str = "default"
    password: str = ""
    secure: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_ping(endpoint: Endpoint, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"pmpipe.chserve exited with {process.returncode} before answering /ping:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        try:
            response = httpx.get(f"{endpoint.url}/ping", timeout=1.0)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as e:
            last_error = str(e)
        time.sleep(0.1)
    raise RuntimeError(
        f"pmpipe.chserve did not answer /ping within {START_TIMEOUT_SECS}s ({last_error}):\n"
        + log_path.read_text(errors="replace")[-4000:]
    )


@pytest.fixture(scope="session")
def clickhouse_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    url = os.environ.get(URL_ENV)
    if url:
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        yield Endpoint(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            secure=secure,
        )
        return
    if importlib.util.find_spec("pmpipe.chserve") is None or (
        importlib.util.find_spec("pmpipe.chserve.__main__") is None
    ):
        pytest.skip(f"pmpipe.chserve (the embedded endpoint) is not available; or set {URL_ENV}")
    base = tmp_path_factory.mktemp("chserve")
    endpoint = Endpoint(host="127.0.0.1", port=_free_port())
    log_path = base / "chserve.log"
    # no user/password from the caller's environment: the test server is open on loopback
    env = {
        k: v for k, v in os.environ.items() if k not in ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD")
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pmpipe.chserve",
                "--port",
                str(endpoint.port),
                "--data-dir",
                str(base / "data"),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_for_ping(endpoint, process, log_path)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            logger.warning("pmpipe.chserve ignored SIGTERM; killing it (log: %s)", log_path)
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def clickhouse_client(clickhouse_endpoint: Endpoint) -> Iterator[Client]:
    client = clickhouse_connect.get_client(
        host=clickhouse_endpoint.host,
        port=clickhouse_endpoint.port,
        username=clickhouse_endpoint.username,
        password=clickhouse_endpoint.password,
        secure=clickhouse_endpoint.secure,
    )
    try:
        yield client
    finally:
        client.close()


def _drop_database(client: Client, name: str) -> None:
    try:
        client.command(f"DROP DATABASE IF EXISTS {name}")
    except Exception:  # a cleanup failure must not hide the test's own result
        logger.warning("could not drop test database %s", name, exc_info=True)


@pytest.fixture
def fresh_database(clickhouse_client: Client) -> Iterator[str]:
    """The name of a database that does not exist yet (dropped after the test)."""
    name = f"pmtest_{uuid.uuid4().hex[:12]}"
    yield name
    _drop_database(clickhouse_client, name)


@pytest.fixture
def migrated_database(clickhouse_client: Client) -> Iterator[str]:
    """A new database with every migration applied (default parameters)."""
    name = f"pmtest_{uuid.uuid4().hex[:12]}"
    apply_migrations(clickhouse_client, name)
    yield name
    _drop_database(clickhouse_client, name)


# ---------------------------------------------------------------------------------------------
# The sink's end-to-end tests (helpers in tests/sink/sinkstack.py): the registry, one test's
# prefixed topics and group on the session broker, a ClickHouse endpoint a test may stop.


@pytest.fixture(scope="session")
def sink_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded schema registry, served from a thread of the test process."""
    from pmpipe.registry.server import RegistryThread

    registry = RegistryThread(tmp_path_factory.mktemp("sink-registry"))
    registry.start()
    try:
        yield registry.url
    finally:
        registry.stop()


@pytest.fixture
def sink_stack(
    tansu_broker: str,
    sink_registry_url: str,
    clickhouse_endpoint: Endpoint,
    clickhouse_client: Client,
    migrated_database: str,
    tmp_path: Path,
):
    """A migrated database, a unique topic prefix (topics created) and group id on the session
    broker; `start_sink()` runs `python -m sink` against them (a `SinkStack`)."""
    from tests.sink.sinkstack import SinkStack

    run = uuid.uuid4().hex[:10]
    stack = SinkStack(
        bootstrap=tansu_broker,
        registry_url=sink_registry_url,
        endpoint=clickhouse_endpoint,
        database=migrated_database,
        prefix=f"t{run}.",
        group_id=f"sink-{run}",
        log_dir=tmp_path,
        client=clickhouse_client,
    )
    stack.create_topics()
    return stack


@pytest.fixture
def own_clickhouse(tmp_path: Path):
    """An embedded ClickHouse of this test alone, which it may kill and start again (a
    `ChServeProcess`)."""
    from tests.sink.sinkstack import ChServeProcess

    server = ChServeProcess(tmp_path / "clickhouse", tmp_path / "chserve.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()
