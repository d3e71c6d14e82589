/** Page helpers: open a page and collect its errors, wait for polled values, screenshots. */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";

import { ARTIFACTS, type Stack } from "./stack";

export interface Opened {
  page: Page;
  /** uncaught exceptions and console errors seen since the page opened */
  errors: string[];
  status: number | null;
}

export async function open(stack: Stack, path: string, width = 1280, ready = "[data-testid=live-status]", base = stack.baseUrl): Promise<Opened> {
  const page = await stack.browser.newPage();
  await page.setViewportSize({ width, height: 900 });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("dialog", (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  const response = await page.goto(base + path, { waitUntil: "load" });
  if (ready) await page.waitForSelector(ready, { timeout: 20_000 });
  return { page, errors, status: response?.status() ?? null };
}

export async function asOf(page: Page): Promise<number> {
  const raw = await page.getAttribute("[data-testid=live-status]", "data-asof");
  assert.ok(raw, "the page shows its as-of time");
  return Number(raw);
}

export async function dataValue(page: Page, selector: string): Promise<string> {
  const value = await page.locator(selector).first().getAttribute("data-value");
  assert.notEqual(value, null, `${selector} has a data-value`);
  return value as string;
}

export async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).first().innerText()).trim();
}

/** Waits (through the page's own polling) until `read` returns something `accept`s. */
export async function until<T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (accept(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
}

/** Full-page screenshot into test-artifacts/screenshots/<name>-<width>.png. */
export async function screenshot(stack: Stack, path: string, name: string, ready: string): Promise<string[]> {
  const dir = join(ARTIFACTS, "screenshots");
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const width of [375, 1280]) {
    const { page, errors } = await open(stack, path, width, ready);
    await page.waitForLoadState("networkidle");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${name} at ${width} px has no horizontal page scroll (overflow ${overflow} px)`);
    const file = join(dir, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    assert.deepEqual(errors, [], `${name} at ${width} px ran without errors`);
    await page.close();
    written.push(file);
  }
  return written;
}

export interface Figures {
  asOf: number;
  /** data-testid -> data-value and visible text, read in one go with the as-of time */
  values: Record<string, { value: string; text: string }>;
}

/** Reads the as-of time and figures in one synchronous step, so no poll lands in between. */
export async function figures(page: Page, testIds: string[]): Promise<Figures> {
  return page.evaluate((ids) => {
    const status = document.querySelector("[data-testid=live-status]");
    const values: Record<string, { value: string; text: string }> = {};
    for (const id of ids) {
      const el = document.querySelector(`[data-testid="${id}"]`);
      values[id] = { value: el?.getAttribute("data-value") ?? "", text: (el as HTMLElement | null)?.innerText.trim() ?? "" };
    }
    return { asOf: Number(status?.getAttribute("data-asof")), values };
  }, testIds);
}
