import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatInt, formatUsd } from "../../lib/format";
import { overviewQueries } from "../../lib/queries";
import { startOfHour, windowsAt } from "../../lib/windows";
import { asOf, figures, open, screenshot, text, until } from "./browser";
import { freshQuote, freshTrades } from "./fixture";
import type { Stack } from "./stack";

export function overviewSuite(get: () => Stack): void {
  describe("Overview", () => {
    it("renders real rows, and its figures equal the same queries through pmpipe query", async () => {
      const stack = get();
      const { page, errors, status } = await open(stack, "/");
      assert.equal(status, 200);
      const shown = await figures(page, ["stat-volume-24h", "stat-trades-24h", "stat-tokens-24h", "stat-active-markets", "continuity-gaps", "continuity-open-gaps"]);
      const fig = (id: string) => shown.values[id] ?? { value: "", text: "" };
      const w = windowsAt(shown.asOf);

      const [vol] = await stack.pmQuery(overviewQueries.volume24h.sql, { from: w.dayFrom });
      assert.ok(vol);
      const [notional, , trades, tokens] = vol;
      assert.equal(Number(fig("stat-volume-24h").value), Number(notional));
      assert.equal(fig("stat-volume-24h").text, formatUsd(notional));
      assert.equal(fig("stat-trades-24h").text, formatInt(trades));
      assert.equal(fig("stat-tokens-24h").text, formatInt(tokens));
      assert.ok(Number(trades) > 1000, "the fixture's 24 h fills are counted");

      // the rollup path equals the raw Data API fills of the same window (ws copies left out)
      const [raw] = await stack.pmQuery(
        "SELECT round(sum(CAST(price AS Decimal(38, 6)) * size), 2), count() FROM market_trades WHERE source = 'data_api' AND source_ts >= {from:DateTime64(3)}",
        { from: w.dayFrom },
      );
      assert.deepEqual(raw?.map(Number), [Number(notional), Number(trades)]);

      const [counts] = await stack.pmQuery(overviewQueries.marketCounts.sql);
      assert.equal(fig("stat-active-markets").text, formatInt(counts?.[1]));
      const [summary] = await stack.pmQuery(overviewQueries.continuitySummary.sql, { from: w.dayAgo });
      assert.equal(fig("continuity-gaps").value, summary?.[1]);
      assert.equal(fig("continuity-open-gaps").value, "1");

      assert.equal(await page.locator("[data-testid=mover-row]").count(), 8);
      assert.equal(await page.locator("[data-testid=newest-row]").count(), 8);
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("streams a loading skeleton first, then the page (Suspense)", async () => {
      const html = await (await fetch(`${get().baseUrl}/`)).text();
      const loading = html.indexOf('data-testid="loading"');
      const content = html.indexOf('data-testid="overview"');
      assert.ok(loading >= 0 && content > loading, "the skeleton comes before the streamed content");
    });

    it("shows a feed whose newest row is old as STALE, and an event-driven feed as such", async () => {
      const { page } = await open(get(), "/");
      assert.equal(await page.getAttribute("[data-testid=feed-books]", "data-state"), "stale");
      assert.match(await text(page, "[data-testid=feed-books]"), /STALE/);
      assert.equal(await page.getAttribute("[data-testid=feed-markets]", "data-state"), "fresh");
      assert.equal(await page.getAttribute("[data-testid=feed-events]", "data-state"), "event-driven");
      await page.close();
    });

    it("turns the prices feed STALE once its rows stop arriving", async () => {
      const stack = get();
      const { page } = await open(stack, "/");
      await stack.ch.insert({ table: "market_prices", values: [freshQuote(stack.fixture.special.quoted, Date.now())], format: "JSONEachRow" });
      await until("prices fresh after a new quote", () => page.getAttribute("[data-testid=feed-prices]", "data-state"), (s) => s === "fresh", 8_000);
      const staleAt = await until("prices stale after the quotes stop", () => page.getAttribute("[data-testid=feed-prices]", "data-state"), (s) => s === "stale", 20_000);
      assert.equal(staleAt, "stale");
      assert.match(await text(page, "[data-testid=feed-prices]"), /STALE/);
      await page.close();
    });

    it("shows new trades after the next poll, without a reload", async () => {
      const stack = get();
      const { page } = await open(stack, "/");
      const start = await figures(page, ["stat-trades-24h"]);
      const before = Number(start.values["stat-trades-24h"]?.value);
      const asOfBefore = start.asOf;
      const insertedAt = Date.now();
      await stack.ch.insert({ table: "market_trades", values: freshTrades(stack.fixture.special.quoted, 25, insertedAt, "ab"), format: "JSONEachRow" });
      await until("a poll after the insert", () => asOf(page), (ms) => ms > insertedAt + 500);
      const after = await figures(page, ["stat-trades-24h"]);
      const shown = Number(after.values["stat-trades-24h"]?.value);
      const [expected] = await stack.pmQuery(overviewQueries.volume24h.sql, { from: windowsAt(after.asOf).dayFrom });
      assert.equal(shown, Number(expected?.[2]), "the refreshed figure is the query's at the new as-of time");
      if (startOfHour(after.asOf) === startOfHour(asOfBefore)) assert.equal(shown, before + 25);
      await page.close();
    });

    it("writes screenshots at 375 px and 1280 px", async () => {
      const files = await screenshot(get(), "/", "overview", "[data-testid=overview]");
      assert.equal(files.length, 2);
    });
  });
}
