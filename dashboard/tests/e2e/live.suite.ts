/**
 * The dashboard on live data: the simulator, `pmpipe up` (producers, Tansu, sink, chdb) and
 * `next start` against its ClickHouse (livestack.ts). Screenshots while everything flows; the
 * prices producer paused and resumed (the Overview turns its feed STALE and fresh again);
 * then every producer paused and the sink drained, so each page's figures can be compared
 * with the same query through `pmpipe query`; last, the stack stopped with SIGINT.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";

import { formatInt, formatUsd, formatUsdCompact } from "../../lib/format";
import { marketQueries, overviewQueries, signalQueries, trendingQueries } from "../../lib/queries";
import { windowsAt } from "../../lib/windows";
import { figures, open, screenshot, text, until } from "./browser";
import { LIVE_INTERVAL_SECS, LIVE_STALE_GRACE_SECS, startLiveStack, type LiveStack } from "./livestack";
import type { Stack } from "./stack";

const TRENDING_DEFAULTS = { tag: "", q: "", sort: "volume", desc: true, limit: 100 } as const;

const SIGNALS = [
  ["volume_spikes", signalQueries.volumeSpikes],
  ["price_moves", signalQueries.priceMoves],
  ["spread_blowouts", signalQueries.spreadBlowouts],
  ["book_sums", signalQueries.bookSums],
  ["large_trades", signalQueries.largeTrades],
] as const;

/** ClickHouse's TSV form of Array(Decimal): ['1.5','2'] */
function tsvArray(cell: string | undefined): string[] {
  assert.ok(cell !== undefined);
  const body = cell.replace(/^\[|\]$/g, "");
  return body === "" ? [] : body.split(",").map((v) => v.replace(/^'|'$/g, ""));
}

/** States of the pipeline panel's feeds and their visible text, read in one step. */
async function feedStates(page: Page): Promise<Record<string, { state: string; text: string }>> {
  return page.evaluate(() => {
    const out: Record<string, { state: string; text: string }> = {};
    for (const row of Array.from(document.querySelectorAll("[data-testid^=feed-][data-state]"))) {
      const id = (row.getAttribute("data-testid") ?? "").replace(/^feed-/, "");
      out[id] = { state: row.getAttribute("data-state") ?? "", text: (row as HTMLElement).innerText };
    }
    return out;
  });
}

