"""docker-compose.yml's pipeline services run as `docker compose up` would run them, with the
addresses mapped to loopback, since no Docker engine runs here:

* the file is read the way compose reads it: YAML with its anchors and merge keys, then every
  `${VAR...}` interpolated from a `.env` made from .env.example the way the README says
  (`cp .env.example .env`, then fill in the ClickHouse host);
* each service's process is the image's ENTRYPOINT + the service's `command`, in the image's
  WORKDIR, with the image's ENV (from docker/Dockerfile.python's runtime stage) overlaid by the
  service's `environment`, and nothing of this test's own environment;
* the ClickHouse password is set in `.env` only, and the embedded ClickHouse requires it: every
  service authenticates with it, and no log line shows it;
* what differs is only where things are: `redpanda:9092` is a Tansu broker and
  `http://redpanda:8081` the local schema registry, both on loopback; CLICKHOUSE_HOST/PORT in
  `.env` point at the embedded ClickHouse (`pmpipe serve`); the image's paths (/opt/venv,
  /data, the home directory) are this checkout's venv and temporary directories; each
  service's metrics port is a free one (each container has its own loopback, this host only
  one); and Polymarket's hosts are the simulator;
* compose's order: `init` must exit 0 before producers and sink start; each long-running
  service's own healthcheck command must then pass; data must flow from the simulator through
  the broker into ClickHouse (every fill, market and book, against the simulator's truth); and
  SIGTERM (what `docker compose stop` sends through `init: true`) must stop each service with
  code 0 inside its stop_grace_period.

Once with the file as shipped, and once with the second producer replica uncommented as its
comment tells users to (PMPIPE_REPLICA_COUNT=2): the two replicas split the tokens, and every
token still gets its WebSocket books.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
import yaml
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from confluent_kafka.admin import AdminClient

from pmpipe.broker import TansuProcess, free_port, wait_for_broker
from tests.integration.test_e2e_clickhouse import (
    Expected,
    Simulator,
    check_markets_and_books,
    check_trades,
    column,
    start_simulator,
    wait_until_held,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "docker" / "Dockerfile.python"
TOPICS = ROOT / "redpanda" / "topics.json"
DASHBOARD_DOCKERFILE = ROOT / "docker" / "Dockerfile.dashboard"
DASHBOARD_BUILD = ROOT / "dashboard" / ".next" / "standalone"
# PATH of the node:20-slim base image
NODE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# PATH of the python:3.11-slim base image (`docker image inspect python:3.11-slim`)
BASE_IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INTERVAL_SECS = "2"  # the poll intervals, set in .env as a user may
PASSWORD = "compose-Secret-4711"  # ClickHouse's, in .env only; no log line may show it
REPLICA_BLOCK = re.compile(
    r"  # >>> producer replica.*?\n(?P<body>.*?)  # <<< producer replica", re.S
)


# ---------------------------------------------------------------------------------------------
# reading the files as compose and docker do


def read_dotenv(text: str) -> dict[str, str]:
    """A compose `.env`: NAME=value lines, `#` comments, optional quotes around the value."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f".env: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}. A missing required
    variable raises as `docker compose` refuses to start."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["invalid"] is not None and match["braced"] is None and match["named"] is None:
            raise ValueError(f"invalid interpolation in {value!r}")
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        unset_or_empty = current is None or (current == "" and op is not None and ":" in op)
        if op in (":-", "-"):
            return arg if unset_or_empty else str(current)
        if op in (":?", "?"):
            if unset_or_empty:
                raise ValueError(f"required variable {name} is missing a value: {arg}")
            return str(current)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(item, env) for key, item in node.items()}
    return node


