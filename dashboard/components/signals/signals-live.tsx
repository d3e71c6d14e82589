"use client";

import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Empty } from "@/components/empty";
import { LiveStatus } from "@/components/live-status";
import { usePoll } from "@/components/use-poll";
import type { SignalsData } from "@/lib/data/signals";

import { SignalRows } from "./signal-rows";
import { SqlToggle } from "./sql-toggle";

export function SignalsLive({ initial, pollMs }: { initial: SignalsData; pollMs: number }) {
  const { data, error, polling } = usePoll<SignalsData>("/api/signals", initial, pollMs);
  return (
    <div className="space-y-4" data-testid="signals">
      <div className="flex flex-wrap items-end justify-between gap-2">
        <div>
          <h1 className="text-xl font-semibold tracking-tight">Signals</h1>
          <p className="text-xs text-muted-foreground">Each detector is one ClickHouse query; &quot;view SQL&quot; shows it with the values it ran with.</p>
        </div>
        <LiveStatus asOfMs={data.asOfMs} pollMs={pollMs} error={error} polling={polling} />
      </div>
      <div className="grid gap-4 xl:grid-cols-2">
        {data.signals.map((s) => (
          <Card key={s.id} data-testid={`signal-${s.id}`} data-count={s.rows.length}>
            <CardHeader>
              <div className="min-w-0">
                <CardTitle className="flex items-center gap-2">
                  {s.title}
                  <Badge variant={s.rows.length > 0 ? "warn" : "secondary"} data-testid={`signal-${s.id}-count`}>
                    {s.rows.length}
                  </Badge>
                </CardTitle>
                <CardDescription>{s.description}</CardDescription>
              </div>
              <SqlToggle name={s.id} sql={s.sql} params={s.params} />
            </CardHeader>
            <CardContent className="px-2 sm:px-4">{s.rows.length === 0 ? <Empty title="Nothing right now">No row passes this signal&apos;s thresholds.</Empty> : <SignalRows signal={s} asOfMs={data.asOfMs} />}</CardContent>
          </Card>
        ))}
      </div>
    </div>
  );
}
