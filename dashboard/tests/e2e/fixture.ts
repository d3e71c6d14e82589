/**
 * Deterministic, realistic test data for the dashboard: binary markets with two tokens, 12k
 * Data API trades over 2 days plus WebSocket copies (which must never count as volume),
 * quotes, full-depth books, continuity events including a closed and an open gap, and one
 * market per signal so every signal has something to show.
 */
import type { ClickHouseClient } from "@clickhouse/client";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** mulberry32: a tiny seeded PRNG, so every run inserts the same rows relative to `now`. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(random: () => number, n: number): string {
  let out = "";
  for (let i = 0; i < n; i += 1) out += Math.floor(random() * 16).toString(16);
  return out;
}

function digits(random: () => number, n: number): string {
  let out = String(1 + Math.floor(random() * 9));
  for (let i = 1; i < n; i += 1) out += String(Math.floor(random() * 10));
  return out;
}

/** ClickHouse text form of a UTC instant, with `decimals` fraction digits. */
export function chTime(ms: number, decimals: 3 | 6 = 3): string {
  const iso = new Date(ms).toISOString(); // 2026-01-01T00:00:00.000Z
  const base = iso.slice(0, 19).replace("T", " ");
  const frac = iso.slice(20, 23);
  return decimals === 3 ? `${base}.${frac}` : `${base}.${frac}000`;
}

function dec(value: number, places = 6): string {
  return value.toFixed(places);
}

function clamp(p: number): number {
  return Math.min(0.97, Math.max(0.03, p));
}

export interface MarketFixture {
  condition_id: string;
  market_id: string;
  question: string;
  slug: string;
  description: string;
  outcomes: string[];
  outcome_prices: string[];
  token_ids: string[];
  event_title: string;
  category: string | null;
  tags: string[];
  active: boolean;
  closed: boolean;
  archived: boolean;
  accepting_orders: boolean;
  enable_order_book: boolean;
  neg_risk: boolean;
  tick_size: string;
  min_order_size: string;
  volume: string;
  volume_24h: string;
  liquidity: string;
  start_date: string;
  end_date: string;
  created_at: string;
  updated_at: string;
  source_ts: string;
  received_ts: string;
}

export interface TradeFixture {
  trade_key: string;
  token_id: string;
  condition_id: string;
  transaction_hash: string;
  side: "BUY" | "SELL";
  price: string;
  size: string;
  proxy_wallet: string;
  outcome: string;
  outcome_index: number;
  occurrence: number;
  source: "data_api" | "ws";
  source_ts: string;
  received_ts: string;
}

export interface PriceFixture {
  token_id: string;
  condition_id: string;
  source: string;
  kind: string;
  best_bid: string;
  best_ask: string;
  mid: string;
  spread: string;
  last_trade_price: string | null;
  source_ts: string;
  received_ts: string;
}

export interface BookFixture {
  token_id: string;
  condition_id: string;
  source: string;
  bid_prices: string[];
  bid_sizes: string[];
  ask_prices: string[];
  ask_sizes: string[];
  hash: string;
  hash_ok: boolean;
  tick_size: string;
  min_order_size: string;
  neg_risk: boolean;
  last_trade_price: string;
  source_ts: string;
  received_ts: string;
}

export interface EventFixture {
  event_type: string;
  category: string;
  token_id: string | null;
  condition_id: string | null;
  market_id: string | null;
  token_ids: string[];
  connection_id: string | null;
  gap_start: string | null;
  gap_end: string | null;
  detail: string | null;
  source: string;
  source_ts: string;
  received_ts: string;
}

export interface Fixture {
  nowMs: number;
  markets: MarketFixture[];
  trades: TradeFixture[];
  prices: PriceFixture[];
  books: BookFixture[];
  events: EventFixture[];
  /** condition ids of the markets built to trigger each signal */
  special: {
    spike: MarketFixture;
    mover: MarketFixture;
    spread: MarketFixture;
    bookSum: MarketFixture;
    quoted: MarketFixture;
    closed: MarketFixture;
    archived: MarketFixture;
    gapped: MarketFixture;
  };
}

