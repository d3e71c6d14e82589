import type { BookRow } from "@/lib/queries/market";
import { formatPrice, formatShares } from "@/lib/format";

const ROWS = 10;

function Side({ prices, sizes, cum, side }: { prices: string[]; sizes: string[]; cum: string[]; side: "bid" | "ask" }) {
  const max = Math.max(...cum.slice(0, ROWS).map(Number), 1);
  return (
    <table className="w-full text-xs tabular-nums" data-testid={`ladder-${side}`}>
      <thead>
        <tr className="text-muted-foreground">
          <th className="py-1 text-left font-medium">{side === "bid" ? "bid" : "ask"}</th>
          <th className="py-1 text-right font-medium">size</th>
          <th className="hidden py-1 text-right font-medium sm:table-cell">total</th>
        </tr>
      </thead>
      <tbody>
        {prices.slice(0, ROWS).map((p, i) => {
          const total = cum[i] ?? "0";
          const width = `${((Number(total) / max) * 100).toFixed(1)}%`;
          return (
            <tr key={p} className="relative">
              <td className={side === "bid" ? "py-0.5 text-up" : "py-0.5 text-down"}>
                <span className="relative z-10">{formatPrice(p)}</span>
              </td>
              <td className="py-0.5 text-right" data-value={sizes[i] ?? ""}>
                {formatShares(sizes[i] ?? null)}
              </td>
              <td className="relative hidden py-0.5 text-right sm:table-cell">
                <span className={`absolute inset-y-0.5 right-0 ${side === "bid" ? "bg-up/15" : "bg-down/15"}`} style={{ width }} aria-hidden />
                <span className="relative">{formatShares(total)}</span>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** The best ten levels of each side, bids left and asks right. */
export function Ladder({ book }: { book: BookRow }) {
  return (
    <div className="grid grid-cols-2 gap-4" data-testid="ladder">
      <Side prices={book.bid_prices} sizes={book.bid_sizes} cum={book.bid_cum} side="bid" />
      <Side prices={book.ask_prices} sizes={book.ask_sizes} cum={book.ask_cum} side="ask" />
    </div>
  );
}
