import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { Suspense } from "react";

import { MarketLive } from "@/components/market/market-live";
import { PageSkeleton } from "@/components/page-skeleton";
import { dashboardSettings } from "@/lib/config";
import { findMarket, loadMarket } from "@/lib/data/market";
import { first, parseInterval, parseMarketId, parseOutcome, type Interval, type SearchParams } from "@/lib/params";
import type { MarketRow } from "@/lib/queries/market";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Market" };

interface Props {
  params: Promise<{ id: string }>;
  searchParams: Promise<SearchParams>;
}

async function MarketBody({ market, outcome, interval }: { market: MarketRow; outcome: number; interval: Interval }) {
  const data = await loadMarket(market, outcome, interval);
  const apiUrl = `/api/markets/${encodeURIComponent(market.condition_id)}?outcome=${outcome}&interval=${interval}`;
  return <MarketLive key={apiUrl} initial={data} pollMs={dashboardSettings().pollMs} apiUrl={apiUrl} />;
}

/** The market is looked up before anything streams, so an unknown id answers a real 404. */
export default async function MarketPage({ params, searchParams }: Props) {
  const [{ id: rawId }, sp] = await Promise.all([params, searchParams]);
  const id = parseMarketId(rawId);
  if (id === null) notFound();
  const market = await findMarket(id);
  if (market === null) notFound();
  const outcome = parseOutcome(first(sp.outcome), market.token_ids.length);
  const interval = parseInterval(first(sp.interval));
  return (
    <Suspense fallback={<PageSkeleton cards={2} rows={10} />}>
      <MarketBody market={market} outcome={outcome} interval={interval} />
    </Suspense>
  );
}
