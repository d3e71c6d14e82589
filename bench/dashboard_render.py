"""Server render time of each dashboard page against the embedded ClickHouse endpoint.

Starts `pmpipe serve` on a temporary data directory, migrates it, generates 1,000 markets
(2 outcome tokens each) and 1,000,000 trades over 48 h inside ClickHouse (INSERT ... SELECT
from numbers(), so the materialized rollups fill as in production; 10 % of the trades are
WebSocket copies), plus quotes every 5 min and 10-level books every 10 min per token; builds
the dashboard if needed (`pmpipe.dashboard.ensure_built`) and starts `next start` against it.
Then it requests every page sequentially (full HTML, streamed parts included) and prints
p50 / p95 / max per page. Nothing is asserted.

    .venv/bin/python bench/dashboard_render.py [--markets 1000] [--trades 1000000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import clickhouse_connect

from pmpipe.config import Config
from pmpipe.dashboard import DASHBOARD_DIR, dashboard_env, ensure_built, start_argv

REPO = Path(__file__).resolve().parent.parent
DB = "polymarket"

# the token ids of market m, outcome k: the same expression everywhere below
TOKEN = (
    "concat(toString(cityHash64('a', toUInt32({m}), toUInt8({k}))),"
    " toString(cityHash64('b', toUInt32({m}), toUInt8({k}))))"
)

MARKETS_SQL = f"""
INSERT INTO {DB}.markets (condition_id, market_id, question, slug, description, outcomes,
    outcome_prices, token_ids, event_title, category, tags, active, closed, archived,
    accepting_orders, enable_order_book, neg_risk, tick_size, min_order_size, volume,
    created_at, end_date, source_ts, received_ts)
SELECT
    concat('0x', lower(hex(SHA256(concat('market', toString(number)))))),
    toString(600000 + number),
    concat('Will ', ['Bitcoin', 'Ethereum', 'the Fed', 'NVIDIA', 'Real Madrid', 'OpenAI',
        'SpaceX', 'Gold', 'the ECB', 'Japan'][number % 10 + 1], ' ',
        ['reach a new high', 'cut rates', 'win the final', 'launch a model', 'list shares',
         'close higher', 'beat estimates', 'hold an election'][intDiv(number, 10) % 8 + 1],
        ' by ', toString(2027 + number % 3), ' (#', toString(number), ')?'),
    concat('bench-market-', toString(number)),
    'Resolves on official sources.',
    ['Yes', 'No'],
    [toDecimal64(0.5, 6), toDecimal64(0.5, 6)],
    [{TOKEN.format(m="number", k=0)}, {TOKEN.format(m="number", k=1)}],
    concat('Event ', toString(intDiv(number, 5))),
    ['Crypto', 'Sports', 'Politics', 'Economy'][number % 4 + 1],
    [['crypto', 'sports', 'politics', 'economics', 'tech'][number % 5 + 1],
     ['crypto', 'sports', 'politics', 'economics', 'tech'][(number + 2) % 5 + 1]],
    number % 50 != 0, number % 50 = 0, false, true, true, number % 7 = 0,
    toDecimal64(0.01, 6), toDecimal64(5, 6), toDecimal64(100000 + number * 37, 6),
    now64(3) - toIntervalHour(number % 2000), now64(3) + toIntervalDay(180),
    now64(3) - toIntervalMinute(5), now64(6) - toIntervalMinute(1)
FROM numbers({{markets:UInt32}})
"""

# price of market m, outcome 0, at time ts: a slow wave around a per-market level
PRICE = (
    "greatest(0.01, least(0.99, round(0.15 + (cityHash64('p', {m}) % 70) / 100"
    " + 0.08 * sin(toUnixTimestamp({ts}) / 18000 + {m}), 2)))"
)

TRADES_SQL = f"""
INSERT INTO {DB}.market_trades (trade_key, token_id, condition_id, transaction_hash, side,
    price, size, outcome, outcome_index, occurrence, source, source_ts, received_ts)
SELECT
    concat(tx, '|', token, '|', side, '|', toString(price), '|', toString(size), '|0'),
    token, condition, tx, side, price, size, if(k = 0, 'Yes', 'No'), k, 0,
    if(n % 10 = 0, 'ws', 'data_api'), ts, ts + toIntervalSecond(20)
