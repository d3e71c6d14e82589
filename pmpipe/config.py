"""One typed configuration object, built from env vars and CLI flags, validated at start.

Every field has exactly one env var (the names existing deployments use: KAFKA_BOOTSTRAP_SERVERS,
SCHEMA_REGISTRY_URL, CLICKHOUSE_*); units are in the field names. An invalid value raises
`ConfigError` naming the variable. The ClickHouse password is never part of repr() or of any
log line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pmpipe.errors import ConfigError
from pmpipe.log import register_secret

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def _secret() -> Any:
    return field(default="", repr=False)


@dataclass(frozen=True)
class Config:
    # --- streaming backbone -------------------------------------------------------------
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = _secret()
    schema_registry_url: str = "http://127.0.0.1:18081"
    schema_registry_username: str = ""
    schema_registry_password: str = _secret()
    # --- ClickHouse (embedded endpoint by default; Cloud is HTTPS 8443) ------------------
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 8123
    clickhouse_user: str = "default"
    clickhouse_password: str = _secret()
    clickhouse_database: str = "polymarket"
    clickhouse_secure: bool = False
    # --- Polymarket endpoints -------------------------------------------------------------
    polymarket_gamma_url: str = "https://gamma-api.polymarket.com"
    polymarket_clob_url: str = "https://clob.polymarket.com"
    polymarket_data_url: str = "https://data-api.polymarket.com"
    polymarket_ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    # --- poll intervals ---------------------------------------------------------------------
    markets_interval_secs: float = 300.0
    prices_interval_secs: float = 30.0
    trades_interval_secs: float = 60.0
    books_interval_secs: float = 60.0
    # --- sink batching ----------------------------------------------------------------------
    sink_batch_max_records: int = 50_000
    sink_batch_max_bytes: int = 32 * 1024 * 1024
    sink_batch_max_secs: float = 1.0
    sink_group_id: str = "pmpipe-sink"
    # --- embedded stack ----------------------------------------------------------------------
    data_dir: Path = Path("data")
    embedded_broker_roll_bytes: int = 1024 * 1024 * 1024
    # Partitions of every topic in the embedded stack (0 = redpanda/topics.json's counts, as
    # `pmpipe init` creates them on Redpanda). Its one sink reads them all, and each partition
    # is its own stream of batches: 6 partitions make 6 inserts a second where 1 makes one,
    # which on one machine costs ClickHouse CPU and the WebSocket feed its latency.
    embedded_partitions: int = 1
    dashboard_port: int = 3000
    # --- observability -------------------------------------------------------------------------
    metrics_port: int = 0  # 0 = no /metrics and /health endpoint
    # --- producer replicas (producers/replicas.py: the token set split over N processes) ------
    replica_index: int = 0
    replica_count: int = 1

    # ------------------------------------------------------------------------------------------
    @property
    def clickhouse_url(self) -> str:
        """URL without credentials (safe to print)."""
        scheme = "https" if self.clickhouse_secure else "http"
        return f"{scheme}://{self.clickhouse_host}:{self.clickhouse_port}"

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings shared by producers, consumers and admin clients."""
        conf = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
            # Topics are created explicitly, with their partitions and policies: a broker must
            # never auto-create one on a client's metadata request (seen on the embedded broker
            # restarting under running clients: topics came back with 4 partitions).
            "allow.auto.create.topics": "false",
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username
            conf["sasl.password"] = self.kafka_sasl_password
        return conf

    def schema_registry_config(self) -> dict[str, str]:
        conf = {"url": self.schema_registry_url}
        if self.schema_registry_username:
            conf["basic.auth.user.info"] = (
                f"{self.schema_registry_username}:{self.schema_registry_password}"
            )
        return conf

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def redacted(self) -> dict[str, Any]:
        """Every setting, secrets shown as *** (for `pmpipe config` and logs)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = "***" if value else ""
            out[env_name(f.name)] = str(value) if isinstance(value, Path) else value
        return out

    # ------------------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Config:
        """Build from env vars (`env`, default os.environ), then CLI overrides (field name ->
        value, None meaning "not given"), validating everything."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = env_name(f.name)
            raw: Any = env.get(var)
            if overrides and overrides.get(f.name) is not None:
                raw = overrides[f.name]
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, var, raw)
        config = cls(**values)
        config.validate()
        for name in SECRET_FIELDS:
            register_secret(getattr(config, name))
        return config

    def validate(self) -> None:
        for name, check in _CHECKS.items():
            message = check(getattr(self, name))
            if message:
                raise ConfigError(f"{env_name(name)}: {message}")
        if self.replica_index >= self.replica_count:
            raise ConfigError(
                f"{env_name('replica_index')}: must be below {env_name('replica_count')} "
                f"({self.replica_count}), got {self.replica_index}"
            )


