/**
 * Validation of everything that comes from a URL. Choices (intervals, sort keys) are looked
 * up in fixed whitelists; free text is bounded and only ever bound as a query parameter.
 */
import { INTERVALS, TRENDING_SORTS, type Interval, type TrendingSort } from "./choices";

export { INTERVALS, TRENDING_SORTS, type Interval, type TrendingSort };

export type SearchParams = Record<string, string | string[] | undefined>;

/** Longer than any question or slug: a longer needle cannot match, so it is not sent. */
export const MAX_SEARCH_CHARS = 200;
export const MAX_TAG_CHARS = 100;
/** condition ids are 66 characters, token ids at most 78 digits */
export const MAX_ID_CHARS = 100;

export function first(value: string | string[] | undefined): string {
  if (Array.isArray(value)) return value[0] ?? "";
  return value ?? "";
}

function pick<T extends string>(allowed: readonly T[], raw: string, fallback: T): T {
  return (allowed as readonly string[]).includes(raw) ? (raw as T) : fallback;
}

export function parseInterval(raw: string): Interval {
  return pick(INTERVALS, raw, "1h");
}

/** Outcome index into the market's token list; anything else selects the first. */
export function parseOutcome(raw: string, count: number): number {
  if (!/^\d{1,3}$/.test(raw)) return 0;
  const n = Number(raw);
  return n < count ? n : 0;
}

/** A market id from the path: a condition id or a token id. Null: answer 404 unseen. */
export function parseMarketId(raw: string): string | null {
  const id = raw.trim();
  if (id.length === 0 || id.length > MAX_ID_CHARS) return null;
  return id;
}

export interface TrendingQuery {
  sort: TrendingSort;
  desc: boolean;
  tag: string;
  q: string;
  /** the search or tag text is longer than anything it could match */
  tooLong: boolean;
}

export function parseTrendingQuery(sp: SearchParams): TrendingQuery {
  const q = first(sp.q).trim();
  const tag = first(sp.tag).trim();
  return {
    sort: pick(TRENDING_SORTS, first(sp.sort), "volume"),
    desc: first(sp.dir) !== "asc",
    tag: tag.length > MAX_TAG_CHARS ? "" : tag,
    q: q.length > MAX_SEARCH_CHARS ? "" : q,
    tooLong: q.length > MAX_SEARCH_CHARS || tag.length > MAX_TAG_CHARS,
  };
}

export function trendingSearch(t: TrendingQuery): string {
  const params = new URLSearchParams();
  if (t.sort !== "volume") params.set("sort", t.sort);
  if (!t.desc) params.set("dir", "asc");
  if (t.tag) params.set("tag", t.tag);
  if (t.q) params.set("q", t.q);
  const s = params.toString();
  return s ? `?${s}` : "";
}

export function searchParamsOf(url: URL): SearchParams {
  const out: SearchParams = {};
  for (const key of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(key);
    out[key] = all.length === 1 ? all[0] : all;
  }
  return out;
}
