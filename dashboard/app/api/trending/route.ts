import { answer, badRequest } from "@/lib/api";
import { loadTrending } from "@/lib/data/trending";
import { MAX_SEARCH_CHARS, MAX_TAG_CHARS, parseTrendingQuery, searchParamsOf } from "@/lib/params";

export const dynamic = "force-dynamic";

export async function GET(request: Request): Promise<Response> {
  const query = parseTrendingQuery(searchParamsOf(new URL(request.url)));
  if (query.tooLong) return badRequest(`q is limited to ${MAX_SEARCH_CHARS} characters, tag to ${MAX_TAG_CHARS}`);
  return answer(() => loadTrending(query));
}
