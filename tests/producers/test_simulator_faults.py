"""The simulator's rate limits and injected faults, switched at run time through
POST /_sim/faults, and the `python -m producers.simulator` process itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosedError

from producers.parsing.clob import parse_books
from producers.parsing.market_ws import parse_frame
from producers.simulator.config import SimConfig
from producers.simulator.server import Endpoints, SimulatorThread

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def urls() -> Iterator[Endpoints]:
    config = SimConfig(
        port=0,
        markets=10,
        seed=3,
        speed=4.0,
        trade_rate=10.0,
        quote_rate=40.0,
        new_market_every_secs=0,
        resolve_market_every_secs=0,
    )
    with SimulatorThread(config) as sim:
        assert sim.urls is not None
        yield sim.urls


@pytest.fixture()
def faults(urls: Endpoints) -> Iterator[httpx.Client]:
    """A client to switch faults; every fault is off again after the test."""
    with httpx.Client(base_url=urls.control, timeout=10) as client:
        yield client
        off = {name: False if name == "fault_429_storm" else 0 for name in _fault_names(client)}
        off.pop("fault_429_every")
        assert client.post("/_sim/faults", json=off).status_code == 200


def _fault_names(client: httpx.Client) -> list[str]:
    return list(client.get("/_sim/faults").json())


def _tokens(urls: Endpoints) -> list[str]:
    page = httpx.get(f"{urls.gamma}/markets/keyset", params={"limit": 100}).json()
    return [t for m in page["markets"] for t in json.loads(m["clobTokenIds"])]


def _set(client: httpx.Client, **settings: Any) -> None:
    response = client.post("/_sim/faults", json=settings)
    assert response.status_code == 200, response.text
    assert set(response.json()["changed"]) == set(settings)


# --- HTTP ----------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after() -> None:
    with (
        SimulatorThread(SimConfig(port=0, markets=3, seed=1)) as sim,
        httpx.Client(timeout=10) as http,
    ):
        assert sim.urls is not None
        url = f"{sim.urls.data}/v2/trades"  # 200 per 10 s
        codes = [http.get(url, params={"limit": 1}).status_code for _ in range(200)]
        assert codes == [200] * 200
        refused = http.get(url)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        assert refused.json()["code"] == "rate_limited"
        other = http.get(f"{sim.urls.gamma}/markets/keyset")  # another route's own limit
        assert other.status_code == 200
        status = http.get(f"{sim.urls.control}/_sim/status").json()
        assert status["rate_limited"] == 1 and status["status_429"] == 1


def test_429_storm(urls: Endpoints, faults: httpx.Client) -> None:
    _set(faults, fault_429_storm=True)
    codes = [httpx.get(f"{urls.gamma}/markets/keyset").status_code for _ in range(9)]
    assert codes.count(429) == 3 and codes.count(200) == 6
    storm = httpx.get(f"{urls.clob}/book", params={"token_id": "1"})
    storms = [storm] + [httpx.get(f"{urls.clob}/ok") for _ in range(2)]
    refused = next(r for r in storms if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1" and refused.json() == {
        "error": "Too Many Requests"
    }


def test_5xx(urls: Endpoints, faults: httpx.Client) -> None:
    _set(faults, fault_5xx=1.0)
    responses = [httpx.get(f"{urls.clob}/ok") for _ in range(12)]
    assert {r.status_code for r in responses} <= {500, 502, 503}
    assert len({r.status_code for r in responses}) > 1
    for r in responses:
        if r.status_code == 502:
            assert r.headers["Content-Type"].startswith("text/html")
        else:
            assert "error" in r.json()
    _set(faults, fault_5xx=0.0)
    assert httpx.get(f"{urls.clob}/ok").status_code == 200


def test_slow_responses(urls: Endpoints, faults: httpx.Client) -> None:
    _set(faults, fault_slow_secs=0.4)
    started = time.perf_counter()
    assert httpx.get(f"{urls.gamma}/markets/keyset").status_code == 200
    assert time.perf_counter() - started >= 0.4


def test_cloudflare_403(urls: Endpoints, faults: httpx.Client) -> None:
    _set(faults, fault_cloudflare_403=1.0)
    response = httpx.get(f"{urls.data}/v2/trades")
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Cloudflare" in response.text and response.text.lstrip().startswith("<!DOCTYPE html>")


def test_bad_hash(urls: Endpoints, faults: httpx.Client) -> None:
    tokens = _tokens(urls)[:6]
    _set(faults, fault_bad_hash=1.0)
    books = httpx.post(f"{urls.clob}/books", json=[{"token_id": t} for t in tokens])
    result = parse_books(books.json(), 0)
    assert result.ok and len(result.records) == 6  # parsed and kept, flagged
    assert all(b.hash_ok is False for b in result.records)
    _set(faults, fault_bad_hash=0.0)
    again = parse_books(httpx.get(f"{urls.clob}/book", params={"token_id": tokens[0]}).json(), 0)
    assert again.records[0].hash_ok is True


def test_fault_settings_are_validated(urls: Endpoints, faults: httpx.Client) -> None:
    assert faults.post("/_sim/faults", json={"fault_5xx": 3}).status_code == 400
    assert faults.post("/_sim/faults", json={"no_such_fault": 1}).status_code == 400
    assert faults.post("/_sim/faults", content=b"[1]").status_code == 400
    assert faults.get("/_sim/faults").json()["fault_5xx"] == 0.0


# --- WebSocket -----------------------------------------------------------------------------
def _subscribe(tokens: list[str]) -> str:
    return json.dumps({"assets_ids": tokens, "type": "market", "custom_feature_enabled": True})


def test_ws_drop(urls: Endpoints, faults: httpx.Client) -> None:
    tokens = _tokens(urls)

    async def run() -> float:
        async with websockets.connect(urls.ws, max_size=2**24) as ws:
            await ws.send(_subscribe(tokens))
            opened = time.monotonic()
            _set(faults, fault_ws_drop_every_secs=0.5)
            with pytest.raises(ConnectionClosedError) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is None  # no close frame: the connection was cut
            return time.monotonic() - opened

    assert 0.4 <= asyncio.run(run()) < 3.0
    assert faults.get("/_sim/status").json()["ws_dropped"] >= 1


def test_ws_silent_socket_keeps_answering_ping(urls: Endpoints, faults: httpx.Client) -> None:
    tokens = _tokens(urls)

    async def run() -> tuple[int, list[str]]:
        async with websockets.connect(urls.ws, max_size=2**24) as ws:
            await ws.send(_subscribe(tokens))
            await ws.recv()  # initial dump
            _set(faults, fault_ws_silent_after_secs=0.2)
            await asyncio.sleep(0.6)
            while True:  # drain what was queued before the silence
                try:
                    await asyncio.wait_for(ws.recv(), 0.3)
                except TimeoutError:
                    break
            frames: list[str] = []
            for _ in range(3):
                await ws.send("PING")
                frames.append(str(await asyncio.wait_for(ws.recv(), 2)))
            try:
                extra = str(await asyncio.wait_for(ws.recv(), 1.5))
                frames.append(extra)
            except TimeoutError:
                pass
            status = faults.get("/_sim/status").json()
            return status["ws_silenced"], frames

    silenced, frames = asyncio.run(run())
    assert silenced >= 1
    assert frames == ["PONG", "PONG", "PONG"]  # no data although the markets keep trading


def test_ws_malformed_frames(urls: Endpoints, faults: httpx.Client) -> None:
    tokens = _tokens(urls)

    async def run() -> list[str]:
        _set(faults, fault_ws_malformed=1.0)
        async with websockets.connect(urls.ws, max_size=2**24) as ws:
            await ws.send(_subscribe(tokens))
            frames = [str(await asyncio.wait_for(ws.recv(), 5)) for _ in range(5)]
            await ws.send("PING")
            while (frame := str(await asyncio.wait_for(ws.recv(), 5))) != "PONG":
                frames.append(frame)
            return frames

    frames = asyncio.run(run())
    assert all(parse_frame(frame, 0).errors for frame in frames)


# --- the process -----------------------------------------------------------------------------
def test_module_runs_announces_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, PMPIPE_LOG_FORMAT="text", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "producers.simulator", "--port", "0", "--markets", "12"]
    command += ["--data-dir", str(tmp_path), "--speed", "10", "--fault-5xx", "1.0"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        ready = ""
        deadline = time.monotonic() + 30
        while "simulator ready" not in ready and time.monotonic() < deadline:
            ready = proc.stderr.readline()
        match = re.search(r"gamma=(\S+) clob=(\S+) data=(\S+) ws=(\S+)", ready)
        assert match, ready
        gamma, clob, data, ws = match.groups()
        assert gamma.endswith("/gamma") and clob.endswith("/clob") and data.endswith("/data")
        assert ws.startswith("ws://") and ws.endswith("/ws/market")
        assert httpx.get(f"{clob}/ok").status_code in (500, 502, 503)  # --fault-5xx 1.0
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        rest = proc.stderr.read()
        assert "simulator stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    markets = (tmp_path / "truth" / "markets.jsonl").read_text().splitlines()
    assert len(markets) >= 12
    trades = (tmp_path / "truth" / "trades.jsonl").read_text().splitlines()
    assert trades and all(json.loads(line)["trade_key"] for line in trades)
