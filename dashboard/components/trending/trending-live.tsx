"use client";

import { Card, CardContent } from "@/components/ui/card";
import { Empty } from "@/components/empty";
import { LiveStatus } from "@/components/live-status";
import { usePoll } from "@/components/use-poll";
import type { TrendingData } from "@/lib/data/trending";
import { MAX_SEARCH_CHARS } from "@/lib/params";

import { SORT_LABEL, TrendingFilters } from "./trending-filters";
import { TrendingTable } from "./trending-table";

export function TrendingLive({ initial, pollMs, apiUrl }: { initial: TrendingData; pollMs: number; apiUrl: string }) {
  const { data, error, polling } = usePoll<TrendingData>(apiUrl, initial, pollMs);
  const { query } = data;
  return (
    <div className="space-y-4" data-testid="trending">
      <div className="flex flex-wrap items-end justify-between gap-2">
        <div>
          <h1 className="text-xl font-semibold tracking-tight">Trending</h1>
          <p className="text-xs text-muted-foreground">
            Markets traded in the last 48 h, ranked by {SORT_LABEL[query.sort]} ({query.desc ? "highest" : "lowest"} first). 24 h = the current hour and the 23 before it.
          </p>
        </div>
        <LiveStatus asOfMs={data.asOfMs} pollMs={pollMs} error={error} polling={polling} />
      </div>
      <TrendingFilters query={query} tags={data.tags} />
      <Card>
        <CardContent className="px-2 pt-2 sm:px-4">
          {query.tooLong ? (
            <Empty title="No market matches">Search text longer than {MAX_SEARCH_CHARS} characters cannot match any question.</Empty>
          ) : data.rows.length === 0 ? (
            <Empty title="No market matches">{query.q || query.tag ? "Nothing traded in 48 h matches this search or tag." : "No market traded in the last 48 h."}</Empty>
          ) : (
            <TrendingTable rows={data.rows} query={query} />
          )}
        </CardContent>
      </Card>
    </div>
  );
}
