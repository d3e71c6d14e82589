/**
 * Browser tests of the dashboard against the real embedded ClickHouse (see stack.ts). One
 * stack for the whole run; the suites run in order, and the later ones tolerate the rows
 * the earlier ones inserted. The live suite, last, starts its own stack (simulator + `pmpipe
 * up`, see livestack.ts) and uses this run's browser.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, it } from "node:test";

import { downSuite, emptySuite } from "./empty.suite";
import { hostileSuite } from "./hostile.suite";
import { liveSuite } from "./live.suite";
import { marketSuite } from "./market.suite";
import { overviewSuite } from "./overview.suite";
import { signalsSuite } from "./signals.suite";
import { DASHBOARD_DIR, startStack, type Stack } from "./stack";
import { trendingSuite } from "./trending.suite";

let stack: Stack | null = null;

function get(): Stack {
  if (stack === null) throw new Error("the stack did not start");
  return stack;
}

before(async () => {
  const started = Date.now();
  stack = await startStack();
  console.log(`# stack up in ${Date.now() - started} ms at ${stack.baseUrl} (ClickHouse :${stack.chPort})`);
}, { timeout: 180_000 });

after(async () => {
  await stack?.stop();
});

it("keeps server code (the ClickHouse client, its settings) out of the browser bundles", () => {
  const dir = join(DASHBOARD_DIR, ".next", "static", "chunks");
  const chunks = readdirSync(dir).filter((name) => name.endsWith(".js"));
  assert.ok(chunks.length > 0);
  const leaking = chunks.filter((name) => /output_format_json_quote_decimals|@clickhouse\/client|CLICKHOUSE_PASSWORD/.test(readFileSync(join(dir, name), "utf8")));
  assert.deepEqual(leaking, []);
});

overviewSuite(get);
marketSuite(get);
trendingSuite(get);
signalsSuite(get);
hostileSuite(get);
emptySuite(get);
downSuite(get);
liveSuite(get);
