/**
 * Feed freshness, the rule of `pmpipe status` (pmpipe/status.py): a polled feed is fresh while
 * its newest row was received at most `factor x interval + grace` seconds ago (2 x + 30 s by
 * default); an event-driven feed (WebSocket events) has no such expectation.
 */
export type FeedState = "fresh" | "stale" | "empty" | "event-driven";

export interface Freshness {
  state: FeedState;
  ageSecs: number | null;
  /** seconds after which the feed counts as stale; null for event-driven feeds */
  staleAfterSecs: number | null;
}

export function feedFreshness(
  rows: number,
  newestReceivedMs: number | null,
  asOfMs: number,
  intervalSecs: number | null,
  factor: number,
  graceSecs: number,
): Freshness {
  const ageSecs = rows > 0 && newestReceivedMs !== null ? Math.max(asOfMs - newestReceivedMs, 0) / 1000 : null;
  if (intervalSecs === null) {
    return { state: rows === 0 ? "empty" : "event-driven", ageSecs, staleAfterSecs: null };
  }
  const staleAfterSecs = intervalSecs * factor + graceSecs;
  if (ageSecs === null) return { state: "stale", ageSecs, staleAfterSecs };
  return { state: ageSecs <= staleAfterSecs ? "fresh" : "stale", ageSecs, staleAfterSecs };
}
