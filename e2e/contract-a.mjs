// Contract A (docs/CONTRACTS.md) end to end with the real @stomp/stompjs
// client: signup/login/refresh, STOMP CONNECT with a Bearer token, SUBSCRIBE
// /topic/chat.{roomId}, SEND /app/chat.send, delivery shape, history, and the
// failure rows. Usage: node contract-a.mjs http://127.0.0.1:PORT
// Exits 0 when every check holds; prints the failing check and exits 1 otherwise.
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";
import assert from "node:assert/strict";

const base = process.argv[2];
if (!base) throw new Error("usage: node contract-a.mjs http://host:port");
const wsUrl = base.replace(/^http/, "ws") + "/ws/chat";
const suffix = Math.random().toString(36).slice(2, 8);
const TIMEOUT = 15000;

async function post(path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function get(path, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(base + path, { headers });
  return { status: res.status, body: await res.json().catch(() => null) };
}

function withTimeout(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT)),
  ]);
}

// A connected stompjs client, plus a queue of ERROR frames it saw.
async function connect(token) {
  const errors = [];
  const client = new Client({
    webSocketFactory: () => new WebSocket(wsUrl, ["v12.stomp", "v11.stomp", "v10.stomp"]),
    connectHeaders: token ? { Authorization: `Bearer ${token}` } : {},
    reconnectDelay: 0,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = (frame) => resolve(frame);
    client.onStompError = (frame) => {
      errors.push(frame);
      reject(new Error(frame.headers.message));
    };
    client.onWebSocketError = (e) => reject(e);
  });
  client.activate();
  return { client, errors, connected: withTimeout(connected, "CONNECTED") };
}

// Besides chat messages, the topic carries events with their own `type`
// (JOIN, LEAVE, EDITED, DELETED, REACTION, PINNED, UNPINNED; docs/PROTOCOL.md).
const EVENT_TYPES = new Set(["JOIN", "LEAVE", "EDITED", "DELETED", "REACTION", "PINNED", "UNPINNED"]);

// The next frame on `destination` that `wanted` accepts (default: a chat message).
function nextMessage(client, destination, wanted = (body) => !EVENT_TYPES.has(body.type)) {
  return withTimeout(
    new Promise((resolve) => {
      const sub = client.subscribe(destination, (msg) => {
        const body = JSON.parse(msg.body);
        if (!wanted(body)) return;
        resolve({ msg, body });
        sub.unsubscribe();
      });
    }),
    `a MESSAGE on ${destination}`,
  );
}

