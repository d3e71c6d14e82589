import type { BookRow } from "@/lib/queries/market";
import { formatPrice, formatShares } from "@/lib/format";

const W = 600;
const H = 200;
const PAD = 4;

/**
 * Depth chart (server-rendered SVG): cumulative bid size stepping down to the left of the
 * spread, cumulative ask size stepping up to the right. Cumulative sums come from ClickHouse.
 */
export function DepthChart({ book }: { book: BookRow }) {
  const bids = book.bid_prices.map((p, i) => ({ p: Number(p), c: Number(book.bid_cum[i] ?? 0) }));
  const asks = book.ask_prices.map((p, i) => ({ p: Number(p), c: Number(book.ask_cum[i] ?? 0) }));
  const prices = [...bids, ...asks].map((l) => l.p);
  if (prices.length === 0) return null;
  const lo = Math.min(...prices);
  const hi = Math.max(...prices);
  const maxC = Math.max(...bids.map((l) => l.c), ...asks.map((l) => l.c), 1);
  const x = (p: number) => PAD + ((p - lo) / Math.max(hi - lo, 1e-9)) * (W - 2 * PAD);
  const y = (c: number) => H - PAD - (c / maxC) * (H - 2 * PAD);
  const step = (levels: { p: number; c: number }[]): string => {
    if (levels.length === 0) return "";
    const first = levels[0] as { p: number; c: number };
    let d = `M${x(first.p).toFixed(1)},${y(0).toFixed(1)}`;
    let prevC = 0;
    for (const l of levels) {
      d += ` L${x(l.p).toFixed(1)},${y(prevC).toFixed(1)} L${x(l.p).toFixed(1)},${y(l.c).toFixed(1)}`;
      prevC = l.c;
    }
    const last = levels[levels.length - 1] as { p: number; c: number };
    const edge = last.p < first.p ? lo : hi;
    return `${d} L${x(edge).toFixed(1)},${y(prevC).toFixed(1)} L${x(edge).toFixed(1)},${y(0).toFixed(1)} Z`;
  };
  return (
    <figure className="space-y-1" data-testid="depth-chart">
      <svg viewBox={`0 0 ${W} ${H}`} className="h-44 w-full" preserveAspectRatio="none" role="img" aria-label="Order book depth">
        <line x1={0} x2={W} y1={H - PAD} y2={H - PAD} className="stroke-border" />
        <path d={step(bids)} fill="#16a34a33" stroke="#16a34a" strokeWidth={1.5} vectorEffect="non-scaling-stroke" />
        <path d={step(asks)} fill="#dc262633" stroke="#dc2626" strokeWidth={1.5} vectorEffect="non-scaling-stroke" />
      </svg>
      <figcaption className="flex justify-between text-[11px] text-muted-foreground tabular-nums">
        <span>{formatPrice(lo)}</span>
        <span>
          max depth {formatShares(maxC)} shares
        </span>
        <span>{formatPrice(hi)}</span>
      </figcaption>
    </figure>
  );
}
