/**
 * Time windows of every page, all derived from one "as of" instant, so a page's numbers can be
 * reproduced exactly: the page prints its as-of time (data-asof, ms) and the same parameters
 * give the same rows with `pmpipe query`.
 *
 * "24 h" figures read the hourly rollup: the current hour bucket and the 23 before it
 * (UTC), "previous 24 h" the 24 buckets before those. Windows on raw rows (large trades,
 * rows in the last hour) are exact.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface Windows {
  asOf: Date;
  /** first hourly bucket of the last 24 (current hour included) */
  dayFrom: Date;
  /** first hourly bucket of the 24 before dayFrom */
  prevDayFrom: Date;
  /** first minute bucket of the last 60 (current minute included) */
  hourFrom: Date;
  /** baseline of hourly rates: the 24 complete hours ending one hour before the current one */
  baselineFrom: Date;
  baselineTo: Date;
  /** exact: asOf - 1 h, asOf - 24 h */
  hourAgo: Date;
  dayAgo: Date;
  /** candle windows */
  weekAgo: Date;
  monthAgo: Date;
  yearAgo: Date;
}

export function startOfHour(ms: number): number {
  return Math.floor(ms / HOUR) * HOUR;
}

export function startOfMinute(ms: number): number {
  return Math.floor(ms / MINUTE) * MINUTE;
}

export function windowsAt(asOfMs: number): Windows {
  const hour = startOfHour(asOfMs);
  const dayFrom = hour - 23 * HOUR;
  return {
    asOf: new Date(asOfMs),
    dayFrom: new Date(dayFrom),
    prevDayFrom: new Date(dayFrom - DAY),
    hourFrom: new Date(startOfMinute(asOfMs) - 59 * MINUTE),
    baselineFrom: new Date(hour - 25 * HOUR),
    baselineTo: new Date(hour - HOUR),
    hourAgo: new Date(asOfMs - HOUR),
    dayAgo: new Date(asOfMs - DAY),
    weekAgo: new Date(asOfMs - 7 * DAY),
    monthAgo: new Date(asOfMs - 30 * DAY),
    yearAgo: new Date(asOfMs - 365 * DAY),
  };
}

/** How @clickhouse/client sends a Date parameter (a time-zone-agnostic Unix timestamp). */
export function unixParam(date: Date): string {
  const ms = date.getTime();
  const secs = Math.floor(ms / 1000).toString().padStart(10, "0");
  const frac = ((ms % 1000) + 1000) % 1000;
  return frac === 0 ? secs : `${secs}.${frac.toString().padStart(3, "0")}`;
}
