/**
 * Signals: every one is computed in ClickHouse; the page shows this SQL ("view SQL") with the
 * parameter values it ran with. Thresholds are parameters, never part of the text. The SQL
 * starts with its first keyword (no leading comment), so it can be pasted into
 * `pmpipe query "$SQL"` as shown.
 */
import { defineQuery } from "./client";
import type { Dec } from "./overview";

export interface VolumeSpikeRow {
  condition_id: string;
  question: string;
  outcome: string;
  token_id: string;
  notional_1h: Dec;
  trades_1h: number;
  baseline_hourly: Dec;
  /** null: no volume at all in the baseline (new activity) */
  ratio: number | null;
}

/**
 * USDC volume of the last 60 one-minute buckets against the token's average hour over the 24
 * complete hours before them (Data API trades: the rollups count each fill once).
 */
export const volumeSpikes = defineQuery<
  { hour_from: Date; baseline_from: Date; baseline_to: Date; min_notional: number; min_ratio: number; limit: number },
  VolumeSpikeRow
>(
  "signals.volume_spikes",
  `
SELECT
    m.condition_id AS condition_id, m.question AS question, m.outcome AS outcome, r.token_id AS token_id,
    round(r.notional, 2) AS notional_1h,
    r.trades AS trades_1h,
    round(b.hourly, 2) AS baseline_hourly,
    if(b.hourly = 0, NULL, toFloat64(r.notional) / toFloat64(b.hourly)) AS ratio
FROM
(
    SELECT token_id, sumMerge(notional) AS notional, countMerge(trades) AS trades
    FROM ohlcv_1m
    WHERE bucket >= {hour_from:DateTime64(3)}
    GROUP BY token_id
) AS r
LEFT JOIN
(
    SELECT token_id, sumMerge(notional) / 24 AS hourly
    FROM ohlcv_1h
    WHERE bucket >= {baseline_from:DateTime64(3)} AND bucket < {baseline_to:DateTime64(3)}
    GROUP BY token_id
) AS b ON b.token_id = r.token_id
INNER JOIN
(
    SELECT condition_id, question, token_id, outcome
    FROM markets FINAL
    ARRAY JOIN token_ids AS token_id, arrayResize(outcomes, length(token_ids), '') AS outcome
) AS m ON m.token_id = r.token_id
WHERE toFloat64(r.notional) >= {min_notional:Float64}
  AND toFloat64(r.notional) >= {min_ratio:Float64} * toFloat64(b.hourly)
ORDER BY ratio DESC NULLS FIRST, r.notional DESC, token_id
LIMIT {limit:UInt32}
`,
);

export interface PriceMoveRow {
  condition_id: string;
  question: string;
  outcome: string;
  token_id: string;
  price_from: Dec;
  price_to: Dec;
  move: Dec;
  high: Dec;
  low: Dec;
  trades: number;
}

/**
 * First outcome of each market: the price of its first Data API fill of the last 60 minutes
 * to its last one. Read from the raw fills (the hour's fills are few; merging the minute
 * rollup's argMin/argMax states of every token costs more); fills in the same second are
 * ordered by price, so the result does not depend on insert order.
 */
export const priceMoves = defineQuery<{ hour_ago: Date; min_move: number; limit: number }, PriceMoveRow>(
  "signals.price_moves",
  `
SELECT
    m.condition_id AS condition_id, m.question AS question, m.outcome AS outcome, c.token_id AS token_id,
    c.first_price AS price_from, c.last_price AS price_to, c.last_price - c.first_price AS move,
    c.high_price AS high, c.low_price AS low, c.fills AS trades
FROM
(
    SELECT token_id,
           argMin(price, (source_ts, price)) AS first_price, argMax(price, (source_ts, price)) AS last_price,
           max(price) AS high_price, min(price) AS low_price, count() AS fills
    FROM market_trades
    WHERE source = 'data_api'
      AND source_ts >= {hour_ago:DateTime64(3)}
      AND token_id IN (SELECT token_ids[1] FROM markets FINAL WHERE notEmpty(token_ids))
    GROUP BY token_id
) AS c
INNER JOIN
(
    SELECT condition_id, question, token_ids[1] AS token_id, outcomes[1] AS outcome
    FROM markets FINAL
    WHERE notEmpty(token_ids)
) AS m ON m.token_id = c.token_id
WHERE abs(toFloat64(c.last_price) - toFloat64(c.first_price)) >= {min_move:Float64}
ORDER BY abs(toFloat64(c.last_price) - toFloat64(c.first_price)) DESC, token_id
LIMIT {limit:UInt32}
`,
);

export interface SpreadBlowoutRow {
  condition_id: string;
  question: string;
  outcome: string;
  token_id: string;
  best_bid: Dec | null;
  best_ask: Dec | null;
  spread: Dec;
  median_spread: number;
  ratio: number | null;
  quote_ms: number;
}

/** Latest quoted spread (quoted within the last hour) against the token's median spread over 24 h. */
export const spreadBlowouts = defineQuery<
  { day_ago: Date; hour_ago: Date; min_spread: number; factor: number; limit: number },
  SpreadBlowoutRow
