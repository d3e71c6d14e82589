/** Overview: market counts, 24 h volume and trades, top movers, newest markets, pipeline. */
import { defineQuery } from "./client";

/** Decimal values arrive as exact strings. */
export type Dec = string;

export interface MarketCountsRow {
  total_markets: number;
  active_markets: number;
  closed_markets: number;
}

export const marketCounts = defineQuery<Record<string, never>, MarketCountsRow>(
  "overview.market_counts",
  `
SELECT
    count() AS total_markets,
    countIf(active AND NOT closed) AS active_markets,
    countIf(closed) AS closed_markets
FROM markets FINAL
`,
);

export interface VolumeTotalsRow {
  notional_24h: Dec;
  shares_24h: Dec;
  trades_24h: number;
  tokens_24h: number;
}

/** Data API trades only: the rollups are fed by source = 'data_api'. Reads the hourly
 * -State rollup directly: one merge for the whole window. */
export const volume24h = defineQuery<{ from: Date }, VolumeTotalsRow>(
  "overview.volume_24h",
  `
SELECT
    round(sumMerge(notional), 2) AS notional_24h,
    round(sumMerge(volume), 2) AS shares_24h,
    countMerge(trades) AS trades_24h,
    uniqExact(token_id) AS tokens_24h
FROM ohlcv_1h
WHERE bucket >= {from:DateTime64(3)}
`,
);

export interface MoverRow {
  condition_id: string;
  question: string;
  outcome: string;
  token_id: string;
  open: Dec;
  close: Dec;
  change: Dec;
  notional: Dec;
}

/**
 * Price change of each market's first outcome over the 24 h window: its first fill's price to
 * its last (argMin/argMax merged over the window's hourly states, exact tie-breaks).
 */
export const topMovers = defineQuery<{ from: Date; limit: number }, MoverRow>(
  "overview.top_movers",
  `
SELECT
    m.condition_id AS condition_id,
    m.question AS question,
    m.outcome AS outcome,
    c.token_id AS token_id,
    c.first_price AS open,
    c.last_price AS close,
    c.last_price - c.first_price AS change,
    round(c.notional_sum, 2) AS notional
FROM
(
    SELECT token_id, argMinMerge(open) AS first_price, argMaxMerge(close) AS last_price, sumMerge(notional) AS notional_sum
    FROM ohlcv_1h
    WHERE bucket >= {from:DateTime64(3)}
      AND token_id IN (SELECT token_ids[1] FROM markets FINAL WHERE notEmpty(token_ids))
    GROUP BY token_id
) AS c
INNER JOIN
(
    SELECT condition_id, question, token_ids[1] AS token_id, outcomes[1] AS outcome
    FROM markets FINAL
    WHERE notEmpty(token_ids)
) AS m ON m.token_id = c.token_id
ORDER BY abs(c.last_price - c.first_price) DESC, c.notional_sum DESC, m.condition_id
LIMIT {limit:UInt32}
`,
);

export interface NewMarketRow {
  condition_id: string;
  question: string;
  category: string | null;
  tags: string[];
  created_ms: number;
  active: boolean;
  closed: boolean;
}

export const newestMarkets = defineQuery<{ limit: number }, NewMarketRow>(
  "overview.newest_markets",
  `
SELECT
    condition_id,
    question,
    category,
    tags,
    toUnixTimestamp64Milli(coalesce(created_at, start_date, source_ts)) AS created_ms,
    active,
    closed
FROM markets FINAL
ORDER BY created_ms DESC, condition_id
LIMIT {limit:UInt32}
`,
);

export interface FeedRow {
  feed: "markets" | "prices" | "trades" | "books" | "events";
  rows: number;
  newest_received_ms: number | null;
  newest_source_ms: number | null;
  rows_1h: number;
  delay_p50_ms: number | null;
}

/**
 * Per feed: rows, newest receive and source time, rows received in the last hour and the
 * median source-to-receive delay over that hour (null without rows in that hour), what
 * `pmpipe status` reports per table.
 */
