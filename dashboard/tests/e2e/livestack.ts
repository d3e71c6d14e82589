/**
 * A live stack for the browser tests: `python -m pmpipe up --simulate --no-dashboard` (the
 * Polymarket simulator, Tansu, the registry, chdb behind `pmpipe serve`, the pollers and the
 * sink, supervised) on free ports (the simulator's from PMPIPE_SIMULATOR_PORT) in a temporary
 * data directory, with short poll intervals, and the built dashboard (`next start`) against
 * its ClickHouse.
 *
 * The WebSocket feed is left out: it also writes `market_prices`, so without it the prices
 * feed is fed by the prices poller alone and pausing that poller is what turns the feed stale.
 *
 * Producers are paused and resumed with the embedded stack's own protocol (pmpipe/pausing.py):
 * SIGUSR1 flushes, buffers, logs "producer paused delivered={topic: records}" and writes
 * `<data>/run/<child>.paused.json`; SIGUSR2 resumes and removes the file.
 */
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ARTIFACTS, freePort, pmQueryWith, PYTHON, REPO_DIR, start, startNext, stopProcess, waitFor, type Dashboard, type Stack } from "./stack";

/** poll intervals of the live producers (and what the dashboard expects of them) */
export const LIVE_INTERVAL_SECS = 2;
/** markets: one walk at start, none during the run, so the markets table does not change */
export const LIVE_MARKETS_INTERVAL_SECS = 300;
/** a polled feed is stale after 2 x 2 s + 20 s = 24 s without a new row: on 2 shared cores
 * under load, a poll cycle plus the sink's insert can take well over 10 s */
export const LIVE_STALE_GRACE_SECS = 20;
export const LIVE_MARKETS = 30;

export const PRODUCERS = ["produce-markets", "produce-prices", "produce-trades", "produce-books"] as const;
export type Producer = (typeof PRODUCERS)[number];

/** topic each producer writes (alone: no WebSocket feed) -> the table the sink stores it in */
const TOPIC_TABLES: Record<string, string> = {
  "polymarket.prices": "market_prices",
  "polymarket.trades": "market_trades",
  "polymarket.books": "orderbook_snapshots",
};

export interface StopReport {
  /** exit code of `pmpipe up` (null: it had to be killed) */
  code: number | null;
  /** processes of the stack still alive after the stop, as "name pid" */
  leftovers: string[];
  ms: number;
  /** ms per step: next, up (SIGINT to exit), scan (for leftovers), client, cleanup (the data directory removed) */
  phases: Record<string, number>;
}