def load_compose(text: str, dotenv: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = interpolate_tree(yaml.safe_load(text), dotenv)
    return data


@dataclass
class Image:
    """What a container of the image starts with: ENV, WORKDIR, ENTRYPOINT, CMD."""

    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def read_image(dockerfile: Path, base_path: str) -> Image:
    """The runtime (last) stage of a Dockerfile: its ENV (with $VAR expanded as the builder
    does), WORKDIR, and exec-form ENTRYPOINT and CMD."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    image = Image(env={"PATH": base_path})
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            image = Image(env={"PATH": base_path})
        elif instruction == "ENV":
            for token in shlex.split(rest):
                name, sep, value = token.partition("=")
                assert sep, f"{dockerfile}: ENV {token!r} (only NAME=value is read here)"
                image.env[name] = interpolate(value, image.env)
        elif instruction == "WORKDIR":
            image.workdir = rest.strip()
        elif instruction == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif instruction == "CMD":
            image.cmd = json.loads(rest)
    assert image.entrypoint, f"{dockerfile}: no exec-form ENTRYPOINT in the last stage"
    return image


def seconds(duration: str) -> float:
    """A compose duration such as 60s, 1m30s."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


# ---------------------------------------------------------------------------------------------
# the stand-ins and the services


@dataclass
class Loopback:
    """Where the compose addresses are on this machine."""

    bootstrap: str
    registry_url: str
    clickhouse_port: int
    simulator: Simulator


@contextmanager
def stand_ins(tmp_path: Path, seed: int) -> Iterator[Loopback]:
    """`redpanda` (Tansu + `pmpipe registry`), ClickHouse (`pmpipe serve`) and Polymarket
    (the simulator), each its own process on a free loopback port."""
    broker = TansuProcess(log_path=tmp_path / "tansu.log")
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, *args: str) -> None:
        with (tmp_path / f"{name}.log").open("wb") as log:
            argv = [sys.executable, "-m", "pmpipe", *args, "--data-dir", str(tmp_path / name)]
            env = {**os.environ, "CLICKHOUSE_PASSWORD": PASSWORD}
            processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))

    sim: Simulator | None = None
    try:
        broker.start()
        wait_for_broker(broker.bootstrap, timeout_secs=15)
        registry_port, clickhouse_port = free_port(), free_port()
        spawn("registry", "registry", "--port", str(registry_port))
        spawn("clickhouse", "serve", "--port", str(clickhouse_port))
        for url in (
            f"http://127.0.0.1:{registry_port}/subjects",
            f"http://127.0.0.1:{clickhouse_port}/ping",
        ):
            _wait_http(url, processes)
        sim = start_simulator(tmp_path, seed)
        yield Loopback(broker.bootstrap, f"http://127.0.0.1:{registry_port}", clickhouse_port, sim)
    finally:
        if sim is not None:
            sim.stop()
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        broker.stop()


