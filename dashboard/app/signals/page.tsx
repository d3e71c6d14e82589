import type { Metadata } from "next";
import { Suspense } from "react";

import { PageSkeleton } from "@/components/page-skeleton";
import { SignalsLive } from "@/components/signals/signals-live";
import { dashboardSettings } from "@/lib/config";
import { loadSignals } from "@/lib/data/signals";

export const dynamic = "force-dynamic";
export const metadata: Metadata = { title: "Signals" };

async function Signals() {
  const data = await loadSignals();
  return <SignalsLive initial={data} pollMs={dashboardSettings().pollMs} />;
}

export default function SignalsPage() {
  return (
    <Suspense fallback={<PageSkeleton cards={0} rows={12} />}>
      <Signals />
    </Suspense>
  );
}