FROM
(
    SELECT
        number AS n,
        toUInt32(floor(pow((cityHash64(n, 1) % 1000000) / 1000000, 2) * {{markets:UInt32}})) AS m,
        toUInt8(cityHash64(n, 2) % 2) AS k,
        {TOKEN.format(m="m", k="k")} AS token,
        concat('0x', lower(hex(SHA256(concat('market', toString(m)))))) AS condition,
        concat('0x', lower(hex(SHA256(concat('tx', toString(intDiv(n, 10))))))) AS tx,
        if(cityHash64(n, 3) % 2 = 0, 'BUY', 'SELL') AS side,
        toDateTime64(toUnixTimestamp(now()) - 172800
            + intDiv(n * 172790, {{trades:UInt32}}), 3, 'UTC') AS ts,
        toDecimal64(round(if(k = 0, {PRICE.format(m="m", ts="ts")},
            1 - {PRICE.format(m="m", ts="ts")}), 2), 6) AS price,
        toDecimal64(round(exp(2 + (cityHash64(n, 4) % 1000) / 200), 2), 6) AS size
    FROM numbers({{start:UInt64}}, {{count:UInt64}})
)
"""

PRICES_SQL = f"""
INSERT INTO {DB}.market_prices (token_id, condition_id, source, kind, best_bid, best_ask, mid,
    spread, last_trade_price, source_ts, received_ts)
SELECT
    {TOKEN.format(m="m", k="k")},
    concat('0x', lower(hex(SHA256(concat('market', toString(m)))))),
    'clob', 'poll',
    toDecimal64(p - 0.005, 6), toDecimal64(p + 0.005, 6), toDecimal64(p, 6),
    toDecimal64(if(m % 97 = 0 AND step = 575, 0.2, 0.01), 6), toDecimal64(p, 6),
    ts, ts + toIntervalMillisecond(150)
FROM
(
    SELECT
        intDiv(number, 2) % {{markets:UInt32}} AS m,
        number % 2 AS k,
        intDiv(number, 2 * {{markets:UInt32}}) AS step,
        toDateTime64(toUnixTimestamp(now()) - 172800 + step * 300, 3, 'UTC') AS ts,
        round(if(k = 0, {PRICE.format(m="m", ts="ts")},
            1 - {PRICE.format(m="m", ts="ts")}), 3) AS p
    FROM numbers({{markets:UInt32}} * 2 * 576)
)
"""

BOOKS_SQL = f"""
INSERT INTO {DB}.orderbook_snapshots (token_id, condition_id, source, bid_prices, bid_sizes,
    ask_prices, ask_sizes, hash, hash_ok, tick_size, min_order_size, neg_risk,
    last_trade_price, source_ts, received_ts)
SELECT
    {TOKEN.format(m="m", k="k")},
    concat('0x', lower(hex(SHA256(concat('market', toString(m)))))),
    'clob',
    arrayMap(i -> toDecimal64(greatest(0.01, p - 0.01 * (i + 1)), 6), range(10)),
    arrayMap(i -> toDecimal64(100 + cityHash64(m, k, step, i) % 5000, 6), range(10)),
    arrayMap(i -> toDecimal64(least(0.99, p + 0.01 * (i + 1)), 6), range(10)),
    arrayMap(i -> toDecimal64(100 + cityHash64(m, k, step, i, 1) % 5000, 6), range(10)),
    lower(hex(cityHash64(m, k, step))), true, toDecimal64(0.01, 6), toDecimal64(5, 6), false,
    toDecimal64(p, 6), ts, ts + toIntervalMillisecond(400)
FROM
(
    SELECT
        intDiv(number, 2) % {{markets:UInt32}} AS m,
        number % 2 AS k,
        intDiv(number, 2 * {{markets:UInt32}}) AS step,
        toDateTime64(toUnixTimestamp(now()) - 172800 + step * 600, 3, 'UTC') AS ts,
        round(if(k = 0, {PRICE.format(m="m", ts="ts")},
            1 - {PRICE.format(m="m", ts="ts")}), 2) AS p
    FROM numbers({{markets:UInt32}} * 2 * 288)
)
"""

EVENTS_SQL = f"""
INSERT INTO {DB}.market_events (event_type, category, token_ids, connection_id, gap_start,
    gap_end, detail, source, source_ts, received_ts)
