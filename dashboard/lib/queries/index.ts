/**
 * The query layer: the only code that knows table names. Every statement is a constant with
 * typed `{name:Type}` placeholders, run through `query()` (client.ts).
 */
export { QueryError, placeholders, type QueryDef, type QueryParams } from "./client";
export * as overviewQueries from "./overview";
export * as marketQueries from "./market";
export * as trendingQueries from "./trending";
export * as signalQueries from "./signals";
export type { Dec } from "./overview";
