import { Badge } from "@/components/ui/badge";
import { Time } from "@/components/time";
import type { MarketRow } from "@/lib/queries/market";
import { formatUsdCompact, shortId } from "@/lib/format";

export function MarketHeader({ market, asOfMs }: { market: MarketRow; asOfMs: number }) {
  return (
    <header className="space-y-2">
      {market.event_title ? <p className="text-xs text-muted-foreground">{market.event_title}</p> : null}
      <h1 className="text-lg font-semibold tracking-tight sm:text-xl" data-testid="market-question">
        {market.question}
      </h1>
      <div className="flex flex-wrap items-center gap-1.5">
        {market.closed ? <Badge variant="secondary">closed</Badge> : market.active ? <Badge variant="up">active</Badge> : <Badge variant="secondary">inactive</Badge>}
        {market.archived ? <Badge variant="secondary">archived</Badge> : null}
        {market.neg_risk ? <Badge variant="outline">neg risk</Badge> : null}
        {market.category ? <Badge variant="outline">{market.category}</Badge> : null}
        {market.tags.map((t) => (
          <Badge key={t} variant="outline">
            {t}
          </Badge>
        ))}
      </div>
      <dl className="flex flex-wrap gap-x-5 gap-y-1 text-xs text-muted-foreground">
        <div>
          <dt className="inline">condition </dt>
          <dd className="inline font-mono" title={market.condition_id}>
            {shortId(market.condition_id, 8)}
          </dd>
        </div>
        <div>
          <dt className="inline">ends </dt>
          <dd className="inline">
            <Time ms={market.end_ms} asOfMs={asOfMs} />
          </dd>
        </div>
        <div>
          <dt className="inline">lifetime volume (Gamma) </dt>
          <dd className="inline">{formatUsdCompact(market.volume)}</dd>
        </div>
        <div>
          <dt className="inline">metadata updated </dt>
          <dd className="inline">
            <Time ms={market.updated_ms} asOfMs={asOfMs} />
          </dd>
        </div>
      </dl>
    </header>
  );
}
