"""HTTP to Polymarket's REST hosts: rate limits, retries, counters.

One `httpx.AsyncClient` per host (gamma, clob, data) with a descriptive User-Agent. Every
request first takes a token from its route's bucket (the published per-route limits) and from
its host's bucket (the general limits), then is retried with jittered exponential backoff when
`classify_response` / `classify_exception` say it is worth it: 429, 5xx, timeouts, transport
errors, Cloudflare HTML pages (Content-Type text/html, whatever the status) and garbled JSON.
A `Retry-After` is honoured, and it holds back the whole route, not only the request that got
it. Everything is counted per route (`stats()`), including the seconds spent waiting for the
buckets, so a slow poll cycle can say what limited it.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from pmpipe.config import Config
from pmpipe.errors import PipelineError
from producers.settings import Settings

__all__ = [
    "HOST_LIMITS",
    "ROUTE_LIMITS",
    "USER_AGENT",
    "HttpError",
    "LimitTotals",
    "PolymarketHttp",
    "TokenBucket",
    "Verdict",
    "backoff_delays",
    "classify_exception",
    "classify_response",
    "parse_retry_after",
    "route_of",
]

log = logging.getLogger(__name__)

USER_AGENT = "polymarket-pipeline/0.1 (+https://github.com/polymarket-pipeline)"
WINDOW_SECS = 10.0

# Published limits, requests per 10 s (../shared/polymarket/API.md §5).
ROUTE_LIMITS: Mapping[tuple[str, str], int] = {
    ("gamma", "/markets"): 300,
    ("gamma", "/events"): 500,
    ("data", "/trades"): 200,
    ("clob", "/book"): 1500,
    ("clob", "/books"): 500,
    ("clob", "/prices"): 500,
    ("clob", "/midpoints"): 500,
    ("clob", "/spreads"): 500,
    ("clob", "/last-trades-prices"): 500,
}
HOST_LIMITS: Mapping[str, int] = {"gamma": 4000, "clob": 9000, "data": 1000}

_BACKOFF_BASE_SECS = 0.5
_CLOUDFLARE_FACTOR = 4.0
_BODY_SNIPPET = 200
_decoder = msgspec.json.Decoder()


def route_of(path: str) -> str:
    """The rate-limit route of a path: /markets/keyset -> /markets, /v2/trades -> /trades."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) > 1 and parts[0] in ("v1", "v2"):
        parts = parts[1:]
    return "/" + parts[0] if parts else "/"


# --------------------------------------------------------------------------------------------
# rate limiting


class TokenBucket:
    """A token bucket that keeps every `window_secs` window at or under `limit` requests.

    It refills at `fraction * limit / window` per second and holds at most
    `limit * (1 - fraction)` whole tokens (at least 1), so a full burst plus a window of refill
    never exceeds the limit of a sliding-window server. Waiters reserve their token first (the count
    goes negative), which keeps them in arrival order without a lock.
    """

    def __init__(
        self,
        limit: int,
        window_secs: float = WINDOW_SECS,
        fraction: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit <= 0 or window_secs <= 0 or not 0 < fraction <= 1:
            raise ValueError(f"bad bucket: limit={limit} window={window_secs} fraction={fraction}")
        self.limit = limit
        self.rate = limit * fraction / window_secs
        self.capacity = max(1.0, float(math.floor(limit * (1.0 - fraction) + 1e-9)))
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        self._refill()
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self.rate)

    def penalize(self, secs: float) -> None:
        """Nobody gets a token for `secs` (the server said Retry-After)."""
        self._refill()
        self._tokens = min(self._tokens, -secs * self.rate)

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        return delay


