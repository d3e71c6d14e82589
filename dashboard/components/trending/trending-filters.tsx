"use client";

import Link from "next/link";

import { Button } from "@/components/ui/button";
import { Input, NativeSelect } from "@/components/ui/input";
import type { TagRow, TrendingSort } from "@/lib/queries/trending";
import { MAX_SEARCH_CHARS, trendingSearch, type TrendingQuery } from "@/lib/params";
import { cn } from "@/lib/utils";

export const SORT_LABEL: Record<TrendingSort, string> = { volume: "24 h volume", change: "volume change", move: "price move", trades: "trades" };

/** Search and tag filter: a plain GET form (works without JavaScript); ranking links below. */
export function TrendingFilters({ query, tags }: { query: TrendingQuery; tags: TagRow[] }) {
  return (
    <div className="space-y-3">
      <form action="/trending" method="get" className="flex flex-col gap-2 sm:flex-row" role="search">
        <Input type="search" name="q" defaultValue={query.q} placeholder="Search questions…" aria-label="Search questions" maxLength={MAX_SEARCH_CHARS} className="sm:max-w-sm" data-testid="trending-search" />
        <NativeSelect name="tag" defaultValue={query.tag} aria-label="Tag or category" onChange={(e) => e.currentTarget.form?.requestSubmit()} data-testid="trending-tag">
          <option value="">All tags</option>
          {tags.map((t) => (
            <option key={t.tag} value={t.tag}>
              {t.tag} ({t.markets})
            </option>
          ))}
        </NativeSelect>
        {query.sort !== "volume" ? <input type="hidden" name="sort" value={query.sort} /> : null}
        {!query.desc ? <input type="hidden" name="dir" value="asc" /> : null}
        <Button type="submit" variant="outline">
          Search
        </Button>
      </form>
      <div className="flex flex-wrap items-center gap-1 text-xs" aria-label="Rank by">
        <span className="pr-1 text-muted-foreground">Rank by</span>
        {(Object.keys(SORT_LABEL) as TrendingSort[]).map((sort) => (
          <Link
            key={sort}
            href={`/trending${trendingSearch({ ...query, sort, desc: true })}`}
            className={cn("rounded-md border px-2 py-1", query.sort === sort ? "bg-primary text-primary-foreground" : "hover:bg-muted")}
            data-testid={`rank-${sort}`}
          >
            {SORT_LABEL[sort]}
          </Link>
        ))}
      </div>
    </div>
  );
}
