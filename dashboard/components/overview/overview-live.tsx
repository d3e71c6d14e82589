"use client";

import { LiveStatus } from "@/components/live-status";
import { Stat } from "@/components/stat";
import { usePoll } from "@/components/use-poll";
import type { OverviewData } from "@/lib/data/overview";
import { formatInt, formatUsd, formatShares } from "@/lib/format";

import { ContinuityCard } from "./continuity-card";
import { MoversCard } from "./movers-card";
import { NewestCard } from "./newest-card";
import { PipelinePanel } from "./pipeline-panel";

export function OverviewLive({ initial, pollMs }: { initial: OverviewData; pollMs: number }) {
  const { data, error, polling } = usePoll<OverviewData>("/api/overview", initial, pollMs);
  const { counts, volume } = data;
  return (
    <div className="space-y-4" data-testid="overview">
      <div className="flex flex-wrap items-end justify-between gap-2">
        <h1 className="text-xl font-semibold tracking-tight">Overview</h1>
        <LiveStatus asOfMs={data.asOfMs} pollMs={pollMs} error={error} polling={polling} />
      </div>
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        <Stat label="Active markets" value={formatInt(counts.active_markets)} exact={counts.active_markets} hint={`of ${formatInt(counts.total_markets)} stored`} testId="stat-active-markets" />
        <Stat label="Volume, 24 h (USDC)" value={formatUsd(volume.notional_24h)} exact={volume.notional_24h} hint={`${formatShares(volume.shares_24h)} shares`} testId="stat-volume-24h" />
        <Stat label="Trades, 24 h" value={formatInt(volume.trades_24h)} exact={volume.trades_24h} hint="Data API fills" testId="stat-trades-24h" />
        <Stat label="Outcomes traded, 24 h" value={formatInt(volume.tokens_24h)} exact={volume.tokens_24h} hint="tokens with a fill" testId="stat-tokens-24h" />
      </div>
      <PipelinePanel feeds={data.feeds} asOfMs={data.asOfMs} />
      <div className="grid gap-4 lg:grid-cols-2">
        <MoversCard movers={data.movers} />
        <NewestCard markets={data.newest} asOfMs={data.asOfMs} />
      </div>
      <ContinuityCard summary={data.continuity} events={data.continuityEvents} asOfMs={data.asOfMs} />
    </div>
  );
}
