import Link from "next/link";
import type { ReactNode } from "react";

import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Move } from "@/components/move";
import { Time } from "@/components/time";
import type { Signal } from "@/lib/data/signals";
import { formatPrice, formatRatio, formatShares, formatUsd, formatUsdCompact } from "@/lib/format";

function MarketCell({ id, question, outcome }: { id: string; question: string; outcome?: string }) {
  return (
    <TD className="max-w-[11rem] sm:max-w-sm">
      <Link href={`/markets/${id}`} className="line-clamp-2 hover:underline">
        {question || id}
      </Link>
      {outcome ? <span className="text-[11px] text-muted-foreground">{outcome}</span> : null}
    </TD>
  );
}

function Grid({ head, children }: { head: ReactNode; children: ReactNode }) {
  return (
    <Table>
      <THead>
        <TR>{head}</TR>
      </THead>
      <TBody>{children}</TBody>
    </Table>
  );
}

/** The rows of one signal, each kind with its own columns. The first figure carries data-value. */
export function SignalRows({ signal, asOfMs }: { signal: Signal; asOfMs: number }) {
  switch (signal.id) {
    case "volume_spikes":
      return (
        <Grid head={<><TH>market</TH><TH className="text-right">last 60 min</TH><TH className="hidden text-right sm:table-cell">usual hour</TH><TH className="text-right">ratio</TH></>}>
          {signal.rows.map((r) => (
            <TR key={r.token_id} data-testid="signal-row">
              <MarketCell id={r.condition_id} question={r.question} outcome={r.outcome} />
              <TD className="text-right tabular-nums" data-value={r.notional_1h}>{formatUsd(r.notional_1h)}</TD>
              <TD className="hidden text-right tabular-nums sm:table-cell">{formatUsd(r.baseline_hourly)}</TD>
              <TD className="text-right tabular-nums font-medium">{formatRatio(r.ratio)}</TD>
            </TR>
          ))}
        </Grid>
      );
    case "price_moves":
      return (
        <Grid head={<><TH>market</TH><TH className="text-right">from → to</TH><TH className="text-right">move</TH><TH className="hidden text-right sm:table-cell">fills</TH></>}>
          {signal.rows.map((r) => (
            <TR key={r.token_id} data-testid="signal-row">
              <MarketCell id={r.condition_id} question={r.question} outcome={r.outcome} />
              <TD className="text-right tabular-nums whitespace-nowrap">{formatPrice(r.price_from)} → {formatPrice(r.price_to)}</TD>
              <TD className="text-right" data-value={r.move}><Move value={r.move} /></TD>
              <TD className="hidden text-right tabular-nums sm:table-cell">{r.trades}</TD>
            </TR>
          ))}
        </Grid>
      );
    case "spread_blowouts":
      return (
        <Grid head={<><TH>market</TH><TH className="text-right">bid / ask</TH><TH className="text-right">spread</TH><TH className="hidden text-right sm:table-cell">median 24 h</TH><TH className="hidden md:table-cell">quoted</TH></>}>
          {signal.rows.map((r) => (
            <TR key={r.token_id} data-testid="signal-row">
              <MarketCell id={r.condition_id} question={r.question} outcome={r.outcome} />
              <TD className="text-right tabular-nums whitespace-nowrap">{formatPrice(r.best_bid)} / {formatPrice(r.best_ask)}</TD>
              <TD className="text-right tabular-nums font-medium" data-value={r.spread}>{formatPrice(r.spread)}</TD>
              <TD className="hidden text-right tabular-nums sm:table-cell">{formatPrice(r.median_spread)} ({formatRatio(r.ratio)})</TD>
              <TD className="hidden text-xs md:table-cell"><Time ms={r.quote_ms} asOfMs={asOfMs} /></TD>
            </TR>
          ))}
        </Grid>
      );
    case "book_sums":
      return (
        <Grid head={<><TH>market</TH><TH className="text-right">Σ mid</TH><TH className="hidden text-right sm:table-cell">Σ bid / Σ ask</TH><TH className="hidden md:table-cell">oldest book</TH></>}>
          {signal.rows.map((r) => (
            <TR key={r.condition_id} data-testid="signal-row">
              <MarketCell id={r.condition_id} question={r.question} />
              <TD className="text-right tabular-nums font-medium" data-value={r.mid_sum}>{formatUsd(r.mid_sum)}</TD>
              <TD className="hidden text-right tabular-nums sm:table-cell">{formatUsd(r.bid_sum)} / {formatUsd(r.ask_sum)}</TD>
              <TD className="hidden text-xs md:table-cell"><Time ms={r.oldest_book_ms} asOfMs={asOfMs} /></TD>
            </TR>
          ))}
        </Grid>
      );
    case "large_trades":
      return (
        <Grid head={<><TH>market</TH><TH className="text-right">USDC</TH><TH className="hidden text-right sm:table-cell">side · price × size</TH><TH className="hidden md:table-cell">time</TH></>}>
          {signal.rows.map((r) => (
            <TR key={`${r.transaction_hash ?? ""}-${r.ts_ms}-${r.token_id}`} data-testid="signal-row">
              <MarketCell id={r.condition_id || r.token_id} question={r.question} outcome={r.outcome} />
              <TD className="text-right tabular-nums font-medium" data-value={r.notional}>{formatUsdCompact(r.notional)}</TD>
              <TD className="hidden text-right tabular-nums whitespace-nowrap sm:table-cell">{r.side} · {formatPrice(r.price)} × {formatShares(r.size)}</TD>
              <TD className="hidden text-xs md:table-cell"><Time ms={r.ts_ms} asOfMs={asOfMs} /></TD>
            </TR>
          ))}
        </Grid>
      );
  }
}
