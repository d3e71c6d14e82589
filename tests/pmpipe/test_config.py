"""Configuration: env vars, CLI overrides, validation errors naming the variable, no secrets."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pmpipe.config import Config, env_name
from pmpipe.errors import ConfigError
from pmpipe.log import JsonFormatter, redact


def test_defaults_reach_the_embedded_stack_on_redpanda_ports() -> None:
    config = Config.load({})
    assert config.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert config.schema_registry_url == "http://127.0.0.1:18081"
    assert config.clickhouse_url == "http://127.0.0.1:8123"
    assert (config.markets_interval_secs, config.prices_interval_secs) == (300.0, 30.0)
    assert (config.trades_interval_secs, config.books_interval_secs) == (60.0, 60.0)
    assert config.data_dir == Path("data")


def test_env_vars_use_the_names_deployments_use() -> None:
    config = Config.load(
        {
            "CLICKHOUSE_HOST": "abc.clickhouse.cloud",
            "CLICKHOUSE_PORT": "8443",
            "CLICKHOUSE_SECURE": "true",
            "CLICKHOUSE_DATABASE": "pm",
            "KAFKA_BOOTSTRAP_SERVERS": "redpanda:9092,redpanda2:9092",
            "SCHEMA_REGISTRY_URL": "http://redpanda:8081",
            "PMPIPE_PRICES_INTERVAL_SECS": "15",
            "PMPIPE_DATA_DIR": "/tmp/x",
        }
    )
    assert config.clickhouse_url == "https://abc.clickhouse.cloud:8443"
    assert config.clickhouse_database == "pm"
    assert config.prices_interval_secs == 15.0
    assert config.data_dir == Path("/tmp/x")
    assert env_name("clickhouse_password") == "CLICKHOUSE_PASSWORD"
    assert env_name("books_interval_secs") == "PMPIPE_BOOKS_INTERVAL_SECS"


def test_cli_overrides_beat_env() -> None:
    config = Config.load({"CLICKHOUSE_PORT": "9000"}, overrides={"clickhouse_port": 8124})
    assert config.clickhouse_port == 8124
    assert Config.load({"CLICKHOUSE_PORT": "9000"}, {"clickhouse_port": None}).clickhouse_port == (
        9000
    )


@pytest.mark.parametrize(
    ("env", "var", "fragment"),
    [
        ({"CLICKHOUSE_PORT": "99999"}, "CLICKHOUSE_PORT", "1..65535"),
        ({"CLICKHOUSE_PORT": "eighty"}, "CLICKHOUSE_PORT", "invalid value"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "KAFKA_BOOTSTRAP_SERVERS", "host:port"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "h:0"}, "KAFKA_BOOTSTRAP_SERVERS", "bad port"),
        ({"SCHEMA_REGISTRY_URL": "redpanda:8081"}, "SCHEMA_REGISTRY_URL", "URL"),
        ({"POLYMARKET_WS_URL": "https://x"}, "POLYMARKET_WS_URL", "ws/wss"),
        ({"CLICKHOUSE_SECURE": "maybe"}, "CLICKHOUSE_SECURE", "true/false"),
        ({"CLICKHOUSE_DATABASE": "a-b; DROP"}, "CLICKHOUSE_DATABASE", "identifier"),
        ({"PMPIPE_TRADES_INTERVAL_SECS": "0"}, "PMPIPE_TRADES_INTERVAL_SECS", "> 0"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], var: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(env)
    assert str(info.value).startswith(var + ":")
    assert fragment in str(info.value)


def test_password_never_in_repr_or_redacted_or_logs() -> None:
    config = Config.load({"CLICKHOUSE_PASSWORD": "hunter2-secret", "CLICKHOUSE_USER": "u"})
    assert "hunter2-secret" not in repr(config)
    assert config.redacted()["CLICKHOUSE_PASSWORD"] == "***"
    assert "hunter2-secret" not in str(config.redacted())
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "connecting with %s", ("hunter2-secret",), None
    )
    line = JsonFormatter("test").format(record)
    assert "hunter2-secret" not in line
    assert redact("https://u:pw@host:8443/db") == "https://***:***@host:8443/db"


def _pmpipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from pmpipe.cli import main; main()", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_bad_env_is_one_readable_line_not_a_traceback() -> None:
    result = _pmpipe("config", env={"CLICKHOUSE_PORT": "99999"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: CLICKHOUSE_PORT: port must be 1..65535, got 99999"
    ]
    assert "Traceback" not in result.stderr


def test_cli_unreachable_registry_is_one_readable_line() -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    result = _pmpipe("schemas", "check", env={"SCHEMA_REGISTRY_URL": "http://127.0.0.1:9"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach schema registry at http://127.0.0.1:9")


def test_cli_unreachable_broker_is_one_readable_line() -> None:
    result = _pmpipe(
        "init",
        "--no-schemas",
        "--no-clickhouse",
        env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "PMPIPE_LOG_LEVEL": "ERROR"},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(
        "error: cannot reach Kafka broker at 127.0.0.1:9"
    ), result.stderr
