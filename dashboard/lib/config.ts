/**
 * The dashboard's settings, read from the environment on the server at request time (never
 * inlined at build time, so one build runs against any ClickHouse).
 *
 * Names: CLICKHOUSE_URL / _USER / _PASSWORD / _DB are the Vercel names; the feed intervals are
 * the pipeline's own variables (PMPIPE_*_INTERVAL_SECS), so the freshness rule matches
 * `pmpipe status` (stale when older than 2 x interval + 30 s).
 */

export interface ClickHouseSettings {
  url: string;
  user: string;
  password: string;
  database: string;
}

export type Feed = "markets" | "prices" | "trades" | "books" | "events";

export interface DashboardSettings {
  /** how often client components poll their route handler */
  pollMs: number;
  /** expected interval per polled feed; events (WebSocket) are event-driven: null */
  feedIntervalSecs: Record<Feed, number | null>;
  staleFactor: number;
  staleGraceSecs: number;
  /** log every query (default: only slow ones and failures) */
  logAllQueries: boolean;
  slowQueryMs: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function readNumber(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new ConfigError(`${name}: expected a number >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function clickHouseSettings(env: Env = process.env): ClickHouseSettings {
  const url = env.CLICKHOUSE_URL?.trim() || "http://127.0.0.1:8123";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`CLICKHOUSE_URL: not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError(`CLICKHOUSE_URL: expected http(s)://host:port, got ${parsed.protocol}`);
  }
  const database = env.CLICKHOUSE_DB?.trim() || "polymarket";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new ConfigError(`CLICKHOUSE_DB: not an identifier: ${JSON.stringify(database)}`);
  }
  return {
    url,
    user: env.CLICKHOUSE_USER?.trim() || "default",
    password: env.CLICKHOUSE_PASSWORD ?? "",
    database,
  };
}

export function dashboardSettings(env: Env = process.env): DashboardSettings {
  return {
    pollMs: readNumber(env, "DASHBOARD_POLL_MS", 10_000, 250),
    feedIntervalSecs: {
      markets: readNumber(env, "PMPIPE_MARKETS_INTERVAL_SECS", 300, 0.001),
      prices: readNumber(env, "PMPIPE_PRICES_INTERVAL_SECS", 30, 0.001),
      trades: readNumber(env, "PMPIPE_TRADES_INTERVAL_SECS", 60, 0.001),
      books: readNumber(env, "PMPIPE_BOOKS_INTERVAL_SECS", 60, 0.001),
      events: null,
    },
    staleFactor: 2,
    staleGraceSecs: readNumber(env, "DASHBOARD_STALE_GRACE_SECS", 30, 0),
    logAllQueries: env.DASHBOARD_LOG_QUERIES === "1",
    slowQueryMs: readNumber(env, "DASHBOARD_SLOW_QUERY_MS", 250, 0),
  };
}