>(
  "signals.spread_blowouts",
  `
SELECT
    m.condition_id AS condition_id, m.question AS question, m.outcome AS outcome, l.token_id AS token_id,
    l.best_bid AS best_bid, l.best_ask AS best_ask, assumeNotNull(l.spread) AS spread,
    round(b.median_spread, 6) AS median_spread,
    if(b.median_spread = 0, NULL, toFloat64(l.spread) / b.median_spread) AS ratio,
    toUnixTimestamp64Milli(assumeNotNull(l.quote_ts)) AS quote_ms
FROM latest_prices AS l
INNER JOIN
(
    SELECT token_id, quantileExact(0.5)(toFloat64(assumeNotNull(spread))) AS median_spread
    FROM market_prices
    WHERE source_ts >= {day_ago:DateTime64(3)} AND spread IS NOT NULL
      AND token_id IN (SELECT token_id FROM latest_prices WHERE toFloat64(spread) >= {min_spread:Float64})
    GROUP BY token_id
) AS b ON b.token_id = l.token_id
INNER JOIN
(
    SELECT condition_id, question, token_id, outcome
    FROM markets FINAL
    ARRAY JOIN token_ids AS token_id, arrayResize(outcomes, length(token_ids), '') AS outcome
) AS m ON m.token_id = l.token_id
WHERE l.spread IS NOT NULL
  AND l.quote_ts >= {hour_ago:DateTime64(3)}
  AND toFloat64(l.spread) >= {min_spread:Float64}
  AND toFloat64(l.spread) >= {factor:Float64} * b.median_spread
ORDER BY toFloat64(l.spread) DESC, token_id
LIMIT {limit:UInt32}
`,
);

export interface BookSumRow {
  condition_id: string;
  question: string;
  outcomes: number;
  bid_sum: number;
  ask_sum: number;
  mid_sum: number;
  oldest_book_ms: number;
}

/**
 * Open markets whose latest books (one per outcome, each from the last hour) have mid prices
 * that do not sum to 1: sum(bid) > 1 or sum(ask) < 1 would be free money, a large gap a
 * broken book.
 */
export const bookSums = defineQuery<{ hour_ago: Date; tolerance: number; limit: number }, BookSumRow>(
  "signals.book_sums",
  `
SELECT
    m.condition_id AS condition_id,
    any(m.question) AS question,
    any(m.n) AS outcomes,
    round(sum(toFloat64(b.bid)), 6) AS bid_sum,
    round(sum(toFloat64(b.ask)), 6) AS ask_sum,
    round(sum((toFloat64(b.bid) + toFloat64(b.ask)) / 2), 6) AS mid_sum,
    toUnixTimestamp64Milli(min(b.ts)) AS oldest_book_ms
FROM
(
    SELECT condition_id, question, length(token_ids) AS n, arrayJoin(token_ids) AS token_id
    FROM markets FINAL
    WHERE length(token_ids) >= 2 AND NOT closed
) AS m
INNER JOIN
(
    SELECT token_id, argMax((best_bid, best_ask), source_ts) AS top, top.1 AS bid, top.2 AS ask, max(source_ts) AS ts
    FROM orderbook_snapshots
    WHERE source_ts >= {hour_ago:DateTime64(3)}
    GROUP BY token_id
) AS b ON b.token_id = m.token_id
WHERE b.bid IS NOT NULL AND b.ask IS NOT NULL
GROUP BY m.condition_id
HAVING count() = any(m.n) AND abs(mid_sum - 1) >= {tolerance:Float64}
ORDER BY abs(mid_sum - 1) DESC, condition_id
LIMIT {limit:UInt32}
`,
);

export interface LargeTradeRow {
  ts_ms: number;
  token_id: string;
  condition_id: string;
  question: string;
  outcome: string;
  side: string;
  price: Dec;
  size: Dec;
  notional: Dec;
  transaction_hash: string | null;
}

/** Data API fills of the last 24 hours worth at least min_notional USDC (WebSocket copies left out). */
export const largeTrades = defineQuery<{ day_ago: Date; min_notional: number; limit: number }, LargeTradeRow>(
  "signals.large_trades",
  `
SELECT
    toUnixTimestamp64Milli(t.source_ts) AS ts_ms, t.token_id AS token_id,
    m.condition_id AS condition_id, m.question AS question, m.outcome AS outcome,
    t.side AS side, t.price AS price, t.size AS size, t.notional AS notional,
    t.transaction_hash AS transaction_hash
FROM
(
    SELECT source_ts, token_id, side, price, size, transaction_hash, trade_key,
           round(CAST(price AS Decimal(38, 6)) * size, 2) AS notional
    FROM market_trades
    WHERE source = 'data_api'
      AND source_ts >= {day_ago:DateTime64(3)}
      AND toFloat64(price) * toFloat64(size) >= {min_notional:Float64}
) AS t
LEFT JOIN
(
    SELECT condition_id, question, token_id, outcome
    FROM markets FINAL
    ARRAY JOIN token_ids AS token_id, arrayResize(outcomes, length(token_ids), '') AS outcome
) AS m ON m.token_id = t.token_id
ORDER BY t.notional DESC, t.source_ts DESC, t.trade_key
LIMIT {limit:UInt32}
`,
);
