import { answer } from "@/lib/api";
import { loadOverview } from "@/lib/data/overview";

export const dynamic = "force-dynamic";

export async function GET(): Promise<Response> {
  return answer(() => loadOverview());
}
