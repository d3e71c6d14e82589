"use client";

import { Button } from "@/components/ui/button";

export default function ErrorPage({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <div className="mx-auto max-w-xl space-y-3 rounded-lg border p-6 text-sm" role="alert">
      <h1 className="text-base font-semibold">The page could not load its data</h1>
      <p className="text-muted-foreground">
        Most often ClickHouse did not answer: check that it is reachable (CLICKHOUSE_URL, CLICKHOUSE_USER) and migrated (<code>pmpipe migrate</code>); the server log names the failed query.
        {error.digest ? <span className="block pt-1 font-mono text-xs">digest {error.digest}</span> : null}
      </p>
      <Button onClick={reset}>Try again</Button>
    </div>
  );
}
