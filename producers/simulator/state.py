"""What every route of the simulator shares: the engine, the clock, faults, limits, counters."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from producers.simulator.clock import Clock
from producers.simulator.config import Faults, SimConfig
from producers.simulator.engine import Simulation
from producers.simulator.ratelimit import RateLimiter
from producers.simulator.truth import TruthWriter

__all__ = ["STATE", "SimState", "Stats", "json_response", "state_of"]


@dataclass(slots=True)
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # by route
    statuses: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0  # 429 from the rate limiter
    storm_429: int = 0  # 429 from the storm fault
    cloudflare_403: int = 0
    server_errors: int = 0
    slowed: int = 0
    bad_hashes: int = 0
    ws_connections: int = 0  # open now
    ws_connections_total: int = 0
    ws_frames: int = 0
    ws_dropped: int = 0
    ws_silenced: int = 0
    ws_malformed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "rate_limited": self.rate_limited,
            "storm_429": self.storm_429,
            "status_429": self.statuses.get(429, 0),
            "cloudflare_403": self.cloudflare_403,
            "server_errors": self.server_errors,
            "slowed": self.slowed,
            "bad_hashes": self.bad_hashes,
            "ws_connections": self.ws_connections,
            "ws_connections_total": self.ws_connections_total,
            "ws_frames": self.ws_frames,
            "ws_dropped": self.ws_dropped,
            "ws_silenced": self.ws_silenced,
            "ws_malformed": self.ws_malformed,
        }


@dataclass(slots=True)
class SimState:
    config: SimConfig
    clock: Clock
    sim: Simulation
    faults: Faults
    limiter: RateLimiter
    stats: Stats = field(default_factory=Stats)
    fault_rng: random.Random = field(default_factory=random.Random)
    faults_changed_at: float = 0.0  # monotonic time of the last POST /_sim/faults
    cursor_secret: bytes = field(default_factory=lambda: uuid.uuid4().bytes)
    api_requests: int = 0
    truth: TruthWriter | None = None
    engine_task: asyncio.Task[None] | None = None

    def now_ms(self) -> int:
        """Simulated now, never behind what the engine has already run."""
        return max(self.clock.now_ms(), self.sim.now_ms)


STATE: web.AppKey[SimState] = web.AppKey("simulator_state", SimState)


def state_of(request: web.Request) -> SimState:
    return request.app[STATE]


def json_response(
    body: bytes | str, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response from pre-encoded text."""
    payload = body.encode() if isinstance(body, str) else body
    return web.Response(
        body=payload, status=status, content_type="application/json", headers=headers
    )
