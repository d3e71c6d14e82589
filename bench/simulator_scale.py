"""Scale of the Polymarket simulator (`pmpipe simulate`) at full catalogue size.

Starts `python -m producers.simulator` with N markets (2N tokens) in its own process, then:
walks Gamma /markets/keyset to the end, fetches every token's book through POST /clob/books in
batches of 500 (which builds every book), times those calls (p50/p95/max), prints the
simulator's RSS before and after, and measures how many WebSocket events per second it can
push to clients subscribed to `--ws-tokens` tokens (200 per connection) at `--quote-rate`.

    .venv/bin/python bench/simulator_scale.py --markets 25000          # 50,000 tokens
    .venv/bin/python bench/simulator_scale.py --markets 46500          # 93,000 tokens
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import websockets

REPO = Path(__file__).resolve().parents[1]


def start(markets: int, quote_rate: float, trade_rate: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "producers.simulator", "--port", "0"]
    command += ["--markets", str(markets), "--quote-rate", str(quote_rate)]
    command += ["--trade-rate", str(trade_rate), "--new-market-every-secs", "0"]
    command += ["--resolve-market-every-secs", "0"]
    env = {**os.environ, "PMPIPE_LOG_FORMAT": "text", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if match := re.search(r"simulator ready gamma=http://([^/]+)/gamma", line):
            return process, f"http://{match.group(1)}"
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit("the simulator did not start")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(timings: list[float]) -> str:
    p50, p95 = statistics.median(timings), pct(timings, 0.95)
    return f"p50 {1000 * p50:.1f} ms p95 {1000 * p95:.1f} ms max {1000 * max(timings):.1f} ms"


def walk_gamma(http: httpx.Client, base: str) -> tuple[list[str], list[float]]:
    tokens: list[str] = []
    timings: list[float] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"after_cursor": cursor} if cursor else {})}
        started = time.perf_counter()
        response = http.get(f"{base}/gamma/markets/keyset", params=params)
        timings.append(time.perf_counter() - started)
        if response.status_code == 429:
            time.sleep(float(response.headers["Retry-After"]))
            continue
        page = response.json()
        tokens += [t for m in page["markets"] for t in json.loads(m["clobTokenIds"])]
        cursor = page.get("next_cursor")
        if not cursor:
            return tokens, timings


def fetch_books(http: httpx.Client, base: str, tokens: list[str]) -> tuple[list[float], int]:
    timings: list[float] = []
    books = 0
    for start_at in range(0, len(tokens), 500):
        body = [{"token_id": t} for t in tokens[start_at : start_at + 500]]
        started = time.perf_counter()
        response = http.post(f"{base}/clob/books", json=body)
        timings.append(time.perf_counter() - started)
        response.raise_for_status()
        books += len(response.json())
    return timings, books


async def ws_rate(base: str, tokens: list[str], secs: float) -> tuple[int, int]:
    """(events, frames) received over `secs` by connections of 200 tokens each."""
    url = base.replace("http://", "ws://") + "/ws/market"
    counts = [0, 0]

    async def one(chunk: list[str]) -> None:
        async with websockets.connect(url, max_size=2**26) as ws:
            subscribe = {"assets_ids": chunk, "type": "market", "custom_feature_enabled": True}
            await ws.send(json.dumps(subscribe))
            await ws.recv()  # initial dump
            deadline = time.monotonic() + secs
            while (left := deadline - time.monotonic()) > 0:
                try:
                    frame = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    break
                decoded = json.loads(frame)
                counts[0] += len(decoded) if isinstance(decoded, list) else 1
                counts[1] += 1

    chunks = [tokens[i : i + 200] for i in range(0, len(tokens), 200)]
    await asyncio.gather(*(one(chunk) for chunk in chunks))
    return counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=25_000)
    parser.add_argument("--quote-rate", type=float, default=2000.0)
    parser.add_argument("--trade-rate", type=float, default=100.0)
    parser.add_argument("--ws-tokens", type=int, default=10_000)
    parser.add_argument("--ws-secs", type=float, default=10.0)
    args = parser.parse_args()

    started = time.perf_counter()
    process, base = start(args.markets, args.quote_rate, args.trade_rate)
    print(f"markets {args.markets:,} ({2 * args.markets:,} tokens)")
    print(f"startup to ready        {time.perf_counter() - started:8.2f} s")
    print(f"RSS after start         {rss_mb(process.pid):8.1f} MB")
    try:
        with httpx.Client(timeout=60) as http:
            started = time.perf_counter()
            tokens, pages = walk_gamma(http, base)
            took = time.perf_counter() - started
            print(f"Gamma keyset walk       {took:8.2f} s, {len(pages)} pages, {summary(pages)}")
            started = time.perf_counter()
            timings, books = fetch_books(http, base, tokens)
            took = time.perf_counter() - started
            calls = f"{books:,} books in {len(timings)} calls"
            print(f"POST /books (cold)      {took:8.2f} s for {calls}, {summary(timings)}")
            print(f"RSS, every book built   {rss_mb(process.pid):8.1f} MB")
            time.sleep(10)  # let the /books window (500 per 10 s) empty
            timings, books = fetch_books(http, base, tokens)
            print(f"POST /books (warm)      {len(timings)} calls of 500 tokens, {summary(timings)}")
        subset = tokens[: args.ws_tokens]
        events, frames = asyncio.run(ws_rate(base, subset, args.ws_secs))
        print(
            f"WebSocket fan-out       {events / args.ws_secs:8.0f} events/s "
            f"({frames / args.ws_secs:.0f} frames/s) to {len(subset):,} tokens on "
            f"{(len(subset) + 199) // 200} connections, quote rate {args.quote_rate:g}/s"
        )
        print(f"RSS at the end          {rss_mb(process.pid):8.1f} MB")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
