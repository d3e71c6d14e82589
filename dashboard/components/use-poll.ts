"use client";

import { useEffect, useRef, useState } from "react";

export interface Poll<T> {
  data: T;
  /** when the last successful poll landed (client clock) */
  updatedAt: number | null;
  error: string | null;
  polling: boolean;
}

/**
 * Keeps `initial` (the server render) and replaces it with `url`'s JSON every `intervalMs`,
 * one request at a time; a failed poll keeps the last data and reports the error. Pauses
 * while the tab is hidden.
 */
export function usePoll<T>(url: string, initial: T, intervalMs: number): Poll<T> {
  const [state, setState] = useState<Poll<T>>({ data: initial, updatedAt: null, error: null, polling: false });
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    let cancelled = false;
    const controller = new AbortController();

    const schedule = () => {
      if (!cancelled) timer.current = setTimeout(tick, intervalMs);
    };
    const tick = async () => {
      if (document.visibilityState === "hidden") return schedule();
      setState((s) => ({ ...s, polling: true }));
      try {
        const response = await fetch(url, { cache: "no-store", signal: controller.signal, headers: { accept: "application/json" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const data = (await response.json()) as T;
        if (!cancelled) setState({ data, updatedAt: Date.now(), error: null, polling: false });
      } catch (error) {
        if (cancelled) return;
        setState((s) => ({ ...s, error: error instanceof Error ? error.message : String(error), polling: false }));
      }
      schedule();
    };
    schedule();
    return () => {
      cancelled = true;
      controller.abort();
      if (timer.current) clearTimeout(timer.current);
    };
  }, [url, intervalMs]);

  return state;
}
