/**
 * Rejects paths whose percent-encoding is malformed (`/markets/%E0%A4%A`) with 400 before
 * routing: Next.js would otherwise fail to decode the [id] segment and answer 500.
 */
import { NextResponse, type NextRequest } from "next/server";

export function proxy(request: NextRequest): NextResponse {
  try {
    decodeURIComponent(request.nextUrl.pathname);
  } catch {
    return new NextResponse("bad request: malformed percent-encoding in the path\n", { status: 400, headers: { "content-type": "text/plain; charset=utf-8" } });
  }
  return NextResponse.next();
}

export const config = { matcher: ["/markets/:path*", "/api/markets/:path*"] };
