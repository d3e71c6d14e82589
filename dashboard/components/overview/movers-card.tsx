import Link from "next/link";

import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Empty } from "@/components/empty";
import { Move } from "@/components/move";
import type { MoverRow } from "@/lib/queries/overview";
import { formatPrice, formatUsdCompact } from "@/lib/format";

export function MoversCard({ movers }: { movers: MoverRow[] }) {
  return (
    <Card data-testid="movers-card">
      <CardHeader>
        <div>
          <CardTitle>Top movers, 24 h</CardTitle>
          <CardDescription>First outcome&apos;s first trade to last trade in the window.</CardDescription>
        </div>
      </CardHeader>
      <CardContent className="px-2 sm:px-4">
        {movers.length === 0 ? (
          <Empty title="No trades in the last 24 h">Movers appear once the trades feed lands Data API fills.</Empty>
        ) : (
          <Table>
            <THead>
              <TR>
                <TH>market</TH>
                <TH className="text-right">price</TH>
                <TH className="text-right">move</TH>
                <TH className="hidden text-right sm:table-cell">volume</TH>
              </TR>
            </THead>
            <TBody>
              {movers.map((m) => (
                <TR key={m.token_id} data-testid="mover-row">
                  <TD className="max-w-[12rem] sm:max-w-md">
                    <Link href={`/markets/${m.condition_id}`} className="line-clamp-2 hover:underline">
                      {m.question}
                    </Link>
                    <span className="text-[11px] text-muted-foreground">{m.outcome}</span>
                  </TD>
                  <TD className="text-right tabular-nums whitespace-nowrap">
                    <span className="text-muted-foreground">{formatPrice(m.open)} →</span> {formatPrice(m.close)}
                  </TD>
                  <TD className="text-right">
                    <Move value={m.change} />
                  </TD>
                  <TD className="hidden text-right tabular-nums sm:table-cell">{formatUsdCompact(m.notional)}</TD>
                </TR>
              ))}
            </TBody>
          </Table>
        )}
      </CardContent>
    </Card>
  );
}
