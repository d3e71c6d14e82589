/**
 * The one door to ClickHouse: a lazily created @clickhouse/client and `query(name, sql,
 * params)`, which binds every value as a typed server-side parameter (`{token:String}`), checks
 * that the parameters are exactly the SQL's placeholders, times the call and labels it
 * (`log_comment` = name, so it is findable in system.query_log).
 *
 * Every request runs with readonly = 2: the dashboard cannot change data even if a query
 * were wrong. Decimals come back as exact strings, 64-bit integers as JSON numbers.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from "@clickhouse/client";

import { clickHouseSettings, dashboardSettings } from "../config";

export type ParamValue = string | number | boolean | Date | readonly string[];
export type QueryParams = Record<string, ParamValue>;

/** A query failed: carries the query's name (never the parameter values). */
export class QueryError extends Error {
  constructor(
    readonly queryName: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`query ${queryName} failed: ${message}`, options);
    this.name = "QueryError";
  }
}

const globalForClient = globalThis as typeof globalThis & { __pmClickHouse?: ClickHouseClient };

function client(): ClickHouseClient {
  if (!globalForClient.__pmClickHouse) {
    const settings = clickHouseSettings();
    globalForClient.__pmClickHouse = createClient({
      url: settings.url,
      username: settings.user,
      password: settings.password,
      database: settings.database,
      application: "polymarket-dashboard",
      request_timeout: 30_000,
      max_open_connections: 8,
      log: { level: ClickHouseLogLevel.OFF },
      clickhouse_settings: {
        readonly: "2",
        output_format_json_quote_64bit_integers: 0,
        output_format_json_quote_decimals: 1,
      },
    });
  }
  return globalForClient.__pmClickHouse;
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*):[^}]+\}/g;

/** Names of the `{name:Type}` placeholders of a statement. */
export function placeholders(sql: string): Set<string> {
  return new Set(Array.from(sql.matchAll(PLACEHOLDER), (m) => m[1] as string));
}

function checkParams(name: string, sql: string, params: QueryParams): void {
  const wanted = placeholders(sql);
  const given = Object.keys(params);
  const missing = [...wanted].filter((p) => !(p in params));
  const extra = given.filter((p) => !wanted.has(p));
  if (missing.length > 0 || extra.length > 0) {
    throw new QueryError(name, `parameters do not match placeholders (missing ${missing.join(",") || "-"}, extra ${extra.join(",") || "-"})`);
  }
}

/** Runs one labelled, timed, parameterised SELECT and returns its rows. */
export async function query<Row>(name: string, sql: string, params: QueryParams): Promise<Row[]> {
  checkParams(name, sql, params);
  const settings = dashboardSettings();
  const started = performance.now();
  let rows: Row[];
  try {
    const result = await client().query({
      query: sql,
      format: "JSONEachRow",
      query_params: params,
      clickhouse_settings: { log_comment: `dashboard:${name}` },
    });
    rows = await result.json<Row>();
  } catch (error) {
    const ms = performance.now() - started;
    const message = error instanceof Error ? error.message.split("\n")[0] ?? "" : String(error);
    console.error(`query=${name} ms=${ms.toFixed(1)} error=${JSON.stringify(message)}`);
    throw new QueryError(name, message, { cause: error });
  }
  const ms = performance.now() - started;
  if (settings.logAllQueries || ms >= settings.slowQueryMs) {
    console.log(`query=${name} ms=${ms.toFixed(1)} rows=${rows.length}`);
  }
  return rows;
}

/** A named statement with its parameter and row types; `run` goes through `query`. */
export interface QueryDef<P extends QueryParams, Row> {
  readonly name: string;
  readonly sql: string;
  run(params: P): Promise<Row[]>;
}

export function defineQuery<P extends QueryParams, Row>(name: string, sql: string): QueryDef<P, Row> {
  const text = sql.trim();
  return { name, sql: text, run: (params: P) => query<Row>(name, text, params) };
}
