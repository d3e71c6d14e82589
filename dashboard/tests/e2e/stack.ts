/**
 * The real stack for the browser tests, started once per run: the embedded ClickHouse
 * (`python -m pmpipe serve`, chdb behind the HTTP interface) in a temporary data directory,
 * migrated with `python -m pmpipe migrate`, filled with the fixture; the built dashboard
 * (`next start`) against it; Debian's chromium through playwright-core.
 */
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { chromium, type BrowserContext } from "playwright-core";

import { unixParam } from "../../lib/windows";
import { buildFixture, insertFixture, type Fixture } from "./fixture";

const run = promisify(execFile);

export const DASHBOARD_DIR = resolve(__dirname, "../..");
export const REPO_DIR = resolve(DASHBOARD_DIR, "..");
export const PYTHON = process.env.PMPIPE_PYTHON ?? join(REPO_DIR, ".venv/bin/python");
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const ARTIFACTS = process.env.E2E_ARTIFACTS_DIR ?? join(DASHBOARD_DIR, "test-artifacts");
/** the poll interval the tests run the dashboard with (default in production: 10 s) */
export const POLL_MS = 1500;
/** prices go stale after 2 x 2 s + 4 s = 8 s in the tests, so a stopped feed shows quickly */
export const PRICES_INTERVAL_SECS = 2;
export const STALE_GRACE_SECS = 4;

export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"];

export interface Dashboard {
  baseUrl: string;
  stop(): Promise<void>;
}

export interface Stack {
  baseUrl: string;
  /** another `next start` against the same ClickHouse with other settings (e.g. database) */
  startDashboard(env: Record<string, string>, name: string, readyPath?: string): Promise<Dashboard>;
  /** `python -m pmpipe migrate --database NAME` */
  migrate(database: string): Promise<void>;
  chPort: number;
  ch: ClickHouseClient;
  fixture: Fixture;
  browser: BrowserContext;
  /** a query through `python -m pmpipe query … --format TSV`: rows of tab-separated cells */
  pmQuery(sql: string, params?: Record<string, string | number | boolean | Date>): Promise<string[][]>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => ok(port));
    });
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}

export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, cwd: string): ChildProcess {
  const out = openSync(logFile, "a");
  return spawn(cmd, args, { cwd, env, stdio: ["ignore", out, out], detached: true });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

function paramText(value: string | number | boolean | Date): string {
  return value instanceof Date ? unixParam(value) : String(value);
}

/** How the stack's database gets its rows; the default inserts `buildFixture(now)`. */
export type Fill = (ch: ClickHouseClient, env: NodeJS.ProcessEnv) => Promise<Fixture>;

export const fixtureFill: Fill = async (ch) => {
  const fixture = buildFixture(Date.now());
  await insertFixture(ch, fixture);
  return fixture;
};

/** The built dashboard (`next start`) on a free port against the ClickHouse on `chPort`;
 * `env` overrides the test settings. The child is pushed onto `children` as soon as it exists. */
export async function startNext(chPort: number, env: Record<string, string>, name: string, readyPath: string, children: ChildProcess[]): Promise<Dashboard> {
  const logs = join(ARTIFACTS, "logs");
  mkdirSync(logs, { recursive: true });
  const webPort = await freePort();
  const webEnv: NodeJS.ProcessEnv = {
    ...process.env,
    NEXT_TELEMETRY_DISABLED: "1",
    CLICKHOUSE_URL: `http://127.0.0.1:${chPort}`,
    CLICKHOUSE_USER: "default",
    CLICKHOUSE_PASSWORD: "",
    CLICKHOUSE_DB: "polymarket",
    DASHBOARD_POLL_MS: String(POLL_MS),
    PMPIPE_PRICES_INTERVAL_SECS: String(PRICES_INTERVAL_SECS),
    DASHBOARD_STALE_GRACE_SECS: String(STALE_GRACE_SECS),
    ...env,
  };
  const nextBin = join(DASHBOARD_DIR, "node_modules/next/dist/bin/next");
  const child = start(process.execPath, [nextBin, "start", "-p", String(webPort), "-H", "127.0.0.1"], webEnv, join(logs, `${name}.log`), DASHBOARD_DIR);
  children.push(child);
  const url = `http://127.0.0.1:${webPort}`;
  await waitFor(`next start (${name})`, async () => (await fetch(url + readyPath)).ok, 60_000);
  return { baseUrl: url, stop: () => stopProcess(child) };
}

/** `python -m pmpipe query SQL --format TSV --param …` with `env` (the ClickHouse to ask). */
export function pmQueryWith(env: NodeJS.ProcessEnv): Stack["pmQuery"] {
  return async (sql, params = {}) => {
    const args = ["-m", "pmpipe", "query", sql, "--format", "TSV"];
    for (const [name, value] of Object.entries(params)) args.push("--param", `${name}=${paramText(value)}`);
    const { stdout } = await run(PYTHON, args, { env, cwd: REPO_DIR, maxBuffer: 64 << 20 });
    return stdout
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => line.split("\t"));
  };
}

export async function startStack(fill: Fill = fixtureFill): Promise<Stack> {
  const tmp = mkdtempSync(join(tmpdir(), "pm-dashboard-e2e-"));
  const logs = join(ARTIFACTS, "logs");
  mkdirSync(logs, { recursive: true });
  const chPort = await freePort();
  const chEnv = { ...process.env, CLICKHOUSE_PORT: String(chPort), CLICKHOUSE_HOST: "127.0.0.1", CLICKHOUSE_DATABASE: "polymarket", PMPIPE_LOG_FORMAT: "text" };
  const children: ChildProcess[] = [];
  const cleanup = async () => {
    for (const child of children.reverse()) await stopProcess(child);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    children.push(start(PYTHON, ["-m", "pmpipe", "serve", "--port", String(chPort), "--data-dir", tmp], chEnv, join(logs, "clickhouse.log"), REPO_DIR));
    await waitFor("pmpipe serve", async () => (await fetch(`http://127.0.0.1:${chPort}/ping`)).ok, 60_000);
    await run(PYTHON, ["-m", "pmpipe", "migrate"], { env: chEnv, cwd: REPO_DIR });
    const ch = createClient({ url: `http://127.0.0.1:${chPort}`, database: "polymarket" });
    const fixture = await fill(ch, chEnv);

    const startDashboard = async (env: Record<string, string>, name: string, readyPath = "/api/overview"): Promise<Dashboard> => {
      return startNext(chPort, env, name, readyPath, children);
    };
    const migrate = async (database: string): Promise<void> => {
      await run(PYTHON, ["-m", "pmpipe", "migrate", "--database", database], { env: chEnv, cwd: REPO_DIR });
    };
    const { baseUrl } = await startDashboard({}, "next");

    const profile = mkdtempSync(join(tmpdir(), "pm-dashboard-chromium-"));
    const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });

    const pmQuery = pmQueryWith(chEnv);

    return {
      baseUrl,
      startDashboard,
      migrate,
      chPort,
      ch,
      fixture,
      browser,
      pmQuery,
      stop: async () => {
        await browser.close();
        await ch.close();
        await cleanup();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
