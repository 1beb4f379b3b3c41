// Server-Sent Events (GET /api/events, docs/PROTOCOL.md "Server-Sent
// Events") with the real `eventsource` package: a ticket, a room's stream,
// Last-Event-ID resume without a gap, the stream of all rooms, and tickets
// that are reused, expired or forged.
// Usage: node sse.mjs http://127.0.0.1:PORT
import { EventSource } from "eventsource";
import assert from "node:assert/strict";

const base = process.argv[2];
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

async function ticket(token) {
  const r = await call("POST", "/api/events/ticket", null, token);
  assert.equal(r.status, 201);
  return r.body.ticket;
}

// An EventSource whose events are kept for `next`.
function listen(url) {
  const source = new EventSource(url);
  const seen = [];
  const waiters = [];
  const keep = (name) => source.addEventListener(name, (e) => {
    seen.push({ name, id: e.lastEventId, data: JSON.parse(e.data) });
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  });
  for (const name of ["subscribed", "rooms", "message", "member_joined", "error"]) keep(name);
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
  return { source, next };
}

async function main() {
  const alice = await account("alice");
  const bob = await account("bob");
  let r = await call("POST", "/api/rooms", { name: "sse 방" }, alice);
  assert.equal(r.status, 201);
  const room = r.body.id;
  assert.equal((await call("POST", `/api/rooms/${room}/join`, null, bob)).status, 200);

  // Bob listens to the room.
  const first = listen(`${base}/api/events?ticket=${await ticket(bob)}&roomId=${room}`);
  const sub = await first.next((e) => e.name === "subscribed", "subscribed");
  assert.equal(sub.data.roomId, room);
  const sent = await sendNative(alice, room, "안녕 SSE");
  const got = await first.next((e) => e.name === "message" && e.data.content === "안녕 SSE", "the message");
  assert.equal(got.id, String(sent.seq), "the event id is the seq");
  first.source.close();

  // Missed while away, then resumed with Last-Event-ID (as lastEventId: a
  // new EventSource sends no header of ours).
  const missed = [];
  for (const text of ["one", "two", "three"]) missed.push((await sendNative(alice, room, text)).seq);
  const again = listen(`${base}/api/events?ticket=${await ticket(bob)}&roomId=${room}&lastEventId=${got.id}`);
  const replayed = [];
  for (let i = 0; i < 3; i++) replayed.push(Number((await again.next((e) => e.name === "message", "replay")).id));
  assert.deepEqual(replayed, missed, "the missed messages, in order, once");
  again.source.close();

  // All of bob's rooms: `rooms` first, then any room's events.
  const all = listen(`${base}/api/events?ticket=${await ticket(bob)}`);
  const rooms = await all.next((e) => e.name === "rooms", "rooms");
  assert.ok(rooms.data.some((x) => x.room.id === room), JSON.stringify(rooms.data));
  await sendNative(alice, room, "to everyone");
  await all.next((e) => e.name === "message" && e.data.content === "to everyone", "all rooms' message");
  all.source.close();

  // Tickets: good once, not forged, needed.
  const once = await ticket(bob);
  const used = listen(`${base}/api/events?ticket=${once}&roomId=${room}`);
  await used.next((e) => e.name === "subscribed", "first use");
  used.source.close();
  let res = await fetch(`${base}/api/events?ticket=${once}&roomId=${room}`);
  assert.equal(res.status, 401);
  assert.equal((await res.json()).code, "ticket_used");
  res = await fetch(`${base}/api/events?ticket=forged&roomId=${room}`);
  assert.equal((await res.json()).code, "ticket_invalid");
  res = await fetch(`${base}/api/events?roomId=${room}`);
  assert.equal((await res.json()).code, "missing_ticket");
  res = await fetch(`${base}/api/events?ticket=${await ticket(bob)}&roomId=${room}&lastEventId=banana`);
  assert.equal((await res.json()).code, "invalid_last_event_id");
  console.log("sse: all checks passed");
  process.exit(0);
}

// Sends over the JSON WebSocket (SSE is one-way); answers {seq}.
async function sendNative(token, room, content) {
  const { default: WebSocket } = await import("ws");
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/ws/json?token=${token}`);
  const answers = [];
  const done = new Promise((resolve, reject) => {
    ws.on("message", (data) => {
      const o = JSON.parse(data.toString());
      if (o.type === "connected") ws.send(JSON.stringify({ type: "send", roomId: room, content, requestId: "s" }));
      if (o.requestId === "s") resolve(o);
      answers.push(o);
    });
    ws.on("error", reject);
  });
  const sent = await timeout(done, `sending ${content}`);
  ws.close();
  assert.equal(sent.type, "sent", JSON.stringify(answers));
  return sent;
}

main().catch((e) => {
  console.error("sse check failed:", e);
  process.exit(1);
});
