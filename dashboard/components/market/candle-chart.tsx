"use client";

import {
  CandlestickSeries,
  ColorType,
  createChart,
  HistogramSeries,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef } from "react";

import type { CandleRow } from "@/lib/queries/market";

const UP = "#16a34a";
const DOWN = "#dc2626";

interface Series {
  chart: IChartApi;
  candles: ISeriesApi<"Candlestick">;
  volume: ISeriesApi<"Histogram">;
}

function toCandles(rows: CandleRow[]): CandlestickData<UTCTimestamp>[] {
  return rows.map((r) => ({ time: r.time as UTCTimestamp, open: r.open, high: r.high, low: r.low, close: r.close }));
}

function toVolume(rows: CandleRow[]): HistogramData<UTCTimestamp>[] {
  return rows.map((r) => ({ time: r.time as UTCTimestamp, value: r.notional, color: r.close >= r.open ? `${UP}66` : `${DOWN}66` }));
}

/**
 * Candles with USDC volume bars beneath (TradingView Lightweight Charts). Times are UTC.
 * The chart is created once; new rows from the poll replace the series' data.
 */
export function CandleChart({ rows, secondsVisible }: { rows: CandleRow[]; secondsVisible: boolean }) {
  const container = useRef<HTMLDivElement>(null);
  const series = useRef<Series | null>(null);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    const chart = createChart(el, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: dark ? "#d4d4d4" : "#404040", fontSize: 11 },
      grid: { vertLines: { color: dark ? "#2a2a2a" : "#f0f0f0" }, horzLines: { color: dark ? "#2a2a2a" : "#f0f0f0" } },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false, timeVisible: true, secondsVisible },
      localization: { priceFormatter: (p: number) => `${(p * 100).toFixed(1)}¢` },
    });
    const candles = chart.addSeries(CandlestickSeries, { upColor: UP, downColor: DOWN, wickUpColor: UP, wickDownColor: DOWN, borderVisible: false });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.28 } });
    const volume = chart.addSeries(HistogramSeries, { priceScaleId: "volume", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false });
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
    series.current = { chart, candles, volume };
    return () => {
      series.current = null;
      chart.remove();
    };
  }, [secondsVisible]);

  useEffect(() => {
    const s = series.current;
    if (!s) return;
    s.candles.setData(toCandles(rows));
    s.volume.setData(toVolume(rows));
    s.chart.timeScale().fitContent();
  }, [rows, secondsVisible]);

  return <div ref={container} className="h-72 w-full sm:h-80" data-testid="candle-chart" data-candles={rows.length} />;
}
