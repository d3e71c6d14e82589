"""Polymarket's published rate limits (API.md section 5) as sliding 10-second windows.

Each API route counts against its own limit and its API's general limit. A request over a
limit is refused (it does not count) with the seconds until the window has room again, which
the server sends as `Retry-After`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["ROUTES", "RateLimiter", "Route"]

WINDOW_SECS = 10.0

GENERAL = {"gamma": 4000, "clob": 9000, "data": 1000}


@dataclass(frozen=True, slots=True)
class Route:
    """An API route: which API, which published limit (None: only the API's general one)."""

    api: str
    limit_name: str | None = None
    limit: int = 0


# keyed by the aiohttp resource's canonical path
ROUTES: dict[str, Route] = {
    "/gamma/markets/keyset": Route("gamma", "gamma /markets", 300),
    "/gamma/markets": Route("gamma", "gamma /markets", 300),
    "/gamma/markets/{market_id}": Route("gamma", "gamma /markets", 300),
    "/gamma/events/keyset": Route("gamma", "gamma /events", 500),
    "/gamma/events": Route("gamma", "gamma /events", 500),
    "/gamma/events/{event_id}": Route("gamma", "gamma /events", 500),
    "/gamma/status": Route("gamma"),
    "/data/v2/trades": Route("data", "data /trades", 200),
    "/data/trades": Route("data", "data /trades", 200),
    "/clob/book": Route("clob", "clob /book", 1500),
    "/clob/books": Route("clob", "clob /books", 500),
    "/clob/price": Route("clob", "clob /price", 1500),
    "/clob/prices": Route("clob", "clob /prices", 500),
    "/clob/midpoint": Route("clob", "clob /midpoint", 1500),
    "/clob/midpoints": Route("clob", "clob /midpoints", 500),
    "/clob/spread": Route("clob"),
    "/clob/spreads": Route("clob", "clob /spreads", 500),
    "/clob/last-trade-price": Route("clob"),
    "/clob/last-trades-prices": Route("clob"),
    "/clob/time": Route("clob"),
    "/clob/ok": Route("clob", "clob /ok", 100),
}


class _Window:
    __slots__ = ("limit", "stamps")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stamps: deque[float] = deque()

    def wait(self, now: float) -> float:
        """0 when a request fits now, else the seconds until one does."""
        stamps = self.stamps
        while stamps and stamps[0] <= now - WINDOW_SECS:
            stamps.popleft()
        if len(stamps) < self.limit:
            return 0.0
        return stamps[len(stamps) - self.limit] + WINDOW_SECS - now


class RateLimiter:
    """`scale` multiplies every limit (0 disables limiting)."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._windows: dict[str, _Window] = {}

    def _window(self, name: str, limit: int) -> _Window:
        window = self._windows.get(name)
        if window is None:
            window = _Window(max(1, int(limit * self.scale)))
            self._windows[name] = window
        return window

    def acquire(self, route: Route, now: float) -> int:
        """0 if the request may proceed (and is counted), else Retry-After in whole seconds."""
        if self.scale <= 0:
            return 0
        windows = [self._window(route.api, GENERAL[route.api])]
        if route.limit_name is not None:
            windows.append(self._window(route.limit_name, route.limit))
        wait = max(w.wait(now) for w in windows)
        if wait > 0:
            return max(1, math.ceil(wait))
        for w in windows:
            w.stamps.append(now)
        return 0
