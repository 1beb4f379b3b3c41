// Contract B (docs/CONTRACTS.md, the Android couple-app) end to end with
// the real @stomp/stompjs client: couples, ?token= handshake, /topic/couple,
// /app/chat sends with tempId dedupe, read receipts, typing, presence, errors
// and history. Usage: node contract-b.mjs http://127.0.0.1:PORT
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";
import assert from "node:assert/strict";

const base = process.argv[2];
const wsBase = base.replace(/^http/, "ws") + "/ws/chat";
const suffix = Math.random().toString(36).slice(2, 8);
const TIMEOUT = 15000;
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;

async function call(method, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json().catch(() => null) };
}

const timeout = (p, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), TIMEOUT))]);

async function account(name) {
  const r = await call("POST", "/auth/signup", { username: name + suffix, password: "testpass", displayName: `${name} 님` });
  assert.equal(r.status, 201);
  const token = r.body.data.accessToken;
  const me = (await call("GET", "/api/me", null, token)).body;
  return { token, id: me.id, name: me.displayName };
}

// Connects with the token on the handshake URL (the couple-app's way) and
// collects every frame per destination.
async function connect(token) {
  const inbox = new Map();
  const waiters = [];
  const client = new Client({
    webSocketFactory: () => new WebSocket(`${wsBase}?token=${encodeURIComponent(token)}`, ["v12.stomp"]),
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  await timeout(
    new Promise((resolve, reject) => {
      client.onConnect = resolve;
      client.onStompError = (f) => reject(new Error(f.headers.message));
      client.onWebSocketError = reject;
      client.activate();
    }),
    "CONNECTED",
  );
  const push = (dest, body) => {
    if (!inbox.has(dest)) inbox.set(dest, []);
    inbox.get(dest).push(body);
    for (const w of [...waiters]) if (w.check()) waiters.splice(waiters.indexOf(w), 1);
  };
  const sub = (dest) =>
    timeout(
      new Promise((resolve) => {
        const receipt = `sub-${Math.random()}`;
        client.watchForReceipt(receipt, resolve);
        client.subscribe(dest, (m) => push(dest, JSON.parse(m.body)), { receipt });
      }),
      `SUBSCRIBE ${dest}`,
    );
  // Resolves with the first body on `dest` matching `pred` (already received or later).
  const waitFor = (dest, pred, what) =>
    timeout(
      new Promise((resolve) => {
        const w = {
          check: () => {
            const hit = (inbox.get(dest) || []).find(pred);
            if (hit) resolve(hit);
            return !!hit;
          },
        };
        if (!w.check()) waiters.push(w);
      }),
      what,
    );
  const send = (destination, body, receipt = `r-${Math.random()}`) =>
    timeout(
      new Promise((resolve) => {
        client.watchForReceipt(receipt, resolve);
        client.publish({ destination, body: body === undefined ? "" : JSON.stringify(body), headers: { receipt } });
      }),
      `RECEIPT for ${destination}`,
    );
  const fire = (destination, body) => client.publish({ destination, body: JSON.stringify(body) });
  return { client, sub, waitFor, send, fire, inbox };
}

async function main() {
  const alice = await account("alice");
  const bob = await account("bob");
  const carol = await account("carol");

  // --- couples
  assert.equal((await call("GET", "/chat/room", null, alice.token)).status, 404, "not paired yet");
  let r = await call("POST", "/api/couples/invite", null, alice.token);
  assert.equal(r.status, 201);
  assert.ok(r.body.code && r.body.expiresAt);
  const code = r.body.code;
  assert.equal((await call("POST", "/api/couples/join", { code: "NOPE1234" }, bob.token)).status, 404, "bad code");
  r = await call("POST", "/api/couples/join", { code }, bob.token);
  assert.equal(r.status, 200);
  const coupleId = r.body.coupleId;
  assert.match(coupleId, /^[0-9a-f-]{36}$/);
  assert.equal(r.body.partnerId, alice.id);
  assert.equal((await call("POST", "/api/couples/join", { code }, carol.token)).status, 404, "codes are single-use");
  const c2 = (await call("POST", "/api/couples/invite", null, carol.token)).body.code;
  assert.equal((await call("POST", "/api/couples/join", { code: c2 }, alice.token)).status, 409, "already paired");
  r = await call("GET", "/chat/room", null, alice.token);
  assert.equal(r.status, 200);
  assert.equal(r.body.coupleId, coupleId);
  assert.equal(r.body.partner.id, bob.id);

  // --- handshake auth
  await assert.rejects(
    timeout(
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${wsBase}?token=bad`, ["v12.stomp"]);
        ws.on("unexpected-response", (_req, res) => reject(new Error(`status ${res.statusCode}`)));
        ws.on("open", resolve);
        ws.on("error", reject);
      }),
      "handshake",
    ),
    /status 401/,
  );

  // --- presence: bob sees alice connect
  const b = await connect(bob.token);
  await b.sub(`/topic/couple/${coupleId}`);
  await b.sub("/user/queue/errors");
  const a = await connect(alice.token);
  await a.sub(`/topic/couple/${coupleId}`);
  await a.sub("/user/queue/errors");
  const connected = await b.waitFor(`/topic/couple/${coupleId}`, (m) => m.event === "USER_CONNECTED", "USER_CONNECTED");
  assert.deepEqual({ type: connected.type, userId: connected.userId }, { type: "SYSTEM", userId: alice.id });
  assert.match(connected.timestamp, LOCAL_TIME);

  // --- send with tempId; both get the delivered shape
  await a.send(`/app/chat/${coupleId}`, { type: "TEXT", content: "hello 안녕", imageUrl: null, tempId: "client-temp-id-12345" });
  const got = await b.waitFor(`/topic/couple/${coupleId}`, (m) => m.content === "hello 안녕", "delivered message");
  for (const k of ["id", "senderId", "senderName", "senderProfileImage", "content", "type", "imageUrl", "isRead", "readAt", "createdAt", "tempId"]) {
    assert.ok(k in got, `field ${k}`);
  }
  assert.equal(got.senderId, alice.id);
  assert.equal(got.senderName, "alice 님");
  assert.equal(got.type, "TEXT");
  assert.equal(got.isRead, false);
  assert.equal(got.readAt, null);
  assert.equal(got.tempId, "client-temp-id-12345");
  assert.match(got.createdAt, LOCAL_TIME);
  // A resend with the same tempId stores nothing new.
  await a.send(`/app/chat/${coupleId}`, { type: "TEXT", content: "hello 안녕", tempId: "client-temp-id-12345" });
  await a.send(`/app/chat/${coupleId}`, { type: "IMAGE", content: "", imageUrl: "https://cdn.example/p.png", tempId: "img-1" });
  const img = await b.waitFor(`/topic/couple/${coupleId}`, (m) => m.type === "IMAGE", "IMAGE message");
  assert.equal(img.imageUrl, "https://cdn.example/p.png");

  // --- typing: others get it, the typist does not
  await a.send(`/app/chat/${coupleId}/typing`);
  const typing = await b.waitFor(`/topic/couple/${coupleId}`, (m) => m.event === "TYPING", "TYPING");
  assert.equal(typing.userId, alice.id);

  // --- read receipt
  await b.send(`/app/chat/${coupleId}/read`, { messageIds: [got.id] });
  const receipt = await a.waitFor(`/topic/couple/${coupleId}`, (m) => m.type === "READ_RECEIPT", "READ_RECEIPT");
  assert.deepEqual(receipt.messageIds, [got.id]);
  assert.match(receipt.readAt, LOCAL_TIME);

  // --- history: newest first, delivered shape, read state stored
  r = await call("GET", `/chat/rooms/${coupleId}/messages`, null, alice.token);
  assert.equal(r.status, 200);
  assert.equal(r.body.messages.length, 2, "the resend was not stored twice");
  assert.equal(r.body.messages[0].type, "IMAGE");
  assert.equal(r.body.messages[1].id, got.id);
  assert.equal(r.body.messages[1].isRead, true);
  assert.match(r.body.messages[1].readAt, LOCAL_TIME);

  // --- errors go to /user/queue/errors in contract B's shape
  a.fire(`/app/chat/${coupleId}`, { type: "TEXT", content: "   ", tempId: "t-empty" });
  const failed = await a.waitFor("/user/queue/errors", (m) => m.tempId === "t-empty", "SEND_FAILED");
  assert.deepEqual({ type: failed.type, code: failed.code }, { type: "ERROR", code: "SEND_FAILED" });
  assert.ok(failed.message);
  const c = await connect(carol.token);
  await c.sub("/user/queue/errors");
  c.fire(`/app/chat/${coupleId}`, { type: "TEXT", content: "intruder", tempId: "t-x" });
  const denied = await c.waitFor("/user/queue/errors", (m) => m.tempId === "t-x", "UNAUTHORIZED");
  assert.equal(denied.code, "UNAUTHORIZED");
  c.client.subscribe(`/topic/couple/${coupleId}`, () => assert.fail("a stranger got a couple message"));
  await c.waitFor("/user/queue/errors", (m) => m.code === "UNAUTHORIZED" && !m.tempId, "UNAUTHORIZED subscribe");
  assert.equal((await call("GET", `/chat/rooms/${coupleId}/messages`, null, carol.token)).status, 403);
  assert.ok(!(b.inbox.get(`/topic/couple/${coupleId}`) || []).some((m) => m.content === "intruder"));
  assert.ok(!(a.inbox.get(`/topic/couple/${coupleId}`) || []).some((m) => m.event === "TYPING"), "typist gets no own TYPING");

  // --- a bad body still gives its tempId back; an array is not an object
  a.fire(`/app/chat/${coupleId}`, { type: "VIDEO", content: "x", tempId: "t-bad-type" });
  const badType = await a.waitFor("/user/queue/errors", (m) => m.tempId === "t-bad-type", "error with tempId");
  assert.equal(badType.code, "SEND_FAILED");
  a.client.publish({ destination: `/app/chat/${coupleId}`, body: JSON.stringify(["TEXT", "positional"]) });
  const arrayBody = await a.waitFor("/user/queue/errors", (m) => m.reason === "invalid_body", "invalid_body");
  assert.equal(arrayBody.code, "SEND_FAILED");

  // --- a dropped connection, then the app resends its pending bubble (same
  // tempId, no receipt asked): the stored message comes back on this
  // connection's topic and completes the bubble; the partner gets it once.
  const a2 = await connect(alice.token);
  await a2.sub(`/topic/couple/${coupleId}`);
  a2.fire(`/app/chat/${coupleId}`, { type: "TEXT", content: "hello 안녕", tempId: "client-temp-id-12345" });
  const completed = await a2.waitFor(`/topic/couple/${coupleId}`, (m) => m.tempId === "client-temp-id-12345", "the stored message back");
  assert.equal(completed.id, got.id, "the stored message, not a new one");
  await a2.send(`/app/chat/${coupleId}/typing`);
  await b.waitFor(`/topic/couple/${coupleId}`, (m) => m.event === "TYPING" && (b.inbox.get(`/topic/couple/${coupleId}`) || []).filter((x) => x.event === "TYPING").length >= 2, "second TYPING");
  const copies = (b.inbox.get(`/topic/couple/${coupleId}`) || []).filter((m) => m.tempId === "client-temp-id-12345");
  assert.equal(copies.length, 1, "the partner did not get the resend");
  await a2.client.deactivate();

  // --- presence: bob sees alice leave
  await a.client.deactivate();
  const gone = await b.waitFor(`/topic/couple/${coupleId}`, (m) => m.event === "USER_DISCONNECTED", "USER_DISCONNECTED");
  assert.equal(gone.userId, alice.id);

  for (const x of [b, c]) await x.client.deactivate();
  console.log("contract B: all checks passed");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("contract B check failed:", e);
    process.exit(1);
  },
);