export function liveSuite(get: () => Stack): void {
  describe("Live stack (simulator -> pmpipe up -> dashboard)", () => {
    let live: LiveStack | null = null;
    /** the main run's browser, pointed at the live dashboard and its ClickHouse */
    let view: Stack | null = null;
    /** a simulated market with Data API fills on its first outcome */
    let market: { condition_id: string; token: string } | null = null;

    const stack = (): Stack => {
      if (view === null) throw new Error("the live stack did not start");
      return view;
    };
    const liveStack = (): LiveStack => {
      if (live === null) throw new Error("the live stack did not start");
      return live;
    };
    const chosen = (): { condition_id: string; token: string } => {
      if (market === null) throw new Error("no simulated market was chosen");
      return market;
    };

    before(async () => {
      const started = Date.now();
      live = await startLiveStack((line) => console.log(line));
      view = { ...get(), baseUrl: live.dashboard.baseUrl, chPort: live.chPort, ch: live.ch, pmQuery: live.pmQuery };
      const [row] = await live.pmQuery(
        `SELECT m.condition_id, m.token_ids[1] FROM markets AS m FINAL
         INNER JOIN (SELECT token_id, count() AS fills FROM market_trades WHERE source = 'data_api' GROUP BY token_id) AS t ON t.token_id = m.token_ids[1]
         ORDER BY t.fills DESC, m.condition_id LIMIT 1`,
      );
      assert.ok(row?.[0] && row[1], "a simulated market has Data API fills on its first outcome");
      market = { condition_id: row[0], token: row[1] };
      console.log(`# live stack up in ${Date.now() - started} ms at ${live.dashboard.baseUrl} (ClickHouse :${live.chPort})`);
    }, { timeout: 240_000 });

    after(async () => {
      const report = await live?.stop();
      if (report) console.log(`# live stack stopped in ${report.ms} ms: ${JSON.stringify(report)}`);
    });

    it("writes screenshots of every page on live data", async () => {
      const s = stack();
      await screenshot(s, "/", "live-overview", "[data-testid=overview]");
      await screenshot(s, `/markets/${chosen().condition_id}?interval=1m`, "live-market", "[data-testid=candle-chart] canvas");
      await screenshot(s, "/trending", "live-trending", "[data-testid=trending-row]");
      await screenshot(s, "/signals", "live-signals", "[data-testid=signals]");
    });

    it("turns the prices feed STALE while its producer is paused, the others stay fresh, and fresh again after it resumes", async () => {
      const s = stack();
      const l = liveStack();
      const { page, errors } = await open(s, "/");
      await until("prices, trades and books fresh", () => feedStates(page), (f) => ["prices", "trades", "books"].every((id) => f[id]?.state === "fresh"), 60_000);
      await l.pause("produce-prices");
      let resumed = false;
      try {
        const staleAfter = 2 * LIVE_INTERVAL_SECS + LIVE_STALE_GRACE_SECS;
        const stale = await until("prices STALE after its producer paused", () => feedStates(page), (f) => f.prices?.state === "stale", (staleAfter + 30) * 1000);
        assert.match(stale.prices?.text ?? "", /STALE/);
        assert.equal(stale.books?.state, "fresh", "books keep arriving while prices are paused");
        assert.equal(stale.trades?.state, "fresh", "trades keep arriving while prices are paused");
        assert.doesNotMatch(stale.books?.text ?? "", /STALE/);
        assert.match(await text(page, "[data-testid=pipeline-panel]"), /1 stale/);
        await l.resume("produce-prices");
        resumed = true;
        const fresh = await until("prices fresh after its producer resumed", () => feedStates(page), (f) => f.prices?.state === "fresh", 30_000);
        assert.doesNotMatch(fresh.prices?.text ?? "", /STALE/);
      } finally {
        if (!resumed) await l.resume("produce-prices");
      }
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("holds every producer until the sink stored all they delivered (the figures below stop moving)", async () => {
      const delivered = await liveStack().freeze();
      for (const topic of ["polymarket.prices", "polymarket.trades", "polymarket.books"]) assert.ok((delivered[topic] ?? 0) > 0, `${topic}: records were delivered`);
    });

    it("Overview: figures equal the same queries through pmpipe query", async () => {
      const s = stack();
      const { page, errors, status } = await open(s, "/");
      assert.equal(status, 200);
      const shown = await figures(page, ["stat-volume-24h", "stat-trades-24h", "stat-tokens-24h", "stat-active-markets", "feed-trades-rows-1h", "feed-prices-rows-1h", "feed-books-rows-1h"]);
      const fig = (id: string) => shown.values[id] ?? { value: "", text: "" };
      const w = windowsAt(shown.asOf);

      const [vol] = await s.pmQuery(overviewQueries.volume24h.sql, { from: w.dayFrom });
      assert.ok(vol);
      const [notional, , trades, tokens] = vol;
      assert.ok(Number(trades) >= 100, `the simulator's fills are counted (${trades})`);
      assert.equal(Number(fig("stat-volume-24h").value), Number(notional));
      assert.equal(fig("stat-volume-24h").text, formatUsd(notional));
      assert.equal(fig("stat-trades-24h").text, formatInt(trades));
      assert.equal(fig("stat-tokens-24h").text, formatInt(tokens));

      const [counts] = await s.pmQuery(overviewQueries.marketCounts.sql);
      assert.equal(fig("stat-active-markets").text, formatInt(counts?.[1]));

      const feeds = await s.pmQuery(overviewQueries.pipelineFeeds.sql, { hour_ago: w.hourAgo });
      for (const feed of ["trades", "prices", "books"]) {
        const row = feeds.find((r) => r[0] === feed);
        assert.ok(row && Number(row[4]) > 0, `${feed}: rows in the last hour`);
        assert.equal(fig(`feed-${feed}-rows-1h`).value, row[4], `${feed}: rows in the last hour`);
      }
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("Market Detail of a simulated market: figures equal the same queries through pmpipe query", async () => {
      const s = stack();
      const { condition_id, token } = chosen();
      const { page, errors, status } = await open(s, `/markets/${condition_id}?interval=1m`);
      assert.equal(status, 200);
      await page.waitForSelector("[data-testid=candle-chart] canvas");
      const shown = await page.evaluate(() => ({
        asOf: Number(document.querySelector("[data-testid=live-status]")?.getAttribute("data-asof")),
        candles: Number(document.querySelector("[data-testid=candle-chart]")?.getAttribute("data-candles")),
        volume: document.querySelector("[data-testid=outcome-0-volume]")?.getAttribute("data-value") ?? null,
        volumeText: (document.querySelector("[data-testid=outcome-0-volume]") as HTMLElement | null)?.innerText.trim() ?? "",
        last: document.querySelector("[data-testid=outcome-0-last]")?.getAttribute("data-value") ?? null,
        bid: document.querySelector("[data-testid=ladder-bid] td[data-value]")?.getAttribute("data-value") ?? null,
      }));
      const w = windowsAt(shown.asOf);

      // the hourly rollup behind the figure against the raw Data API fills of the same window
      const [vol] = await s.pmQuery("SELECT round(sum(CAST(price AS Decimal(38, 6)) * size), 2) FROM market_trades WHERE token_id = {token:String} AND source = 'data_api' AND source_ts >= {from:DateTime64(3)}", { token, from: w.dayFrom });
      assert.ok(vol && Number(vol[0]) > 0, "the market's first outcome has 24 h volume");
      assert.equal(Number(shown.volume), Number(vol[0]));
      assert.ok(shown.volumeText.startsWith(formatUsd(vol[0])), `${shown.volumeText} shows ${formatUsd(vol[0])}`);

      const candles = await s.pmQuery(marketQueries.candles1m.sql, { token, from: w.dayAgo });
      assert.ok(candles.length > 0);
      assert.equal(shown.candles, candles.length, "one 1m candle per row of the minute rollup");

      const [quote] = await s.pmQuery("SELECT last_trade_price FROM latest_prices WHERE token_id = {token:String}", { token });
      assert.ok(quote?.[0] && quote[0] !== "\\N", "the outcome has a last trade price");
      assert.equal(Number(shown.last), Number(quote[0]));

      const [book] = await s.pmQuery(marketQueries.latestBook.sql, { token, levels: 25 });
      const bidSizes = tsvArray(book?.[4]);
      assert.ok(bidSizes.length > 0, "the simulated book has bids");
      assert.equal(Number(shown.bid), Number(bidSizes[0]));
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("Trending: ranking and volume equal the same query through pmpipe query", async () => {
      const s = stack();
      const { page, errors, status } = await open(s, "/trending");
      assert.equal(status, 200);
      const shown = await page.evaluate(() => ({
        asOf: Number(document.querySelector("[data-testid=live-status]")?.getAttribute("data-asof")),
        ids: Array.from(document.querySelectorAll("[data-testid=trending-row]"), (tr) => tr.getAttribute("data-condition")),
        topVolume: document.querySelector("[data-testid=trending-volume]")?.getAttribute("data-value") ?? null,
        topVolumeText: (document.querySelector("[data-testid=trending-volume]") as HTMLElement | null)?.innerText.trim() ?? "",
      }));
      const w = windowsAt(shown.asOf);
      const rows = await s.pmQuery(trendingQueries.trendingMarkets.sql, { ...TRENDING_DEFAULTS, from: w.dayFrom, prev_from: w.prevDayFrom });
      assert.ok(rows.length > 5, `simulated markets traded (${rows.length})`);
      assert.deepEqual(shown.ids, rows.map((r) => r[0]));
      const top = rows[0] as string[];
      assert.equal(shown.topVolume, top[5]);
      assert.equal(shown.topVolumeText, formatUsdCompact(top[5]));
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("Signals: each signal's rows and first figure equal its SQL through pmpipe query", async () => {
      const s = stack();
      const { page, errors, status } = await open(s, "/signals");
      assert.equal(status, 200);
      let triggered = 0;
      for (const [id, def] of SIGNALS) {
        const card = page.locator(`[data-testid=signal-${id}]`);
        await card.locator(`[data-testid=sql-toggle-${id}]`).click();
        await card.locator("[data-testid=sql-text]").waitFor();
        const shown = await card.evaluate((el, sid) => ({
          count: Number(el.getAttribute("data-count")),
          sql: el.querySelector("[data-testid=sql-text]")?.textContent?.trim() ?? "",
          params: Array.from(el.querySelectorAll(`[data-testid=sql-${sid}] table tr`), (tr) => Array.from(tr.querySelectorAll("td"), (td) => td.textContent ?? "")),
          first: el.querySelector("[data-testid=signal-row] td[data-value]")?.getAttribute("data-value") ?? null,
        }), id);
        assert.equal(shown.sql, def.sql, `${id}: the SQL shown is the SQL that ran`);
        const params = Object.fromEntries(shown.params.map(([name, value]) => [name as string, value as string]));
        const rows = await s.pmQuery(def.sql, params);
        assert.equal(shown.count, rows.length, `${id}: row count`);
        if (rows.length > 0) {
          triggered += 1;
          assert.ok(shown.first !== null && rows[0]?.includes(shown.first), `${id}: first row's figure ${shown.first} is in ${rows[0]?.join(" | ")}`);
        }
      }
      assert.ok(triggered > 0, "at least one signal fires on the simulated markets");
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("stops the whole stack with SIGINT: exit code 0, no process left behind", async () => {
      const report = await liveStack().stop();
      assert.deepEqual(report.leftovers, []);
      assert.equal(report.code, 0);
    });
  });
}
