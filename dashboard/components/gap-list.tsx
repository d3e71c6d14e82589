import { Badge } from "@/components/ui/badge";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Time } from "@/components/time";
import { formatDuration, formatUtc } from "@/lib/format";

export interface GapEvent {
  event_type: string;
  ts_ms: number;
  connection_id: string | null;
  gap_start_ms: number | null;
  gap_end_ms: number | null;
  tokens: number;
  detail: string | null;
}

function span(e: GapEvent, asOfMs: number): string {
  if (e.event_type !== "gap" || e.gap_start_ms === null) return "";
  if (e.gap_end_ms === null) return `open since ${formatUtc(e.gap_start_ms)} (${formatDuration(asOfMs - e.gap_start_ms)})`;
  return `${formatUtc(e.gap_start_ms)} → ${formatDuration(e.gap_end_ms - e.gap_start_ms)}`;
}

/** Continuity events (gap, disconnected, silent, resubscribed…) as a compact table. */
export function GapList({ events, asOfMs }: { events: GapEvent[]; asOfMs: number }) {
  return (
    <Table data-testid="gap-list">
      <THead>
        <TR>
          <TH>event</TH>
          <TH>when</TH>
          <TH>gap</TH>
          <TH className="hidden text-right sm:table-cell">tokens</TH>
          <TH className="hidden md:table-cell">detail</TH>
        </TR>
      </THead>
      <TBody>
        {events.map((e, i) => (
          <TR key={`${e.ts_ms}-${e.event_type}-${i}`}>
            <TD>
              <Badge variant={e.event_type === "gap" ? (e.gap_end_ms === null ? "stale" : "warn") : "secondary"}>{e.event_type}</Badge>
            </TD>
            <TD className="text-xs">
              <Time ms={e.ts_ms} asOfMs={asOfMs} />
            </TD>
            <TD className="text-xs whitespace-nowrap">{span(e, asOfMs) || "–"}</TD>
            <TD className="hidden text-right tabular-nums sm:table-cell">{e.tokens}</TD>
            <TD className="hidden max-w-64 truncate text-xs text-muted-foreground md:table-cell" title={e.detail ?? ""}>
              {e.detail ?? ""}
              {e.connection_id ? <span className="pl-1 font-mono">[{e.connection_id}]</span> : null}
            </TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
}
