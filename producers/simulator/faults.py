"""The HTTP front door of the API routes: counting, injected faults, rate limits.

In order, for every request under /gamma, /clob and /data: count it; sleep `fault_slow_secs`;
answer a Cloudflare-style HTML 403 with probability `fault_cloudflare_403`; answer every
`fault_429_every`-th request with 429 during a `fault_429_storm`; answer 500/502/503 with
probability `fault_5xx`; apply the published rate limits (429 with Retry-After, counted only for
requests that get through); otherwise run the route. Error bodies are the shape each API uses.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from producers.simulator.ratelimit import ROUTES
from producers.simulator.state import SimState, json_response, state_of

__all__ = ["CLOUDFLARE_403_HTML", "api_error", "front_door"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLOUDFLARE_403_HTML = """<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<html class="no-js" lang="en-US">
<head><title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" /></head>
<body><div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">
<h1 data-translate="block_headline">Sorry, you have been blocked</h1>
<h2 class="cf-subheadline">You are unable to access polymarket.com</h2>
<p>This website is using a security service to protect itself from online attacks.</p>
<span class="cf-footer-item">Cloudflare Ray ID: <strong>{ray}</strong></span>
</div></div></body></html>
"""

_BAD_GATEWAY_HTML = """<html>
<head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body>
</html>
"""


def api_error(
    api: str,
    status: int,
    message: str,
    *,
    parameter: str | None = None,
    retry_after: int | None = None,
) -> web.Response:
    """An error with the body shape of `api`: Gamma {type, error}, CLOB {error}, Data API v2
    {error, code, retryable, trace_id[, parameter]}."""
    body: dict[str, object]
    if api == "gamma":
        kind = {404: "not found", 422: "validation error", 429: "rate limit"}.get(status, "error")
        body = {"type": kind, "error": message}
    elif api == "data":
        code = {
            400: "invalid_request",
            404: "not_found",
            429: "rate_limited",
            500: "internal",
            503: "dependency_unavailable",
        }.get(status, "internal")
        body = {
            "error": message,
            "code": code,
            "retryable": status in (429, 503),
            "trace_id": uuid.uuid4().hex,
        }
        if parameter is not None:
            body["parameter"] = parameter
    else:
        body = {"error": message}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return json_response(msgspec.json.encode(body), status, headers)


def _html(status: int, text: str) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="UTF-8",
        headers={"Server": "cloudflare", "CF-RAY": uuid.uuid4().hex[:16] + "-AMS"},
    )


@web.middleware
async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = ROUTES.get(resource.canonical) if resource is not None else None
    if route is None:  # /_sim, /ws and unknown paths
        return await handler(request)
    state = state_of(request)
    state.stats.requests[resource.canonical if resource else request.path] += 1
    response = await _faulted(state, route.api)
    if response is None:
        retry_after = state.limiter.acquire(route, time.monotonic())
        if retry_after:
            state.stats.rate_limited += 1
            log.debug("rate limited %s (retry after %ss)", request.path, retry_after)
            response = api_error(route.api, 429, "Too Many Requests", retry_after=retry_after)
    if response is not None:
        state.stats.statuses[response.status] += 1
        return response
    served = await handler(request)
    state.stats.statuses[served.status] += 1
    return served


async def _faulted(state: SimState, api: str) -> web.Response | None:
    faults, rng, stats = state.faults, state.fault_rng, state.stats
    state.api_requests += 1
    if faults.fault_slow_secs > 0:
        stats.slowed += 1
        await asyncio.sleep(faults.fault_slow_secs)
    if faults.fault_cloudflare_403 > 0 and rng.random() < faults.fault_cloudflare_403:
        stats.cloudflare_403 += 1
        return _html(403, CLOUDFLARE_403_HTML.replace("{ray}", uuid.uuid4().hex[:16]))
    if faults.fault_429_storm and state.api_requests % faults.fault_429_every == 0:
        stats.storm_429 += 1
        return api_error(api, 429, "Too Many Requests", retry_after=1)
    if faults.fault_5xx > 0 and rng.random() < faults.fault_5xx:
        stats.server_errors += 1
        kind = rng.randrange(3)
        if kind == 0:
            return api_error(api, 500, "internal server error")
        if kind == 1:
            return _html(502, _BAD_GATEWAY_HTML)
        return api_error(api, 503, "service unavailable", retry_after=1)
    return None