const SUBJECTS = ["Bitcoin", "Ethereum", "the Fed", "NVIDIA", "Real Madrid", "the Lakers", "OpenAI", "SpaceX", "Gold", "the ECB", "Arsenal", "Japan", "Tesla", "Solana", "the S&P 500", "Kraken", "Apple", "Rihanna", "the UK", "Taylor Swift"];
const PREDICATES = ["reach a new all-time high", "announce a rate cut", "win the final", "launch a new model", "complete an IPO", "close above its January level", "release a new album", "hold a snap election"];
const TAGS = ["politics", "crypto", "sports", "economics", "tech", "pop-culture"];
const CATEGORIES = ["Crypto", "Sports", "Politics", null] as const;

const MARKET_COUNT = 24;
const DATA_API_TRADES = 12_000;

export function buildFixture(nowMs: number, seed = 7): Fixture {
  const random = rng(seed);
  const markets: MarketFixture[] = [];
  const yesPrice: number[] = [];
  for (let i = 0; i < MARKET_COUNT; i += 1) {
    const subject = SUBJECTS[i % SUBJECTS.length] as string;
    const predicate = PREDICATES[(i * 3) % PREDICATES.length] as string;
    let question = `Will ${subject} ${predicate} by June 30, 2027?`;
    if (i === 4) question = "Will “Zürich Café” say 'ouvert' — before 2027? ☕ (O'Brien's pick)";
    const tagA = TAGS[i % TAGS.length] as string;
    const tagB = TAGS[(i + 2) % TAGS.length] as string;
    const createdMs = i >= MARKET_COUNT - 2 ? nowMs - (MARKET_COUNT - i) * HOUR : nowMs - (30 - i) * 24 * HOUR;
    const p = 0.2 + 0.6 * random();
    yesPrice.push(p);
    markets.push({
      condition_id: `0x${hex(random, 64)}`,
      market_id: String(500_000 + i),
      question,
      slug: question.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, ""),
      description: `Resolves YES if ${subject} does it. Source: official announcements.`,
      outcomes: ["Yes", "No"],
      outcome_prices: [dec(p), dec(1 - p)],
      token_ids: [digits(random, 77), digits(random, 77)],
      event_title: `${subject} in 2027`,
      category: CATEGORIES[i % CATEGORIES.length] ?? null,
      tags: i % 3 === 0 ? [tagA] : [tagA, tagB],
      active: i !== 5,
      closed: i === 5,
      archived: i === 6,
      accepting_orders: i !== 5,
      enable_order_book: true,
      neg_risk: i % 4 === 0,
      tick_size: "0.010000",
      min_order_size: "5.000000",
      volume: dec(100_000 + random() * 2_000_000, 2),
      volume_24h: dec(random() * 80_000, 2),
      liquidity: dec(5_000 + random() * 50_000, 2),
      start_date: chTime(createdMs),
      end_date: chTime(nowMs + 200 * 24 * HOUR),
      created_at: chTime(createdMs),
      updated_at: chTime(nowMs - 2 * MINUTE),
      source_ts: chTime(nowMs - 2 * MINUTE),
      received_ts: chTime(nowMs - 60_000, 6),
    });
  }
  const at = (i: number): MarketFixture => markets[i] as MarketFixture;
  const special = { spike: at(0), mover: at(1), spread: at(2), bookSum: at(3), quoted: at(4), closed: at(5), archived: at(6), gapped: at(7) };
  yesPrice[1] = 0.3;
  yesPrice[2] = 0.5;
  yesPrice[3] = 0.7;

  // ---- trades ----------------------------------------------------------------------------
  const trades: TradeFixture[] = [];
  const addTrade = (mi: number, outcome: 0 | 1, yes: number, size: number, ts: number, source: "data_api" | "ws" = "data_api"): TradeFixture => {
    const m = at(mi);
    const price = Math.round((outcome === 0 ? yes : 1 - yes) * 100) / 100;
    const side = random() < 0.5 ? "BUY" : "SELL";
    const tx = `0x${hex(random, 64)}`;
    const sourceTs = Math.floor(ts / 1000) * 1000; // Data API times have second precision
    const t: TradeFixture = {
      trade_key: `${tx}|${m.token_ids[outcome]}|${side}|${dec(price)}|${dec(size)}|0`,
      token_id: m.token_ids[outcome] as string,
      condition_id: m.condition_id,
      transaction_hash: tx,
      side,
      price: dec(price),
      size: dec(size),
      proxy_wallet: `0x${hex(random, 40)}`,
      outcome: m.outcomes[outcome] as string,
      outcome_index: outcome,
      occurrence: 0,
      source,
      source_ts: chTime(sourceTs),
      received_ts: chTime(Math.min(sourceTs + 15_000 + random() * 30_000, nowMs - 1_000), 6),
    };
    trades.push(t);
    return t;
  };
  const startMs = nowMs - 48 * HOUR;
  const normal = [...Array(MARKET_COUNT).keys()].filter((i) => i !== 1 && i !== 6);
  for (let k = 0; k < DATA_API_TRADES; k += 1) {
    const ts = startMs + ((k + random()) / DATA_API_TRADES) * (48 * HOUR - 2 * HOUR);
    const mi = normal[Math.floor(random() * random() * normal.length)] as number; // skewed: early markets trade more
    const cur = clamp((yesPrice[mi] as number) + (random() - 0.5) * 0.02);
    yesPrice[mi] = mi === 3 ? 0.7 : mi === 2 ? 0.5 : cur;
    const size = Math.round(Math.exp(2.5 + random() * 3) * 100) / 100;
    const trade = addTrade(mi, random() < 0.6 ? 0 : 1, yesPrice[mi] as number, size, ts);
    if (k % 8 === 0) {
      // the same fill seen earlier on the WebSocket: stored, never counted as volume
      trades.push({ ...trade, source: "ws", proxy_wallet: "", received_ts: chTime(Date.parse(`${trade.source_ts.replace(" ", "T")}Z`) + 300, 6) });
    }
  }
  // mover: quiet at 0.30 for two days, then 0.30 -> 0.62 within the last hour
  for (let k = 0; k < 120; k += 1) addTrade(1, 0, 0.3, 50 + random() * 50, startMs + k * 23 * MINUTE);
  for (let k = 0; k < 30; k += 1) addTrade(1, 0, 0.3 + (0.32 * k) / 29, 80 + random() * 40, nowMs - 50 * MINUTE + k * 90_000);
  // spike: the last 50 minutes carry far more than its usual hour
  for (let k = 0; k < 300; k += 1) addTrade(0, k % 2 === 0 ? 0 : 1, yesPrice[0] as number, 400 + random() * 600, nowMs - 50 * MINUTE + k * 9_000);
  // large trades within 24 h
  for (let k = 0; k < 3; k += 1) addTrade(8 + k, 0, yesPrice[8 + k] as number, 40_000 + k * 5_000, nowMs - (3 + k * 4) * HOUR);
  // the newest fill: a few seconds old
  addTrade(9, 0, yesPrice[9] as number, 25, nowMs - 5_000);

  // ---- quotes ------------------------------------------------------------------------------
  const prices: PriceFixture[] = [];
  for (let mi = 0; mi < MARKET_COUNT; mi += 1) {
    const m = at(mi);
    for (let ts = startMs; ts <= nowMs - 10_000; ts += 10 * MINUTE) {
      const last = ts + 10 * MINUTE > nowMs - 10_000;
      const quoteTs = last ? nowMs - 10_000 : ts;
      for (const outcome of [0, 1] as const) {
        const base = outcome === 0 ? (yesPrice[mi] as number) : 1 - (yesPrice[mi] as number);
        const half = mi === 2 && last ? 0.12 : 0.005;
        prices.push({
          token_id: m.token_ids[outcome] as string,
          condition_id: m.condition_id,
          source: "clob",
          kind: "poll",
          best_bid: dec(Math.round((base - half) * 1000) / 1000),
          best_ask: dec(Math.round((base + half) * 1000) / 1000),
          mid: dec(Math.round(base * 1000) / 1000),
          spread: dec(Math.round(2 * half * 1000) / 1000),
          last_trade_price: dec(Math.round(base * 100) / 100),
          source_ts: chTime(quoteTs),
          received_ts: chTime(quoteTs + 150, 6),
        });
      }
    }
  }

  // ---- books (newest 15 minutes old: the books feed starts STALE) ----------------------------
  const books: BookFixture[] = [];
  for (let mi = 0; mi < MARKET_COUNT; mi += 1) {
    const m = at(mi);
    for (let ts = startMs; ts <= nowMs - 15 * MINUTE; ts += 30 * MINUTE) {
      for (const outcome of [0, 1] as const) {
        let mid = outcome === 0 ? (yesPrice[mi] as number) : 1 - (yesPrice[mi] as number);
        if (mi === 3) mid = outcome === 0 ? 0.7 : 0.45; // sums to 1.15
        const bidPrices: string[] = [];
        const bidSizes: string[] = [];
        const askPrices: string[] = [];
        const askSizes: string[] = [];
        for (let level = 0; level < 12; level += 1) {
          bidPrices.push(dec(Math.round((mid - 0.01 - level * 0.01) * 100) / 100));
          askPrices.push(dec(Math.round((mid + 0.01 + level * 0.01) * 100) / 100));
          bidSizes.push(dec(Math.round((200 + random() * 3_000) * 100) / 100));
          askSizes.push(dec(Math.round((200 + random() * 3_000) * 100) / 100));
        }
        books.push({
          token_id: m.token_ids[outcome] as string,
          condition_id: m.condition_id,
          source: "clob",
          bid_prices: bidPrices.filter((p) => Number(p) > 0),
          bid_sizes: bidSizes.slice(0, bidPrices.filter((p) => Number(p) > 0).length),
          ask_prices: askPrices.filter((p) => Number(p) < 1),
          ask_sizes: askSizes.slice(0, askPrices.filter((p) => Number(p) < 1).length),
          hash: hex(random, 40),
          hash_ok: true,
          tick_size: "0.010000",
          min_order_size: "5.000000",
          neg_risk: m.neg_risk,
          last_trade_price: dec(Math.round(mid * 100) / 100),
          source_ts: chTime(ts),
          received_ts: chTime(ts + 400, 6),
        });
      }
    }
  }

  // ---- continuity and lifecycle events -------------------------------------------------------
  const shardTokens = markets.slice(0, 12).flatMap((m) => m.token_ids);
  const event = (e: Partial<EventFixture> & { event_type: string; ts: number }): EventFixture => ({
    event_type: e.event_type,
    category: e.category ?? "continuity",
    token_id: e.token_id ?? null,
    condition_id: e.condition_id ?? null,
    market_id: e.market_id ?? null,
    token_ids: e.token_ids ?? [],
    connection_id: e.connection_id ?? null,
    gap_start: e.gap_start ?? null,
    gap_end: e.gap_end ?? null,
    detail: e.detail ?? null,
    source: e.source ?? "pipeline",
    source_ts: chTime(e.ts),
    received_ts: chTime(e.ts + 5, 6),
  });
  const events: EventFixture[] = [
    event({ event_type: "connected", ts: nowMs - 47 * HOUR, connection_id: "conn-a", token_ids: shardTokens }),
    event({ event_type: "disconnected", ts: nowMs - 6 * HOUR - 5 * MINUTE, connection_id: "conn-a", token_ids: shardTokens, detail: "close code 1006" }),
    event({ event_type: "gap", ts: nowMs - 6 * HOUR - MINUTE, connection_id: "conn-b", token_ids: shardTokens, gap_start: chTime(nowMs - 6 * HOUR - 5 * MINUTE), gap_end: chTime(nowMs - 6 * HOUR - MINUTE), detail: "reconnected after 240 s" }),
    event({ event_type: "connected", ts: nowMs - 6 * HOUR - MINUTE, connection_id: "conn-b", token_ids: shardTokens }),
    event({ event_type: "resubscribed", ts: nowMs - 6 * HOUR - MINUTE, connection_id: "conn-b", token_ids: shardTokens }),
    event({ event_type: "silent", ts: nowMs - 2 * HOUR, connection_id: "conn-b", token_ids: shardTokens, detail: "no frame for 30 s" }),
    event({ event_type: "gap", ts: nowMs - 20 * MINUTE, connection_id: "conn-c", token_ids: special.gapped.token_ids, condition_id: special.gapped.condition_id, gap_start: chTime(nowMs - 20 * MINUTE), detail: "open: reconnecting" }),
    event({ event_type: "tick_size_change", category: "market", source: "ws", ts: nowMs - 3 * HOUR, token_id: special.mover.token_ids[0] ?? null, condition_id: special.mover.condition_id, detail: "0.01 -> 0.001" }),
    event({ event_type: "new_market", category: "market", source: "ws", ts: nowMs - 2 * HOUR, condition_id: at(MARKET_COUNT - 1).condition_id, market_id: at(MARKET_COUNT - 1).market_id, token_ids: at(MARKET_COUNT - 1).token_ids }),
  ];
  return { nowMs, markets, trades, prices, books, events, special };
}

