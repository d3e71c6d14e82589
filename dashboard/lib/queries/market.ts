/** Market Detail: one market, its outcomes' latest prices, candles, book, trades and gaps. */
import { defineQuery } from "./client";
import type { Dec } from "./overview";

export interface MarketRow {
  condition_id: string;
  market_id: string;
  question: string;
  slug: string;
  description: string | null;
  outcomes: string[];
  token_ids: string[];
  outcome_prices: Dec[];
  event_title: string | null;
  category: string | null;
  tags: string[];
  active: boolean;
  closed: boolean;
  archived: boolean;
  accepting_orders: boolean;
  neg_risk: boolean;
  tick_size: Dec | null;
  volume: Dec | null;
  liquidity: Dec | null;
  end_ms: number | null;
  created_ms: number | null;
  updated_ms: number;
}

/** `id` is a condition id or one of the market's token ids. */
export const marketById = defineQuery<{ id: string }, MarketRow>(
  "market.by_id",
  `
SELECT
    condition_id, market_id, question, slug, description, outcomes, token_ids, outcome_prices,
    event_title, category, tags, active, closed, archived, accepting_orders, neg_risk,
    tick_size, volume, liquidity,
    toUnixTimestamp64Milli(end_date) AS end_ms,
    toUnixTimestamp64Milli(created_at) AS created_ms,
    toUnixTimestamp64Milli(source_ts) AS updated_ms
FROM markets FINAL
WHERE condition_id = {id:String} OR has(token_ids, {id:String})
ORDER BY condition_id
LIMIT 1
`,
);

export interface QuoteRow {
  token_id: string;
  best_bid: Dec | null;
  best_ask: Dec | null;
  mid: Dec | null;
  spread: Dec | null;
  quote_ms: number | null;
  last_trade_price: Dec | null;
  last_trade_side: string | null;
  last_trade_ms: number | null;
}

export const latestQuotes = defineQuery<{ tokens: readonly string[] }, QuoteRow>(
  "market.latest_quotes",
  `
SELECT
    token_id, best_bid, best_ask, mid, spread,
    toUnixTimestamp64Milli(quote_ts) AS quote_ms,
    last_trade_price, last_trade_side,
    toUnixTimestamp64Milli(last_trade_ts) AS last_trade_ms
FROM latest_prices
WHERE token_id IN {tokens:Array(String)}
`,
);

export interface TokenVolumeRow {
  token_id: string;
  notional_24h: Dec;
  shares_24h: Dec;
  trades_24h: number;
}

/** 24 h volume per outcome token (hourly rollup, Data API trades). */
export const tokenVolume24h = defineQuery<{ tokens: readonly string[]; from: Date }, TokenVolumeRow>(
  "market.token_volume_24h",
  `
SELECT token_id, round(sum(notional), 2) AS notional_24h, round(sum(volume), 2) AS shares_24h, sum(trades) AS trades_24h
FROM ohlcv_1h_candles
WHERE token_id IN {tokens:Array(String)} AND bucket >= {from:DateTime64(3)}
GROUP BY token_id
`,
);

export interface CandleRow {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  notional: number;
  trades: number;
}

export const candles1m = defineQuery<{ token: string; from: Date }, CandleRow>(
  "market.candles_1m",
  `
SELECT
    toUnixTimestamp(bucket) AS time,
    toFloat64(open) AS open, toFloat64(high) AS high, toFloat64(low) AS low, toFloat64(close) AS close,
    toFloat64(volume) AS volume, toFloat64(notional) AS notional, trades
FROM ohlcv_1m_candles
WHERE token_id = {token:String} AND bucket >= {from:DateTime64(3)}
ORDER BY bucket
`,
);

export const candles1h = defineQuery<{ token: string; from: Date }, CandleRow>(
  "market.candles_1h",
  `
SELECT
    toUnixTimestamp(bucket) AS time,
    toFloat64(open) AS open, toFloat64(high) AS high, toFloat64(low) AS low, toFloat64(close) AS close,
    toFloat64(volume) AS volume, toFloat64(notional) AS notional, trades
FROM ohlcv_1h_candles
WHERE token_id = {token:String} AND bucket >= {from:DateTime64(3)}
ORDER BY bucket
`,
);

