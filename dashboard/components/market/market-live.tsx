"use client";

import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Empty } from "@/components/empty";
import { GapList } from "@/components/gap-list";
import { LiveStatus } from "@/components/live-status";
import { Time } from "@/components/time";
import { usePoll } from "@/components/use-poll";
import type { MarketData } from "@/lib/data/market";
import { formatPrice } from "@/lib/format";

import { CandleChart } from "./candle-chart";
import { DepthChart } from "./depth-chart";
import { IntervalTabs } from "./interval-tabs";
import { Ladder } from "./ladder";
import { MarketHeader } from "./market-header";
import { OutcomeCards } from "./outcome-cards";
import { TradesTable } from "./trades-table";

const WINDOW: Record<MarketData["interval"], string> = { "1m": "last 24 h", "1h": "last 30 days", "1d": "last 365 days" };

export function MarketLive({ initial, pollMs, apiUrl }: { initial: MarketData; pollMs: number; apiUrl: string }) {
  const { data, error, polling } = usePoll<MarketData>(apiUrl, initial, pollMs);
  const outcome = data.outcomes[data.selected];
  const book = data.book;
  return (
    <div className="space-y-4" data-testid="market">
      <div className="flex flex-wrap items-start justify-between gap-2">
        <MarketHeader market={data.market} asOfMs={data.asOfMs} />
        <LiveStatus asOfMs={data.asOfMs} pollMs={pollMs} error={error} polling={polling} />
      </div>
      <OutcomeCards outcomes={data.outcomes} selected={data.selected} interval={data.interval} asOfMs={data.asOfMs} />
      <Card>
        <CardHeader>
          <div>
            <CardTitle>
              {outcome?.label ?? "Outcome"} price, {data.interval} candles
            </CardTitle>
            <CardDescription>{WINDOW[data.interval]} · Data API fills · bars: USDC volume</CardDescription>
          </div>
          <IntervalTabs value={data.interval} />
        </CardHeader>
        <CardContent>
          {data.candles.length === 0 ? (
            <Empty title="No trades in this window">Pick a longer interval, or wait for the trades feed.</Empty>
          ) : (
            <CandleChart rows={data.candles} secondsVisible={false} />
          )}
        </CardContent>
      </Card>
      <Card data-testid="book-card">
        <CardHeader>
          <div>
            <CardTitle>{outcome?.label ?? "Outcome"} order book</CardTitle>
            <CardDescription>
              {book ? (
                <>
                  latest snapshot <Time ms={book.ts_ms} asOfMs={data.asOfMs} /> · {book.bid_levels} bid / {book.ask_levels} ask levels · best {formatPrice(book.best_bid)} / {formatPrice(book.best_ask)}
                  {book.hash_ok === false ? " · hash not verified" : ""}
                </>
              ) : (
                "no snapshot stored"
              )}
            </CardDescription>
          </div>
        </CardHeader>
        <CardContent>
          {book ? (
            <div className="grid gap-6 lg:grid-cols-2">
              <DepthChart book={book} />
              <Ladder book={book} />
            </div>
          ) : (
            <Empty title="No order book">The books feed has not stored a snapshot of this outcome.</Empty>
          )}
        </CardContent>
      </Card>
      <div className="grid gap-4">
        <Card>
          <CardHeader>
            <div>
              <CardTitle>Recent trades</CardTitle>
              <CardDescription>All outcomes, both sources; only data_api rows count as volume.</CardDescription>
            </div>
          </CardHeader>
          <CardContent className="px-2 sm:px-4">{data.trades.length === 0 ? <Empty title="No trades stored">This market has no fills yet.</Empty> : <TradesTable trades={data.trades} asOfMs={data.asOfMs} />}</CardContent>
        </Card>
        <Card data-testid="market-gaps">
          <CardHeader>
            <div>
              <CardTitle>Recorded gaps</CardTitle>
              <CardDescription>Continuity events covering this market, last 30 days.</CardDescription>
            </div>
          </CardHeader>
          <CardContent className="px-2 sm:px-4">
            {data.gaps.length === 0 ? <Empty title="No gaps recorded">The data of this market has no recorded interruption in 30 days.</Empty> : <GapList events={data.gaps} asOfMs={data.asOfMs} />}
          </CardContent>
        </Card>
      </div>
    </div>
  );
}
