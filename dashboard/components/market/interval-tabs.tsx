"use client";

import { usePathname, useRouter, useSearchParams } from "next/navigation";

import { Tabs, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { INTERVALS, type Interval } from "@/lib/params";

const LABEL: Record<Interval, string> = { "1m": "1 min", "1h": "1 hour", "1d": "1 day" };

/** Candle interval picker: a Radix Tabs list that navigates (?interval=…), so views are shareable. */
export function IntervalTabs({ value }: { value: Interval }) {
  const router = useRouter();
  const path = usePathname();
  const search = useSearchParams();
  return (
    <Tabs
      value={value}
      onValueChange={(next) => {
        const params = new URLSearchParams(search.toString());
        params.set("interval", next);
        router.replace(`${path}?${params.toString()}`, { scroll: false });
      }}
    >
      <TabsList aria-label="Candle interval">
        {INTERVALS.map((i) => (
          <TabsTrigger key={i} value={i} data-testid={`interval-${i}`}>
            {LABEL[i]}
          </TabsTrigger>
        ))}
      </TabsList>
    </Tabs>
  );
}
