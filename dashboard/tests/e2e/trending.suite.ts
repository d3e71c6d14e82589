import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatUsdCompact } from "../../lib/format";
import { trendingQueries } from "../../lib/queries";
import { windowsAt } from "../../lib/windows";
import type { Page } from "playwright-core";

import { open, screenshot, text } from "./browser";
import type { Stack } from "./stack";

const DEFAULTS = { tag: "", q: "", sort: "volume", desc: true, limit: 100 } as const;

/** The table's rows and the as-of time, read in one step (no poll in between). */
async function table(page: Page): Promise<{ asOf: number; ids: (string | null)[]; topVolume: string | null; topVolumeText: string }> {
  return page.evaluate(() => ({
    asOf: Number(document.querySelector("[data-testid=live-status]")?.getAttribute("data-asof")),
    ids: Array.from(document.querySelectorAll("[data-testid=trending-row]"), (tr) => tr.getAttribute("data-condition")),
    topVolume: document.querySelector("[data-testid=trending-volume]")?.getAttribute("data-value") ?? null,
    topVolumeText: (document.querySelector("[data-testid=trending-volume]") as HTMLElement | null)?.innerText.trim() ?? "",
  }));
}

export function trendingSuite(get: () => Stack): void {
  describe("Trending", () => {
    it("ranks markets by 24 h volume, equal to the same query through pmpipe query", async () => {
      const stack = get();
      const { page, errors, status } = await open(stack, "/trending");
      assert.equal(status, 200);
      const shown = await table(page);
      const w = windowsAt(shown.asOf);
      const rows = await stack.pmQuery(trendingQueries.trendingMarkets.sql, { ...DEFAULTS, from: w.dayFrom, prev_from: w.prevDayFrom });
      assert.ok(rows.length > 10);
      assert.deepEqual(shown.ids, rows.map((r) => r[0]));
      const top = rows[0] as string[];
      assert.equal(shown.topVolume, top[5]);
      assert.equal(shown.topVolumeText, formatUsdCompact(top[5]));
      const pageIds = shown.ids;
      assert.ok(!pageIds.includes(stack.fixture.special.archived.condition_id), "archived markets are not listed");
      assert.deepEqual(errors, []);
      await page.close();
    });

    it("sorts by price move and by volume change, both directions", async () => {
      const stack = get();
      const { page } = await open(stack, "/trending");
      await page.click("[data-testid=rank-move]");
      await page.waitForURL(/sort=move/);
      await page.waitForSelector("[data-testid=sort-move] >> text=↓");
      const moved = await table(page);
      const byMove = await stack.pmQuery(trendingQueries.trendingMarkets.sql, { ...DEFAULTS, sort: "move", from: windowsAt(moved.asOf).dayFrom, prev_from: windowsAt(moved.asOf).prevDayFrom });
      const moverRank = byMove.findIndex((r) => r[0] === stack.fixture.special.mover.condition_id);
      assert.ok(moverRank >= 0 && moverRank < 3, `the market moved 30¢ -> 62¢ ranks near the top (${moverRank})`);
      assert.deepEqual(moved.ids, byMove.map((r) => r[0]));

      await page.click("[data-testid=sort-change]");
      await page.waitForURL(/sort=change/);
      await page.click("[data-testid=sort-change]");
      await page.waitForURL(/dir=asc/);
      await page.waitForSelector("[data-testid=sort-change] >> text=↑");
      const asc = await table(page);
      const rows = await stack.pmQuery(trendingQueries.trendingMarkets.sql, { ...DEFAULTS, sort: "change", desc: false, from: windowsAt(asc.asOf).dayFrom, prev_from: windowsAt(asc.asOf).prevDayFrom });
      assert.deepEqual(asc.ids, rows.map((r) => r[0]));
      await page.close();
    });

    it("filters by tag and searches text (quotes and unicode included)", async () => {
      const stack = get();
      const { page } = await open(stack, "/trending");
      await page.selectOption("[data-testid=trending-tag]", "crypto");
      await page.waitForURL(/tag=crypto/);
      await page.waitForSelector("[data-testid=trending-row]");
      const crypto = await table(page);
      const tagged = await stack.pmQuery(trendingQueries.trendingMarkets.sql, { ...DEFAULTS, tag: "crypto", from: windowsAt(crypto.asOf).dayFrom, prev_from: windowsAt(crypto.asOf).prevDayFrom });
      assert.deepEqual(crypto.ids, tagged.map((r) => r[0]));
      assert.ok(tagged.length > 0 && tagged.length < 23);

      await page.goto(`${stack.baseUrl}/trending`);
      await page.fill("[data-testid=trending-search]", "“zürich café” say 'ouvert'");
      await page.press("[data-testid=trending-search]", "Enter");
      await page.waitForURL(/q=/);
      await page.waitForSelector("[data-testid=trending-row]");
      assert.equal(await page.locator("[data-testid=trending-row]").count(), 1);
      assert.equal(await text(page, "[data-testid=trending-question]"), stack.fixture.special.quoted.question);

      await page.fill("[data-testid=trending-search]", "no market is called this");
      await page.press("[data-testid=trending-search]", "Enter");
      await page.waitForSelector("[data-testid=empty]");
      assert.match(await text(page, "[data-testid=empty]"), /No market matches/);
      await page.close();
    });

    it("writes screenshots at 375 px and 1280 px", async () => {
      const files = await screenshot(get(), "/trending", "trending", "[data-testid=trending-row]");
      assert.equal(files.length, 2);
    });
  });
}
