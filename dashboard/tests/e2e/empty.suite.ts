import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { open, text } from "./browser";
import type { Dashboard, Stack } from "./stack";

/** A freshly migrated, empty database: every page shows its empty state, none fails. */
export function emptySuite(get: () => Stack): void {
  describe("Empty database", () => {
    let empty: Dashboard | null = null;
    const base = (): string => {
      if (empty === null) throw new Error("the empty dashboard did not start");
      return empty.baseUrl;
    };

    before(async () => {
      await get().migrate("polymarket_empty");
      empty = await get().startDashboard({ CLICKHOUSE_DB: "polymarket_empty" }, "next-empty");
    }, { timeout: 120_000 });

    after(async () => {
      await empty?.stop();
    });

    it("shows empty states on every page", async () => {
      const stack = get();
      const overview = await open(stack, "/", 1280, "[data-testid=overview]", base());
      assert.equal(overview.status, 200);
      assert.equal(await text(overview.page, "[data-testid=stat-trades-24h]"), "0");
      assert.match(await text(overview.page, "[data-testid=movers-card]"), /No trades in the last 24 h/);
      assert.match(await text(overview.page, "[data-testid=newest-card]"), /No markets yet/);
      assert.equal(await overview.page.getAttribute("[data-testid=feed-trades]", "data-state"), "stale");
      assert.equal(await overview.page.getAttribute("[data-testid=feed-events]", "data-state"), "empty");
      assert.deepEqual(overview.errors, []);
      await overview.page.close();

      const trending = await open(stack, "/trending", 1280, "[data-testid=trending]", base());
      assert.match(await text(trending.page, "[data-testid=empty]"), /No market traded in the last 48 h/);
      await trending.page.close();

      const signals = await open(stack, "/signals", 1280, "[data-testid=signals]", base());
      assert.equal(await signals.page.locator("[data-testid=empty]").count(), 5);
      await signals.page.close();

      const market = await fetch(`${base()}/markets/${stack.fixture.special.mover.condition_id}`);
      assert.equal(market.status, 404);
    });
  });
}

/** ClickHouse unreachable: pages show their error state, route handlers answer 503. */
export function downSuite(get: () => Stack): void {
  describe("ClickHouse down", () => {
    let down: Dashboard | null = null;

    before(async () => {
      down = await get().startDashboard({ CLICKHOUSE_URL: "http://127.0.0.1:9" }, "next-down", "/trending");
    }, { timeout: 120_000 });

    after(async () => {
      await down?.stop();
    });

    it("shows the error state and answers 503 from the API", async () => {
      if (down === null) throw new Error("the dashboard did not start");
      const api = await fetch(`${down.baseUrl}/api/overview`);
      assert.equal(api.status, 503);
      const body = (await api.json()) as { error: string; query: string };
      assert.equal(body.error, "clickhouse query failed");
      assert.match(body.query, /^overview\./, "names the failed query, not its parameters");
      const { page } = await open(get(), "/", 1280, "[role=alert]", down.baseUrl);
      assert.match(await text(page, "[role=alert]"), /could not load its data/);
      await page.close();
    });
  });
}
