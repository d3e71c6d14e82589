/** Trending rows for a validated sort, direction, tag and search text. */
import { trendingQueries as q } from "../queries";
import type { TagRow, TrendingRow } from "../queries/trending";
import type { TrendingQuery } from "../params";
import { windowsAt } from "../windows";

export interface TrendingData {
  asOfMs: number;
  query: TrendingQuery;
  rows: TrendingRow[];
  tags: TagRow[];
}

const TRENDING_LIMIT = 100;

export async function loadTrending(query: TrendingQuery, asOfMs: number = Date.now()): Promise<TrendingData> {
  const w = windowsAt(asOfMs);
  const [rows, tags] = await Promise.all([
    query.tooLong
      ? Promise.resolve<TrendingRow[]>([])
      : q.trendingMarkets.run({ from: w.dayFrom, prev_from: w.prevDayFrom, tag: query.tag, q: query.q, sort: query.sort, desc: query.desc, limit: TRENDING_LIMIT }),
    q.trendingTags.run({ limit: 40 }),
  ]);
  return { asOfMs, query, rows, tags };
}
