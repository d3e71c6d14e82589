import Link from "next/link";

import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Empty } from "@/components/empty";
import { Time } from "@/components/time";
import type { NewMarketRow } from "@/lib/queries/overview";

export function NewestCard({ markets, asOfMs }: { markets: NewMarketRow[]; asOfMs: number }) {
  return (
    <Card data-testid="newest-card">
      <CardHeader>
        <div>
          <CardTitle>Newest markets</CardTitle>
          <CardDescription>By Gamma creation time.</CardDescription>
        </div>
      </CardHeader>
      <CardContent>
        {markets.length === 0 ? (
          <Empty title="No markets yet">The markets feed has not stored any market.</Empty>
        ) : (
          <ul className="divide-y">
            {markets.map((m) => (
              <li key={m.condition_id} className="flex items-start justify-between gap-3 py-2" data-testid="newest-row">
                <div className="min-w-0">
                  <Link href={`/markets/${m.condition_id}`} className="line-clamp-2 text-sm hover:underline">
                    {m.question}
                  </Link>
                  <div className="mt-1 flex flex-wrap gap-1">
                    {m.closed ? <Badge variant="secondary">closed</Badge> : null}
                    {m.tags.slice(0, 3).map((t) => (
                      <Badge key={t} variant="outline">
                        {t}
                      </Badge>
                    ))}
                  </div>
                </div>
                <span className="shrink-0 text-xs text-muted-foreground">
                  <Time ms={m.created_ms} asOfMs={asOfMs} />
                </span>
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}
