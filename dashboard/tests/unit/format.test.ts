import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatAge, formatChange, formatDuration, formatInt, formatMove, formatPrice, formatUsd, formatUsdCompact, formatUtc } from "../../lib/format";

describe("format", () => {
  it("formats USDC exactly to the cent and compactly without ICU's compact notation", () => {
    assert.equal(formatUsd("397622.98"), "$397,622.98");
    assert.equal(formatUsd(null), "–");
    assert.equal(formatUsdCompact("950.25"), "$950.25");
    assert.equal(formatUsdCompact("13000"), "$13.0K");
    assert.equal(formatUsdCompact("143773.88"), "$143.8K");
    assert.equal(formatUsdCompact("999950"), "$1.0M");
    assert.equal(formatUsdCompact("-2500000"), "-$2.5M");
  });

  it("shows prices as cents and moves with their sign", () => {
    assert.equal(formatPrice("0.62"), "62¢");
    assert.equal(formatPrice("0.535"), "53.5¢");
    assert.equal(formatMove("0.32"), "+32¢");
    assert.equal(formatMove("-0.15"), "−15¢");
    assert.equal(formatMove("0"), "±0¢");
    assert.equal(formatChange(2.3586), "+235.9%");
    assert.equal(formatChange(null), "new");
    assert.equal(formatInt(5932), "5,932");
  });

  it("writes UTC times and ages relative to the data's as-of instant", () => {
    const asOf = Date.UTC(2026, 0, 31, 14, 5, 9);
    assert.equal(formatUtc(asOf), "2026-01-31 14:05:09 UTC");
    assert.equal(formatAge(asOf - 12_000, asOf), "12s ago");
    assert.equal(formatAge(asOf - 185_000, asOf), "3m 5s ago");
    assert.equal(formatAge(asOf + 2 * 3_600_000, asOf), "in 2h 0m");
    assert.equal(formatAge(asOf, asOf), "now");
    assert.equal(formatDuration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
  });
});
