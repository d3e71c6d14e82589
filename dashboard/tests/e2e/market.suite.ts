import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Page } from "playwright-core";

import { formatUsd } from "../../lib/format";
import { marketQueries } from "../../lib/queries";
import { windowsAt } from "../../lib/windows";
import { dataValue, figures, open, screenshot, text, until } from "./browser";
import { freshTrades } from "./fixture";
import type { Stack } from "./stack";

/** ClickHouse's TSV form of Array(Decimal): ['1.5','2'] */
function tsvArray(cell: string | undefined): string[] {
  assert.ok(cell !== undefined);
  const body = cell.replace(/^\[|\]$/g, "");
  return body === "" ? [] : body.split(",").map((v) => v.replace(/^'|'$/g, ""));
}

/** The chart's candle count with the as-of time of the data it shows (read in one step). */
async function chartDrawn(page: Page): Promise<{ candles: number; asOf: number }> {
  await page.waitForSelector("[data-testid=candle-chart] canvas");
  const shown = await page.evaluate(() => ({
    areas: Array.from(document.querySelectorAll("[data-testid=candle-chart] canvas"), (c) => (c as HTMLCanvasElement).width * (c as HTMLCanvasElement).height),
    candles: Number(document.querySelector("[data-testid=candle-chart]")?.getAttribute("data-candles")),
    asOf: Number(document.querySelector("[data-testid=live-status]")?.getAttribute("data-asof")),
  }));
  assert.ok(shown.areas.some((area) => area > 0), "the candle chart drew on a canvas of non-zero size");
  return { candles: shown.candles, asOf: shown.asOf };
}

export function marketSuite(get: () => Stack): void {
  describe("Market Detail", () => {
    it("renders the market, its outcomes, candles, book, trades and gaps from real rows", async () => {
      const stack = get();
      const m = stack.fixture.special.mover;
      const token = m.token_ids[0] as string;
      const { page, errors, status } = await open(stack, `/markets/${m.condition_id}`);
      assert.equal(status, 200);
      assert.equal(await text(page, "[data-testid=market-question]"), m.question);
      assert.equal(await page.locator("[data-testid=outcome-0], [data-testid=outcome-1]").count(), 2);
      const shown = await figures(page, ["outcome-0-volume"]);
      const w = windowsAt(shown.asOf);

      const chart = await chartDrawn(page);
      const candles = await stack.pmQuery(marketQueries.candles1h.sql, { token, from: windowsAt(chart.asOf).monthAgo });
      assert.ok(candles.length > 10);
      assert.equal(chart.candles, candles.length);

      const [book] = await stack.pmQuery(marketQueries.latestBook.sql, { token, levels: 25 });
      const bidSizes = tsvArray(book?.[4]);
      assert.equal(Number(await dataValue(page, "[data-testid=ladder-bid] td[data-value]")), Number(bidSizes[0]));
      assert.ok(await page.locator("[data-testid=depth-chart] path").count() >= 2);

      const [vol] = await stack.pmQuery("SELECT round(sum(CAST(price AS Decimal(38, 6)) * size), 2) FROM market_trades WHERE token_id = {token:String} AND source = 'data_api' AND source_ts >= {from:DateTime64(3)}", { token, from: w.dayFrom });
      assert.equal(Number(shown.values["outcome-0-volume"]?.value), Number(vol?.[0]));
      assert.ok(shown.values["outcome-0-volume"]?.text.startsWith(formatUsd(vol?.[0])));

      assert.equal(await page.locator("[data-testid=trade-row]").count(), 40);
      assert.ok((await page.locator("[data-testid=market-gaps] [data-testid=gap-list] tbody tr").count()) >= 1, "the recorded gap covering this market is listed");
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("switches candle intervals (1m, 1d) and outcomes, redrawing from the rollups", async () => {
      const stack = get();
      const m = stack.fixture.special.mover;
      const token = m.token_ids[0] as string;
      const { page, errors } = await open(stack, `/markets/${m.condition_id}`);
      for (const [interval, def, from] of [
        ["1m", marketQueries.candles1m, "dayAgo"],
        ["1d", marketQueries.candles1d, "yearAgo"],
      ] as const) {
        await page.click(`[data-testid=interval-${interval}]`);
        await page.waitForURL(new RegExp(`interval=${interval}`));
        await until("chart of the new interval", () => text(page, "[data-testid=market] h2"), (t) => t.includes(`${interval} candles`));
        const chart = await chartDrawn(page);
        const rows = await stack.pmQuery(def.sql, { token, from: windowsAt(chart.asOf)[from] });
        assert.ok(rows.length > 0);
        assert.equal(chart.candles, rows.length, `${interval}: one candle per row of ${def.name}`);
      }
      await page.click("[data-testid=outcome-1]");
      await page.waitForURL(/outcome=1/);
      await until("chart title of the second outcome", () => text(page, "[data-testid=market] h2"), (t) => t.startsWith("No price"));
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("finds a market by token id and shows an open gap of its data", async () => {
      const stack = get();
      const m = stack.fixture.special.gapped;
      const { page } = await open(stack, `/markets/${m.token_ids[1]}`);
      assert.equal(await text(page, "[data-testid=market-question]"), m.question);
      assert.match(await text(page, "[data-testid=market-gaps]"), /open since/);
      await page.close();
    });

    it("answers 404 for an unknown id", async () => {
      const { page, status } = await open(get(), "/markets/0xdeadbeef", 1280, "");
      assert.equal(status, 404);
      assert.match(await page.content(), /No market has this condition id or token id/);
      await page.close();
    });

    it("shows new trades after the next poll", async () => {
      const stack = get();
      const m = stack.fixture.special.mover;
      const { page } = await open(stack, `/markets/${m.condition_id}`);
      const first = () => page.locator("[data-testid=trade-row]").first().locator("td[data-value]").getAttribute("data-value");
      assert.notEqual(await first(), "10");
      await stack.ch.insert({ table: "market_trades", values: freshTrades(m, 3, Date.now(), "cd"), format: "JSONEachRow" });
      assert.equal(await until("newest trade row", first, (v) => v === "10"), "10");
      await page.close();
    });

    it("writes screenshots at 375 px and 1280 px", async () => {
      const stack = get();
      const files = await screenshot(stack, `/markets/${stack.fixture.special.mover.condition_id}`, "market", "[data-testid=candle-chart] canvas");
      assert.equal(files.length, 2);
    });
  });
}