# --------------------------------------------------------------------------------------------
# retry classification


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one attempt's outcome."""

    ok: bool
    retry: bool
    reason: str  # ok | rate_limited | server_error | cloudflare | timeout | transport | ...
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def classify_response(response: httpx.Response) -> Verdict:
    content_type = response.headers.get("content-type", "").lower()
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    status = response.status_code
    if "text/html" in content_type:
        return Verdict(False, True, "cloudflare", retry_after)
    if status == 429:
        return Verdict(False, True, "rate_limited", retry_after)
    if status >= 500:
        return Verdict(False, True, "server_error", retry_after)
    if status == 404:
        return Verdict(False, False, "not_found")
    if status >= 400:
        return Verdict(False, False, "client_error")
    if 200 <= status < 300:
        return Verdict(True, False, "ok")
    return Verdict(False, False, "unexpected_status")


def classify_exception(exc: BaseException) -> Verdict:
    if isinstance(exc, httpx.TimeoutException):
        return Verdict(False, True, "timeout")
    if isinstance(exc, httpx.TransportError):
        return Verdict(False, True, "transport")
    return Verdict(False, False, type(exc).__name__)


def backoff_delays(
    base_secs: float = _BACKOFF_BASE_SECS, max_secs: float = 60.0
) -> Iterator[float]:
    """Exponential backoff with "equal jitter": each delay in [d/2, d], d doubling up to max."""
    delay = base_secs
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 2, max_secs)


class HttpError(PipelineError):
    """A request that failed for good (not retryable, or retries exhausted)."""

    def __init__(
        self,
        message: str,
        *,
        host: str,
        route: str,
        status: int | None,
        reason: str,
        body: bytes | None = None,
    ) -> None:
        self.host = host
        self.route = route
        self.status = status
        self.reason = reason
        self.body = body
        super().__init__(message, component=f"http:{host}{route}")


# --------------------------------------------------------------------------------------------
# counters


@dataclass
class RouteStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    rate_wait_secs: float = 0.0
    retry_wait_secs: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "failures": self.failures,
            "rate_wait_secs": round(self.rate_wait_secs, 3),
            "retry_wait_secs": round(self.retry_wait_secs, 3),
            "statuses": dict(self.statuses),
        }


