/** Everything Market Detail shows for one market, outcome and candle interval. */
import { marketQueries as q } from "../queries";
import type { BookRow, CandleRow, MarketGapRow, MarketRow, QuoteRow, TokenVolumeRow, TradeRow } from "../queries/market";
import type { Interval } from "../params";
import { windowsAt, type Windows } from "../windows";

export interface OutcomeView {
  index: number;
  label: string;
  tokenId: string;
  quote: QuoteRow | null;
  volume: TokenVolumeRow | null;
}

export interface MarketData {
  asOfMs: number;
  market: MarketRow;
  outcomes: OutcomeView[];
  selected: number;
  interval: Interval;
  candles: CandleRow[];
  book: BookRow | null;
  trades: TradeRow[];
  gaps: MarketGapRow[];
}

/** Each interval reads its own rollup over its own window (a fixed map, never input). */
const CANDLES: Record<Interval, { def: typeof q.candles1m; from: (w: Windows) => Date }> = {
  "1m": { def: q.candles1m, from: (w) => w.dayAgo },
  "1h": { def: q.candles1h, from: (w) => w.monthAgo },
  "1d": { def: q.candles1d, from: (w) => w.yearAgo },
};

const BOOK_LEVELS = 25;

export async function findMarket(id: string): Promise<MarketRow | null> {
  const rows = await q.marketById.run({ id });
  return rows[0] ?? null;
}

export async function loadMarket(market: MarketRow, selected: number, interval: Interval, asOfMs: number = Date.now()): Promise<MarketData> {
  const w = windowsAt(asOfMs);
  const tokens = market.token_ids;
  const token = tokens[selected] ?? tokens[0] ?? "";
  const candle = CANDLES[interval];
  const [quotes, volumes, candles, book, trades, gaps] = await Promise.all([
    tokens.length ? q.latestQuotes.run({ tokens }) : Promise.resolve([]),
    tokens.length ? q.tokenVolume24h.run({ tokens, from: w.dayFrom }) : Promise.resolve([]),
    token ? candle.def.run({ token, from: candle.from(w) }) : Promise.resolve([]),
    token ? q.latestBook.run({ token, levels: BOOK_LEVELS }) : Promise.resolve([]),
    tokens.length ? q.recentTrades.run({ tokens, limit: 40 }) : Promise.resolve([]),
    q.marketGaps.run({ condition: market.condition_id, tokens, from: w.monthAgo, limit: 20 }),
  ]);
  const quoteBy = new Map(quotes.map((r) => [r.token_id, r]));
  const volumeBy = new Map(volumes.map((r) => [r.token_id, r]));
  return {
    asOfMs,
    market,
    outcomes: tokens.map((tokenId, index) => ({
      index,
      label: market.outcomes[index] ?? `Outcome ${index + 1}`,
      tokenId,
      quote: quoteBy.get(tokenId) ?? null,
      volume: volumeBy.get(tokenId) ?? null,
    })),
    selected: token ? Math.max(tokens.indexOf(token), 0) : 0,
    interval,
    candles,
    book: book[0] ?? null,
    trades,
    gaps,
  };
}
