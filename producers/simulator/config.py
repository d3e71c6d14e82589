"""Simulator settings: the world (frozen, fixed at start) and the faults (switchable at run time).

Every fault has one name, used as the CLI flag (`--fault-5xx`) and, in snake_case, as the key
of `POST /_sim/faults` (`{"fault_5xx": 0.2}`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "FaultError",
    "Faults",
    "SimConfig",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 18900


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The simulated world. Rates and intervals are in simulated time (`speed` x wall time)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    markets: int = 200
    seed: int = 1
    data_dir: Path | None = None
    speed: float = 1.0
    trade_rate: float = 5.0  # taker orders (transactions) per second, all markets together
    quote_rate: float = 40.0  # order-book level changes per second, all markets together
    new_market_every_secs: float = 60.0  # 0 = never
    resolve_market_every_secs: float = 120.0  # 0 = never
    data_lag_secs: float = 4.0  # match time -> visible in the Data API
    start_time_ms: int | None = None  # simulated epoch at start; None = wall clock now
    rate_limit_scale: float = 1.0  # multiplies every published limit; 0 disables limits
    trades_kept: int = 2_000_000  # fills the Data API keeps in memory (oldest dropped)

    def __post_init__(self) -> None:
        if self.markets < 1:
            raise ValueError("markets must be >= 1")
        if not self.speed > 0:
            raise ValueError("speed must be > 0")
        for name in ("trade_rate", "quote_rate", "new_market_every_secs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.resolve_market_every_secs < 0 or self.data_lag_secs < 0:
            raise ValueError("intervals must be >= 0")
        if self.rate_limit_scale < 0 or self.trades_kept < 1:
            raise ValueError("rate_limit_scale must be >= 0 and trades_kept >= 1")


class FaultError(ValueError):
    """A fault setting that is unknown or out of range (answered with HTTP 400)."""


_RATES = ("fault_5xx", "fault_cloudflare_403", "fault_ws_malformed", "fault_bad_hash")
_SECONDS = (
    "fault_slow_secs",
    "fault_ws_drop_every_secs",
    "fault_ws_silent_after_secs",
)


@dataclass(slots=True)
class Faults:
    """Injected faults. Rates are probabilities per request/frame/book (0..1); seconds are wall
    seconds (0 = off). The 429 storm answers every `fault_429_every`-th API request with 429."""

    fault_429_storm: bool = False
    fault_429_every: int = 3
    fault_5xx: float = 0.0
    fault_slow_secs: float = 0.0
    fault_cloudflare_403: float = 0.0
    fault_ws_drop_every_secs: float = 0.0
    fault_ws_silent_after_secs: float = 0.0
    fault_ws_malformed: float = 0.0
    fault_bad_hash: float = 0.0

    def __post_init__(self) -> None:
        self._check()

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Apply a partial update (the JSON of POST /_sim/faults); returns the changed names.

        Raises FaultError, leaving the settings unchanged, for an unknown name or a bad value.
        """
        known = {f.name: f for f in fields(self)}
        staged = asdict(self)
        for name, value in changes.items():
            if name not in known:
                raise FaultError(f"unknown fault {name!r}; known: {sorted(known)}")
            staged[name] = _coerce(name, value)
        candidate = Faults(**staged)
        changed = [name for name in known if getattr(self, name) != getattr(candidate, name)]
        for name in changed:
            setattr(self, name, getattr(candidate, name))
        return changed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def active(self) -> dict[str, Any]:
        """Only the faults that are switched on."""
        return {
            name: value
            for name, value in asdict(self).items()
            if name != "fault_429_every" and value not in (False, 0, 0.0)
        }

    def _check(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise FaultError(f"{name} is a probability: 0..1, got {value}")
        for name in _SECONDS:
            if getattr(self, name) < 0:
                raise FaultError(f"{name} must be >= 0 seconds")
        if self.fault_429_every < 1:
            raise FaultError("fault_429_every must be >= 1")


def _coerce(name: str, value: Any) -> Any:
    if name == "fault_429_storm":
        if not isinstance(value, bool):
            raise FaultError(f"{name} must be true or false")
        return value
    if name == "fault_429_every":
        if isinstance(value, bool) or not isinstance(value, int):
            raise FaultError(f"{name} must be an integer")
        return value
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultError(f"{name} must be a number")
    return float(value)
