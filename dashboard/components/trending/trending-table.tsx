import Link from "next/link";

import { Badge } from "@/components/ui/badge";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Move } from "@/components/move";
import type { TrendingRow, TrendingSort } from "@/lib/queries/trending";
import { formatChange, formatInt, formatPrice, formatUsdCompact } from "@/lib/format";
import { trendingSearch, type TrendingQuery } from "@/lib/params";
import { cn } from "@/lib/utils";

function SortHeader({ query, sort, label, className }: { query: TrendingQuery; sort: TrendingSort; label: string; className?: string }) {
  const active = query.sort === sort;
  const next = { ...query, sort, desc: active ? !query.desc : true };
  return (
    <TH className={className} aria-sort={active ? (query.desc ? "descending" : "ascending") : undefined}>
      <Link href={`/trending${trendingSearch(next)}`} className={cn("inline-flex items-center gap-0.5 hover:text-foreground", active && "text-foreground")} data-testid={`sort-${sort}`}>
        {label}
        {active ? <span aria-hidden>{query.desc ? "↓" : "↑"}</span> : null}
      </Link>
    </TH>
  );
}

export function TrendingTable({ rows, query }: { rows: TrendingRow[]; query: TrendingQuery }) {
  return (
    <Table data-testid="trending-table">
      <THead>
        <TR>
          <TH className="hidden w-8 text-right sm:table-cell">#</TH>
          <TH>market</TH>
          <TH className="hidden text-right sm:table-cell">price</TH>
          <SortHeader query={query} sort="volume" label="24 h vol" className="text-right" />
          <TH className="hidden text-right md:table-cell">prev 24 h</TH>
          <SortHeader query={query} sort="change" label="change" className="text-right" />
          <SortHeader query={query} sort="move" label="move" className="hidden text-right sm:table-cell" />
          <SortHeader query={query} sort="trades" label="trades" className="hidden text-right md:table-cell" />
        </TR>
      </THead>
      <TBody>
        {rows.map((r, i) => (
          <TR key={r.condition_id} data-testid="trending-row" data-condition={r.condition_id}>
            <TD className="hidden text-right text-xs text-muted-foreground tabular-nums sm:table-cell">{i + 1}</TD>
            <TD className="min-w-[10rem] sm:max-w-md">
              <Link href={`/markets/${r.condition_id}`} className="line-clamp-2 hover:underline" data-testid="trending-question">
                {r.question}
              </Link>
              <div className="mt-0.5 hidden flex-wrap gap-1 sm:flex">
                {r.category ? <Badge variant="outline">{r.category}</Badge> : null}
                {r.tags.slice(0, 3).map((t) => (
                  <Badge key={t} variant="secondary">
                    {t}
                  </Badge>
                ))}
              </div>
            </TD>
            <TD className="hidden text-right tabular-nums whitespace-nowrap sm:table-cell" title={r.outcome}>
              {formatPrice(r.price)}
            </TD>
            <TD className="text-right tabular-nums" data-testid="trending-volume" data-value={r.volume_24h}>
              {formatUsdCompact(r.volume_24h)}
            </TD>
            <TD className="hidden text-right tabular-nums text-muted-foreground md:table-cell">{formatUsdCompact(r.volume_prev)}</TD>
            <TD className={cn("text-right tabular-nums", r.volume_change === null ? "text-muted-foreground" : r.volume_change >= 0 ? "text-up" : "text-down")}>{formatChange(r.volume_change)}</TD>
            <TD className="hidden text-right sm:table-cell">
              <Move value={r.price_move} />
            </TD>
            <TD className="hidden text-right tabular-nums md:table-cell">{formatInt(r.trades_24h)}</TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
}
