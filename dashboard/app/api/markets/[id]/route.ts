import { answer, notFound } from "@/lib/api";
import { findMarket, loadMarket } from "@/lib/data/market";
import { first, parseInterval, parseMarketId, parseOutcome, searchParamsOf } from "@/lib/params";

export const dynamic = "force-dynamic";

export async function GET(request: Request, { params }: { params: Promise<{ id: string }> }): Promise<Response> {
  return answer(async () => {
    const id = parseMarketId((await params).id);
    if (id === null) return notFound("no such market");
    const market = await findMarket(id);
    if (market === null) return notFound("no such market");
    const sp = searchParamsOf(new URL(request.url));
    return loadMarket(market, parseOutcome(first(sp.outcome), market.token_ids.length), parseInterval(first(sp.interval)));
  });
}
