import { formatMove } from "@/lib/format";
import { cn } from "@/lib/utils";

export function Move({ value }: { value: string | number | null }) {
  const n = value === null ? 0 : Number(value);
  return <span className={cn("tabular-nums whitespace-nowrap", n > 0 ? "text-up" : n < 0 ? "text-down" : "text-muted-foreground")}>{formatMove(value)}</span>;
}
