"""Soak of the embedded stack: `pmpipe up --simulate` at full scale with broker log rolls.

    .venv/bin/python bench/soak_embedded.py                    # 46,500 markets, 30 minutes
    .venv/bin/python bench/soak_embedded.py --minutes 4 --markets 5000 --roll-bytes 100000000

Starts `pmpipe up --simulate --markets N --no-dashboard` (every feed, the sink; free ports for
the broker, registry and ClickHouse; the simulator on a free port)
with PMPIPE_EMBEDDED_BROKER_ROLL_BYTES = `--roll-bytes` (default: the product default, 1 GiB),
and for `--minutes`:

* every minute prints each child's RSS (the child's process and its descendants: broker,
  registry, clickhouse, simulator, sink, one per producer), the rows of every table, the load
  average and the log rolls so far (counted from the controller's `broker log rolled` lines);
* at the end takes a cutoff T (the simulator's clock), waits until the trades producer has run
  two full cycles started after T + the Data API lag (so every fill matched up to T has been
  fetched) and until the sink has landed them, then compares `market_trades` (source
  'data_api', the authoritative trades) with the simulator's ground truth
  (`<data-dir>/simulator/truth/trades.jsonl`) by `trade_key`: fills up to T that are missing
  (lost), keys stored more than once (doubled), keys the simulator never made (unknown).

The summary: RSS per child at the first sample, its maximum and at the end (bounded memory:
the broker's falls back at each roll), each roll (broker RSS before/after, seconds), rows per
table, child crashes (restarts that were not planned), and the trade comparison.

`--own-simulator` starts the simulator itself on a free port instead (same defaults, ground
truth in the run's directory) and `pmpipe up` without `--simulate`, pointed at it: for a machine
(the simulator outside the supervised stack). Its RSS is then listed as `simulator` all the same.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import clickhouse_connect
import httpx
import psutil
from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.producers_scale import Simulator
from pmpipe.config import Config
from tests.integration.stack import UpProcess

TABLES = (
    "markets",
    "market_prices",
    "market_trades",
    "orderbook_snapshots",
    "market_events",
    "ws_raw_frames",
)
CHILD_ORDER = (
    "broker",
    "registry",
    "clickhouse",
    "simulator",
    "sink",
    "produce-markets",
    "produce-prices",
    "produce-trades",
    "produce-books",
    "produce-ws",
)
SHORT = {name: name.removeprefix("produce-") for name in CHILD_ORDER}
STARTED = re.compile(r"pmpipe\.supervisor: started (?P<name>\S+) pid=(?P<pid>\d+)")
ROLLED = re.compile(
    r"broker log rolled .*rss_before=(?P<before>\d+) rss_after=(?P<after>\d+) secs=(?P<secs>[\d.]+)"
)
CRASHED = re.compile(r"pmpipe\.supervisor: restarting (?P<name>\S+) exit_code=")
TRADES_CYCLE = re.compile(r"feed=trades cycle=\d+ done in")
DATA_LAG_SECS = 4.0  # the simulator's default --data-lag-secs


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def children(up: UpProcess, extra: dict[str, int] | None = None) -> dict[str, int]:
    """Each supervised child's latest pid, from the supervisor's `started <name> pid=N` lines
    (plus `extra`: processes started next to the stack)."""
    pids: dict[str, int] = dict(extra or {})
    for line in up.lines[: up.mark()]:
        if match := STARTED.search(line):
            pids[match["name"]] = int(match["pid"])
    return pids


def tree_rss(pid: int) -> int:
    """RSS of a process and its descendants (0 when it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += int(proc.memory_info().rss)
        except psutil.Error:
            continue
    return total


def table_rows(ch: Client) -> dict[str, int]:
    rows: dict[str, int] = {}
    for table in TABLES:
        try:
            rows[table] = int(ch.query(f"SELECT count() FROM {table}").result_rows[0][0])
        except Exception:  # a busy or restarting endpoint: the next minute tries again
            rows[table] = -1
    return rows


def matching(up: UpProcess, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return [m for line in up.lines[: up.mark()] if (m := pattern.search(line))]


def sample(
    up: UpProcess, ch: Client, minute: float, header: bool, extra: dict[str, int]
) -> dict[str, int]:
    pids = children(up, extra)
    rss = {name: tree_rss(pid) for name, pid in pids.items()}
    rows = table_rows(ch)
    names = [n for n in CHILD_ORDER if n in rss] + sorted(set(rss) - set(CHILD_ORDER))
    if header:
        print(
            f"{'min':>5} {'rolls':>5} "
            + "".join(f"{SHORT.get(n, n)[:9]:>10}" for n in names)
            + "".join(f"{t.removeprefix('market_')[:12]:>13}" for t in TABLES)
            + "  (RSS MB per child, rows per table)"
        )
    rolls = len(matching(up, ROLLED))
    print(
        f"{minute:>5.1f} {rolls:>5} "
        + "".join(f"{rss[n] / 1e6:>10.0f}" for n in names)
        + "".join(f"{rows[t]:>13,}" for t in TABLES)
        + f"  {load()}",
        flush=True,
    )
    return rss


def truth_trades(path: Path) -> dict[str, int]:
    """trade_key -> match time (ms) of every fill the simulator made."""
    out: dict[str, int] = {}
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                fill = json.loads(line)
                out[fill["trade_key"]] = int(fill["match_ts_ms"])
    return out


def stored_trades(ch: Client) -> Counter[str]:
    rows = ch.query(
        "SELECT trade_key, count() FROM market_trades WHERE source = 'data_api' GROUP BY trade_key"
    ).result_rows
    return Counter({str(key): int(n) for key, n in rows})


def wait_trades_cycles(up: UpProcess, since: int, cycles: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(cycles):
        up.wait_for(
            lambda line: bool(TRADES_CYCLE.search(line)), deadline - time.monotonic(), since
        )
        since = next(i + 1 for i in range(since, up.mark()) if TRADES_CYCLE.search(up.lines[i]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--markets", type=int, default=46_500, help="2 tokens each")
    parser.add_argument(
        "--roll-bytes",
        type=int,
        default=Config().embedded_broker_roll_bytes,
        help="PMPIPE_EMBEDDED_BROKER_ROLL_BYTES",
    )
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument(
        "--own-simulator", action="store_true", help="run the simulator outside `pmpipe up`"
    )
    args = parser.parse_args()
    trades_interval = Config.load().trades_interval_secs

    print(
        f"pmpipe up {'+ own simulator' if args.own_simulator else '--simulate'} "
        f"--markets {args.markets} ({2 * args.markets:,} tokens), "
        f"roll at {args.roll_bytes / 1e6:,.0f} MB broker RSS, {args.minutes:g} min; {load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        data = Path(tmp) / "data"
        env = {"PMPIPE_EMBEDDED_BROKER_ROLL_BYTES": str(args.roll_bytes)}
        extra: dict[str, int] = {}
        own = Simulator(Path(tmp) / "simulator.log")
        if args.own_simulator:
            own.start(args.markets, 40.0, 5.0, fixed_tokens=False, data_dir=data / "simulator")
            sim = own.base
            extra["simulator"] = own.proc().pid
            up = UpProcess(data, "--no-dashboard", env=env | own.env())
        else:
            simulate = ("--simulate", "--markets", str(args.markets))
            up = UpProcess(data, *simulate, "--no-dashboard", env=env)
            sim = f"http://127.0.0.1:{up.simulator_port}"  # UpProcess picks a free one
        samples: list[dict[str, int]] = []
        try:
            up.start()
            started = time.monotonic()
            up.wait_for_text("pmpipe up: kafka=", timeout=300)
            print(f"stack ready in {time.monotonic() - started:.0f} s", flush=True)
            ch = clickhouse_connect.get_client(
                host="127.0.0.1", port=up.clickhouse_port, database="polymarket"
            )
            began = time.monotonic()
            end = began + 60 * args.minutes
            while (now := time.monotonic()) < end:
                time.sleep(min(60.0, end - now))
                minute = (time.monotonic() - began) / 60
                samples.append(sample(up, ch, minute, len(samples) % 20 == 0, extra))

            cutoff_ms = int(httpx.get(f"{sim}/_sim/status", timeout=30).json()["sim_time_ms"])
            print(f"cutoff at simulated {cutoff_ms}; waiting for two trades cycles", flush=True)
            time.sleep(DATA_LAG_SECS + 1)
            wait_trades_cycles(up, up.mark(), 2, timeout=3 * trades_interval + 300)
            httpx.post(f"{sim}/_sim/flush", timeout=30).raise_for_status()
            truth = truth_trades(data / "simulator" / "truth" / "trades.jsonl")
            due = {key for key, match_ms in truth.items() if match_ms <= cutoff_ms}
            deadline = time.monotonic() + args.drain_timeout
            unchanged, previous = 0, -1
            while True:
                stored = stored_trades(ch)
                missing = len(due - stored.keys())
                unchanged = unchanged + 1 if missing == previous else 0
                if not missing or unchanged >= 4 or time.monotonic() > deadline:
                    break  # all landed, or nothing more for a minute, or out of time
                previous = missing
                print(f"  {missing:,} fills up to the cutoff not stored yet", flush=True)
                time.sleep(15)
            final_rss = sample(up, ch, (time.monotonic() - began) / 60, False, extra)
            rows = table_rows(ch)
            rolls = matching(up, ROLLED)
            crashes = Counter(m["name"] for m in matching(up, CRASHED))
            aborted = sum("broker log roll aborted" in line for line in up.lines[: up.mark()])
        finally:
            try:
                up.stop(timeout=300)
            except subprocess.TimeoutExpired:
                print("pmpipe up did not stop within 300 s: its processes were killed")
            own.stop()

    tokens = 2 * args.markets
    print(f"\n== soak: {args.markets:,} markets ({tokens:,} tokens), {args.minutes:g} min ==")
    print(f"{'child':<16}{'RSS first MB':>13}{'max MB':>9}{'end MB':>9}")
    for name in [n for n in CHILD_ORDER if n in final_rss] + sorted(
        set(final_rss) - set(CHILD_ORDER)
    ):
        series = [s.get(name, 0) for s in samples] + [final_rss[name]]
        print(
            f"{name:<16}{series[0] / 1e6:>13.0f}{max(series) / 1e6:>9.0f}{series[-1] / 1e6:>9.0f}"
        )
    print(f"log rolls: {len(rolls)} (aborted {aborted}), threshold {args.roll_bytes / 1e6:,.0f} MB")
    for i, m in enumerate(rolls, start=1):
        print(
            f"  roll {i}: broker RSS {int(m['before']) / 1e6:,.0f} -> "
            f"{int(m['after']) / 1e6:,.0f} MB in {float(m['secs']):.1f} s"
        )
    print(
        "crashed children (unplanned restarts): "
        + (", ".join(f"{k}={v}" for k, v in crashes.items()) or "none")
    )
    print("rows: " + ", ".join(f"{t}={rows[t]:,}" for t in TABLES))
    stored_due = {k: stored[k] for k in due if k in stored}
    doubled = {k: n for k, n in stored.items() if n > 1}
    unknown = set(stored) - set(truth)
    print(
        f"trades (market_trades, source data_api) vs simulator truth up to the cutoff: "
        f"truth {len(due):,} fills, stored {len(stored_due):,}, "
        f"lost {len(due) - len(stored_due):,}, doubled {len(doubled):,} keys "
        f"(+{sum(doubled.values()) - len(doubled):,} rows), unknown {len(unknown):,}; "
        f"all stored rows {sum(stored.values()):,}, truth fills in all {len(truth):,}"
    )
    print(load())


if __name__ == "__main__":
    main()
