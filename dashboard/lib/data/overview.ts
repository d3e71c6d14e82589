/** Everything the Overview shows, as one serialisable object (page and /api/overview). */
import { dashboardSettings, type Feed } from "../config";
import { feedFreshness, type Freshness } from "../freshness";
import { overviewQueries as q } from "../queries";
import type { ContinuityEventRow, ContinuitySummaryRow, FeedRow, MarketCountsRow, MoverRow, NewMarketRow, VolumeTotalsRow } from "../queries/overview";
import { windowsAt } from "../windows";

export interface FeedStatus extends FeedRow, Freshness {
  intervalSecs: number | null;
}

export interface OverviewData {
  asOfMs: number;
  counts: MarketCountsRow;
  volume: VolumeTotalsRow;
  movers: MoverRow[];
  newest: NewMarketRow[];
  feeds: FeedStatus[];
  continuity: ContinuitySummaryRow;
  continuityEvents: ContinuityEventRow[];
}

const FEED_ORDER: Feed[] = ["markets", "prices", "trades", "books", "events"];

export async function loadOverview(asOfMs: number = Date.now()): Promise<OverviewData> {
  const w = windowsAt(asOfMs);
  const settings = dashboardSettings();
  const [counts, volume, movers, newest, feeds, continuity, events] = await Promise.all([
    q.marketCounts.run({}),
    q.volume24h.run({ from: w.dayFrom }),
    q.topMovers.run({ from: w.dayFrom, limit: 8 }),
    q.newestMarkets.run({ limit: 8 }),
    q.pipelineFeeds.run({ hour_ago: w.hourAgo }),
    q.continuitySummary.run({ from: w.dayAgo }),
    q.continuityEvents.run({ from: w.dayAgo, limit: 8 }),
  ]);
  const byFeed = new Map(feeds.map((f) => [f.feed, f]));
  return {
    asOfMs,
    counts: counts[0] ?? { total_markets: 0, active_markets: 0, closed_markets: 0 },
    volume: volume[0] ?? { notional_24h: "0", shares_24h: "0", trades_24h: 0, tokens_24h: 0 },
    movers,
    newest,
    feeds: FEED_ORDER.map((feed) => {
      const row = byFeed.get(feed) ?? { feed, rows: 0, newest_received_ms: null, newest_source_ms: null, rows_1h: 0, delay_p50_ms: null };
      const intervalSecs = settings.feedIntervalSecs[feed];
      return {
        ...row,
        intervalSecs,
        ...feedFreshness(row.rows, row.newest_received_ms, asOfMs, intervalSecs, settings.staleFactor, settings.staleGraceSecs),
      };
    }),
    continuity: continuity[0] ?? { events: 0, gaps: 0, open_gaps: 0, gap_ms: 0, disconnects: 0, silences: 0, resubscribes: 0, last_event_ms: null },
    continuityEvents: events,
  };
}
