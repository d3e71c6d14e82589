/** Route-handler helpers: JSON answers that are never cached, and errors that never leak. */
import { QueryError } from "./queries";

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}

export function badRequest(message: string): Response {
  return json({ error: message }, 400);
}

export function notFound(message = "not found"): Response {
  return json({ error: message }, 404);
}

/**
 * Runs a loader: its value answers 200 as JSON, a Response it returns (404, 400) answers as is.
 * ClickHouse failures answer 503 (a dependency is down); anything else is a bug and rethrown.
 */
export async function answer(load: () => Promise<unknown>): Promise<Response> {
  try {
    const body = await load();
    return body instanceof Response ? body : json(body);
  } catch (error) {
    if (error instanceof QueryError) return json({ error: "clickhouse query failed", query: error.queryName }, 503);
    throw error;
  }
}
