import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import type { ShownParam } from "../../lib/data/signals";
import { signalQueries } from "../../lib/queries";
import { asOf, open, screenshot, text } from "./browser";
import { ARTIFACTS, type Stack } from "./stack";

const SIGNALS = [
  ["volume_spikes", signalQueries.volumeSpikes],
  ["price_moves", signalQueries.priceMoves],
  ["spread_blowouts", signalQueries.spreadBlowouts],
  ["book_sums", signalQueries.bookSums],
  ["large_trades", signalQueries.largeTrades],
] as const;

export function signalsSuite(get: () => Stack): void {
  describe("Signals", () => {
    it("shows every signal computed in ClickHouse, equal to its SQL run through pmpipe query", async () => {
      const stack = get();
      const { page, errors, status } = await open(stack, "/signals");
      assert.equal(status, 200);
      assert.ok((await asOf(page)) > 0);
      const response = await fetch(`${stack.baseUrl}/api/signals`);
      const api = (await response.json()) as { signals: { id: string; params: ShownParam[] }[] };
      for (const [id, def] of SIGNALS) {
        const card = page.locator(`[data-testid=signal-${id}]`);
        await card.locator(`[data-testid=sql-toggle-${id}]`).click();
        await card.locator("[data-testid=sql-text]").waitFor();
        // one synchronous read, so a poll cannot land between the figures and their parameters
        const shown = await card.evaluate((el, sid) => ({
          count: Number(el.getAttribute("data-count")),
          sql: el.querySelector("[data-testid=sql-text]")?.textContent?.trim() ?? "",
          params: Array.from(el.querySelectorAll(`[data-testid=sql-${sid}] table tr`), (tr) => Array.from(tr.querySelectorAll("td"), (td) => td.textContent ?? "")),
          first: el.querySelector("[data-testid=signal-row] td[data-value]")?.getAttribute("data-value") ?? null,
        }), id);
        assert.equal(shown.sql, def.sql, `${id}: the SQL shown is the SQL that ran`);
        const params = Object.fromEntries(shown.params.map(([name, value]) => [name as string, value as string]));
        assert.deepEqual(Object.keys(params).sort(), (api.signals.find((s) => s.id === id)?.params ?? []).map((p) => p.name).sort());
        const rows = await stack.pmQuery(def.sql, params);
        assert.equal(shown.count, rows.length, `${id}: row count`);
        assert.ok(rows.length > 0, `${id}: the fixture triggers this signal`);
        assert.ok(shown.first !== null && rows[0]?.includes(shown.first), `${id}: first row's figure ${shown.first} is in ${rows[0]?.join(" | ")}`);
      }
      const f = stack.fixture.special;
      assert.match(await text(page, "[data-testid=signal-volume_spikes]"), new RegExp(f.spike.question.slice(0, 20)));
      assert.match(await text(page, "[data-testid=signal-price_moves]"), new RegExp(f.mover.question.slice(0, 20)));
      assert.match(await text(page, "[data-testid=signal-spread_blowouts]"), new RegExp(f.spread.question.slice(0, 20)));
      assert.match(await text(page, "[data-testid=signal-book_sums]"), new RegExp(f.bookSum.question.slice(0, 20)));
      assert.deepEqual(errors, []);
      mkdirSync(join(ARTIFACTS, "screenshots"), { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "screenshots", "signals-sql-open-1280.png"), fullPage: true });
      await page.close();
    });

    it("writes screenshots at 375 px and 1280 px", async () => {
      const files = await screenshot(get(), "/signals", "signals", "[data-testid=signals]");
      assert.equal(files.length, 2);
    });
  });
}