SELECT
    ['connected', 'disconnected', 'gap', 'resubscribed', 'silent'][number % 5 + 1],
    'continuity',
    arrayMap(i -> {TOKEN.format(m="(number * 10 + i) % 1000", k="0")}, range(20)),
    concat('conn-', toString(intDiv(number, 5))),
    if(number % 5 = 2, now64(3) - toIntervalMinute(number * 20 + 4), NULL),
    if(number % 5 = 2, now64(3) - toIntervalMinute(number * 20), NULL),
    'bench', 'pipeline', now64(3) - toIntervalMinute(number * 20), now64(6)
FROM numbers(200)
"""

PAGES = {
    "overview": "/",
    "market (1h candles)": "/markets/{market}",
    "market (1m candles)": "/markets/{market}?interval=1m",
    "trending": "/trending",
    "trending (search, by change)": "/trending?q=bitcoin&sort=change",
    "signals": "/signals",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout_secs: float) -> None:
    deadline = time.monotonic() + timeout_secs
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {timeout_secs:.0f} s")
        time.sleep(0.3)


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def load(port: int, markets: int, trades: int) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, database=DB)
    try:
        started = time.perf_counter()
        client.command(MARKETS_SQL, parameters={"markets": markets})
        chunk = 250_000
        for start_row in range(0, trades, chunk):
            count = min(chunk, trades - start_row)
            params = {"markets": markets, "trades": trades, "start": start_row, "count": count}
            client.command(TRADES_SQL, parameters=params)
        client.command(PRICES_SQL, parameters={"markets": markets})
        client.command(BOOKS_SQL, parameters={"markets": markets})
        client.command(EVENTS_SQL)
        counts = client.query(
            f"SELECT (SELECT count() FROM {DB}.markets), (SELECT count() FROM {DB}.market_trades),"
            f" (SELECT count() FROM {DB}.market_prices),"
            f" (SELECT count() FROM {DB}.orderbook_snapshots)"
        ).result_rows[0]
        print(
            f"loaded {counts[0]:,} markets, {counts[1]:,} trades, {counts[2]:,} quotes, "
            f"{counts[3]:,} books in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    finally:
        client.close()


def top_market(port: int) -> str:
    """The market with the most USDC volume: its page has the most candles and trades."""
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, database=DB)
    try:
        return str(
            client.query(
                f"SELECT condition_id FROM {DB}.volume_daily_totals GROUP BY condition_id"
                " ORDER BY sum(notional) DESC LIMIT 1"
            ).result_rows[0][0]
        )
    finally:
        client.close()


def fetch_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"{url} answered {response.status}")
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--markets", type=int, default=1000)
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="use an embedded endpoint already running and loaded on this port (no load)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pm-dashboard-bench-") as tmp:
        tmp_dir = Path(tmp)
        ch_port, web_port = args.port or free_port(), free_port()
        config = Config(clickhouse_port=ch_port, dashboard_port=web_port)
        ch_env = {**os.environ, "CLICKHOUSE_PORT": str(ch_port), "PMPIPE_LOG_FORMAT": "text"}
        procs: list[subprocess.Popen[bytes]] = []
        try:
            if args.port:
                market = top_market(ch_port)
            else:
                serve = [sys.executable, "-m", "pmpipe", "serve", "--port", str(ch_port)]
                serve += ["--data-dir", str(tmp_dir)]
                procs.append(start(serve, ch_env, tmp_dir / "serve.log", REPO))
                wait_http(f"http://127.0.0.1:{ch_port}/ping", 60)
                migrate = [sys.executable, "-m", "pmpipe", "migrate"]
                subprocess.run(migrate, env=ch_env, cwd=REPO, check=True, capture_output=True)
                load(ch_port, args.markets, args.trades)
                market = top_market(ch_port)

            ensure_built(DASHBOARD_DIR)
            web = start_argv(web_port, DASHBOARD_DIR)
            procs.append(start(web, dashboard_env(config), tmp_dir / "next.log", DASHBOARD_DIR))
            base = f"http://127.0.0.1:{web_port}"
            wait_http(f"{base}/api/overview", 60)

            print(f"\n{'page':<30}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}   ({args.runs} runs)")
            for name, path in PAGES.items():
                url = base + path.format(market=market)
                for _ in range(3):
                    fetch_ms(url)
                times = [fetch_ms(url) for _ in range(args.runs)]
                p50 = statistics.median(times)
                p95 = percentile(times, 0.95)
                print(f"{name:<30}{p50:>10.0f}{p95:>10.0f}{max(times):>10.0f}", flush=True)
        finally:
            for proc in reversed(procs):
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