SECRET_FIELDS = ("clickhouse_password", "kafka_sasl_password", "schema_registry_password")

_ENV_OVERRIDES = {"data_dir": "PMPIPE_DATA_DIR"}


def env_name(field_name: str) -> str:
    """The env var of a field: CLICKHOUSE_HOST, KAFKA_BOOTSTRAP_SERVERS, PMPIPE_* for our own."""
    if field_name in _ENV_OVERRIDES:
        return _ENV_OVERRIDES[field_name]
    upper = field_name.upper()
    for prefix in ("KAFKA_", "SCHEMA_REGISTRY_", "CLICKHOUSE_", "POLYMARKET_"):
        if upper.startswith(prefix):
            return upper
    return "PMPIPE_" + upper


def _coerce(name: str, var: str, raw: Any) -> Any:
    target = Config.__dataclass_fields__[name].type
    text = str(raw).strip()
    try:
        if target == "int":
            return int(text.replace("_", ""))
        if target == "float":
            return float(text)
        if target == "bool":
            if isinstance(raw, bool):
                return raw
            low = text.lower()
            if low in TRUE_WORDS:
                return True
            if low in FALSE_WORDS:
                return False
            raise ValueError(f"expected true/false, got {text!r}")
        if target == "Path":
            return Path(text)
    except ValueError as e:
        raise ConfigError(f"{var}: invalid value {text!r} ({e})") from None
    return text if not isinstance(raw, str) else raw


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"port must be 1..65535, got {value}"


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


def _url(*schemes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            return f"expected a {'/'.join(schemes)} URL, got {value!r}"
        try:
            _ = parts.port
        except ValueError:
            return f"bad port in {value!r}"
        return None

    return check


def _bootstrap(value: str) -> str | None:
    servers = [s.strip() for s in value.split(",") if s.strip()]
    if not servers:
        return "no broker given (expected host:port[,host:port...])"
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host:
            return f"expected host:port, got {server!r}"
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"bad port in {server!r} (must be 1..65535)"
    return None


def _nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _identifier(value: str) -> str | None:
    ok = value and all(c.isalnum() or c == "_" for c in value) and not value[0].isdigit()
    return None if ok else f"must be a plain identifier (letters, digits, _), got {value!r}"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "kafka_bootstrap_servers": _bootstrap,
    "schema_registry_url": _url("http", "https"),
    "clickhouse_host": _nonempty,
    "clickhouse_port": _port,
    "clickhouse_user": _nonempty,
    "clickhouse_database": _identifier,
    "polymarket_gamma_url": _url("http", "https"),
    "polymarket_clob_url": _url("http", "https"),
    "polymarket_data_url": _url("http", "https"),
    "polymarket_ws_url": _url("ws", "wss"),
    "markets_interval_secs": _positive,
    "prices_interval_secs": _positive,
    "trades_interval_secs": _positive,
    "books_interval_secs": _positive,
    "sink_batch_max_records": _positive,
    "sink_batch_max_bytes": _positive,
    "sink_batch_max_secs": _positive,
    "embedded_broker_roll_bytes": _positive,
    "dashboard_port": _port,
    "metrics_port": lambda v: None if 0 <= v <= 65535 else f"port must be 0..65535, got {v}",
    "replica_index": lambda v: None if v >= 0 else f"must be >= 0, got {v}",
    "replica_count": lambda v: None if v >= 1 else f"must be >= 1, got {v}",
    "embedded_partitions": lambda v: None if v >= 0 else f"must be >= 0, got {v}",
}
