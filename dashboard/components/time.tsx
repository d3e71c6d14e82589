import { formatAge, formatUtc } from "@/lib/format";

/** A data time: relative age (to the data's as-of instant), the UTC time on hover and wide screens. */
export function Time({ ms, asOfMs, full = false }: { ms: number | null; asOfMs: number; full?: boolean }) {
  if (ms === null) return <span className="text-muted-foreground">–</span>;
  return (
    <time dateTime={new Date(ms).toISOString()} title={formatUtc(ms)} className="whitespace-nowrap">
      {full ? <span className="mr-1">{formatUtc(ms)}</span> : null}
      <span className={full ? "text-muted-foreground" : undefined}>{full ? `(${formatAge(ms, asOfMs)})` : formatAge(ms, asOfMs)}</span>
    </time>
  );
}
