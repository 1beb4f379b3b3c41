// The plain JSON WebSocket (/ws/json, docs/PROTOCOL.md "JSON WebSocket") with
// the `ws` package and nothing else: auth, subscribe, send, receive, bad
// input, reconnect and resume by lastSeq without a gap.
// Usage: node jsonws.mjs http://127.0.0.1:PORT
import WebSocket from "ws";
import assert from "node:assert/strict";

const base = process.argv[2];
const wsUrl = base.replace(/^http/, "ws") + "/ws/json";
const suffix = Math.random().toString(36).slice(2, 8);
const TIMEOUT = 15000;
const timeout = (p, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), TIMEOUT))]);

async function call(method, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function account(name) {
  const r = await call("POST", "/auth/signup", { username: name + suffix, password: "testpass" });
  assert.equal(r.status, 201);
  return r.body.data.accessToken;
}

// An open socket whose objects are kept for `next`.
async function open() {
  const ws = new WebSocket(wsUrl);
  const seen = [];
  const waiters = [];
  let closed = null;
  ws.on("message", (data) => {
    seen.push(JSON.parse(data.toString()));
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  });
  ws.on("close", (code) => {
    closed = code;
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  });
  await timeout(new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); }), "open");
  const next = (pred, what) =>
    timeout(new Promise((resolve) => {
      const w = () => {
        const i = seen.findIndex(pred);
        if (i < 0) return false;
        resolve(seen.splice(i, 1)[0]);
        return true;
      };
      if (!w()) waiters.push(w);
    }), what);
  const closedWith = () =>
    timeout(new Promise((resolve) => {
      const w = () => closed !== null && (resolve(closed), true);
      if (!w()) waiters.push(w);
    }), "close");
  const send = (obj) => ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
  return { ws, next, send, closedWith };
}

async function connected(token) {
  const c = await open();
  c.send({ type: "auth", token, requestId: "a" });
  const hello = await c.next((o) => o.requestId === "a", "connected");
  assert.equal(hello.type, "connected", JSON.stringify(hello));
  return c;
}

async function main() {
  const alice = await account("alice");
  const bob = await account("bob");
  let r = await call("POST", "/api/rooms", { name: "json 방" }, alice);
  assert.equal(r.status, 201);
  const room = r.body.id;
  assert.equal((await call("POST", `/api/rooms/${room}/join`, null, bob)).status, 200);

  const a = await connected(alice);
  const b = await connected(bob);
  for (const [c, id] of [[a, "sa"], [b, "sb"]]) {
    c.send({ type: "subscribe", id, roomId: room, requestId: `sub-${id}` });
    const s = await c.next((o) => o.requestId === `sub-${id}`, "subscribed");
    assert.equal(s.type, "subscribed");
  }
  a.send({ type: "send", roomId: room, content: "안녕 JSON", requestId: "s1" });
  const sent = await a.next((o) => o.requestId === "s1", "sent");
  assert.equal(sent.type, "sent");
  const got = await b.next((o) => o.type === "event" && o.event === "message" && o.data.content === "안녕 JSON", "the message");
  assert.equal(got.subscription, "sb");
  assert.equal(got.data.seq, sent.seq);

  // Bad input: codes, and the connection goes on.
  b.send("not json at all");
  assert.equal((await b.next((o) => o.type === "error", "invalid_json")).code, "invalid_json");
  b.send({ type: "dance", requestId: "d" });
  assert.equal((await b.next((o) => o.requestId === "d", "unknown_type")).code, "unknown_type");
  b.send({ type: "send", roomId: "not-my-room", content: "x", requestId: "x" });
  const refused = await b.next((o) => o.requestId === "x", "refused send");
  assert.equal(refused.type, "error");
  b.send({ type: "ping", requestId: "p" });
  assert.equal((await b.next((o) => o.requestId === "p", "pong")).type, "pong");

  // Bob goes away; alice writes; bob comes back and resumes after what he saw.
  const lastSeen = got.data.seq;
  b.ws.close();
  const missed = [];
  for (const text of ["one", "two", "three"]) {
    a.send({ type: "send", roomId: room, content: text, requestId: text });
    missed.push((await a.next((o) => o.requestId === text, `sent ${text}`)).seq);
  }
  const back = await connected(bob);
  back.send({ type: "subscribe", id: "again", roomId: room, lastSeq: lastSeen, requestId: "re" });
  const re = await back.next((o) => o.requestId === "re", "resubscribed");
  assert.equal(re.lastSeq, missed[2]);
  const replayed = [];
  for (let i = 0; i < 3; i++) replayed.push((await back.next((o) => o.type === "event" && o.event === "message", "replay")).data.seq);
  assert.deepEqual(replayed, missed, "the missed messages, in order, once");

  // Before auth only auth is taken; a bad token closes with 1008.
  const stranger = await open();
  stranger.send({ type: "send", roomId: room, content: "hi" });
  assert.equal((await stranger.next((o) => o.type === "error", "not_connected")).code, "not_connected");
  assert.equal(await stranger.closedWith(), 1008);
  const liar = await open();
  liar.send({ type: "auth", token: "forged" });
  assert.equal((await liar.next((o) => o.type === "error", "token_invalid")).code, "token_invalid");
  assert.equal(await liar.closedWith(), 1008);

  for (const c of [a, back]) c.ws.close();
  console.log("json websocket: all checks passed");
}

main().then(() => process.exit(0), (e) => { console.error("json websocket check failed:", e); process.exit(1); });
