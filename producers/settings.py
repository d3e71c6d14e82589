"""Producer-only settings: one frozen object built from env vars, validated at start.

pmpipe.config.Config holds what every component shares (URLs, intervals, Kafka); what only
the producers need lives here, one env var per field (PMPIPE_ + the field name in upper case),
units in the names. An invalid value raises ConfigError naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pmpipe.errors import ConfigError

__all__ = ["Settings", "settings_env_name"]


@dataclass(frozen=True)
class Settings:
    # --- HTTP (all pollers) ---------------------------------------------------------------
    http_timeout_secs: float = 20.0
    http_max_retries: int = 8
    http_backoff_max_secs: float = 60.0
    http_concurrency: int = 16
    rate_limit_fraction: float = 0.9
    # --- trades ----------------------------------------------------------------------------
    trades_overlap_secs: float = 300.0
    trades_lookback_secs: float = 10800.0
    trades_max_pages: int = 1000
    trades_rebuild_timeout_secs: float = 120.0
    # --- token universe ---------------------------------------------------------------------
    tokens_wait_secs: float = 5.0
    # --- WebSocket relay --------------------------------------------------------------------
    ws_shard_size: int = 200
    ws_ping_secs: float = 10.0
    ws_pong_timeout_secs: float = 30.0
    ws_silence_secs: float = 120.0
    ws_backoff_max_secs: float = 60.0
    ws_open_timeout_secs: float = 15.0
    ws_connect_concurrency: int = 16
    # --- process ----------------------------------------------------------------------------
    stats_interval_secs: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = settings_env_name(f.name)
            raw = env.get(var)
            if raw is None or not raw.strip():
                continue
            values[f.name] = _coerce(var, f.type, raw.strip())
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value <= 0:
                raise ConfigError(f"{settings_env_name(f.name)}: must be > 0, got {value}")
        if self.rate_limit_fraction > 1:
            raise ConfigError(
                f"{settings_env_name('rate_limit_fraction')}: must be in (0, 1], "
                f"got {self.rate_limit_fraction}"
            )
        if self.ws_shard_size > 500:
            raise ConfigError(
                f"{settings_env_name('ws_shard_size')}: at most 500 tokens per connection "
                f"(initial snapshots stop arriving beyond that), got {self.ws_shard_size}"
            )
        if self.ws_pong_timeout_secs <= self.ws_ping_secs:
            raise ConfigError(
                f"{settings_env_name('ws_pong_timeout_secs')}: must exceed "
                f"{settings_env_name('ws_ping_secs')} ({self.ws_ping_secs}), "
                f"got {self.ws_pong_timeout_secs}"
            )


def settings_env_name(field_name: str) -> str:
    return "PMPIPE_" + field_name.upper()


def _coerce(var: str, kind: Any, text: str) -> int | float:
    try:
        if kind in ("int", int):
            return int(text.replace("_", ""))
        return float(text)
    except ValueError:
        raise ConfigError(f"{var}: invalid number {text!r}") from None
