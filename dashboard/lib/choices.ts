/**
 * The fixed whitelists a URL may choose from. Pure constants (no server code): client
 * components import them too.
 */

/** Trending sort keys the SQL understands (bound as a parameter, never pasted into SQL). */
export const TRENDING_SORTS = ["volume", "change", "move", "trades"] as const;
export type TrendingSort = (typeof TRENDING_SORTS)[number];

/** Candle intervals; each maps to its own rollup statement (lib/data/market.ts). */
export const INTERVALS = ["1m", "1h", "1d"] as const;
export type Interval = (typeof INTERVALS)[number];
