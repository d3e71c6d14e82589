/**
 * Display formatting, pure and locale-fixed (en-US, UTC), so the server's HTML and the
 * client's re-render agree and a test can format a `pmpipe query` value the same way.
 * Decimal values arrive as exact strings; they are rounded for display only.
 */

const usd2 = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const num2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 0, maximumFractionDigits: 2 });

function toNumber(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined || value === "") return null;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

export const DASH = "–";

/** $1,234.56 */
export function formatUsd(value: string | number | null | undefined): string {
  const n = toNumber(value);
  return n === null ? DASH : usd2.format(n);
}

const COMPACT: [number, string][] = [
  [1e12, "T"],
  [1e9, "B"],
  [1e6, "M"],
  [1e3, "K"],
];

/** $950.25, $13.0K, $1.4M (tables). Hand-made: ICU's compact notation differs between Node and browsers. */
export function formatUsdCompact(value: string | number | null | undefined): string {
  const n = toNumber(value);
  if (n === null) return DASH;
  const abs = Math.abs(n);
  for (const [unit, suffix] of COMPACT) {
    if (abs >= unit * 0.99995) return `${n < 0 ? "-" : ""}$${(abs / unit).toFixed(1)}${suffix}`;
  }
  return usd2.format(n);
}

export function formatInt(value: string | number | null | undefined): string {
  const n = toNumber(value);
  return n === null ? DASH : int.format(n);
}

export function formatShares(value: string | number | null | undefined): string {
  const n = toNumber(value);
  return n === null ? DASH : num2.format(n);
}

/** A price in USDC per share shown as cents: 0.535 -> 53.5¢ */
export function formatPrice(value: string | number | null | undefined): string {
  const n = toNumber(value);
  if (n === null) return DASH;
  const cents = n * 100;
  return `${Number.isInteger(Math.round(cents * 10) / 10) ? cents.toFixed(0) : cents.toFixed(1)}¢`;
}

/** A price change in cents with its sign: +32¢, −15¢ */
export function formatMove(value: string | number | null | undefined): string {
  const n = toNumber(value);
  if (n === null) return DASH;
  const body = formatPrice(Math.abs(n));
  if (Math.abs(n) < 0.00005) return `±${body}`;
  return `${n > 0 ? "+" : "−"}${body}`;
}

/** A ratio as a signed percentage: 0.25 -> +25.0% */
export function formatChange(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "new";
  const pct = ratio * 100;
  return `${pct >= 0 ? "+" : "−"}${Math.abs(pct).toFixed(1)}%`;
}

export function formatRatio(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "new";
  return `${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}×`;
}

function pad(n: number): string {
  return n.toString().padStart(2, "0");
}

/** 2026-01-31 14:05:09 UTC */
export function formatUtc(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return DASH;
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

/** 4m 0s, 2h 5m, 3d 4h */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** Age of `ms` relative to `asOfMs`: "12s ago", "3m 5s ago", "in 2h 0m". */
export function formatAge(ms: number | null | undefined, asOfMs: number): string {
  if (ms === null || ms === undefined) return DASH;
  const diff = asOfMs - ms;
  if (Math.abs(diff) < 1000) return "now";
  return diff > 0 ? `${formatDuration(diff)} ago` : `in ${formatDuration(-diff)}`;
}

export function shortId(id: string, keep = 6): string {
  return id.length <= keep * 2 + 1 ? id : `${id.slice(0, keep + (id.startsWith("0x") ? 2 : 0))}…${id.slice(-keep)}`;
}
