"""docker-compose.yml, .env.example, redpanda/console-config.yml and the Dockerfiles, checked
here since no Docker engine runs the stack in CI: the Compose Specification (dclint),
structure (no `version:`, healthchecks, restart policies, log rotation, start order, ports),
secrets only from .env, every env var a service gets is read by the code it runs, the
commands exist in `pmpipe`, and the healthcheck commands and the dashboard entrypoint are
executed for real against local stand-ins. tests/integration/test_compose_services.py runs
the pipeline services' commands as compose would."""

from __future__ import annotations

import dataclasses
import fnmatch
import http.server
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from pmpipe.cli import cli
from pmpipe.config import Config, env_name
from producers.settings import Settings, settings_env_name

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CONSOLE_CONFIG = ROOT / "redpanda" / "console-config.yml"
ENTRYPOINT = ROOT / "docker" / "dashboard-entrypoint.sh"

PIPELINE = ("init", "producers", "sink")
LONG_RUNNING = ("redpanda", "console", "producers", "sink", "dashboard", "clickhouse")
AFTER_INIT = ("producers", "sink", "dashboard")
PIPELINE_COMMANDS = {"init": ["init"], "producers": ["produce"], "sink": ["sink"]}
EXPECTED_PORTS = {
    "redpanda": {("19092", "19092"), ("18081", "18081"), ("18082", "18082"), ("19644", "9644")},
    "console": {("8080", "8080")},
    "dashboard": {("3000", "3000")},
    "clickhouse": {("8123", "8123"), ("9000", "9000")},
}
# Top-level keys of Redpanda Console v3's configuration (backend/pkg/config/config.go, Config
# yaml tags); v3 validates strictly and refuses unknown keys.
CONSOLE_V3_KEYS = {
    "metricsNamespace",
    "serveFrontend",
    "console",
    "redpanda",
    "kafkaConnect",
    "server",
    "kafka",
    "serde",
    "schemaRegistry",
    "sql",
    "logger",
    "analytics",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?P<rest>[^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _env_example() -> dict[str, str]:
    values = {}
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example: not NAME=value: {line!r}"
        assert name not in values, f".env.example: {name} twice"
        values[name] = value
    return values


def _published(port: str) -> tuple[str, str]:
    """(host port, container port) of a `[ip:]host:container` mapping."""
    parts = INTERPOLATION.sub("IP", port).split(":")
    return parts[-2], parts[-1]


# ---------------------------------------------------------------------------------------------
# the Compose Specification, checked by a maintained tool (dclint, pinned in
# scripts/compose-lint/package-lock.json): its schema validation cannot be disabled; the rules
# it lints with after that are configured in .dclintrc.yaml


def _compose_lint(*files: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("npm"), "npm not found: Node.js >= 20.19 is needed (as for the dashboard)"
    return subprocess.run(
        [str(ROOT / "scripts" / "compose-lint.sh"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_compose_file_matches_the_compose_specification() -> None:
    result = _compose_lint(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 compose file(s) valid and clean" in result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # a key the specification does not have
        ("    restart: unless-stopped\n", "    restart_policy: unless-stopped\n"),
        # a start condition that does not exist
        ("condition: service_completed_successfully", "condition: service_finished"),
        # a healthcheck option of the wrong type
        ("      retries: 10\n", "      retries: [10]\n"),
        # depends_on pointing at a service in the wrong shape
        ("      init:\n        condition:", "      - init:\n        condition:"),
    ],
    ids=["unknown-key", "bad-condition", "wrong-type", "bad-depends-on"],
)
def test_a_compose_file_breaking_the_specification_is_refused(
    old: str, new: str, tmp_path: Path
) -> None:
    """The same check on copies of docker-compose.yml with one violation each: the validation
    is real, not a lint that lets a broken file through."""
    text = COMPOSE.read_text(encoding="utf-8")
    assert old in text, old
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = _compose_lint(broken)
    assert result.returncode != 0
    assert "invalid-schema" in result.stdout or "invalid-yaml" in result.stdout, result.stdout


# ---------------------------------------------------------------------------------------------
# structure


def test_compose_specification_without_version(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    assert compose["name"] == "polymarket-pipeline"
    assert set(compose["services"]) == {*LONG_RUNNING, "init"}
    assert set(compose["volumes"]) == {"redpanda-data", "clickhouse-data"}


def test_long_running_services_are_supervised(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    rotation = {"driver": "json-file", "options": {"max-size": "50m", "max-file": "5"}}
    assert compose["x-logging"] == rotation
    for name in LONG_RUNNING:
        service = services[name]
        assert service["restart"] == "unless-stopped", name
        # the same object: the service uses the x-logging anchor, not a copy
        assert service["logging"] is compose["x-logging"], name
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        for key in ("interval", "timeout", "retries", "start_period"):
            assert key in check, (name, key)
    init = services["init"]
    assert init["restart"] == "no"
    assert init["logging"] is compose["x-logging"]
    assert "healthcheck" not in init


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    for name in AFTER_INIT:
        assert services[name]["depends_on"] == {
            "init": {"condition": "service_completed_successfully"}
        }, name
    init_deps = services["init"]["depends_on"]
    assert init_deps["redpanda"] == {"condition": "service_healthy"}
    # with --profile clickhouse init also waits for the local server; without it, no error
    assert init_deps["clickhouse"] == {"condition": "service_healthy", "required": False}
    assert services["console"]["depends_on"] == {"redpanda": {"condition": "service_healthy"}}


def test_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, expected in EXPECTED_PORTS.items():
        ports = services[name]["ports"]
        assert {_published(p) for p in ports} == expected, name
        for port in ports:  # loopback unless BIND_ADDRESS says otherwise
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
    for name in PIPELINE:
        assert "ports" not in services[name], name  # scaled with --scale: no fixed host ports
    assert services["producers"]["expose"] == ["9100"]
    assert services["sink"]["expose"] == ["9101"]


def test_redpanda_single_node_dev_container(services: dict[str, dict[str, Any]]) -> None:
    redpanda = services["redpanda"]
    assert redpanda["image"].startswith("docker.redpanda.com/redpandadata/redpanda:")
    command = redpanda["command"]
    assert command[:2] == ["redpanda", "start"]
    for flag in (
        "--mode dev-container",
        "--smp 1",
        "--kafka-addr internal://0.0.0.0:9092,external://0.0.0.0:19092",
        "--advertise-kafka-addr internal://redpanda:9092,external://localhost:19092",
        "--schema-registry-addr internal://0.0.0.0:8081,external://0.0.0.0:18081",
        "--pandaproxy-addr internal://0.0.0.0:8082,external://0.0.0.0:18082",
        "--advertise-pandaproxy-addr internal://redpanda:8082,external://localhost:18082",
        "--rpc-addr redpanda:33145",
        "--advertise-rpc-addr redpanda:33145",
    ):
        assert flag in command, flag
    assert redpanda["volumes"] == ["redpanda-data:/var/lib/redpanda/data"]


def test_clickhouse_profile(services: dict[str, dict[str, Any]]) -> None:
    clickhouse = services["clickhouse"]
    assert clickhouse["profiles"] == ["clickhouse"]
    assert clickhouse["image"].startswith("clickhouse/clickhouse-server:")
    assert clickhouse["volumes"] == ["clickhouse-data:/var/lib/clickhouse"]
    for name, service in services.items():
        if name != "clickhouse":
            assert "profiles" not in service, name


def test_the_images_are_built_from_this_checkout(services: dict[str, dict[str, Any]]) -> None:
    for name in PIPELINE:
        assert services[name]["build"] == {
            "context": ".",
            "dockerfile": "docker/Dockerfile.python",
        }, name
        assert services[name]["command"] == PIPELINE_COMMANDS[name]
    assert services["dashboard"]["build"]["dockerfile"] == "docker/Dockerfile.dashboard"
    for service in services.values():
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file()


# ---------------------------------------------------------------------------------------------
# configuration and secrets


def test_pipeline_services_reach_redpanda_inside_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in PIPELINE:
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "redpanda:9092", name
        assert env["SCHEMA_REGISTRY_URL"] == "http://redpanda:8081", name
        assert env["CLICKHOUSE_HOST"].startswith("${CLICKHOUSE_HOST:?"), name
        assert env["CLICKHOUSE_PORT"] == "${CLICKHOUSE_PORT:-8443}", name
        assert env["CLICKHOUSE_SECURE"] == "${CLICKHOUSE_SECURE:-true}", name
        assert env["PMPIPE_LOG_FORMAT"] == "json", name


def test_secrets_come_only_from_dotenv(services: dict[str, dict[str, Any]]) -> None:
    found = 0
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                found += 1
                assert value == f"${{{key}:-}}", f"{name}.{key} must be ${{{key}:-}}: {value!r}"
    assert found >= 3  # init, producers, sink, dashboard, clickhouse: CLICKHOUSE_PASSWORD
    example = _env_example()
    secrets = [k for k in example if SECRET_NAME.search(k)]
    assert secrets == ["CLICKHOUSE_PASSWORD"]
    for key in secrets:
        assert example[key] == "", f".env.example must not carry a value for {key}"
    assert example["CLICKHOUSE_HOST"] == ""  # no real host either
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and "!.env.example" in ignored


def test_env_example_lists_every_variable_compose_reads() -> None:
    interpolated = {m["name"] for m in INTERPOLATION.finditer(COMPOSE.read_text())}
    # $${...} is an escape for the container's shell, not an interpolation
    assert interpolated == set(_env_example())


def test_env_example_defaults_match_compose() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    example = _env_example()
    for match in INTERPOLATION.finditer(text):
        rest = match["rest"]
        if rest.startswith(":-"):
            assert example[match["name"]] == rest[2:], match[0]


def _cli_envvars(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            names.add(envvar)
        elif envvar:
            names.update(envvar)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= _cli_envvars(sub)
    return names


def _python_literals() -> set[str]:
    names: set[str] = set()
    for package in ("pmpipe", "producers", "sink"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"[\"']([A-Z][A-Z0-9_]+)[\"']", path.read_text("utf-8")))
    return names


def test_every_env_var_is_read_by_the_code_it_is_given_to(
    services: dict[str, dict[str, Any]],
) -> None:
    """A variable nothing reads is a silent misconfiguration: each one a pipeline service gets
    is a Config field's variable, a producer Settings variable, a CLI option's envvar, or a
    name the Python code looks up; each one the dashboard gets is read by its config or its
    entrypoint."""
    python_reads = (
        {env_name(f.name) for f in dataclasses.fields(Config)}
        | {settings_env_name(f.name) for f in dataclasses.fields(Settings)}
        | _cli_envvars(cli)
        | _python_literals()
    )
    for name in PIPELINE:
        unread = set(services[name]["environment"]) - python_reads
        assert not unread, f"{name}: nothing in pmpipe/producers/sink reads {sorted(unread)}"
    dashboard_code = (ROOT / "dashboard" / "lib" / "config.ts").read_text("utf-8")
    entrypoint = ENTRYPOINT.read_text("utf-8")
    for var in services["dashboard"]["environment"]:
        assert (
            f"env.{var}" in dashboard_code
            or f'"{var}"' in dashboard_code
            or (f"{{{var}" in entrypoint)
        ), f"dashboard: nothing reads {var}"


def test_pipeline_commands_exist_in_pmpipe(services: dict[str, dict[str, Any]]) -> None:
    ctx = click.Context(cli)
    for name in PIPELINE:
        command = services[name]["command"][0]
        assert cli.get_command(ctx, command) is not None, f"{name}: pmpipe {command} is missing"
    # documented in docker-compose.yml for the Kafka-engine path
    assert "kafka-engine-ddl" in COMPOSE.read_text(encoding="utf-8")
    assert cli.get_command(ctx, "kafka-engine-ddl") is not None


# ---------------------------------------------------------------------------------------------
# Redpanda Console v3


def test_console_config_is_v3(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(CONSOLE_CONFIG.read_text(encoding="utf-8"))
    assert set(config) <= CONSOLE_V3_KEYS
    assert config["kafka"] == {"brokers": ["redpanda:9092"]}  # no v2 kafka.schemaRegistry
    assert config["schemaRegistry"] == {"enabled": True, "urls": ["http://redpanda:8081"]}
    assert config["redpanda"]["adminApi"] == {"enabled": True, "urls": ["http://redpanda:9644"]}
    console = services["console"]
    mount = "./redpanda/console-config.yml:/etc/redpanda-console/config.yml:ro"
    assert console["volumes"] == [mount]
    assert console["environment"]["CONFIG_FILEPATH"] == "/etc/redpanda-console/config.yml"
    assert console["image"] == (
        "docker.redpanda.com/redpandadata/console:${REDPANDA_CONSOLE_VERSION:-v3.7.3}"
    )


# ---------------------------------------------------------------------------------------------
# the healthcheck commands and the dashboard entrypoint, executed


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path in ("/health", "/api/overview") else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _run_check(test: list[str], env: dict[str, str], port: int) -> int:
    kind, *argv = test
    if kind == "CMD-SHELL":
        argv = ["sh", "-c", argv[0]]
    argv = [a.replace("127.0.0.1:3000", f"127.0.0.1:{port}") for a in argv]
    if argv[0] == "python":
        argv[0] = sys.executable
    return subprocess.run(argv, env=env, timeout=30, capture_output=True, check=False).returncode


@pytest.mark.parametrize("name", ["producers", "sink"])
def test_python_healthchecks_follow_health(
    name: str, services: dict[str, dict[str, Any]], health_server: tuple[int, type[_Health]]
) -> None:
    port, handler = health_server
    test = services[name]["healthcheck"]["test"]
    env = {**os.environ, "PMPIPE_METRICS_PORT": str(port)}
    assert services[name]["environment"]["PMPIPE_METRICS_PORT"] in ("9100", "9101")
    assert _run_check(test, env, port) == 0
    handler.status = 503
    assert _run_check(test, env, port) != 0


def test_dashboard_healthcheck_follows_the_api(
    services: dict[str, dict[str, Any]], health_server: tuple[int, type[_Health]]
) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (the dashboard's toolchain)")
    port, handler = health_server
    test = services["dashboard"]["healthcheck"]["test"]
    assert _run_check(test, dict(os.environ), port) == 0
    handler.status = 503
    assert _run_check(test, dict(os.environ), port) != 0


def test_redpanda_healthcheck_reads_rpk(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The CMD-SHELL pipeline with a stand-in `rpk` printing `rpk cluster health` output."""
    test = services["redpanda"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    for healthy, expected in (("true", 0), ("false", 1)):
        rpk = tmp_path / "rpk"
        rpk.write_text(
            "#!/bin/sh\ncat <<'EOF'\nCLUSTER HEALTH OVERVIEW\n=======================\n"
            f"Healthy:                          {healthy}\n"
            "Unhealthy reasons:                []\nController ID:                    0\nEOF\n"
        )
        rpk.chmod(rpk.stat().st_mode | stat.S_IXUSR)
        env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
        result = subprocess.run(["sh", "-c", test[1]], env=env, timeout=30, check=False)
        assert result.returncode == expected, healthy


def _entrypoint_env(**env: str) -> dict[str, str]:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "env"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_dashboard_entrypoint_derives_the_dashboard_variables() -> None:
    cloud = _entrypoint_env(
        CLICKHOUSE_HOST="abc.eu-west-1.aws.clickhouse.cloud",
        CLICKHOUSE_PORT="8443",
        CLICKHOUSE_SECURE="true",
        CLICKHOUSE_DATABASE="polymarket",
        CLICKHOUSE_PASSWORD="s3cret",
    )
    assert cloud["CLICKHOUSE_URL"] == "https://abc.eu-west-1.aws.clickhouse.cloud:8443"
    assert cloud["CLICKHOUSE_DB"] == "polymarket"
    assert cloud["CLICKHOUSE_PASSWORD"] == "s3cret"  # passed through, never in the URL
    local = _entrypoint_env(CLICKHOUSE_HOST="clickhouse", CLICKHOUSE_SECURE="FALSE")
    assert local["CLICKHOUSE_URL"] == "http://clickhouse:8123"
    assert "CLICKHOUSE_DB" not in local
    explicit = _entrypoint_env(CLICKHOUSE_URL="http://x:1", CLICKHOUSE_HOST="ignored")
    assert explicit["CLICKHOUSE_URL"] == "http://x:1"
    assert "CLICKHOUSE_URL" not in _entrypoint_env()


# ---------------------------------------------------------------------------------------------
# the Dockerfiles and the build context


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    result = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: str, patterns: list[str]) -> bool:
    ignored = False
    for entry in patterns:
        negate = entry.startswith("!")
        pattern = entry.lstrip("!")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        matched = any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", ""))
            for p in prefixes
        )
        if matched:
            ignored = not negate
    return ignored


def _copied_sources(path: Path) -> list[str]:
    sources = []
    for keyword, rest in _instructions(path):
        if keyword == "COPY" and "--from=" not in rest:
            args = [a for a in rest.split() if not a.startswith("--")]
            sources += args[:-1]
    return sources


@pytest.mark.parametrize("dockerfile", ["Dockerfile.python", "Dockerfile.dashboard"])
def test_every_copied_source_is_in_the_build_context(dockerfile: str) -> None:
    patterns = _dockerignore()
    sources = _copied_sources(ROOT / "docker" / dockerfile)
    assert sources
    for source in sources:
        relative = source.rstrip("/")
        assert (ROOT / relative).exists(), f"{dockerfile}: COPY {source}: no such file"
        assert not _ignored(relative, patterns), f"{dockerfile}: COPY {source} is .dockerignored"


def test_build_context_leaves_out_data_and_local_state() -> None:
    patterns = _dockerignore()
    for path in (
        "data",
        ".venv",
        ".git",
        ".env",
        "dashboard/node_modules",
        "dashboard/.next",
        "dashboard/test-artifacts",
        "pmpipe/__pycache__",
    ):
        assert _ignored(path, patterns), path
    for path in ("pmpipe", "schemas", "dashboard/app", ".env.example", "docker"):
        assert not _ignored(path, patterns), path


def test_python_image() -> None:
    steps = _instructions(ROOT / "docker" / "Dockerfile.python")
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert stages == ["python:3.11-slim AS builder", "python:3.11-slim AS runtime"]
    text = [f"{k} {r}" for k, r in steps]

    def index(prefix: str) -> int:
        return next(i for i, line in enumerate(text) if line.startswith(prefix))

    # the dependency layer is built from pyproject.toml alone, before any source is copied
    assert (
        index("COPY pyproject.toml") < index('RUN python -c "import tomllib') < index("COPY pmpipe")
    )
    assert "['project']['dependencies']" in text[index('RUN python -c "import tomllib')]
    assert not any("[dev]" in line or "optional-dependencies" in line for line in text)
    runtime = text[index("FROM python:3.11-slim AS runtime") :]
    user = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["pmpipe"]' in runtime
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime


def test_dashboard_image() -> None:
    steps = _instructions(ROOT / "docker" / "Dockerfile.dashboard")
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert stages == ["node:20-slim AS deps", "node:20-slim AS build", "node:20-slim AS runtime"]
    text = [f"{k} {r}" for k, r in steps]
    assert "RUN npm ci --no-audit --no-fund" in text
    assert "RUN npm run build" in text
    runtime = text[text.index("FROM node:20-slim AS runtime") :]
    assert "COPY --from=build --chown=1000:1000 /app/.next/standalone ./" in runtime
    assert "COPY --from=build --chown=1000:1000 /app/.next/static ./.next/static" in runtime
    assert "USER 1000:1000" in runtime
    assert 'CMD ["node", "server.js"]' in runtime
    next_config = (ROOT / "dashboard" / "next.config.ts").read_text(encoding="utf-8")
    assert re.search(r"output:\s*\"standalone\"", next_config)
    assert os.access(ENTRYPOINT, os.X_OK)
