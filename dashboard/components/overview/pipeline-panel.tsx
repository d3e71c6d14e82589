import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Time } from "@/components/time";
import type { FeedStatus } from "@/lib/data/overview";
import { formatDuration, formatInt } from "@/lib/format";
import type { FeedState } from "@/lib/freshness";

const FEED_LABEL: Record<FeedStatus["feed"], { name: string; table: string }> = {
  markets: { name: "Markets", table: "markets" },
  prices: { name: "Prices", table: "market_prices" },
  trades: { name: "Trades", table: "market_trades" },
  books: { name: "Books", table: "orderbook_snapshots" },
  events: { name: "WS events", table: "market_events" },
};

function StateBadge({ state }: { state: FeedState }) {
  if (state === "stale") return <Badge variant="stale">STALE</Badge>;
  if (state === "fresh") return <Badge variant="up">fresh</Badge>;
  if (state === "empty") return <Badge variant="secondary">empty</Badge>;
  return <Badge variant="secondary">event-driven</Badge>;
}

export function PipelinePanel({ feeds, asOfMs }: { feeds: FeedStatus[]; asOfMs: number }) {
  const stale = feeds.filter((f) => f.state === "stale").length;
  return (
    <Card data-testid="pipeline-panel">
      <CardHeader>
        <div>
          <CardTitle>Pipeline</CardTitle>
          <CardDescription>Newest row per feed; stale after 2 × its poll interval + grace, as in <code>pmpipe status</code>.</CardDescription>
        </div>
        {stale > 0 ? <Badge variant="stale">{stale} stale</Badge> : <Badge variant="up">all fresh</Badge>}
      </CardHeader>
      <CardContent className="px-2 sm:px-4">
        <Table>
          <THead>
            <TR>
              <TH>feed</TH>
              <TH>state</TH>
              <TH>newest received</TH>
              <TH className="text-right">rows 1 h</TH>
              <TH className="hidden text-right sm:table-cell">rows</TH>
              <TH className="hidden text-right md:table-cell" title="median source-to-receive delay over the last hour">delay p50</TH>
              <TH className="hidden text-right md:table-cell">stale after</TH>
            </TR>
          </THead>
          <TBody>
            {feeds.map((f) => (
              <TR key={f.feed} data-testid={`feed-${f.feed}`} data-state={f.state}>
                <TD>
                  <span className="font-medium">{FEED_LABEL[f.feed].name}</span>
                  <span className="hidden pl-1 font-mono text-[11px] text-muted-foreground lg:inline">{FEED_LABEL[f.feed].table}</span>
                </TD>
                <TD>
                  <StateBadge state={f.state} />
                </TD>
                <TD className="text-xs">
                  <Time ms={f.newest_received_ms} asOfMs={asOfMs} />
                </TD>
                <TD className="text-right tabular-nums" data-testid={`feed-${f.feed}-rows-1h`} data-value={f.rows_1h}>
                  {formatInt(f.rows_1h)}
                </TD>
                <TD className="hidden text-right tabular-nums sm:table-cell">{formatInt(f.rows)}</TD>
                <TD className="hidden text-right tabular-nums md:table-cell">{f.delay_p50_ms === null || f.rows_1h === 0 ? "–" : formatDuration(f.delay_p50_ms)}</TD>
                <TD className="hidden text-right tabular-nums md:table-cell">{f.staleAfterSecs === null ? "–" : formatDuration(f.staleAfterSecs * 1000)}</TD>
              </TR>
            ))}
          </TBody>
        </Table>
        <p className="px-2 pt-3 text-[11px] text-muted-foreground">
          Kafka consumer lag is not visible from ClickHouse: run <code>pmpipe status</code> for per-partition lag. Delay p50 is the median time from the source&apos;s timestamp to the producer receiving the row.
        </p>
      </CardContent>
    </Card>
  );
}
