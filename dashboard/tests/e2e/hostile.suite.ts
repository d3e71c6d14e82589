import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { open, text } from "./browser";
import type { Stack } from "./stack";

const TEN_KB = 10 * 1024;

/** Input meant to break string-built SQL, URL handling or rendering. */
export const HOSTILE: readonly string[] = [
  "'",
  '"',
  "\\",
  "'; DROP TABLE markets; --",
  "x' OR '1'='1",
  "\\'; DROP TABLE market_trades; --",
  "1; TRUNCATE TABLE market_prices",
  "{q:String}",
  "%_%",
  "Zürich ☕ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 مرحبا 中文 \u200b",
  "\u0000\u0001",
  "<script>alert(1)</script>",
  "../../../etc/passwd",
  "a".repeat(TEN_KB),
  "'; DROP TABLE markets; --".repeat(Math.ceil(TEN_KB / 26)),
  "☕".repeat(Math.ceil(TEN_KB / 3)),
];

/**
 * What must not change: rows of every base table, the finalised rollups and the latest
 * markets (counts of the -State and Replacing tables themselves change with merges).
 */
const CHECKS: Record<string, string> = {
  markets: "SELECT count(), sum(cityHash64(condition_id, question)) FROM markets FINAL",
  market_prices: "SELECT count() FROM market_prices",
  market_trades: "SELECT count(), sum(cityHash64(trade_key)) FROM market_trades",
  orderbook_snapshots: "SELECT count() FROM orderbook_snapshots",
  market_events: "SELECT count() FROM market_events",
  ohlcv_1m: "SELECT count(), sum(trades), sum(notional) FROM ohlcv_1m_candles",
  ohlcv_1h: "SELECT count(), sum(trades), sum(notional) FROM ohlcv_1h_candles",
  volume_daily: "SELECT count(), sum(trades) FROM volume_daily_totals",
  latest_prices: "SELECT count(), sum(cityHash64(toString(mid), toString(last_trade_price))) FROM latest_prices",
};

async function counts(stack: Stack): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, sql] of Object.entries(CHECKS)) {
    const rows = await stack.pmQuery(sql);
    out[name] = rows[0]?.join(" ") ?? "missing";
  }
  return out;
}

async function request(stack: Stack, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(stack.baseUrl + path, { redirect: "manual" });
  return { status: response.status, body: await response.text() };
}

function clientError(status: number): boolean {
  return status >= 400 && status < 500;
}

export function hostileSuite(get: () => Stack): void {
  describe("Hostile input", () => {
    it("never answers 5xx through any search or path parameter, and leaves the data intact", async () => {
      const stack = get();
      const before = await counts(stack);
      const real = stack.fixture.special.mover.condition_id;
      let probes = 0;
      for (const raw of HOSTILE) {
        const v = encodeURIComponent(raw);
        const label = JSON.stringify(raw.slice(0, 30));
        // search: a 4xx, or rows whose question really contains the text (the fixture has
        // questions with apostrophes), never an error
        const search = await request(stack, `/api/trending?q=${v}`);
        if (search.status === 200) {
          const needle = raw.trim().toLowerCase();
          for (const row of (JSON.parse(search.body) as { rows: { question: string }[] }).rows) {
            assert.ok(row.question.toLowerCase().includes(needle), `${label} matched ${row.question}`);
          }
        } else assert.ok(clientError(search.status), `search ${label}: ${search.status}`);
        // tag: no market has such a tag
        const tag = await request(stack, `/api/trending?tag=${v}`);
        if (tag.status === 200) assert.deepEqual((JSON.parse(tag.body) as { rows: unknown[] }).rows, [], `tag ${label}`);
        else assert.ok(clientError(tag.status), `tag ${label}: ${tag.status}`);
        // an unknown market id: 404 (or another 4xx for what Node or the proxy refuses)
        for (const path of [`/markets/${v}`, `/api/markets/${v}`]) {
          const r = await request(stack, path);
          assert.ok(clientError(r.status), `${path.slice(0, 40)}: ${r.status}`);
        }
        // whitelisted choices: hostile values fall back to the defaults
        for (const path of [`/trending?q=${v}`, `/trending?tag=${v}`, `/trending?sort=${v}&dir=${v}`, `/markets/${real}?outcome=${v}&interval=${v}`, `/api/markets/${real}?outcome=${v}&interval=${v}`]) {
          const r = await request(stack, path);
          assert.ok(r.status === 200 || clientError(r.status), `${path.slice(0, 60)}: ${r.status}`);
        }
        probes += 9;
      }
      assert.equal(probes, HOSTILE.length * 9);

      // quotes are data too: the market whose question has apostrophes is found by them
      const quoted = await request(stack, `/api/trending?q=${encodeURIComponent("O'Brien's")}`);
      assert.deepEqual((JSON.parse(quoted.body) as { rows: { question: string }[] }).rows.map((r) => r.question), [stack.fixture.special.quoted.question]);

      // a hostile search that reaches ClickHouse as a parameter returns the empty result
      const api = await fetch(`${stack.baseUrl}/api/trending?q=${encodeURIComponent("'; DROP TABLE markets; --")}`);
      assert.equal(api.status, 200);
      assert.deepEqual(((await api.json()) as { rows: unknown[] }).rows, []);
      const long = await fetch(`${stack.baseUrl}/api/trending?q=${"a".repeat(TEN_KB)}`);
      assert.equal(long.status, 400);
      const malformed = await fetch(`${stack.baseUrl}/markets/%E0%A4%A`);
      assert.equal(malformed.status, 400);

      assert.deepEqual(await counts(stack), before, "no table changed");
    });

    it("shows hostile search text back as text and an empty result, in the browser", async () => {
      const stack = get();
      for (const raw of ["<script>alert(1)</script>", "'; DROP TABLE markets; --", "Zürich ☕ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 '\""]) {
        const { page, errors, status } = await open(stack, `/trending?q=${encodeURIComponent(raw)}`);
        assert.equal(status, 200);
        assert.equal(await page.inputValue("[data-testid=trending-search]"), raw);
        assert.match(await text(page, "[data-testid=empty]"), /No market matches/);
        assert.deepEqual(errors, [], "no script ran, no error");
        await page.close();
      }
      const { page } = await open(stack, `/trending?q=${"a".repeat(TEN_KB)}`);
      assert.match(await text(page, "[data-testid=empty]"), /cannot match any question/);
      await page.close();
    });
  });
}