export interface LiveStack {
  chPort: number;
  ch: ClickHouseClient;
  dashboard: Dashboard;
  pmQuery: Stack["pmQuery"];
  /** pid of a supervised child, as `pmpipe up` last logged it ("started NAME pid=N") */
  pid(child: string): number;
  pause(producer: Producer): Promise<Record<string, number>>;
  resume(producer: Producer): Promise<void>;
  /** pauses every producer and waits until the sink stored every record they delivered */
  freeze(): Promise<Record<string, number>>;
  /** SIGINT to `pmpipe up`, waits for its exit; idempotent */
  stop(): Promise<StopReport>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** pids of processes whose command line mentions `fragment` (e.g. the stack's data directory) */
function pidsMentioning(fragment: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(fragment)) pids.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

async function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((ok) => {
    const timer = setTimeout(() => ok(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      ok(true);
    });
  });
}

async function count(ch: ClickHouseClient, table: string): Promise<number> {
  const result = await ch.query({ query: `SELECT count() AS n FROM ${table}`, format: "JSONEachRow" });
  const rows = await result.json<{ n: string }>();
  return Number(rows[0]?.n ?? 0);
}

function readPaused(path: string): Record<string, number> | null {
  try {
    const data = JSON.parse(readFileSync(path, "utf8")) as { next_offsets?: Record<string, number> };
    return data.next_offsets ?? null;
  } catch {
    return null;
  }
}

export async function startLiveStack(log: (line: string) => void = () => undefined): Promise<LiveStack> {
  const tmp = mkdtempSync(join(tmpdir(), "pm-dashboard-live-"));
  const dataDir = join(tmp, "data");
  const runDir = join(dataDir, "run");
  const logs = join(ARTIFACTS, "logs");
  mkdirSync(logs, { recursive: true });
  const upLog = join(logs, "live-up.log");
  rmSync(upLog, { force: true });
  const [simPort, kafkaPort, registryPort, chPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${kafkaPort}`,
    SCHEMA_REGISTRY_URL: `http://127.0.0.1:${registryPort}`,
    CLICKHOUSE_HOST: "127.0.0.1",
    CLICKHOUSE_PORT: String(chPort),
    CLICKHOUSE_DATABASE: "polymarket",
    PMPIPE_SIMULATOR_PORT: String(simPort),
    PMPIPE_PRICES_INTERVAL_SECS: String(LIVE_INTERVAL_SECS),
    PMPIPE_TRADES_INTERVAL_SECS: String(LIVE_INTERVAL_SECS),
    PMPIPE_BOOKS_INTERVAL_SECS: String(LIVE_INTERVAL_SECS),
    PMPIPE_MARKETS_INTERVAL_SECS: String(LIVE_MARKETS_INTERVAL_SECS),
    PMPIPE_LOG_FORMAT: "text",
  };
  delete env.PMPIPE_METRICS_PORT;

  let up: ChildProcess | null = null;
  const web: ChildProcess[] = [];
  let ch: ClickHouseClient | null = null;
  let report: Promise<StopReport> | null = null;

  const loggedPids = (): [string, number][] => {
    const text = existsSync(upLog) ? readFileSync(upLog, "utf8") : "";
    return Array.from(text.matchAll(/started (\S+) pid=(\d+)/g), (m) => [m[1] as string, Number(m[2])]);
  };
  const pid = (child: string): number => {
    const found = loggedPids().filter(([name]) => name === child);
    const last = found[found.length - 1];
    if (last === undefined) throw new Error(`pmpipe up logged no start of ${child}`);
    return last[1];
  };

  const stopAll = async (): Promise<StopReport> => {
    const started = Date.now();
    const phases: Record<string, number> = {};
    const timed = async <T>(name: string, work: Promise<T>): Promise<T> => {
      const t = Date.now();
      const result = await work;
      phases[name] = Date.now() - t;
      return result;
    };
    const webStopped = timed("next", Promise.all(web.map((child) => stopProcess(child))));
    let code: number | null = null;
    const upStarted = Date.now();
    if (up?.pid !== undefined) {
      if (up.exitCode === null && up.signalCode === null) process.kill(up.pid, "SIGINT");
      if (await exited(up, 120_000)) {
        code = up.exitCode;
      } else {
        log(`# pmpipe up did not exit within 120 s of SIGINT: killing it and its children`);
        for (const [, p] of loggedPids()) {
          try {
            process.kill(-p, "SIGKILL");
          } catch {
            /* not a group leader, or gone */
          }
          try {
            process.kill(p, "SIGKILL");
          } catch {
            /* gone */
          }
        }
        process.kill(up.pid, "SIGKILL");
        await exited(up, 10_000);
      }
    }
    phases.up = Date.now() - upStarted;
    await webStopped;
    const scanStarted = Date.now();
    const leftovers = loggedPids()
      .filter(([, p]) => alive(p))
      .map(([name, p]) => `${name} ${p}`);
    for (const p of pidsMentioning(dataDir)) {
      leftovers.push(`process ${p} of ${dataDir}`);
      try {
        process.kill(p, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    phases.scan = Date.now() - scanStarted;
    await timed("client", ch?.close() ?? Promise.resolve());
    const cleanupStarted = Date.now();
    rmSync(tmp, { recursive: true, force: true });
    phases.cleanup = Date.now() - cleanupStarted;
    return { code, leftovers, ms: Date.now() - started, phases };
  };
  // the test process exiting without the after-hook (killed runner, crash): stop the stack anyway
  const onExit = (): void => {
    for (const child of [up, ...web]) {
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child === up ? child.pid : -child.pid, child === up ? "SIGINT" : "SIGTERM");
        } catch {
          /* gone */
        }
      }
    }
  };
  process.once("exit", onExit);
  const stop = (): Promise<StopReport> => {
    process.removeListener("exit", onExit);
    report ??= stopAll();
    return report;
  };

  try {
    up = start(PYTHON, ["-m", "pmpipe", "up", "--simulate", "--markets", String(LIVE_MARKETS), "--no-dashboard", "--feeds", "markets,prices,trades,books", "--data-dir", dataDir], env, upLog, REPO_DIR);
    const upProcess = up;
    const running = async (): Promise<void> => {
      if (upProcess.exitCode !== null) throw new Error(`pmpipe up exited with ${upProcess.exitCode}; see ${upLog}`);
    };
    await waitFor("pmpipe up", async () => {
      await running();
      return readFileSync(upLog, "utf8").includes("pmpipe up: kafka=");
    }, 120_000);
    await waitFor("the simulator", async () => {
      await running();
      return / ready simulator /.test(readFileSync(upLog, "utf8"));
    }, 60_000);
    if (!readFileSync(upLog, "utf8").includes(`ready simulator http://127.0.0.1:${simPort}`)) {
      log(`# warning: pmpipe up did not take PMPIPE_SIMULATOR_PORT=${simPort}; its simulator is on its default port (see ${upLog})`);
    }
    const client = createClient({ url: `http://127.0.0.1:${chPort}`, database: "polymarket" });
    ch = client;
    // the sink has landed rows of every polled feed (trades: enough for candles and rankings)
    await waitFor("rows of every feed in ClickHouse", async () => {
      await running();
      const [markets, prices, trades, books] = await Promise.all(["markets", "market_prices", "market_trades", "orderbook_snapshots"].map((t) => count(client, t)));
      return (markets ?? 0) >= LIVE_MARKETS && (prices ?? 0) > 0 && (trades ?? 0) >= 100 && (books ?? 0) > 0;
    }, 120_000);

    const dashboard = await startNext(
      chPort,
      {
        PMPIPE_PRICES_INTERVAL_SECS: String(LIVE_INTERVAL_SECS),
        PMPIPE_TRADES_INTERVAL_SECS: String(LIVE_INTERVAL_SECS),
        PMPIPE_BOOKS_INTERVAL_SECS: String(LIVE_INTERVAL_SECS),
        PMPIPE_MARKETS_INTERVAL_SECS: String(LIVE_MARKETS_INTERVAL_SECS),
        DASHBOARD_STALE_GRACE_SECS: String(LIVE_STALE_GRACE_SECS),
      },
      "next-live",
      "/api/overview",
      web,
    );

    const statePath = (producer: Producer): string => join(runDir, `${producer}.paused.json`);
    /** what a producer logged at each pause: records delivered per topic since it started */
    const pauseReports = (producer: Producer): Record<string, number>[] => {
      const line = new RegExp(`^${producer}\\s+\\|.*producer paused delivered=\\{(.*)\\}`, "gm");
      return Array.from(readFileSync(upLog, "utf8").matchAll(line), (m) => Object.fromEntries(Array.from((m[1] ?? "").matchAll(/'([^']+)': (\d+)/g), (d) => [d[1] as string, Number(d[2])])));
    };
    const pause = async (producer: Producer): Promise<Record<string, number>> => {
      const before = pauseReports(producer).length;
      rmSync(statePath(producer), { force: true });
      process.kill(pid(producer), "SIGUSR1");
      await waitFor(`${producer} paused`, async () => readPaused(statePath(producer)) !== null && pauseReports(producer).length > before, 60_000);
      return pauseReports(producer)[before] ?? {};
    };
    const resume = async (producer: Producer): Promise<void> => {
      process.kill(pid(producer), "SIGUSR2");
      await waitFor(`${producer} resumed`, async () => !existsSync(statePath(producer)), 60_000);
    };
    const freeze = async (): Promise<Record<string, number>> => {
      const delivered: Record<string, number> = {};
      for (const producer of PRODUCERS) {
        for (const [topic, records] of Object.entries(await pause(producer))) delivered[topic] = (delivered[topic] ?? 0) + records;
      }
      // one producer per topic: each record it delivered is one row of the topic's table once
      // the sink stored it (Tansu's offsets are not contiguous, so they cannot be counted)
      await waitFor("the sink stored what the paused producers delivered", async () => {
        for (const [topic, table] of Object.entries(TOPIC_TABLES)) {
          if ((await count(client, table)) < (delivered[topic] ?? 0)) return false;
        }
        return true;
      }, 90_000);
      return delivered;
    };

    return { chPort, ch: client, dashboard, pmQuery: pmQueryWith(env), pid, pause, resume, freeze, stop };
  } catch (error) {
    const stopped = await stop();
    log(`# live stack failed to start; stopped it: ${JSON.stringify(stopped)}`);
    throw error;
  }
}
