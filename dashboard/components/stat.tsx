import { Card } from "@/components/ui/card";

/** One headline figure; data-value carries the exact value for tests. */
export function Stat({ label, value, exact, hint, testId }: { label: string; value: string; exact: string | number; hint?: string; testId: string }) {
  return (
    <Card className="px-4 py-3">
      <p className="text-xs text-muted-foreground">{label}</p>
      <p className="mt-1 text-xl font-semibold tabular-nums sm:text-2xl" data-testid={testId} data-value={String(exact)}>
        {value}
      </p>
      {hint ? <p className="mt-0.5 text-[11px] text-muted-foreground">{hint}</p> : null}
    </Card>
  );
}
