import { answer } from "@/lib/api";
import { loadSignals } from "@/lib/data/signals";

export const dynamic = "force-dynamic";

export async function GET(): Promise<Response> {
  return answer(() => loadSignals());
}