/** Daily candles: the hourly -State rollup merged per UTC day (exact open/close tie-breaks). */
export const candles1d = defineQuery<{ token: string; from: Date }, CandleRow>(
  "market.candles_1d",
  `
SELECT
    toUnixTimestamp(toStartOfDay(bucket)) AS time,
    toFloat64(argMinMerge(open)) AS open, toFloat64(maxMerge(high)) AS high,
    toFloat64(minMerge(low)) AS low, toFloat64(argMaxMerge(close)) AS close,
    toFloat64(sumMerge(volume)) AS volume, toFloat64(sumMerge(notional)) AS notional,
    countMerge(trades) AS trades
FROM ohlcv_1h
WHERE token_id = {token:String} AND bucket >= {from:DateTime64(3)}
GROUP BY time
ORDER BY time
`,
);

export interface BookRow {
  source: string;
  ts_ms: number;
  received_ms: number;
  bid_prices: Dec[];
  bid_sizes: Dec[];
  bid_cum: Dec[];
  ask_prices: Dec[];
  ask_sizes: Dec[];
  ask_cum: Dec[];
  bid_levels: number;
  ask_levels: number;
  best_bid: Dec | null;
  best_ask: Dec | null;
  hash_ok: boolean | null;
}

/** The token's latest snapshot, best `levels` per side, with cumulative sizes for depth. */
export const latestBook = defineQuery<{ token: string; levels: number }, BookRow>(
  "market.latest_book",
  `
SELECT
    source,
    toUnixTimestamp64Milli(source_ts) AS ts_ms,
    toUnixTimestamp64Milli(received_ts) AS received_ms,
    arraySlice(bid_prices, 1, {levels:UInt32}) AS bid_prices,
    arraySlice(bid_sizes, 1, {levels:UInt32}) AS bid_sizes,
    arrayCumSum(arraySlice(bid_sizes, 1, {levels:UInt32})) AS bid_cum,
    arraySlice(ask_prices, 1, {levels:UInt32}) AS ask_prices,
    arraySlice(ask_sizes, 1, {levels:UInt32}) AS ask_sizes,
    arrayCumSum(arraySlice(ask_sizes, 1, {levels:UInt32})) AS ask_cum,
    bid_levels, ask_levels, best_bid, best_ask, hash_ok
FROM orderbook_snapshots
WHERE token_id = {token:String}
ORDER BY source_ts DESC, received_ts DESC
LIMIT 1
`,
);

export interface TradeRow {
  ts_ms: number;
  token_id: string;
  outcome: string | null;
  side: string;
  price: Dec;
  size: Dec;
  notional: Dec;
  source: string;
  transaction_hash: string | null;
}

export const recentTrades = defineQuery<{ tokens: readonly string[]; limit: number }, TradeRow>(
  "market.recent_trades",
  `
SELECT
    toUnixTimestamp64Milli(source_ts) AS ts_ms,
    token_id, outcome, side, price, size,
    round(CAST(price AS Decimal(38, 6)) * size, 2) AS notional,
    source, transaction_hash
FROM market_trades
WHERE token_id IN {tokens:Array(String)}
ORDER BY source_ts DESC, trade_key DESC
LIMIT {limit:UInt32}
`,
);

export interface MarketGapRow {
  event_type: string;
  ts_ms: number;
  connection_id: string | null;
  gap_start_ms: number | null;
  gap_end_ms: number | null;
  tokens: number;
  detail: string | null;
}

/** Continuity events that cover this market: its condition, one of its tokens, or a
 * connection-wide event listing one of them. */
export const marketGaps = defineQuery<{ condition: string; tokens: readonly string[]; from: Date; limit: number }, MarketGapRow>(
  "market.gaps",
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
WHERE category = 'continuity'
  AND source_ts >= {from:DateTime64(3)}
  AND (condition_id = {condition:String} OR token_id IN {tokens:Array(String)} OR hasAny(token_ids, {tokens:Array(String)}))
ORDER BY source_ts DESC
LIMIT {limit:UInt32}
`,
);
