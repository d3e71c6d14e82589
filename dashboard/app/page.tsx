import { Suspense } from "react";

import { OverviewLive } from "@/components/overview/overview-live";
import { PageSkeleton } from "@/components/page-skeleton";
import { dashboardSettings } from "@/lib/config";
import { loadOverview } from "@/lib/data/overview";

export const dynamic = "force-dynamic";

async function Overview() {
  const data = await loadOverview();
  return <OverviewLive initial={data} pollMs={dashboardSettings().pollMs} />;
}

export default function OverviewPage() {
  return (
    <Suspense fallback={<PageSkeleton />}>
      <Overview />
    </Suspense>
  );
}