/** An older version of a market's metadata: FINAL must show the newer one. */
function staleVersion(m: MarketFixture, nowMs: number): MarketFixture {
  return { ...m, question: `${m.question} (old title)`, received_ts: chTime(nowMs - 10 * HOUR, 6), source_ts: chTime(nowMs - 10 * HOUR) };
}

export async function insertFixture(client: ClickHouseClient, f: Fixture): Promise<void> {
  // two inserts, two parts: the older version stays stored until a merge, FINAL hides it
  await client.insert({ table: "markets", values: f.markets.map((m) => staleVersion(m, f.nowMs)), format: "JSONEachRow" });
  await client.insert({ table: "markets", values: f.markets, format: "JSONEachRow" });
  await client.insert({ table: "market_trades", values: f.trades, format: "JSONEachRow" });
  await client.insert({ table: "market_prices", values: f.prices, format: "JSONEachRow" });
  await client.insert({ table: "orderbook_snapshots_in", values: f.books, format: "JSONEachRow" });
  await client.insert({ table: "market_events", values: f.events, format: "JSONEachRow" });
}

/** New Data API fills for one token, `ageMs` old: what the refresh test lands. */
export function freshTrades(m: MarketFixture, count: number, nowMs: number, tag: string): TradeFixture[] {
  const out: TradeFixture[] = [];
  for (let i = 0; i < count; i += 1) {
    const ts = Math.floor((nowMs - 2_000 - i * 1_000) / 1000) * 1000;
    const tx = `0x${tag}${String(i).padStart(64 - tag.length, "0")}`;
    const price = "0.550000";
    const size = dec(10 + i);
    out.push({
      trade_key: `${tx}|${m.token_ids[0]}|BUY|${price}|${size}|0`,
      token_id: m.token_ids[0] as string,
      condition_id: m.condition_id,
      transaction_hash: tx,
      side: "BUY",
      price,
      size,
      proxy_wallet: "0x0000000000000000000000000000000000000001",
      outcome: "Yes",
      outcome_index: 0,
      occurrence: 0,
      source: "data_api",
      source_ts: chTime(ts),
      received_ts: chTime(nowMs, 6),
    });
  }
  return out;
}

export function freshQuote(m: MarketFixture, nowMs: number): PriceFixture {
  return {
    token_id: m.token_ids[0] as string,
    condition_id: m.condition_id,
    source: "clob",
    kind: "poll",
    best_bid: "0.540000",
    best_ask: "0.560000",
    mid: "0.550000",
    spread: "0.020000",
    last_trade_price: "0.550000",
    source_ts: chTime(nowMs),
    received_ts: chTime(nowMs, 6),
  };
}
