import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Empty } from "@/components/empty";
import { GapList } from "@/components/gap-list";
import type { ContinuityEventRow, ContinuitySummaryRow } from "@/lib/queries/overview";
import { formatDuration, formatInt } from "@/lib/format";

export function ContinuityCard({ summary, events, asOfMs }: { summary: ContinuitySummaryRow; events: ContinuityEventRow[]; asOfMs: number }) {
  const figures = [
    { label: "gaps", value: formatInt(summary.gaps), testId: "continuity-gaps", exact: summary.gaps },
    { label: "open gaps", value: formatInt(summary.open_gaps), testId: "continuity-open-gaps", exact: summary.open_gaps },
    { label: "closed gap time", value: formatDuration(summary.gap_ms), testId: "continuity-gap-time", exact: summary.gap_ms },
    { label: "disconnects", value: formatInt(summary.disconnects), testId: "continuity-disconnects", exact: summary.disconnects },
    { label: "silences", value: formatInt(summary.silences), testId: "continuity-silences", exact: summary.silences },
  ];
  return (
    <Card data-testid="continuity-card">
      <CardHeader>
        <div>
          <CardTitle>Continuity, last 24 h</CardTitle>
          <CardDescription>Gaps, disconnects and silences the producers recorded in market_events.</CardDescription>
        </div>
        {summary.open_gaps > 0 ? <Badge variant="stale">{summary.open_gaps} open gap{summary.open_gaps > 1 ? "s" : ""}</Badge> : null}
      </CardHeader>
      <CardContent className="space-y-3">
        <dl className="grid grid-cols-3 gap-2 sm:grid-cols-5">
          {figures.map((f) => (
            <div key={f.label} className="rounded-md bg-muted/60 px-2 py-1.5">
              <dt className="text-[11px] text-muted-foreground">{f.label}</dt>
              <dd className="font-semibold tabular-nums" data-testid={f.testId} data-value={f.exact}>
                {f.value}
              </dd>
            </div>
          ))}
        </dl>
        {events.length === 0 ? <Empty title="No continuity events in 24 h">The WebSocket stayed connected, or the producers have not run.</Empty> : <GapList events={events} asOfMs={asOfMs} />}
      </CardContent>
    </Card>
  );
}
