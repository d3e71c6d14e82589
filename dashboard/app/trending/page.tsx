import type { Metadata } from "next";
import { Suspense } from "react";

import { PageSkeleton } from "@/components/page-skeleton";
import { TrendingLive } from "@/components/trending/trending-live";
import { dashboardSettings } from "@/lib/config";
import { loadTrending } from "@/lib/data/trending";
import { parseTrendingQuery, trendingSearch, type SearchParams, type TrendingQuery } from "@/lib/params";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Trending" };

async function Trending({ query }: { query: TrendingQuery }) {
  const data = await loadTrending(query);
  const apiUrl = `/api/trending${trendingSearch(query)}`;
  return <TrendingLive key={apiUrl} initial={data} pollMs={dashboardSettings().pollMs} apiUrl={apiUrl} />;
}

export default async function TrendingPage({ searchParams }: { searchParams: Promise<SearchParams> }) {
  const query = parseTrendingQuery(await searchParams);
  return (
    <Suspense key={trendingSearch(query)} fallback={<PageSkeleton cards={0} rows={14} />}>
      <Trending query={query} />
    </Suspense>
  );
}
