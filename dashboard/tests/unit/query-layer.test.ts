import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, it } from "node:test";

import { marketQueries, overviewQueries, placeholders, signalQueries, trendingQueries, type QueryDef, type QueryParams } from "../../lib/queries";

const ROOT = resolve(__dirname, "../..");
const TABLES = ["markets", "market_prices", "market_trades", "orderbook_snapshots", "market_events", "ohlcv_1m_candles", "ohlcv_1h_candles", "ohlcv_1m", "ohlcv_1h", "volume_daily_totals", "volume_daily", "latest_prices", "market_latest_price"];

function defs(): QueryDef<QueryParams, unknown>[] {
  const out: QueryDef<QueryParams, unknown>[] = [];
  for (const mod of [overviewQueries, marketQueries, trendingQueries, signalQueries]) {
    for (const value of Object.values(mod)) {
      if (typeof value === "object" && value !== null && "sql" in value && "name" in value) out.push(value as QueryDef<QueryParams, unknown>);
    }
  }
  return out;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : /\.(ts|tsx)$/.test(name) ? [path] : [];
  });
}

describe("the query layer", () => {
  it("has uniquely named statements with typed placeholders and no interpolation", () => {
    const all = defs();
    assert.ok(all.length >= 20, `${all.length} statements`);
    assert.equal(new Set(all.map((d) => d.name)).size, all.length);
    for (const d of all) {
      assert.ok(!d.sql.includes("${"), `${d.name} is not a template with interpolation`);
      assert.match(d.sql, /^(SELECT|WITH)\b/, `${d.name} starts with its first keyword`);
      for (const m of d.sql.matchAll(/\{(\w+):([^}]+)\}/g)) {
        assert.match(m[2] as string, /^(String|UInt32|Float64|Bool|DateTime64\(3\)|Array\(String\))$/, `${d.name}: {${m[1]}:${m[2]}}`);
      }
    }
    assert.deepEqual([...placeholders(trendingQueries.trendingMarkets.sql)].sort(), ["desc", "from", "limit", "prev_from", "q", "sort", "tag"]);
  });

  it("refuses a call whose parameters differ from the placeholders, before any request", async () => {
    const run = overviewQueries.volume24h.run as (p: QueryParams) => Promise<unknown>;
    await assert.rejects(run({ from: new Date(), extra: "x" }), /extra/);
    await assert.rejects(run({}), /missing from/);
  });

  it("is the only code that names a table", () => {
    const pattern = new RegExp(`\\b(FROM|JOIN|INTO|TABLE)\\s+(${TABLES.join("|")})\\b`, "i");
    const offenders = ["app", "components", "lib"]
      .flatMap((dir) => files(join(ROOT, dir)))
      .filter((path) => !relative(ROOT, path).startsWith(join("lib", "queries")))
      .filter((path) => pattern.test(readFileSync(path, "utf8")));
    assert.deepEqual(offenders, []);
  });

  it("never builds SQL from strings outside its constants", () => {
    const offenders = files(ROOT)
      .filter((path) => !path.includes("node_modules") && !path.includes(`${join(ROOT, "tests")}`) && !path.includes(".next"))
      .filter((path) => /\b(SELECT|INSERT|ALTER|DROP)\b[^`"']*\$\{/.test(readFileSync(path, "utf8")));
    assert.deepEqual(offenders, []);
  });
});
