import Link from "next/link";

import { Time } from "@/components/time";
import type { OutcomeView } from "@/lib/data/market";
import { formatPrice, formatUsd } from "@/lib/format";
import { cn } from "@/lib/utils";

/** One card per outcome: latest quote and trade, 24 h volume; choosing one switches the chart. */
export function OutcomeCards({ outcomes, selected, interval, asOfMs }: { outcomes: OutcomeView[]; selected: number; interval: string; asOfMs: number }) {
  return (
    <div className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-4">
      {outcomes.map((o) => {
        const q = o.quote;
        const price = q?.mid ?? q?.last_trade_price ?? null;
        return (
          <Link
            key={o.tokenId}
            href={`?outcome=${o.index}&interval=${interval}`}
            scroll={false}
            replace
            className={cn("block rounded-lg border bg-card p-3 transition-colors hover:bg-muted/60", o.index === selected && "ring-2 ring-primary/40")}
            data-testid={`outcome-${o.index}`}
            aria-current={o.index === selected ? "true" : undefined}
          >
            <div className="flex items-baseline justify-between gap-2">
              <span className="truncate text-sm font-medium">{o.label}</span>
              <span className="text-xl font-semibold tabular-nums" data-testid={`outcome-${o.index}-price`} data-value={price ?? ""}>
                {formatPrice(price)}
              </span>
            </div>
            <dl className="mt-2 grid grid-cols-3 gap-1 text-[11px] text-muted-foreground tabular-nums">
              <div>
                <dt>bid</dt>
                <dd className="text-foreground">{formatPrice(q?.best_bid ?? null)}</dd>
              </div>
              <div>
                <dt>ask</dt>
                <dd className="text-foreground">{formatPrice(q?.best_ask ?? null)}</dd>
              </div>
              <div>
                <dt>last trade</dt>
                <dd className="text-foreground" data-testid={`outcome-${o.index}-last`} data-value={q?.last_trade_price ?? ""}>
                  {formatPrice(q?.last_trade_price ?? null)}
                </dd>
              </div>
              <div className="col-span-2">
                <dt>volume 24 h</dt>
                <dd className="text-foreground" data-testid={`outcome-${o.index}-volume`} data-value={o.volume?.notional_24h ?? "0"}>
                  {formatUsd(o.volume?.notional_24h ?? "0")} · {o.volume?.trades_24h ?? 0} fills
                </dd>
              </div>
              <div>
                <dt>quoted</dt>
                <dd className="text-foreground">
                  <Time ms={q?.quote_ms ?? null} asOfMs={asOfMs} />
                </dd>
              </div>
            </dl>
          </Link>
        );
      })}
    </div>
  );
}
