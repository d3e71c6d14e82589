import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { dashboardSettings } from "../../lib/config";
import { feedFreshness } from "../../lib/freshness";

describe("feed freshness (the rule of pmpipe status)", () => {
  const now = 1_800_000_000_000;

  it("is fresh up to 2 x interval + 30 s, stale after", () => {
    assert.equal(feedFreshness(10, now - 90_000, now, 30, 2, 30).state, "fresh");
    const stale = feedFreshness(10, now - 90_001, now, 30, 2, 30);
    assert.equal(stale.state, "stale");
    assert.equal(stale.staleAfterSecs, 90);
    assert.equal(stale.ageSecs, 90.001);
  });

  it("counts an empty polled feed as stale and never judges event-driven feeds", () => {
    assert.equal(feedFreshness(0, null, now, 60, 2, 30).state, "stale");
    assert.equal(feedFreshness(5, now - 86_400_000, now, null, 2, 30).state, "event-driven");
    assert.equal(feedFreshness(0, null, now, null, 2, 30).state, "empty");
  });

  it("takes the pipeline's interval variables, with its defaults", () => {
    const defaults = dashboardSettings({});
    assert.deepEqual(defaults.feedIntervalSecs, { markets: 300, prices: 30, trades: 60, books: 60, events: null });
    assert.equal(defaults.staleGraceSecs, 30);
    assert.equal(defaults.pollMs, 10_000);
    assert.equal(dashboardSettings({ PMPIPE_PRICES_INTERVAL_SECS: "15", DASHBOARD_POLL_MS: "1500" }).feedIntervalSecs.prices, 15);
    assert.throws(() => dashboardSettings({ DASHBOARD_POLL_MS: "often" }), /DASHBOARD_POLL_MS/);
  });
});
