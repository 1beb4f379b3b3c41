// What the browser suites (browser.mjs, admin.mjs) share: Chromium launched
// and closed, pages whose uncaught errors are collected, screenshots,
// axe-core, and the ending every suite prints (exit 0, or 1 naming the step
// that failed, with a screenshot of every open page).
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WAIT = 15000;
export const PASSWORD = "비밀번호-test-1234";
/** Unique per run: names made with it never meet an earlier run's. */
export const suffix = Date.now().toString(36).slice(-5) + Math.random().toString(36).slice(2, 5);

const here = path.dirname(fileURLToPath(import.meta.url));
export const artifacts = path.resolve(process.env.IEUM_ARTIFACTS || path.join(here, "../target/e2e-artifacts"));
fs.mkdirSync(artifacts, { recursive: true });
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export const check = (cond, what) => {
  if (!cond) throw new Error(`check failed: ${what}`);
};

export const connected = (page) => page.locator("[data-testid=conn-status][data-state=connected]").waitFor({ state: "attached" });
export const messages = (page) => page.locator("#messages > li[data-testid=message]");
export const messageWithText = (page, text) => messages(page).filter({ has: page.getByTestId("msg-text").getByText(text, { exact: true }) });

export async function sendText(page, text) {
  const input = page.getByTestId("composer-input");
  await input.fill(text);
  await input.press("Enter");
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

/** A suite named `name` (its log prefix); `viewport`: its desktop pages' size. */
export function suite(name, { viewport = { width: 1280, height: 800 } } = {}) {
  const pageErrors = [];
  const openPages = [];
  const log = (s) => console.log(`${name}: ${s}`);

  /** A browser context of its own (a person), Korean locale, errors collected. */
  async function newUserPage(browser, who, options = {}) {
    const context = await browser.newContext({ locale: "ko-KR", timezoneId: "Asia/Seoul", viewport, ...options });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on("pageerror", (e) => pageErrors.push(`${who}: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && !/Failed to load resource/.test(m.text())) log(`[${who} console] ${m.text()}`);
    });
    openPages.push([who, page]);
    return { context, page, name: who };
  }

  async function axeCheck(page, label) {
    await page.evaluate(axeSource); // page.evaluate is not subject to the page's CSP
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    for (const v of result.violations.filter((v) => !bad.includes(v))) {
      log(`axe (${label}) ${v.impact}: ${v.id}: ${v.help} [${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}]`);
    }
    if (bad.length) {
      const detail = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")} ${n.failureSummary?.replace(/\n/g, " ")}`).join("\n    ")}`).join("\n  ");
      throw new Error(`axe (${label}) found serious/critical violations:\n  ${detail}`);
    }
    log(`axe (${label}): no serious or critical violations`);
  }

  /** No page threw: the last check of a story. */
  const noPageErrors = () => check(pageErrors.length === 0, `no uncaught errors in the pages (${pageErrors.join("; ")})`);

  /** Runs `story(browser)` in Chromium and exits; `step()` names where it stands. */
  async function run(story, step) {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true });
    try {
      await story(browser);
      log(`screenshots in ${artifacts}`);
      console.log(`${name}: all checks passed`);
      process.exitCode = 0;
    } catch (e) {
      for (const [who, page] of openPages) {
        if (!page.isClosed()) await page.screenshot({ path: path.join(artifacts, `${name}-failed-${who}.png`) }).catch(() => {});
      }
      console.error(`${name}: FAILED at step "${step()}": ${e.message}`);
      if (pageErrors.length) console.error(`${name}: uncaught errors in the pages: ${pageErrors.join("; ")}`);
      process.exitCode = 1;
    } finally {
      await browser.close();
    }
    process.exit(process.exitCode);
  }

  return { log, newUserPage, axeCheck, noPageErrors, run };
}
