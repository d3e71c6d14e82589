import { formatUtc } from "@/lib/format";
import { cn } from "@/lib/utils";

/** "as of … UTC · refreshes every 10 s" plus the poll's state; carries data-asof for tests. */
export function LiveStatus({ asOfMs, pollMs, error, polling }: { asOfMs: number; pollMs: number; error: string | null; polling: boolean }) {
  return (
    <p className="flex flex-wrap items-center gap-x-2 gap-y-1 text-xs text-muted-foreground" data-testid="live-status" data-asof={asOfMs}>
      <span className={cn("inline-block size-2 rounded-full", error ? "bg-down" : polling ? "bg-warn" : "bg-up")} aria-hidden />
      <span>
        as of <time dateTime={new Date(asOfMs).toISOString()}>{formatUtc(asOfMs)}</time>
      </span>
      <span>· refreshes every {Math.round(pollMs / 100) / 10} s</span>
      {error ? <span className="text-down">· refresh failed ({error}); showing the last data</span> : null}
    </p>
  );
}
