/** Trending: markets ranked by 24 h volume, volume change and price move. */
import type { TrendingSort } from "../choices";
import { defineQuery } from "./client";
import type { Dec } from "./overview";

export type { TrendingSort };

export type TrendingParams = {
  from: Date;
  prev_from: Date;
  tag: string;
  q: string;
  sort: TrendingSort;
  desc: boolean;
  limit: number;
};

export interface TrendingRow {
  condition_id: string;
  question: string;
  category: string | null;
  tags: string[];
  outcome: string;
  volume_24h: Dec;
  volume_prev: Dec;
  trades_24h: number;
  /** (24 h - previous 24 h) / previous 24 h; null when the previous window had no volume */
  volume_change: number | null;
  /** first outcome: last price in the window minus its first; null without trades */
  price_move: Dec | null;
  price: Dec | null;
}

export const trendingMarkets = defineQuery<TrendingParams, TrendingRow>(
  "trending.markets",
  `
SELECT
    m.condition_id AS condition_id,
    any(m.question) AS question,
    any(m.category) AS category,
    any(m.tags) AS tags,
    any(m.first_outcome) AS outcome,
    round(sum(v.notional_24h), 2) AS volume_24h,
    round(sum(v.notional_prev), 2) AS volume_prev,
    sum(v.trades_24h) AS trades_24h,
    if(volume_prev = 0, NULL, (toFloat64(volume_24h) - toFloat64(volume_prev)) / toFloat64(volume_prev)) AS volume_change,
    anyIf(v.move, v.token_id = m.first_token) AS price_move,
    anyIf(v.last_close, v.token_id = m.first_token) AS price
FROM
(
    SELECT
        condition_id, question, category, tags,
        token_ids[1] AS first_token, outcomes[1] AS first_outcome,
        arrayJoin(token_ids) AS token_id
    FROM markets FINAL
    WHERE NOT archived
      AND ({tag:String} = '' OR has(tags, {tag:String}) OR category = {tag:String})
      AND (positionCaseInsensitiveUTF8(question, {q:String}) > 0
           OR positionCaseInsensitiveUTF8(slug, {q:String}) > 0
           OR condition_id = {q:String})
) AS m
INNER JOIN
(
    SELECT
        token_id,
        sumMergeIf(notional, bucket >= {from:DateTime64(3)}) AS notional_24h,
        sumMergeIf(notional, bucket < {from:DateTime64(3)}) AS notional_prev,
        countMergeIf(trades, bucket >= {from:DateTime64(3)}) AS trades_24h,
        if(trades_24h = 0, NULL,
           argMaxMergeIf(close, bucket >= {from:DateTime64(3)}) - argMinMergeIf(open, bucket >= {from:DateTime64(3)})) AS move,
        argMaxMerge(close) AS last_close
    FROM ohlcv_1h
    WHERE bucket >= {prev_from:DateTime64(3)}
    GROUP BY token_id
) AS v ON v.token_id = m.token_id
GROUP BY m.condition_id
ORDER BY
    multiIf(
        {sort:String} = 'change', volume_change,
        {sort:String} = 'move', abs(toFloat64(price_move)),
        {sort:String} = 'trades', toFloat64(trades_24h),
        toFloat64(volume_24h)
    ) * if({desc:Bool}, -1, 1) ASC NULLS LAST,
    volume_24h DESC,
    condition_id
LIMIT {limit:UInt32}
`,
);

export interface TagRow {
  tag: string;
  markets: number;
}

/** Tags and categories of listed markets, for the filter. */
export const trendingTags = defineQuery<{ limit: number }, TagRow>(
  "trending.tags",
  `
SELECT tag, count() AS markets
FROM
(
    SELECT arrayJoin(arrayDistinct(arrayConcat(
        CAST(tags, 'Array(String)'),
        if(empty(ifNull(category, '')), CAST([], 'Array(String)'), [assumeNotNull(CAST(category, 'Nullable(String)'))])
    ))) AS tag
    FROM markets FINAL
    WHERE NOT archived
)
GROUP BY tag
ORDER BY markets DESC, tag
LIMIT {limit:UInt32}
`,
);