@dataclass(frozen=True, slots=True)
class LimitTotals:
    """Sums over some routes: what a poll cycle spent on limits (diff two of these)."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    rate_wait_secs: float = 0.0
    retry_wait_secs: float = 0.0

    def __sub__(self, other: LimitTotals) -> LimitTotals:
        return LimitTotals(
            self.requests - other.requests,
            self.retries - other.retries,
            self.failures - other.failures,
            self.rate_wait_secs - other.rate_wait_secs,
            self.retry_wait_secs - other.retry_wait_secs,
        )

    def describe(self) -> str:
        return (
            f"requests={self.requests} rate_limit_wait_secs={self.rate_wait_secs:.1f} "
            f"retries={self.retries} retry_wait_secs={self.retry_wait_secs:.1f} "
            f"failed_requests={self.failures}"
        )


# --------------------------------------------------------------------------------------------
# the client


class PolymarketHttp:
    """The REST side of Polymarket: `get_json` / `post_json` by host name and path."""

    backoff_base_secs = _BACKOFF_BASE_SECS

    def __init__(
        self,
        base_urls: Mapping[str, str],
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self._clients = {
            host: httpx.AsyncClient(
                base_url=url,
                headers=headers,
                timeout=httpx.Timeout(settings.http_timeout_secs),
                limits=limits,
                transport=transport,
            )
            for host, url in base_urls.items()
        }
        fraction = settings.rate_limit_fraction
        self._route_buckets = {
            key: TokenBucket(limit, fraction=fraction) for key, limit in ROUTE_LIMITS.items()
        }
        self._host_buckets = {
            host: TokenBucket(limit, fraction=fraction) for host, limit in HOST_LIMITS.items()
        }
        self._stats: dict[tuple[str, str], RouteStats] = {}

    @classmethod
    def from_config(cls, config: Config, settings: Settings) -> PolymarketHttp:
        return cls(
            {
                "gamma": config.polymarket_gamma_url,
                "clob": config.polymarket_clob_url,
                "data": config.polymarket_data_url,
            },
            settings,
        )

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def get_json(self, host: str, path: str, params: Any = None) -> Any:
        return await self.request_json("GET", host, path, params=params)

    async def post_json(self, host: str, path: str, body: Any) -> Any:
        return await self.request_json("POST", host, path, json_body=body)

    async def request_json(
        self, method: str, host: str, path: str, *, params: Any = None, json_body: Any = None
    ) -> Any:
        """The decoded JSON answer; HttpError once it is clear there will not be one."""
        client = self._clients.get(host)
        if client is None:
            raise PipelineError(f"no base URL configured for host {host!r}")
        route = route_of(path)
        stats = self._stats.setdefault((host, route), RouteStats())
        delays = backoff_delays(self.backoff_base_secs, self.settings.http_backoff_max_secs)
        attempts = self.settings.http_max_retries + 1
        for attempt in range(1, attempts + 1):
            waited = await self._throttle(host, route)
            stats.rate_wait_secs += waited
            stats.requests += 1
            body: bytes | None = None
            status: int | None = None
            try:
                response = await client.request(method, path, params=params, json=json_body)
            except httpx.HTTPError as e:
                verdict = classify_exception(e)
                stats.statuses[verdict.reason] += 1
                detail = f"{type(e).__name__}: {e}"
            else:
                status, body = response.status_code, response.content
                stats.statuses[str(status)] += 1
                verdict = classify_response(response)
                detail = f"HTTP {status}"
                if verdict.ok:
                    try:
                        return _decoder.decode(body)
                    except msgspec.DecodeError as e:
                        verdict = Verdict(False, True, "bad_json")
                        detail = f"HTTP {status} with invalid JSON ({e})"
            if not verdict.retry or attempt == attempts:
                stats.failures += 1
                why = "not retryable" if not verdict.retry else f"gave up after {attempt} attempts"
                raise HttpError(
                    f"{method} {host}{path} failed ({verdict.reason}, {why}): {detail} "
                    f"{_snippet(body)}".rstrip(),
                    host=host,
                    route=route,
                    status=status,
                    reason=verdict.reason,
                    body=body,
                )
            delay = self._retry_delay(host, route, verdict, next(delays))
            stats.retries += 1
            stats.retry_wait_secs += delay
            log.warning(
                "retrying %s %s%s in %.1f s (attempt %d/%d): %s",
                method,
                host,
                path,
                delay,
                attempt,
                attempts,
                detail,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _retry_delay(self, host: str, route: str, verdict: Verdict, backoff: float) -> float:
        if verdict.reason == "cloudflare":  # a block page: back off harder, within the cap
            backoff = min(backoff * _CLOUDFLARE_FACTOR, self.settings.http_backoff_max_secs)
        if verdict.retry_after is None:
            return backoff
        delay = verdict.retry_after + random.uniform(0, 0.1 * verdict.retry_after + 0.05)
        bucket = self._route_buckets.get((host, route)) or self._host_buckets.get(host)
        if bucket is not None:
            bucket.penalize(delay)
        return delay

    async def _throttle(self, host: str, route: str) -> float:
        waited = 0.0
        bucket = self._route_buckets.get((host, route))
        if bucket is not None:
            waited += await bucket.acquire()
        host_bucket = self._host_buckets.get(host)
        if host_bucket is not None:
            waited += await host_bucket.acquire()
        return waited

    # -- counters ---------------------------------------------------------------------------
    def totals(self, routes: Iterable[tuple[str, str]]) -> LimitTotals:
        picked = [self._stats[r] for r in routes if r in self._stats]
        return LimitTotals(
            requests=sum(s.requests for s in picked),
            retries=sum(s.retries for s in picked),
            failures=sum(s.failures for s in picked),
            rate_wait_secs=sum(s.rate_wait_secs for s in picked),
            retry_wait_secs=sum(s.retry_wait_secs for s in picked),
        )

    def stats(self) -> dict[str, Any]:
        return {f"{host}{route}": s.as_dict() for (host, route), s in sorted(self._stats.items())}


def _snippet(body: bytes | None) -> str:
    if not body:
        return ""
    text = body[:_BODY_SNIPPET].decode("utf-8", errors="replace").replace("\n", " ")
    return f"body={text!r}"
