// Contract C (docs/CONTRACTS.md, the NestJS/socket.io front end) end to end:
// its HTTP endpoints with fetch, and its events (rooms, new room, join room,
// user leave, chat) through the real @stomp/stompjs client on
// /user/queue/events. Usage: node contract-c.mjs http://127.0.0.1:PORT
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";
import assert from "node:assert/strict";

const base = process.argv[2];
const wsUrl = base.replace(/^http/, "ws") + "/ws/chat";
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
  const token = r.body.data.accessToken;
  return { token, id: (await call("GET", "/api/me", null, token)).body.id };
}

// A stompjs client subscribed to its events; `next(name, pred)` waits for one.
async function events(token) {
  const seen = [];
  const waiters = [];
  const client = new Client({
    webSocketFactory: () => new WebSocket(wsUrl, ["v12.stomp"]),
    connectHeaders: { Authorization: `Bearer ${token}` },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  await timeout(
    new Promise((resolve, reject) => {
      client.onConnect = resolve;
      client.onStompError = (f) => reject(new Error(f.headers.message));
      client.activate();
    }),
    "CONNECTED",
  );
  client.subscribe("/user/queue/events", (m) => {
    seen.push(JSON.parse(m.body));
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  });
  const next = (name, pred = () => true) =>
    timeout(
      new Promise((resolve) => {
        const w = () => {
          const i = seen.findIndex((e) => e.event === name && pred(e.data));
          if (i < 0) return false;
          resolve(seen.splice(i, 1)[0].data);
          return true;
        };
        if (!w()) waiters.push(w);
      }),
      `event ${name}`,
    );
  const emit = (event, data) =>
    timeout(
      new Promise((resolve) => {
        const receipt = `r-${Math.random()}`;
        client.watchForReceipt(receipt, resolve);
        client.publish({ destination: "/app/events", body: JSON.stringify({ event, data }), headers: { receipt } });
      }),
      `RECEIPT for ${event}`,
    );
  return { client, next, emit, seen };
}

async function main() {
  const alice = await account("alice");
  const bob = await account("bob");

  const a = await events(alice.token);
  const b = await events(bob.token);
  assert.deepEqual(await a.next("rooms"), [], "rooms on connect");
  assert.deepEqual(await b.next("rooms"), []);

  // new room: public, so everyone hears it.
  let r = await call("POST", "/api/chatrooms/new", { chatType: "group", chatName: "수다방", password: "", isDirected: false }, alice.token);
  assert.equal(r.status, 201);
  const chatSeq = r.body.chatSeq;
  assert.equal(r.body.chatName, "수다방");
  const created = await b.next("new room", (d) => d.chatSeq === chatSeq);
  assert.equal(created.chatName, "수다방");

  // A password room: wrong password 403, right one 200.
  r = await call("POST", "/api/chatrooms/new", { chatType: "group", chatName: "locked", password: "sesame12", isDirected: false }, alice.token);
  const locked = r.body.chatSeq;
  assert.equal((await call("PUT", `/api/chatrooms/join/${locked}`, { chatSeq: locked, password: "wrong" }, bob.token)).status, 403);
  assert.equal((await call("PUT", `/api/chatrooms/join/${locked}`, { chatSeq: locked, password: "sesame12" }, bob.token)).status, 200);

  // join room: to the members, the joiner included.
  r = await call("PUT", `/api/chatrooms/join/${chatSeq}`, { chatSeq }, bob.token);
  assert.equal(r.status, 200);
  assert.equal(r.body.chatSeq, chatSeq);
  for (const x of [a, b]) {
    const j = await x.next("join room", (d) => d.chatSeq === chatSeq);
    assert.equal(j.userId, bob.id);
  }

  // chat: client -> server, then server -> every member, the sender included.
  await b.emit("chat", { chatSeq, message: "안녕하세요" });
  for (const x of [a, b]) {
    const c = await x.next("chat", (d) => d.chatSeq === chatSeq);
    assert.equal(c.message, "안녕하세요");
    assert.equal(c.userId, bob.id);
  }
  for (const m of ["m1", "m2", "m3"]) await a.emit("chat", { chatSeq, message: m });
  r = await call("GET", `/api/chatrooms/message/${chatSeq}/-1/2`, null, bob.token);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.map((m) => m.message), ["m2", "m3"], "the newest count for -1");
  const m2 = r.body[0].msgSeq;
  r = await call("GET", `/api/chatrooms/message/${chatSeq}/${m2}/5`, null, bob.token);
  assert.deepEqual(r.body.map((m) => m.message), ["안녕하세요", "m1"], "the count before msgId");

  // user leave: to the members, the leaver included; a stranger cannot chat.
  assert.equal((await call("DELETE", `/api/chatrooms/leave/${chatSeq}`, null, bob.token)).status, 204);
  for (const x of [a, b]) {
    const l = await x.next("user leave", (d) => d.chatSeq === chatSeq);
    assert.equal(l.userId, bob.id);
  }
  assert.equal((await call("GET", `/api/chatrooms/message/${chatSeq}/-1/2`, null, bob.token)).status, 200, "history stays readable (visibility all)");

  for (const x of [a, b]) await x.client.deactivate();
  console.log("contract C: all checks passed");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("contract C check failed:", e);
    process.exit(1);
  },
);
