// Spring's browser clients: `new SockJS('/ws/chat')` with @stomp/stompjs on
// top (seeds 001 and 002), with the real sockjs-client, over each of its
// transports in turn: websocket, xhr-streaming, xhr-polling (docs/PROTOCOL.md
// "SockJS"). Connects, subscribes with a receipt, sends, receives,
// reconnects and resumes with last-seq without a gap.
// Usage: node sockjs.mjs http://127.0.0.1:PORT
import SockJS from "sockjs-client";
import { Client } from "@stomp/stompjs";
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
  assert.equal(r.status, 201, `signup ${name}: ${JSON.stringify(r.body)}`);
  return r.body.data.accessToken;
}

async function connect(transport, token, room, lastSeq) {
  const received = [];
  const waiters = [];
  const client = new Client({
    webSocketFactory: () => new SockJS(`${base}/ws/chat`, null, { transports: [transport] }),
    connectHeaders: { Authorization: `Bearer ${token}` },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  await timeout(new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (f) => reject(new Error(f.headers.message));
    client.activate();
  }), `CONNECTED over SockJS ${transport}`);
  const subscribed = new Promise((resolve) => client.watchForReceipt("sub", resolve));
  const headers = { receipt: "sub" };
  if (lastSeq !== undefined) headers["last-seq"] = String(lastSeq);
  client.subscribe(`/topic/rooms/${room}`, (m) => {
    const body = JSON.parse(m.body);
    if (body.type === "TEXT") received.push(body);
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  }, headers);
  await timeout(subscribed, "RECEIPT of the subscription");
  const until = (n, what) => timeout(new Promise((resolve) => {
    const w = () => received.length >= n && (resolve(received), true);
    if (!w()) waiters.push(w);
  }), what);
  return { client, received, until };
}

async function chat(transport) {
  const tag = transport.replace(/[^a-z]/g, "").slice(0, 6);
  const alice = await account(`alice_${tag}_`);
  const bob = await account(`bob_${tag}_`);
  let r = await call("POST", "/api/rooms", { name: `sockjs 방 ${transport}` }, alice);
  const room = r.body.id;
  assert.equal((await call("POST", `/api/rooms/${room}/join`, null, bob)).status, 200);

  const a = await connect(transport, alice, room);
  const b = await connect(transport, bob, room);
  a.client.publish({ destination: `/app/rooms/${room}/messages`, body: JSON.stringify({ content: `안녕 SockJS ${transport}` }) });
  const got = (await b.until(1, `bob's first message over ${transport}`))[0];
  assert.equal(got.content, `안녕 SockJS ${transport}`);
  await b.client.deactivate();

  for (const text of ["one", "two", "three"]) {
    a.client.publish({ destination: `/app/rooms/${room}/messages`, body: JSON.stringify({ content: text }) });
  }
  await a.until(4, `alice's own four over ${transport}`);
  const back = await connect(transport, bob, room, got.seq);
  const replayed = await back.until(3, `the replay over ${transport}`);
  assert.deepEqual(replayed.map((m) => m.content), ["one", "two", "three"], "missed, in order, once");
  assert.deepEqual(replayed.map((m) => m.seq), [got.seq + 1, got.seq + 2, got.seq + 3]);
  await a.client.deactivate();
  await back.client.deactivate();
  console.log(`sockjs ${transport}: ok`);
}

async function main() {
  // /info is what SockJS asks first.
  const info = await (await fetch(`${base}/ws/chat/info`)).json();
  assert.equal(info.websocket, true);
  for (const transport of ["websocket", "xhr-streaming", "xhr-polling"]) await chat(transport);
  console.log("sockjs: all checks passed");
  process.exit(0);
}

main().catch((e) => { console.error("sockjs check failed:", e); process.exit(1); });