export const pipelineFeeds = defineQuery<{ hour_ago: Date }, FeedRow>(
  "overview.pipeline_feeds",
  `
SELECT
    'markets' AS feed, count() AS rows,
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(received_ts))) AS newest_received_ms,
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(source_ts))) AS newest_source_ms,
    countIf(received_ts >= {hour_ago:DateTime64(3)}) AS rows_1h,
    if(rows_1h = 0, NULL, toInt64(ifNotFinite(quantileIf(0.5)(dateDiff('millisecond', source_ts, received_ts), received_ts >= {hour_ago:DateTime64(3)}), 0))) AS delay_p50_ms
FROM markets
UNION ALL
SELECT
    'prices', count() AS rows,
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(received_ts))),
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(source_ts))),
    countIf(received_ts >= {hour_ago:DateTime64(3)}) AS rows_1h,
    if(rows_1h = 0, NULL, toInt64(ifNotFinite(quantileIf(0.5)(dateDiff('millisecond', source_ts, received_ts), received_ts >= {hour_ago:DateTime64(3)}), 0)))
FROM market_prices
UNION ALL
SELECT
    'trades', count() AS rows,
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(received_ts))),
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(source_ts))),
    countIf(received_ts >= {hour_ago:DateTime64(3)}) AS rows_1h,
    if(rows_1h = 0, NULL, toInt64(ifNotFinite(quantileIf(0.5)(dateDiff('millisecond', source_ts, received_ts), received_ts >= {hour_ago:DateTime64(3)}), 0)))
FROM market_trades
UNION ALL
SELECT
    'books', count() AS rows,
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(received_ts))),
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(source_ts))),
    countIf(received_ts >= {hour_ago:DateTime64(3)}) AS rows_1h,
    if(rows_1h = 0, NULL, toInt64(ifNotFinite(quantileIf(0.5)(dateDiff('millisecond', source_ts, received_ts), received_ts >= {hour_ago:DateTime64(3)}), 0)))
FROM orderbook_snapshots
UNION ALL
SELECT
    'events', count() AS rows,
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(received_ts))),
    if(rows = 0, NULL, toUnixTimestamp64Milli(max(source_ts))),
    countIf(received_ts >= {hour_ago:DateTime64(3)}) AS rows_1h,
    if(rows_1h = 0, NULL, toInt64(ifNotFinite(quantileIf(0.5)(dateDiff('millisecond', source_ts, received_ts), received_ts >= {hour_ago:DateTime64(3)}), 0)))
FROM market_events
`,
);

export interface ContinuitySummaryRow {
  events: number;
  gaps: number;
  open_gaps: number;
  gap_ms: number;
  disconnects: number;
  silences: number;
  resubscribes: number;
  last_event_ms: number | null;
}

/** Continuity events the producers recorded in the window (gaps are data, not silence). */
export const continuitySummary = defineQuery<{ from: Date }, ContinuitySummaryRow>(
  "overview.continuity_summary",
  `
SELECT
    count() AS events,
    countIf(event_type = 'gap') AS gaps,
    countIf(event_type = 'gap' AND gap_end IS NULL) AS open_gaps,
    toInt64(sumIf(dateDiff('millisecond', gap_start, gap_end), event_type = 'gap' AND gap_start IS NOT NULL AND gap_end IS NOT NULL)) AS gap_ms,
    countIf(event_type = 'disconnected') AS disconnects,
    countIf(event_type = 'silent') AS silences,
    countIf(event_type = 'resubscribed') AS resubscribes,
    if(events = 0, NULL, toUnixTimestamp64Milli(max(source_ts))) AS last_event_ms
FROM market_events
WHERE category = 'continuity' AND source_ts >= {from:DateTime64(3)}
`,
);

export interface ContinuityEventRow {
  event_type: string;
  ts_ms: number;
  connection_id: string | null;
  gap_start_ms: number | null;
  gap_end_ms: number | null;
  tokens: number;
  detail: string | null;
}

export const continuityEvents = defineQuery<{ from: Date; limit: number }, ContinuityEventRow>(
  "overview.continuity_events",
  `
SELECT
    event_type,
    toUnixTimestamp64Milli(source_ts) AS ts_ms,
    connection_id,
    toUnixTimestamp64Milli(gap_start) AS gap_start_ms,
    toUnixTimestamp64Milli(gap_end) AS gap_end_ms,
    toUInt32(length(token_ids)) AS tokens,
    substring(detail, 1, 200) AS detail
FROM market_events
WHERE category = 'continuity' AND source_ts >= {from:DateTime64(3)}
ORDER BY source_ts DESC
LIMIT {limit:UInt32}
`,
);
