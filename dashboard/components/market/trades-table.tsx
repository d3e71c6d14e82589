import { Badge } from "@/components/ui/badge";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Time } from "@/components/time";
import type { TradeRow } from "@/lib/queries/market";
import { formatPrice, formatShares, formatUsd, shortId } from "@/lib/format";

export function TradesTable({ trades, asOfMs }: { trades: TradeRow[]; asOfMs: number }) {
  return (
    <Table data-testid="trades-table">
      <THead>
        <TR>
          <TH>time</TH>
          <TH>outcome</TH>
          <TH>side</TH>
          <TH className="text-right">price</TH>
          <TH className="text-right">size</TH>
          <TH className="hidden text-right sm:table-cell">USDC</TH>
          <TH className="hidden md:table-cell">source</TH>
          <TH className="hidden lg:table-cell">tx</TH>
        </TR>
      </THead>
      <TBody>
        {trades.map((t, i) => (
          <TR key={`${t.transaction_hash ?? ""}-${t.ts_ms}-${t.source}-${i}`} data-testid="trade-row">
            <TD className="text-xs">
              <Time ms={t.ts_ms} asOfMs={asOfMs} />
            </TD>
            <TD className="max-w-24 truncate">{t.outcome ?? "–"}</TD>
            <TD className={t.side === "BUY" ? "text-up" : "text-down"}>{t.side}</TD>
            <TD className="text-right tabular-nums">{formatPrice(t.price)}</TD>
            <TD className="text-right tabular-nums" data-value={t.size}>
              {formatShares(t.size)}
            </TD>
            <TD className="hidden text-right tabular-nums sm:table-cell">{formatUsd(t.notional)}</TD>
            <TD className="hidden md:table-cell">
              <Badge variant={t.source === "data_api" ? "outline" : "secondary"} title={t.source === "ws" ? "WebSocket copy: not counted as volume" : "counted as volume"}>
                {t.source}
              </Badge>
            </TD>
            <TD className="hidden font-mono text-[11px] text-muted-foreground lg:table-cell">{t.transaction_hash ? shortId(t.transaction_hash) : "–"}</TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
}
