// Contract C over Socket.IO v4 (docs/PROTOCOL.md, "Socket.IO"), with the real,
// unchanged socket.io-client 4: default transports (long-polling, then the
// upgrade to WebSocket), WebSocket only, and polling only. Logs in, joins,
// chats with acknowledgements, meets a bad token and an unknown event,
// reconnects and reads what it missed without a gap.
// Usage: node socketio.mjs http://127.0.0.1:PORT
import { io } from "socket.io-client";
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
  const token = r.body.data.accessToken;
  return { token, id: (await call("GET", "/api/me", null, token)).body.id };
}

// A connected socket, with every event it got kept for `next`.
async function connect(token, options = {}) {
  const socket = io(base, { auth: { token }, reconnection: false, ...options });
  let firstTransport;
  socket.io.once("open", () => (firstTransport = socket.io.engine.transport.name));
  const seen = [];
  const waiters = [];
  socket.onAny((event, data) => {
    seen.push({ event, data });
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  });
  const rooms = new Promise((resolve) => socket.once("rooms", resolve));
  await timeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }),
    "connect",
  );
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
  return { socket, next, firstTransport, rooms: await timeout(rooms, "rooms") };
}

const chat = (s, chatSeq, message) => timeout(s.socket.emitWithAck("chat", { chatSeq, message }), `ack of ${message}`);

async function main() {
  const alice = await account("alice");
  const bob = await account("bob");
  const carol = await account("carol");
  let r = await call("POST", "/api/chatrooms/new", { chatType: "group", chatName: "소켓방", password: "", isDirected: false }, alice.token);
  assert.equal(r.status, 201);
  const chatSeq = r.body.chatSeq;
  for (const who of [bob, carol]) {
    assert.equal((await call("PUT", `/api/chatrooms/join/${chatSeq}`, { chatSeq }, who.token)).status, 200);
  }

  // Default transports: long-polling first, then the upgrade.
  const b = await connect(bob.token);
  assert.equal(b.firstTransport, "polling", "socket.io-client starts with polling");
  assert.ok(b.rooms.some((room) => room.chatSeq === chatSeq), "rooms on connect");
  // WebSocket only, and polling only.
  const a = await connect(alice.token, { transports: ["websocket"] });
  assert.equal(a.socket.io.engine.transport.name, "websocket");
  const c = await connect(carol.token, { transports: ["polling"] });

  const ack = await chat(a, chatSeq, "안녕 socket.io");
  assert.equal(ack.ok, true);
  assert.equal(ack.message.message, "안녕 socket.io");
  for (const x of [a, b, c]) {
    const got = await x.next("chat", (d) => d.message === "안녕 socket.io");
    assert.equal(got.userId, alice.id);
    assert.equal(got.chatSeq, chatSeq);
  }
  await timeout(
    new Promise((resolve) => (b.socket.io.engine.transport.name === "websocket" ? resolve() : b.socket.io.engine.once("upgrade", resolve))),
    "the upgrade to WebSocket",
  );
  assert.equal(b.socket.io.engine.transport.name, "websocket");
  await chat(b, chatSeq, "after the upgrade");
  for (const x of [a, c]) await x.next("chat", (d) => d.message === "after the upgrade");
  await chat(c, chatSeq, "from polling");
  for (const x of [a, b]) await x.next("chat", (d) => d.message === "from polling");

  // An unknown event: an error in the ack; the socket goes on.
  const refused = await timeout(a.socket.emitWithAck("bogus", { x: 1 }), "ack of bogus");
  assert.equal(refused.ok, false);
  assert.equal(refused.error.code, "unknown_event");
  const stranger = await chat(a, "no-such-room", "hello?");
  assert.equal(stranger.ok, false);
  assert.ok(["not_a_member", "room_not_found"].includes(stranger.error.code), stranger.error.code);
  await chat(a, chatSeq, "still here");
  await b.next("chat", (d) => d.message === "still here");

  // A bad token: connect_error with ieum's code.
  const bad = io(base, { auth: { token: "not-a-token" }, reconnection: false });
  const err = await timeout(new Promise((resolve) => bad.once("connect_error", resolve)), "connect_error");
  assert.equal(err.data.code, "token_invalid");
  bad.close();

  // Bob goes away; what he missed is in the history when he is back.
  b.socket.disconnect();
  for (const m of ["missed 1", "missed 2"]) await chat(a, chatSeq, m);
  const back = await connect(bob.token);
  r = await call("GET", `/api/chatrooms/message/${chatSeq}/-1/50`, null, bob.token);
  assert.equal(r.status, 200);
  const seqs = r.body.map((m) => m.msgSeq);
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `no gap: ${seqs}`);
  assert.deepEqual(r.body.slice(-2).map((m) => m.message), ["missed 1", "missed 2"]);
  await chat(a, chatSeq, "welcome back");
  await back.next("chat", (d) => d.message === "welcome back");

  for (const x of [a, back, c]) x.socket.close();
  console.log("socket.io: all checks passed");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("socket.io check failed:", e);
    process.exit(1);
  },
);
