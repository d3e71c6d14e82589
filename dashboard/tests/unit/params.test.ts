import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { clickHouseSettings } from "../../lib/config";
import { MAX_SEARCH_CHARS, parseInterval, parseMarketId, parseOutcome, parseTrendingQuery, trendingSearch } from "../../lib/params";
import { unixParam, windowsAt } from "../../lib/windows";

describe("URL parameters", () => {
  it("chooses intervals and sort keys from whitelists only", () => {
    assert.equal(parseInterval("1m"), "1m");
    assert.equal(parseInterval("1h; DROP TABLE markets"), "1h");
    const t = parseTrendingQuery({ sort: "volume_24h DESC; --", dir: "sideways", q: "  bitcoin ", tag: "crypto" });
    assert.deepEqual(t, { sort: "volume", desc: true, tag: "crypto", q: "bitcoin", tooLong: false });
    assert.equal(parseTrendingQuery({ sort: ["move", "change"], dir: "asc" }).sort, "move");
    assert.equal(trendingSearch({ sort: "move", desc: false, tag: "a&b", q: "x'y", tooLong: false }), "?sort=move&dir=asc&tag=a%26b&q=x%27y");
  });

  it("refuses ids and search text longer than anything they could match", () => {
    assert.equal(parseMarketId("x".repeat(101)), null);
    assert.equal(parseMarketId("   "), null);
    assert.equal(parseMarketId("'; DROP TABLE markets; --"), "'; DROP TABLE markets; --");
    const long = parseTrendingQuery({ q: "a".repeat(MAX_SEARCH_CHARS + 1) });
    assert.equal(long.tooLong, true);
    assert.equal(long.q, "");
    assert.equal(parseOutcome("1", 2), 1);
    assert.equal(parseOutcome("2", 2), 0);
    assert.equal(parseOutcome("-1", 2), 0);
    assert.equal(parseOutcome("1e3", 2), 0);
  });

  it("reads ClickHouse settings with the Vercel names and defaults to the embedded endpoint", () => {
    assert.deepEqual(clickHouseSettings({}), { url: "http://127.0.0.1:8123", user: "default", password: "", database: "polymarket" });
    assert.throws(() => clickHouseSettings({ CLICKHOUSE_DB: "x; DROP" }), /CLICKHOUSE_DB/);
    assert.throws(() => clickHouseSettings({ CLICKHOUSE_URL: "ftp://host" }), /CLICKHOUSE_URL/);
  });
});

describe("windows", () => {
  it("derive every window from one as-of instant", () => {
    const asOf = Date.UTC(2026, 0, 31, 14, 5, 9, 250);
    const w = windowsAt(asOf);
    assert.equal(w.dayFrom.toISOString(), "2026-01-30T15:00:00.000Z");
    assert.equal(w.prevDayFrom.toISOString(), "2026-01-29T15:00:00.000Z");
    assert.equal(w.hourFrom.toISOString(), "2026-01-31T13:06:00.000Z");
    assert.equal(w.baselineTo.toISOString(), "2026-01-31T13:00:00.000Z");
    assert.equal(w.baselineFrom.toISOString(), "2026-01-30T13:00:00.000Z");
    assert.equal(w.dayAgo.getTime(), asOf - 86_400_000);
  });

  it("send Dates the way @clickhouse/client does (Unix seconds, milliseconds if any)", () => {
    assert.equal(unixParam(new Date(Date.UTC(2026, 0, 1))), "1767225600");
    assert.equal(unixParam(new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 90))), "1767225600.090");
  });
});