async function del(path, token) {
  const res = await fetch(base + path, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
  return { status: res.status };
}

async function main() {
  // --- accounts
  const alice = `alice${suffix}`;
  const bob = `bob${suffix}`;
  let r = await post("/auth/signup", { username: alice, password: "testpass" });
  assert.equal(r.status, 201);
  assert.equal(r.body.success, true);
  r = await post("/auth/signup", { username: alice, password: "testpass" });
  assert.equal(r.status, 409, "taken username");
  await post("/auth/signup", { username: bob, password: "testpass" });

  r = await post("/auth/login", { username: alice, password: "wrongpass" });
  assert.equal(r.status, 401);
  assert.deepEqual(Object.keys(r.body).sort(), ["data", "message", "success"]);
  assert.equal(r.body.success, false);
  assert.equal(r.body.data, null);

  r = await post("/auth/login", { username: alice, password: "testpass" });
  assert.equal(r.status, 200);
  assert.equal(typeof r.body.message, "string");
  const aliceRefresh = r.body.data.refreshToken;
  let rr = await post("/auth/refresh", { refreshToken: aliceRefresh });
  assert.equal(rr.status, 200);
  const aliceToken = rr.body.data.accessToken;
  // A rotated refresh token stops working. Presenting it again counts as theft
  // and ends that whole login, its sockets included: try it on a second login.
  const spare = (await post("/auth/login", { username: alice, password: "testpass" })).body.data.refreshToken;
  assert.equal((await post("/auth/refresh", { refreshToken: spare })).status, 200);
  assert.equal((await post("/auth/refresh", { refreshToken: spare })).status, 401, "old refresh token stops working");
  const bobToken = (await post("/auth/login", { username: bob, password: "testpass" })).body.data.accessToken;

  // --- STOMP: subscribe and send to a room id chosen by the client
  const room = `room-${suffix}`;
  const a = await connect(aliceToken);
  const connectedFrame = await a.connected;
  assert.equal(connectedFrame.headers.version, "1.2");
  const b = await connect(bobToken);
  await b.connected;

  const gotByBob = nextMessage(b.client, `/topic/chat.${room}`);
  const gotByAlice = nextMessage(a.client, `/topic/chat.${room}`);
  // Subscriptions are confirmed by a receipt before sending.
  await withTimeout(
    new Promise((resolve) => {
      b.client.watchForReceipt("ready", resolve);
      b.client.subscribe(`/topic/chat.${room}-other`, () => {}, { receipt: "ready" });
    }),
    "receipt",
  );
  await withTimeout(
    new Promise((resolve) => {
      a.client.watchForReceipt("sent", resolve);
      a.client.publish({
        destination: "/app/chat.send",
        body: JSON.stringify({ roomId: room, message: "hi 안녕 👋" }),
        headers: { receipt: "sent", "content-type": "application/json" },
      });
    }),
    "SEND receipt",
  );
  for (const { body } of [await gotByBob, await gotByAlice]) {
    assert.equal(body.roomId, room);
    assert.equal(body.sender, alice);
    assert.equal(body.message, "hi 안녕 👋");
    assert.match(body.sentAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
  }

  // --- history: stored before broadcast, oldest first
  r = await get(`/chat/history/${room}`, bobToken);
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 1);
  assert.deepEqual(
    { roomId: r.body[0].roomId, sender: r.body[0].sender, message: r.body[0].message },
    { roomId: room, sender: alice, message: "hi 안녕 👋" },
  );
  assert.ok(["number", "string"].includes(typeof r.body[0].id));
  assert.equal((await get(`/chat/history/${room}`)).status, 401, "no token");

  // --- a deleted message: subscribers get a DELETED event naming it, and a
  // client that removes it by id shows what history shows.
  const shown = new Map([[String(r.body[0].id), r.body[0]]]);
  const deletedSeen = nextMessage(b.client, `/topic/chat.${room}`, (body) => body.type === "DELETED");
  await withTimeout(
    new Promise((resolve) => {
      b.client.watchForReceipt("resubscribed", resolve);
      b.client.subscribe(`/topic/chat.${room}-third`, () => {}, { receipt: "resubscribed" });
    }),
    "receipt",
  );
  const removed = await del(`/api/rooms/${room}/messages/${r.body[0].id}`, aliceToken);
  assert.equal(removed.status, 204);
  const { body: deleted } = await deletedSeen;
  assert.equal(deleted.roomId, room);
  assert.equal(String(deleted.id), String(r.body[0].id));
  assert.equal(deleted.expired, false);
  shown.delete(String(deleted.id));
  assert.equal(shown.size, 0, "the client removed the bubble");

  // --- a room whose rules exclude the user: private room made natively by alice
  const priv = await post("/api/rooms", { name: "secret", visibility: "private" }, aliceToken);
  assert.equal(priv.status, 201);
  r = await get(`/chat/history/${priv.body.id}`, bobToken);
  assert.equal(r.status, 403, "history of a private room");
  const c = await connect(bobToken);
  await c.connected;
  const stompError = withTimeout(
    new Promise((resolve) => {
      c.client.onStompError = (frame) => resolve(frame);
    }),
    "ERROR frame",
  );
  c.client.subscribe(`/topic/chat.${priv.body.id}`, () => {});
  const err = await stompError;
  assert.equal(err.headers.code, "private_room");
  assert.ok(err.headers.message.length > 0);

  // --- a bad token is refused with an ERROR frame
  const bad = await connect("not-a-token");
  await assert.rejects(bad.connected);
  assert.ok(bad.errors.length >= 1 && bad.errors[0].headers.message);

  for (const x of [a, b, c, bad]) await x.client.deactivate();
  console.log("contract A: all checks passed");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("contract A check failed:", e);
    process.exit(1);
  },
);
