"""producers.http: token buckets, the retry classifier, backoff, and the client against small
aiohttp servers standing in for Polymarket (429 + Retry-After, Cloudflare HTML, 5xx, 404,
timeouts, garbled JSON, refused connections)."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from producers.http import (
    USER_AGENT,
    HttpError,
    PolymarketHttp,
    TokenBucket,
    backoff_delays,
    classify_exception,
    classify_response,
    parse_retry_after,
    route_of,
)
from producers.settings import Settings

FAST = Settings(http_timeout_secs=0.5, http_max_retries=3, http_backoff_max_secs=0.05)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def client(base: str, settings: Settings = FAST) -> PolymarketHttp:
    http = PolymarketHttp({"gamma": base + "/gamma", "clob": base, "data": base}, settings)
    http.backoff_base_secs = 0.01
    return http


def scripted(answers: list[Callable[[], web.StreamResponse]]) -> tuple[web.Application, list[Any]]:
    """An app answering /gamma/markets/keyset with `answers` in turn (the last one repeats)."""
    seen: list[Any] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((time.monotonic(), request.path, dict(request.query), dict(request.headers)))
        return answers[min(len(seen) - 1, len(answers) - 1)]()

    app = web.Application()
    app.router.add_get("/gamma/markets/keyset", handler)
    return app, seen


def ok() -> web.Response:
    return web.json_response({"markets": [], "next_cursor": None})


# -------------------------------------------------------------------------------------------
# pure parts


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/markets/keyset", "/markets"),
        ("/markets", "/markets"),
        ("/events/keyset?limit=1", "/events"),
        ("/v2/trades", "/trades"),
        ("/trades", "/trades"),
        ("/books", "/books"),
        ("/last-trades-prices", "/last-trades-prices"),
        ("/", "/"),
    ],
)
def test_route_of(path: str, route: str) -> None:
    assert route_of(path) == route


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_never_exceeds_the_limit_in_any_window() -> None:
    clock = FakeClock()
    bucket = TokenBucket(300, 10.0, fraction=0.9, clock=clock)
    sent: list[float] = []
    for _ in range(2000):  # callers that use their token as soon as allowed
        delay = bucket.reserve()
        sent.append(clock.now + delay)
        clock.now += delay
    start = 0
    for end, t in enumerate(sent):
        while sent[start] <= t - 10.0:
            start += 1
        assert end - start + 1 <= 300
    # sustained rate is 90 % of the limit: 2000 requests take ~ (2000 - 30) / 27 s
    assert sent[-1] - sent[0] == pytest.approx((2000 - 30) / 27, rel=0.01)


def test_bucket_burst_then_waits_in_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, 10.0, fraction=0.9, clock=clock)
    delays = [bucket.reserve() for _ in range(12)]
    assert delays[:10] == [0.0] * 10  # capacity = 10 % of the limit
    assert delays[10] == pytest.approx(1 / 9)
    assert delays[11] == pytest.approx(2 / 9)


def test_bucket_penalty_holds_everyone_back() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, 10.0, fraction=1.0, clock=clock)
    bucket.penalize(3.0)
    assert bucket.reserve() == pytest.approx(3.1)
    clock.now += 10
    assert bucket.reserve() == 0.0


def test_bucket_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="bad bucket"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="bad bucket"):
        TokenBucket(10, fraction=1.5)


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = time.time()
    date = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1.0)


def response(status: int, content_type: str = "application/json", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": content_type, **headers}, content=b"{}")


@pytest.mark.parametrize(
    ("resp", "ok", "retry", "reason", "retry_after"),
    [
        (response(200), True, False, "ok", None),
        (response(429, **{"retry-after": "2"}), False, True, "rate_limited", 2.0),
        (response(429), False, True, "rate_limited", None),
        (response(503, **{"retry-after": "1"}), False, True, "server_error", 1.0),
        (response(500), False, True, "server_error", None),
        (response(403, "text/html; charset=UTF-8"), False, True, "cloudflare", None),
        (response(200, "text/html"), False, True, "cloudflare", None),
        (response(404), False, False, "not_found", None),
        (response(400), False, False, "client_error", None),
        (response(422), False, False, "client_error", None),
    ],
)
def test_classify_response(
    resp: httpx.Response, ok: bool, retry: bool, reason: str, retry_after: float | None
) -> None:
    verdict = classify_response(resp)
    assert (verdict.ok, verdict.retry, verdict.reason, verdict.retry_after) == (
        ok,
        retry,
        reason,
        retry_after,
    )


def test_classify_exception() -> None:
    assert classify_exception(httpx.ReadTimeout("slow")).reason == "timeout"
    assert classify_exception(httpx.ConnectTimeout("slow")).retry
    assert classify_exception(httpx.ConnectError("refused")).reason == "transport"
    assert classify_exception(httpx.RemoteProtocolError("eof")).retry
    assert not classify_exception(ValueError("bug")).retry


def test_backoff_is_jittered_exponential_and_capped() -> None:
    delays = backoff_delays(1.0, 8.0)
    got = [next(delays) for _ in range(8)]
    for d, nominal in zip(got, [1, 2, 4, 8, 8, 8, 8, 8], strict=True):
        assert nominal / 2 <= d <= nominal
    assert len(set(got)) > 1


# -------------------------------------------------------------------------------------------
# the client against servers


def test_429_retry_after_is_honoured_and_counted() -> None:
    async def scenario() -> None:
        app, seen = scripted(
            [
                lambda: web.json_response(
                    {"error": "slow down"}, status=429, headers={"Retry-After": "1"}
                ),
                ok,
            ]
        )
        async with serve(app) as base:
            http = client(base)
            started = time.monotonic()
            payload = await http.get_json("gamma", "/markets/keyset", params={"limit": 100})
            elapsed = time.monotonic() - started
            await http.aclose()
        assert payload == {"markets": [], "next_cursor": None}
        assert elapsed >= 1.0
        assert seen[1][0] - seen[0][0] >= 1.0
        assert seen[0][1] == "/gamma/markets/keyset"
        assert seen[0][2] == {"limit": "100"}
        assert seen[0][3]["User-Agent"] == USER_AGENT
        stats = http.stats()["gamma/markets"]
        assert stats["statuses"] == {"429": 1, "200": 1}
        assert stats["retries"] == 1 and stats["retry_wait_secs"] >= 1.0

    run(scenario())


def test_cloudflare_html_5xx_and_bad_json_are_retried() -> None:
    async def scenario() -> None:
        html = "<html><body>Attention Required! | Cloudflare</body></html>"
        app, seen = scripted(
            [
                lambda: web.Response(text=html, status=403, content_type="text/html"),
                lambda: web.json_response({"error": "boom"}, status=502),
                lambda: web.Response(text='{"markets": [', content_type="application/json"),
                ok,
            ]
        )
        async with serve(app) as base:
            http = client(base)
            assert await http.get_json("gamma", "/markets/keyset") == {
                "markets": [],
                "next_cursor": None,
            }
            await http.aclose()
        assert len(seen) == 4
        assert http.stats()["gamma/markets"]["statuses"] == {"403": 1, "502": 1, "200": 2}

    run(scenario())


def test_gives_up_after_max_retries() -> None:
    async def scenario() -> None:
        app, seen = scripted([lambda: web.json_response({"error": "down"}, status=503)])
        async with serve(app) as base:
            http = client(base)
            with pytest.raises(HttpError) as info:
                await http.get_json("gamma", "/markets/keyset")
            await http.aclose()
        assert len(seen) == FAST.http_max_retries + 1
        assert info.value.status == 503 and info.value.reason == "server_error"
        assert "gave up after 4 attempts" in str(info.value)
        totals = http.totals([("gamma", "/markets")])
        assert (totals.requests, totals.retries, totals.failures) == (4, 3, 1)

    run(scenario())


def test_404_and_400_are_not_retried() -> None:
    async def scenario() -> None:
        for status in (404, 400):
            app, seen = scripted(
                [functools.partial(web.json_response, {"error": "no"}, status=status)]
            )
            async with serve(app) as base:
                http = client(base)
                with pytest.raises(HttpError) as info:
                    await http.get_json("gamma", "/markets/keyset")
                await http.aclose()
            assert len(seen) == 1
            assert info.value.status == status
            assert info.value.body == b'{"error": "no"}'

    run(scenario())


def test_timeouts_are_retried() -> None:
    async def scenario() -> None:
        calls = 0

        async def handler(request: web.Request) -> web.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(2)
            return web.json_response([{"ok": True}])

        app = web.Application()
        app.router.add_post("/books", handler)
        async with serve(app) as base:
            http = client(base)
            assert await http.post_json("clob", "/books", [{"token_id": "1"}]) == [{"ok": True}]
            await http.aclose()
        assert calls == 2
        assert http.stats()["clob/books"]["statuses"] == {"timeout": 1, "200": 1}

    run(scenario())


def test_refused_connections_are_retried_then_fail() -> None:
    async def scenario() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        http = client(f"http://127.0.0.1:{port}")
        with pytest.raises(HttpError) as info:
            await http.get_json("data", "/v2/trades")
        await http.aclose()
        assert info.value.reason == "transport"
        assert http.stats()["data/trades"]["statuses"] == {"transport": 4}

    run(scenario())


def test_route_bucket_throttles_requests() -> None:
    """60 keyset requests against /markets (300 per 10 s at 90 %: burst 30, then 27/s)."""

    async def scenario() -> None:
        app, seen = scripted([ok])
        async with serve(app) as base:
            http = client(base, Settings(rate_limit_fraction=0.9))
            started = time.monotonic()
            await asyncio.gather(*(http.get_json("gamma", "/markets/keyset") for _ in range(60)))
            elapsed = time.monotonic() - started
            await http.aclose()
        assert len(seen) == 60
        assert elapsed >= 30 / 27 - 0.05
        assert http.totals([("gamma", "/markets")]).rate_wait_secs > 5  # summed over waiters

    run(scenario())


def test_unknown_host_is_an_error() -> None:
    async def scenario() -> None:
        http = client("http://127.0.0.1:9")
        with pytest.raises(Exception, match="no base URL configured"):
            await http.get_json("nowhere", "/x")
        await http.aclose()

    run(scenario())