def _wait_http(url: str, processes: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            dead = [p.args for p in processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer (dead: {dead})") from None
            time.sleep(0.2)


@dataclass
class Service:
    """One compose service as a process: argv, env and working directory as a container of
    its image would have them."""

    name: str
    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    # what its own loopback address is here, in its healthcheck command ("127.0.0.1:3000")
    health_rewrite: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log_path.open("wb") as log, self.out_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=log,
                start_new_session=True,
            )
        return self

    @property
    def out_path(self) -> Path:
        return self.log_path.with_suffix(".out")

    def lines(self) -> list[str]:
        """What it logged (stderr; stdout is a command's result, such as init's summary)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def output(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, n: int = 30) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.lines()[-n:])

    def healthy(self) -> bool:
        """The service's own healthcheck command, run in its environment."""
        kind, *argv = self.spec["healthcheck"]["test"]
        if kind == "CMD-SHELL":
            argv = ["/bin/sh", "-c", argv[0]]
        for inside, outside in self.health_rewrite.items():
            argv = [arg.replace(inside, outside) for arg in argv]
        timeout = seconds(self.spec["healthcheck"]["timeout"])
        result = subprocess.run(
            argv, env=self.env, cwd=self.cwd, capture_output=True, timeout=timeout, check=False
        )
        return result.returncode == 0

    def wait_healthy(self) -> None:
        """As compose would, bounded by start_period + retries x interval (probing every
        second rather than every interval)."""
        check = self.spec["healthcheck"]
        bound = seconds(check["start_period"]) + check["retries"] * seconds(check["interval"])
        deadline = time.monotonic() + bound
        while not self.healthy():
            assert self.process is not None and self.process.poll() is None, self.tail()
            assert time.monotonic() < deadline, f"{self.name} not healthy in {bound:g} s"
            time.sleep(1)

    def stop(self) -> int:
        """`docker compose stop`: SIGTERM, SIGKILL after stop_grace_period (default 10 s)."""
        assert self.process is not None
        grace = seconds(self.spec.get("stop_grace_period", "10s"))
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM for {grace:g} s") from None


def container(
    name: str, spec: dict[str, Any], image: Image, where: Loopback, tmp_path: Path
) -> Service:
    """The process a container of `spec` runs, with its addresses and paths on this host."""
    root = tmp_path / "containers" / name
    paths = {
        "/opt/venv": sys.prefix,  # the image's virtualenv is this checkout's
        image.workdir: str(root / "home"),
        "/data": str(root / "data"),
    }
    for path in paths.values():
        Path(path).mkdir(parents=True, exist_ok=True)

    def on_host(value: str) -> str:
        for inside, outside in paths.items():
            value = re.sub(rf"(?<![^:]){re.escape(inside)}(?=/|:|$)", outside, value)
        return value

    env = {key: on_host(value) for key, value in image.env.items()}
    env["HOME"] = paths[image.workdir]  # the image's user's home directory
    for key, value in spec.get("environment", {}).items():
        env[key] = "" if value is None else str(value)
    # the addresses of the compose network, on loopback
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "redpanda:9092"
    assert env["SCHEMA_REGISTRY_URL"] == "http://redpanda:8081"
    env["KAFKA_BOOTSTRAP_SERVERS"] = where.bootstrap
    env["SCHEMA_REGISTRY_URL"] = where.registry_url
    if "PMPIPE_METRICS_PORT" in env:  # every container has its own loopback; this host one
        assert env["PMPIPE_METRICS_PORT"] in spec.get("expose", [])
        env["PMPIPE_METRICS_PORT"] = str(free_port())
    if name.startswith("producers"):  # Polymarket's hosts
        sim = where.simulator
        env["POLYMARKET_GAMMA_URL"] = sim.base + "/gamma"
        env["POLYMARKET_CLOB_URL"] = sim.base + "/clob"
        env["POLYMARKET_DATA_URL"] = sim.base + "/data"
        env["POLYMARKET_WS_URL"] = f"ws://127.0.0.1:{sim.port}/ws/market"
    argv = [*image.entrypoint, *spec["command"]]
    return Service(name, spec, argv, env, Path(paths[image.workdir]), tmp_path / f"{name}.log")


def dashboard_container(
    spec: dict[str, Any], image: Image, build: Path, clickhouse_port: int, tmp_path: Path
) -> Service:
    """The dashboard's container: the image's /app is a copy of the standalone build laid out
    as docker/Dockerfile.dashboard lays it out, its entrypoint this checkout's script, and
    its port (3000 in the container) a free one on loopback."""
    root = tmp_path / "containers" / "dashboard"
    app = root / "app"
    shutil.copytree(build, app, symlinks=True)
    shutil.copytree(build.parent / "static", app / ".next" / "static")
    entrypoint = [
        str(ROOT / "docker" / "dashboard-entrypoint.sh")
        if arg == "/usr/local/bin/dashboard-entrypoint.sh"
        else arg
        for arg in image.entrypoint
    ]
    assert entrypoint != image.entrypoint, image.entrypoint
    assert image.workdir == "/app"
    port = free_port()
    env = {**image.env, "HOME": str(root), "PORT": str(port), "HOSTNAME": "127.0.0.1"}
    for key, value in spec["environment"].items():
        env[key] = "" if value is None else str(value)
    assert env["CLICKHOUSE_PORT"] == str(clickhouse_port)
    argv = [*entrypoint, *(spec.get("command") or image.cmd)]
    service = Service("dashboard", spec, argv, env, app, tmp_path / "dashboard.log")
    service.health_rewrite = {"127.0.0.1:3000": f"127.0.0.1:{port}"}
    return service


def dotenv_for_this_host(where: Loopback, replicas: int) -> dict[str, str]:
    """`cp .env.example .env`, then filled in as the README says, for the local stand-ins."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    filled = {
        "CLICKHOUSE_HOST": "127.0.0.1",
        "CLICKHOUSE_PORT": str(where.clickhouse_port),
        "CLICKHOUSE_SECURE": "false",
        "CLICKHOUSE_PASSWORD": PASSWORD,
        "PMPIPE_MARKETS_INTERVAL_SECS": INTERVAL_SECS,
        "PMPIPE_PRICES_INTERVAL_SECS": INTERVAL_SECS,
        "PMPIPE_TRADES_INTERVAL_SECS": INTERVAL_SECS,
        "PMPIPE_BOOKS_INTERVAL_SECS": INTERVAL_SECS,
        "PMPIPE_REPLICA_COUNT": str(replicas),
    }
    for name, value in filled.items():
        text, n = re.subn(rf"(?m)^{name}=.*$", f"{name}={value}", text)
        assert n == 1, name
    return read_dotenv(text)


def compose_text(replicas: int) -> str:
    """docker-compose.yml, with the replica block uncommented once per further index as its
    comment says."""
    text = COMPOSE.read_text(encoding="utf-8")
    if replicas == 1:
        return text
    match = REPLICA_BLOCK.search(text)
    assert match, "the producer replica block is gone from docker-compose.yml"
    template = "\n".join(line.replace("  # ", "  ", 1) for line in match["body"].splitlines())
    blocks = []
    for index in range(1, replicas):
        block = template.replace("producers-1:", f"producers-{index}:")
        blocks.append(
            block.replace('PMPIPE_REPLICA_INDEX: "1"', f'PMPIPE_REPLICA_INDEX: "{index}"')
        )
    return text[: match.start()] + "\n".join(blocks) + "\n" + text[match.end() :]


# ---------------------------------------------------------------------------------------------
# checks


def check_init(where: Loopback, ch: Client) -> None:
    """What `init` is for: the topics of redpanda/topics.json, their schemas, the tables."""
    topics = json.loads(TOPICS.read_text(encoding="utf-8"))["topics"]
    metadata = AdminClient({"bootstrap.servers": where.bootstrap}).list_topics(timeout=10)
    for topic in topics:
        assert topic["name"] in metadata.topics, topic["name"]
        assert len(metadata.topics[topic["name"]].partitions) == topic["partitions"]
    subjects = httpx.get(where.registry_url + "/subjects", timeout=10).json()
    assert {f"{t['name']}-value" for t in topics} <= set(subjects)
    tables = {row[0] for row in ch.query("SHOW TABLES FROM polymarket").result_rows}
    assert {
        "markets",
        "market_prices",
        "market_trades",
        "orderbook_snapshots",
        "market_events",
        "ohlcv_1m",
        "ohlcv_1h",
        "volume_daily",
        "market_latest_price",
    } <= tables


def check_logs(service: Service) -> None:
    """PMPIPE_LOG_FORMAT=json (set by compose): every log line a JSON object with its
    component and level, and no line holding a credential."""
    lines = service.lines()
    assert lines, f"{service.name} logged nothing"
    for line in lines:
        entry = json.loads(line)
        assert entry["component"] and entry["level"], line
        assert PASSWORD not in line, f"{service.name} logged the ClickHouse password"
    assert PASSWORD not in service.output()


def check_dashboard(spec: dict[str, Any], where: Loopback, db: Client, tmp_path: Path) -> None:
    """The dashboard service on what the pipeline stored: healthy by its own healthcheck, and
    its Overview API counting what ClickHouse holds. It needs the standalone build
    (scripts/dashboard-test.sh makes it; `make test` runs that before pytest)."""
    if not DASHBOARD_BUILD.joinpath("server.js").is_file():
        warnings.warn(
            f"no dashboard build in {DASHBOARD_BUILD}: the dashboard service was not run "
            "(cd dashboard && npm ci && npm run build)",
            stacklevel=1,
        )
        return
    image = read_image(DASHBOARD_DOCKERFILE, NODE_IMAGE_PATH)
    dashboard = dashboard_container(spec, image, DASHBOARD_BUILD, where.clickhouse_port, tmp_path)
    assert spec["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
    dashboard.start()
    try:
        dashboard.wait_healthy()
        port = dashboard.env["PORT"]
        overview = httpx.get(f"http://127.0.0.1:{port}/api/overview", timeout=30).json()
        # Next's standalone server ends on SIGTERM by the signal's default action: code 143
        # (128 + 15), inside the grace period; a read-only server has nothing to flush
        assert dashboard.stop() in (0, 128 + signal.SIGTERM), dashboard.tail()
    finally:
        if dashboard.process is not None and dashboard.process.poll() is None:
            dashboard.process.kill()
            dashboard.process.wait()
    rows = {feed["feed"]: feed["rows"] for feed in overview["feeds"]}
    for feed, table in (
        ("prices", "market_prices"),
        ("trades", "market_trades"),
        ("books", "orderbook_snapshots"),
        ("events", "market_events"),
    ):
        assert rows[feed] == column(db, f"SELECT count() FROM {table}")[0] > 0, feed
    markets = column(db, "SELECT count() FROM markets FINAL")[0]
    assert overview["counts"]["total_markets"] == markets > 0
    log = dashboard.log_path.read_text() + dashboard.output()
    assert PASSWORD not in log


# ---------------------------------------------------------------------------------------------
# the test


@pytest.mark.parametrize("replicas", [1, 2], ids=["as-shipped", "two-producer-replicas"])
def test_compose_services_run_as_compose_would(replicas: int, tmp_path: Path) -> None:
    image = read_image(DOCKERFILE, BASE_IMAGE_PATH)
    assert image.entrypoint == ["pmpipe"]
    with stand_ins(tmp_path, seed=9000 + replicas) as where:
        compose = load_compose(compose_text(replicas), dotenv_for_this_host(where, replicas))
        specs = compose["services"]
        producers = sorted(n for n in specs if re.fullmatch(r"producers(-\d+)?", n))
        assert len(producers) == replicas
        for name in ("init", *producers, "sink"):
            assert specs[name]["build"]["dockerfile"] == "docker/Dockerfile.python", name
        ch = clickhouse_connect.get_client(
            host="127.0.0.1", port=where.clickhouse_port, password=PASSWORD
        )
        with pytest.raises(DatabaseError, match="password"):  # it is enforced
            clickhouse_connect.get_client(host="127.0.0.1", port=where.clickhouse_port)

        # init first, to completion (service_completed_successfully)
        init = container("init", specs["init"], image, where, tmp_path).start()
        assert init.process is not None
        assert init.process.wait(180) == 0, init.tail()
        assert init.output().startswith("init done:"), init.output()
        check_init(where, ch)

        # then the long-running services, each healthy by its own healthcheck
        running: list[Service] = []
        try:
            for name in (*producers, "sink"):
                assert specs[name]["depends_on"] == {
                    "init": {"condition": "service_completed_successfully"}
                }
                running.append(container(name, specs[name], image, where, tmp_path).start())
            for service in running:
                service.wait_healthy()

            # data flows: everything the simulator did before a cut lands in ClickHouse
            sim = where.simulator
            started_ms = int(sim.status()["sim_time_ms"])
            time.sleep(25)
            expected = Expected.at_cut(sim, started_ms)
            db = clickhouse_connect.get_client(
                host="127.0.0.1",
                port=where.clickhouse_port,
                password=PASSWORD,
                database="polymarket",
            )
            wait_until_held(db, expected, tail=lambda: "\n".join(s.tail() for s in running))

            # docker compose stop: dependents first, SIGTERM, code 0 inside the grace period
            for service in reversed(running):
                assert service.stop() == 0, service.tail()
        finally:
            for service in running:
                if service.process is not None and service.process.poll() is None:
                    service.process.kill()
                    service.process.wait()

        fills, truth_markets = sim.truth("trades.jsonl"), sim.truth("markets.jsonl")
        check_trades(db, expected, fills)
        check_markets_and_books(db, expected, truth_markets)
        for service in (init, *running):
            check_logs(service)
        if replicas == 1:
            check_dashboard(specs["dashboard"], where, db, tmp_path)


# ---------------------------------------------------------------------------------------------
# the reading itself


def test_interpolation_follows_compose() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("$$HOME ${SET} $SET", env) == "$HOME v v"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "d  d"
    assert interpolate("${SET:+r} ${EMPTY:+r} ${EMPTY+r}", env) == "r  r"
    assert interpolate("${SET:?m}", env) == "v"
    with pytest.raises(ValueError, match="EMPTY is missing a value: say so"):
        interpolate("${EMPTY:?say so}", env)
    with pytest.raises(ValueError, match="invalid interpolation"):
        interpolate("$(date)", env)


def test_the_shipped_env_example_is_refused_until_clickhouse_host_is_filled_in() -> None:
    """As `docker compose up` with an unedited copy of .env.example: CLICKHOUSE_HOST is
    required, and its message says where to set it."""
    dotenv = read_dotenv(ENV_EXAMPLE.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match=r"CLICKHOUSE_HOST .*set CLICKHOUSE_HOST in \.env"):
        load_compose(COMPOSE.read_text(encoding="utf-8"), dotenv)
    services = load_compose(COMPOSE.read_text(), {**dotenv, "CLICKHOUSE_HOST": "h"})["services"]
    assert services["sink"]["environment"]["CLICKHOUSE_HOST"] == "h"
    assert services["sink"]["environment"]["CLICKHOUSE_PORT"] == "8443"


def test_the_image_is_read_from_its_dockerfile() -> None:
    image = read_image(DOCKERFILE, BASE_IMAGE_PATH)
    assert image.entrypoint == ["pmpipe"] and image.workdir == "/home/pmpipe"
    assert image.env["PATH"] == "/opt/venv/bin:" + BASE_IMAGE_PATH
    assert image.env["PMPIPE_LOG_FORMAT"] == "json" and image.env["PMPIPE_DATA_DIR"] == "/data"
