/**
 * The Signals page: five detectors, each one ClickHouse statement from the query layer run
 * with fixed thresholds. Each result carries its SQL and the exact parameter values, so the
 * page can show what produced it and anyone can re-run it with `pmpipe query`.
 */
import { formatUtc } from "../format";
import { signalQueries as q, type QueryDef, type QueryParams } from "../queries";
import type { BookSumRow, LargeTradeRow, PriceMoveRow, SpreadBlowoutRow, VolumeSpikeRow } from "../queries/signals";
import { unixParam, windowsAt } from "../windows";

export const THRESHOLDS = {
  spikeMinNotional: 1000,
  spikeMinRatio: 3,
  moveMinPoints: 0.1,
  spreadMin: 0.05,
  spreadFactor: 3,
  bookSumTolerance: 0.05,
  largeTradeMinNotional: 10_000,
} as const;

const LIMIT = 25;

export interface ShownParam {
  name: string;
  /** the value as sent to ClickHouse */
  value: string;
  /** for times: the same instant in UTC */
  note: string | null;
}

interface SignalBase {
  title: string;
  description: string;
  name: string;
  sql: string;
  params: ShownParam[];
}

export type Signal =
  | (SignalBase & { id: "volume_spikes"; rows: VolumeSpikeRow[] })
  | (SignalBase & { id: "price_moves"; rows: PriceMoveRow[] })
  | (SignalBase & { id: "spread_blowouts"; rows: SpreadBlowoutRow[] })
  | (SignalBase & { id: "book_sums"; rows: BookSumRow[] })
  | (SignalBase & { id: "large_trades"; rows: LargeTradeRow[] });

export interface SignalsData {
  asOfMs: number;
  signals: Signal[];
}

export function showParams(params: QueryParams): ShownParam[] {
  return Object.entries(params).map(([name, value]) => {
    if (value instanceof Date) return { name, value: unixParam(value), note: formatUtc(value.getTime()) };
    if (Array.isArray(value)) return { name, value: JSON.stringify(value), note: null };
    return { name, value: String(value), note: null };
  });
}

async function run<P extends QueryParams, R>(def: QueryDef<P, R>, params: P): Promise<{ name: string; sql: string; params: ShownParam[]; rows: R[] }> {
  const rows = await def.run(params);
  return { name: def.name, sql: def.sql, params: showParams(params), rows };
}

export async function loadSignals(asOfMs: number = Date.now()): Promise<SignalsData> {
  const w = windowsAt(asOfMs);
  const t = THRESHOLDS;
  const [spikes, moves, spreads, sums, large] = await Promise.all([
    run(q.volumeSpikes, { hour_from: w.hourFrom, baseline_from: w.baselineFrom, baseline_to: w.baselineTo, min_notional: t.spikeMinNotional, min_ratio: t.spikeMinRatio, limit: LIMIT }),
    run(q.priceMoves, { hour_ago: w.hourAgo, min_move: t.moveMinPoints, limit: LIMIT }),
    run(q.spreadBlowouts, { day_ago: w.dayAgo, hour_ago: w.hourAgo, min_spread: t.spreadMin, factor: t.spreadFactor, limit: LIMIT }),
    run(q.bookSums, { hour_ago: w.hourAgo, tolerance: t.bookSumTolerance, limit: LIMIT }),
    run(q.largeTrades, { day_ago: w.dayAgo, min_notional: t.largeTradeMinNotional, limit: LIMIT }),
  ]);
  return {
    asOfMs,
    signals: [
      { id: "volume_spikes", title: "Volume spikes", description: `USDC volume of the last 60 min ≥ ${t.spikeMinRatio}× the token's average hour over the 24 h before, and ≥ $${t.spikeMinNotional.toLocaleString("en-US")}.`, ...spikes },
      { id: "price_moves", title: "Large price moves", description: `First outcome moved ≥ ${t.moveMinPoints * 100}¢ from its first to its last fill of the last 60 min.`, ...moves },
      { id: "spread_blowouts", title: "Spread blow-outs", description: `Latest quoted spread ≥ ${t.spreadMin * 100}¢ and ≥ ${t.spreadFactor}× the token's median spread over 24 h.`, ...spreads },
      { id: "book_sums", title: "Books off 1", description: `Open markets whose latest books (last hour) have mid prices summing more than ${t.bookSumTolerance * 100}¢ away from $1.`, ...sums },
      { id: "large_trades", title: "Large trades", description: `Data API fills of the last 24 h worth ≥ $${t.largeTradeMinNotional.toLocaleString("en-US")}.`, ...large },
    ],
  };
}
