"""Producers at scale: poll cycles over 50,000 tokens, and WebSocket event -> queryable latency.

    .venv/bin/python bench/producers_scale.py                  # 25,000 markets = 50,000 tokens
    .venv/bin/python bench/producers_scale.py --markets 25000 --quote-rate 1800 --latency-secs 120

Starts the Polymarket simulator (`python -m producers.simulator`, a free port, no market churn so
the token set stays fixed) and the embedded stack against it (`pmpipe up --no-dashboard` with
POLYMARKET_*_URL pointing at the simulator: every feed in its own process, the sink, the broker,
the registry and `pmpipe serve`; free ports, a temporary data directory).

1. Poll cycles: waits for the first `--cycles` price and book cycles that cover the whole token
   set (the producers log one `feed=... cycle=N done in S s: tokens=n/N ...; requests=...
   rate_limit_wait_secs=... retries=... process_cpu_secs=...` line per cycle, and a `did not
   finish inside its interval` line when one overruns) and prints each cycle's duration
   against its interval and what it waited on: rate-limit waits, retries, and the CPU time its
   process used (close to the duration means CPU-bound, not limit-bound).
2. WebSocket latency: restarts the simulator on the same port with `--quote-rate` (same seed:
   the same markets and tokens), so its market channel pushes several thousand events/s to the
   relay's connections (every token is subscribed), waits until every connection is back, and
   then, for `--latency-secs`, polls ClickHouse every `--poll-secs` for the `price_change` rows
   (source 'ws') of `--sample-tokens` tokens. Each row's latency is the moment the poll that
   first returned it answered minus the event's own `timestamp` (the simulator's clock, the wall
   clock at speed 1): it covers the simulator's emission (its engine runs in 50 ms ticks), the
   relay, the broker, the sink's batching (PMPIPE_SINK_BATCH_MAX_SECS) and the insert, and is
   an upper bound by at most one poll period (the lower bound, from the previous poll, is
   printed too). The event rate printed is what actually landed: WS rows (market_prices and
   market_trades, source 'ws') with a timestamp inside the window, per second.

The pollers keep running during phase 2, so the latency is measured under the full pipeline's
load. The machine's load average and the CPU seconds the stack used are printed with the
figures: other jobs on a shared machine move them.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import clickhouse_connect
import httpx
import psutil
from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pmpipe.config import Config
from tests.integration.stack import UpProcess

REPO = Path(__file__).resolve().parents[1]

CYCLE_DONE = re.compile(
    r"feed=(?P<feed>\w+) cycle=(?P<cycle>\d+) done in (?P<secs>[\d.]+) s: "
    r"tokens=(?P<done>\d+)/(?P<total>\d+) .*?requests=(?P<requests>\d+) "
    r"rate_limit_wait_secs=(?P<rate_wait>[\d.]+) retries=(?P<retries>\d+) "
    r"retry_wait_secs=(?P<retry_wait>[\d.]+) failed_requests=(?P<failed>\d+) "
    r"process_cpu_secs=(?P<cpu>[\d.]+)"
)
CYCLE_OVERRUN = re.compile(r"feed=(?P<feed>\w+) cycle=(?P<cycle>\d+) did not finish inside")


# --- the simulator, in its own process ---------------------------------------------------------
class Simulator:
    """`python -m producers.simulator` on `port` (0 = a free one); its log goes to a file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self,
        markets: int,
        quote_rate: float,
        trade_rate: float,
        *,
        fixed_tokens: bool = True,
        data_dir: Path | None = None,
    ) -> None:
        """Start (again, on the same port once it has one). `fixed_tokens`: no new or resolved
        markets; `data_dir`: where the ground truth goes."""
        command = [sys.executable, "-m", "producers.simulator", "--port", str(self.port)]
        command += ["--markets", str(markets), "--seed", "1"]
        command += ["--quote-rate", str(quote_rate), "--trade-rate", str(trade_rate)]
        if fixed_tokens:
            command += ["--new-market-every-secs", "0", "--resolve-market-every-secs", "0"]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        env = {**os.environ, "PMPIPE_LOG_FORMAT": "text", "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        log = self.log_path.open("a")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            log.write(line)
            if match := re.search(r"simulator ready gamma=http://127\.0\.0\.1:(\d+)/", line):
                self.port = int(match.group(1))
                self.process = process
                threading.Thread(target=_drain, args=(process.stderr, log), daemon=True).start()
                return
            if not line and process.poll() is not None:
                break
        process.kill()
        raise SystemExit(f"the simulator did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.base}/_sim/status", timeout=120).json()
        return answer

    def proc(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def env(self) -> dict[str, str]:
        return {
            "POLYMARKET_GAMMA_URL": f"{self.base}/gamma",
            "POLYMARKET_CLOB_URL": f"{self.base}/clob",
            "POLYMARKET_DATA_URL": f"{self.base}/data",
            "POLYMARKET_WS_URL": f"ws://127.0.0.1:{self.port}/ws/market",
        }


def _drain(stream: IO[str], sink: IO[str]) -> None:
    for line in stream:
        sink.write(line)
    sink.close()


# --- measuring helpers -------------------------------------------------------------------------
def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (2 cores shared with other jobs)"


class CpuMeter:
    """CPU seconds used by a set of processes and by the whole machine since `start()`."""

    def __init__(self) -> None:
        self._procs: dict[int, float] = {}
        self._machine = 0.0
        self._wall = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0))

    def start(self, procs: list[psutil.Process]) -> None:
        self._procs = {}
        for proc in procs:
            try:
                self._procs[proc.pid] = self._cpu(proc)
            except psutil.Error:
                continue
        self._machine = self._busy()
        self._wall = time.monotonic()

    def report(self, procs: list[psutil.Process]) -> str:
        used = 0.0
        each: dict[str, float] = {}
        for proc in procs:
            try:
                spent = self._cpu(proc) - self._procs.get(proc.pid, 0.0)
                name = self._name(proc)
            except psutil.Error:
                continue
            used += spent
            each[name] = each.get(name, 0.0) + spent
        wall = time.monotonic() - self._wall
        machine = self._busy() - self._machine
        top = sorted(each.items(), key=lambda kv: -kv[1])
        per = ", ".join(f"{name} {spent / wall:.2f}" for name, spent in top if spent >= 0.5)
        return (
            f"CPU over {wall:.0f} s: the stack {used:.0f} CPU-s ({used / wall:.2f} cores), "
            f"the whole machine {machine:.0f} CPU-s ({machine / wall:.2f} of "
            f"{psutil.cpu_count()} cores); cores per process: {per}"
        )

    @staticmethod
    def _name(proc: psutil.Process) -> str:
        """`produce ws`, `sink`, `serve`, `simulator`, `tansu`... from the command line."""
        argv = proc.cmdline()
        if "-m" in argv:
            module, rest = argv[argv.index("-m") + 1], argv[argv.index("-m") + 2 :]
            if module == "pmpipe" and rest:
                return " ".join(rest[:2]) if rest[0] == "produce" else rest[0]
            return module.rsplit(".", 1)[-1]
        return Path(argv[0]).name if argv else proc.name()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- phase 1: poll cycles ----------------------------------------------------------------------
