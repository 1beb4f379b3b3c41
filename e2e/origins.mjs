// Which web origins may use ieum, in a real browser (Debian's Chromium driven
// by playwright-core): a page of an origin ieum does not list can neither
// call the API (no CORS grant) nor open the WebSocket (handshake refused); a
// page of a listed origin can do both. Then /docs renders the API reference
// from the vendored Swagger UI with no request leaving the server.
// Usage: node origins.mjs http://127.0.0.1:PORT ALLOWED_PAGE_PORT
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.argv[2];
const allowedPort = Number(process.argv[3]);
const artifacts = process.env.IEUM_ARTIFACTS || new URL("../target/e2e-artifacts", import.meta.url).pathname;
fs.mkdirSync(artifacts, { recursive: true });

// A page server of its own origin: an empty page the test runs code in.
function pageServer(port) {
  const server = http.createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>another site</title><p>another site</p>");
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

async function signup() {
  const name = "origins" + Math.random().toString(36).slice(2, 8);
  const res = await fetch(base + "/auth/signup", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: name, password: "testpass" }),
  });
  assert.equal(res.status, 201);
  return { name, token: (await res.json()).data.accessToken };
}

// Runs in the page: calls the API and opens a STOMP WebSocket; answers what
// happened to each.
async function tryBoth({ base, token }) {
  const api = await fetch(base + "/api/me", { headers: { authorization: "Bearer " + token } })
    .then(async (r) => ({ status: r.status, username: (await r.json()).username }))
    .catch((e) => ({ blocked: String(e) }));
  const socket = await new Promise((resolve) => {
    const ws = new WebSocket(base.replace("http", "ws") + "/ws/chat", ["v12.stomp"]);
    const timer = setTimeout(() => resolve({ timedOut: true }), 10000);
    ws.onopen = () => ws.send("CONNECT\naccept-version:1.2\nAuthorization:Bearer " + token + "\n\n\0");
    ws.onmessage = (m) => {
      clearTimeout(timer);
      resolve({ frame: String(m.data).split("\n")[0] });
      ws.close();
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      resolve({ closed: e.code });
    };
  });
  return { api, socket };
}

async function main() {
  const me = await signup();
  const allowed = await pageServer(allowedPort);
  const other = await pageServer(0);
  const otherPort = other.address().port;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();

    await page.goto(`http://127.0.0.1:${otherPort}/`);
    const refused = await page.evaluate(tryBoth, { base, token: me.token });
    assert.ok(refused.api.blocked, `another origin read the API: ${JSON.stringify(refused.api)}`);
    assert.equal(refused.socket.closed, 1006, `another origin opened the WebSocket: ${JSON.stringify(refused.socket)}`);
    console.log("origins: another origin is refused", JSON.stringify(refused));

    await page.goto(`http://127.0.0.1:${allowedPort}/`);
    const granted = await page.evaluate(tryBoth, { base, token: me.token });
    assert.deepEqual(granted.api, { status: 200, username: me.name });
    assert.equal(granted.socket.frame, "CONNECTED", JSON.stringify(granted.socket));
    console.log("origins: the listed origin calls the API and connects");

    // The API reference, rendered from the binary's files only.
    const outside = [];
    const problems = [];
    page.on("request", (r) => { if (!r.url().startsWith(base)) outside.push(r.url()); });
    page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
    page.on("response", (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(base + "/docs");
    await page.locator(".opblock").first().waitFor({ timeout: 15000 });
    const operations = await page.locator(".opblock").count();
    assert.ok(operations >= 50, `only ${operations} operations rendered`);
    assert.ok(await page.getByText("ieum HTTP API").first().isVisible());
    await page.locator(".opblock-summary-path", { hasText: "/auth/signup" }).first().click();
    await page.locator(".opblock-body").first().waitFor({ timeout: 15000 });
    await page.screenshot({ path: path.join(artifacts, "docs.png"), fullPage: false });
    assert.deepEqual(outside, [], "every request of /docs stays on the server");
    assert.deepEqual(problems, [], "no console errors (a CSP violation is one)");
    console.log(`origins: /docs renders ${operations} operations`);
  } finally {
    await browser.close();
    allowed.close();
    other.close();
  }
  console.log("origins: all checks passed");
}

main().then(() => process.exit(0), (e) => {
  console.error("origins check failed:", e);
  process.exit(1);
});