@dataclass(frozen=True)
class Cycle:
    feed: str
    cycle: int
    secs: float
    tokens: int
    requests: int
    rate_wait: float
    retries: int
    retry_wait: float
    failed: int
    cpu: float
    overran: bool


def parse_cycle(line: str) -> Cycle | None:
    match = CYCLE_DONE.search(line)
    if match is None:
        return None
    g = match.groupdict()
    return Cycle(
        feed=g["feed"],
        cycle=int(g["cycle"]),
        secs=float(g["secs"]),
        tokens=int(g["total"]) if g["done"] == g["total"] else -int(g["done"]),
        requests=int(g["requests"]),
        rate_wait=float(g["rate_wait"]),
        retries=int(g["retries"]),
        retry_wait=float(g["retry_wait"]),
        failed=int(g["failed"]),
        cpu=float(g["cpu"]),
        overran=False,
    )


def wait_cycles(up: UpProcess, tokens: int, count: int, timeout: float) -> list[Cycle]:
    """The first `count` prices and books cycles that covered all `tokens`."""
    wanted = {"prices": count, "books": count}
    found: list[Cycle] = []
    overruns: set[tuple[str, int]] = set()
    seen = 0
    deadline = time.monotonic() + timeout
    while any(wanted.values()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for full cycles; got {found}")
        up.wait_for(lambda _line: True, timeout=deadline - time.monotonic(), since=seen)
        end = up.mark()
        lines = up.lines[seen:end]
        seen = end
        for line in lines:
            if over := CYCLE_OVERRUN.search(line):
                overruns.add((over["feed"], int(over["cycle"])))
                print(f"  overrun: {line.split('producers.state: ', 1)[-1]}", flush=True)
            cycle = parse_cycle(line)
            if cycle is None or cycle.feed not in wanted or wanted[cycle.feed] == 0:
                continue
            if cycle.tokens != tokens:
                print(f"  ({cycle.feed} cycle {cycle.cycle}: {abs(cycle.tokens)} tokens, not all)")
                continue
            cycle = Cycle(**{**cycle.__dict__, "overran": (cycle.feed, cycle.cycle) in overruns})
            found.append(cycle)
            wanted[cycle.feed] -= 1
            print(f"  {cycle.feed} cycle {cycle.cycle} done in {cycle.secs:.1f} s", flush=True)
    return found


def print_cycles(cycles: list[Cycle], intervals: dict[str, float]) -> None:
    head = (
        f"{'feed':<7}{'cycle':>6}{'tokens':>8}{'secs':>8}{'interval':>9}{'inside':>7}"
        f"{'requests':>9}{'rate-wait s':>12}{'retries':>8}{'retry-wait s':>13}{'failed':>7}"
        f"{'cpu s':>7}"
    )
    print(head)
    for c in cycles:
        interval = intervals[c.feed]
        inside = "yes" if c.secs <= interval and not c.overran else "NO"
        print(
            f"{c.feed:<7}{c.cycle:>6}{c.tokens:>8}{c.secs:>8.1f}{interval:>9.0f}{inside:>7}"
            f"{c.requests:>9}{c.rate_wait:>12.1f}{c.retries:>8}{c.retry_wait:>13.1f}"
            f"{c.failed:>7}{c.cpu:>7.1f}"
        )


# --- phase 2: WebSocket event -> queryable latency ---------------------------------------------
def sample_tokens(ch: Client, count: int) -> list[str]:
    rows = ch.query(
        f"SELECT DISTINCT arrayJoin(token_ids) AS t FROM markets ORDER BY t LIMIT {int(count)}"
    ).result_rows
    tokens = [str(r[0]) for r in rows]
    if not all(t.isdigit() for t in tokens):  # they go into the SQL text below
        raise SystemExit("unexpected token id format")
    return tokens


def ws_rows(ch: Client, start_ms: int, end_ms: int) -> int:
    window = (
        f"source = 'ws' AND source_ts >= fromUnixTimestamp64Milli({start_ms}) "
        f"AND source_ts < fromUnixTimestamp64Milli({end_ms})"
    )
    prices = ch.query(f"SELECT count() FROM market_prices WHERE {window}").result_rows[0][0]
    trades = ch.query(f"SELECT count() FROM market_trades WHERE {window}").result_rows[0][0]
    return int(prices) + int(trades)


def measure_latency(
    ch: Client, tokens: list[str], secs: float, poll_secs: float, grace_secs: float
) -> tuple[list[float], list[float], int, int, int]:
    """(upper-bound latencies ms, lower-bound latencies ms, polls, start_ms, end_ms); events of
    the window that became visible only after `grace_secs` past its end are not counted."""
    in_list = ",".join(f"'{t}'" for t in tokens)
    start_ms = int(time.time() * 1000)
    end_ms = start_ms + int(secs * 1000)
    sql = (
        "SELECT token_id, order_hash, toUnixTimestamp64Milli(source_ts) FROM market_prices "
        f"WHERE source = 'ws' AND kind = 'price_change' AND token_id IN ({in_list}) "
        f"AND source_ts >= fromUnixTimestamp64Milli({start_ms}) "
        f"AND source_ts < fromUnixTimestamp64Milli({end_ms})"
    )
    seen: dict[tuple[str, str, int], tuple[float, float]] = {}
    polls = 0
    previous_sent = time.time() * 1000
    stop_at = end_ms / 1000 + grace_secs
    next_report = time.monotonic() + 30
    while time.time() < stop_at:
        sent = time.time() * 1000
        rows = ch.query(sql).result_rows
        answered = time.time() * 1000
        polls += 1
        for token, order_hash, ts in rows:
            key = (str(token), str(order_hash), int(ts))
            if key not in seen:
                seen[key] = (answered - key[2], max(0.0, previous_sent - key[2]))
        previous_sent = sent
        if time.monotonic() >= next_report:
            next_report += 30
            print(f"  {len(seen):,} sampled events visible so far, {load()}", flush=True)
        time.sleep(max(0.0, poll_secs - (time.time() * 1000 - sent) / 1000))
    upper = [u for u, _ in seen.values()]
    lower = [low for _, low in seen.values()]
    return upper, lower, polls, start_ms, end_ms


def wait_ws_connections(sim: Simulator, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    connections = 0
    while time.monotonic() < deadline:
        try:
            connections = int(
                httpx.get(f"{sim.base}/_sim/status", timeout=10).json()["ws_connections"]
            )
        except httpx.HTTPError:
            connections = 0
        if connections >= expected:
            return connections
        time.sleep(1)
    return connections


# --- main --------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=25_000, help="2 tokens each")
    parser.add_argument("--cycles", type=int, default=1, help="full cycles per feed to print")
    parser.add_argument("--quote-rate", type=float, default=1800.0, help="phase 2 level changes/s")
    parser.add_argument("--trade-rate", type=float, default=5.0)
    parser.add_argument("--latency-secs", type=float, default=120.0)
    parser.add_argument("--warmup-secs", type=float, default=20.0)
    parser.add_argument("--poll-secs", type=float, default=0.2)
    parser.add_argument("--grace-secs", type=float, default=30.0)
    parser.add_argument("--sample-tokens", type=int, default=1000)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--feeds",
        default="markets,prices,trades,books,ws",
        help="producer feeds the stack runs (e.g. markets,ws: the WebSocket path without the "
        "pollers' load; needs --skip-cycles)",
    )
    parser.add_argument(
        "--skip-cycles", action="store_true", help="phase 2 only (the quote rate from the start)"
    )
    args = parser.parse_args()
    feeds = [f.strip() for f in args.feeds.split(",") if f.strip()]
    if not args.skip_cycles and not {"prices", "books"} <= set(feeds):
        parser.error(
            "phase 1 measures the price and book cycles: add them to --feeds or pass --skip-cycles"
        )

    config = Config.load()
    intervals = {"prices": config.prices_interval_secs, "books": config.books_interval_secs}
    tokens = 2 * args.markets
    print(
        f"markets {args.markets:,} ({tokens:,} tokens), feeds {','.join(feeds)}; {load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-producers-") as tmp:
        sim = Simulator(Path(tmp) / "simulator.log")
        started = time.monotonic()
        first_rate = args.quote_rate if args.skip_cycles else 40.0
        sim.start(args.markets, quote_rate=first_rate, trade_rate=args.trade_rate)
        print(f"simulator ready in {time.monotonic() - started:.1f} s on {sim.base}", flush=True)
        up = UpProcess(
            Path(tmp) / "data", "--no-dashboard", "--feeds", ",".join(feeds), env=sim.env()
        )
        try:
            up.start()
            up.wait_for_text("pmpipe up: kafka=", timeout=300)
            print(f"stack ready in {time.monotonic() - started:.1f} s", flush=True)
            if not args.skip_cycles:
                phase_cycles(up, sim, tokens, args.cycles, intervals)
            if not args.skip_latency:
                phase_latency(up, sim, args, restart=not args.skip_cycles)
        finally:
            sim.stop()
            try:
                up.stop(timeout=300)
            except subprocess.TimeoutExpired:
                print("pmpipe up did not stop within 300 s: its processes were killed")


def phase_cycles(
    up: UpProcess, sim: Simulator, tokens: int, count: int, intervals: dict[str, float]
) -> None:
    meter = CpuMeter()
    meter.start([*up.descendants(), sim.proc()])
    print("phase 1: poll cycles over every token (simulator quote rate 40/s)", flush=True)
    cycles = wait_cycles(up, tokens, count, timeout=1200)
    print(f"\n== poll cycles, {tokens:,} tokens ==")
    print_cycles(cycles, intervals)
    print(f"{load()}; {meter.report([*up.descendants(), sim.proc()])}\n", flush=True)


def phase_latency(up: UpProcess, sim: Simulator, args: argparse.Namespace, restart: bool) -> None:
    shards = -(-2 * args.markets // 200)  # the relay's connections (PMPIPE_WS_SHARD_SIZE 200)
    if restart:
        print(f"phase 2: simulator restarted with --quote-rate {args.quote_rate:g}", flush=True)
        sim.stop()
        sim.start(args.markets, quote_rate=args.quote_rate, trade_rate=args.trade_rate)
    else:
        print(f"phase 2: simulator quote rate {args.quote_rate:g} since the start", flush=True)
    connected = wait_ws_connections(sim, shards, timeout=300)
    print(f"  {connected}/{shards} relay connections open", flush=True)
    time.sleep(args.warmup_secs)
    ch = clickhouse_connect.get_client(
        host="127.0.0.1", port=up.clickhouse_port, database="polymarket"
    )
    sampled = sample_tokens(ch, args.sample_tokens)
    status0 = sim.status()
    procs = [*up.descendants(), sim.proc()]
    meter = CpuMeter()
    meter.start(procs)
    upper, lower, polls, start_ms, end_ms = measure_latency(
        ch, sampled, args.latency_secs, args.poll_secs, args.grace_secs
    )
    cpu = meter.report(procs)
    status1 = sim.status()
    landed = ws_rows(ch, start_ms, end_ms)

    window = (end_ms - start_ms) / 1000
    sim_secs = (status1["sim_time_ms"] - status0["sim_time_ms"]) / 1000
    reconnects = status1["ws_connections_total"] - status0["ws_connections_total"]
    print(f"\n== WebSocket event -> row queryable in ClickHouse, {window:.0f} s window ==")
    print(
        f"simulator: {(status1['level_changes'] - status0['level_changes']) / sim_secs:,.0f} "
        f"level changes/s, {(status1['ws_frames'] - status0['ws_frames']) / sim_secs:,.0f} "
        f"frames/s to {status1['ws_connections']} of {shards} connections "
        f"({reconnects} new connections meanwhile; quote rate {args.quote_rate:g})"
    )
    print(
        f"landed: {landed / window:,.0f} WS events/s (rows in market_prices + market_trades, "
        f"source 'ws', timestamped inside the window)"
    )
    if not upper:
        print("no sampled event became visible")
        return
    print(
        f"sampled {len(upper):,} price_change events of {len(sampled)} tokens ({polls} polls, "
        f"every {args.poll_secs:g} s); {sum(u > 2000 for u in upper) / len(upper):.1%} above "
        f"2 s (rows visible only later than {args.grace_secs:g} s after the window are not "
        f"counted)"
    )
    print(
        f"latency (upper bound: answer of the first poll that saw the row): "
        f"p50 {statistics.median(upper):,.0f} ms  p99 {pct(upper, 0.99):,.0f} ms  "
        f"max {max(upper):,.0f} ms"
    )
    print(
        f"latency (lower bound: send time of the poll before it): "
        f"p50 {statistics.median(lower):,.0f} ms  p99 {pct(lower, 0.99):,.0f} ms"
    )
    print(f"{load()}; {cpu}", flush=True)


if __name__ == "__main__":
    main()
