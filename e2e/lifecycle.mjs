// Session and pairing lifecycles end to end with the real @stomp/stompjs
// client (docs/PROTOCOL.md, docs/CONTRACTS.md), as three user stories:
//   sessions: a socket is closed (ERROR code:session_revoked, close 1008) after
//             logout and after refresh-token reuse; other logins of the same
//             user stay connected, and a fresh login reconnects;
//   couple:   a couple (contract B) unpairs and pairs again, also with someone
//             else; the old room's history stays readable, sends to it fail;
//   unread:   a group member sees "unread by N" after a reload from the
//             members' lastReadSeq, and the live native read event.
// Usage: node lifecycle.mjs http://127.0.0.1:PORT [sessions|couple|unread ...]
// (no story named: all three). Prints "all checks passed" and exits 0, or
// prints the failing check and exits 1.
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";
import assert from "node:assert/strict";

const base = process.argv[2];
if (!base) throw new Error("usage: node lifecycle.mjs http://host:port [story ...]");
const stories = process.argv.length > 3 ? process.argv.slice(3) : ["sessions", "couple", "unread"];
const wsBase = base.replace(/^http/, "ws") + "/ws/chat";
const suffix = Math.random().toString(36).slice(2, 8);
const TIMEOUT = 15000;
const REVOKED_WITHIN = 10000; // "within a few seconds" of the logout or the reuse

async function call(method, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json().catch(() => null) };
}

const timeout = (p, what, ms = TIMEOUT) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), ms))]);

async function account(name) {
  const username = name + suffix;
  const r = await call("POST", "/auth/signup", { username, password: "testpass", displayName: `${name} 님` });
  assert.equal(r.status, 201, `signup ${name}`);
  const { accessToken: token, refreshToken: refresh } = r.body.data;
  const me = (await call("GET", "/api/me", null, token)).body;
  return { username, token, refresh, id: me.id, name: me.displayName };
}

// A new login of `user`: a session family of its own.
async function login(user) {
  const r = await call("POST", "/auth/login", { username: user.username, password: "testpass" });
  assert.equal(r.status, 200, `login ${user.username}`);
  return { token: r.body.data.accessToken, refresh: r.body.data.refreshToken };
}

// Connects (token on the handshake URL with `query`, the couple-app's way;
// else in CONNECT's Authorization header, the native way) and collects every
// frame per destination. `revoked` resolves with the first ERROR frame after
// CONNECTED, `closed` with the WebSocket's close event.
async function connect(token, { query = false } = {}) {
  const inbox = new Map();
  const waiters = [];
  const url = query ? `${wsBase}?token=${encodeURIComponent(token)}` : wsBase;
  const client = new Client({
    webSocketFactory: () => new WebSocket(url, ["v12.stomp"]),
    connectHeaders: query ? {} : { Authorization: `Bearer ${token}` },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  const closed = new Promise((resolve) => (client.onWebSocketClose = resolve));
  const frame = await timeout(
    new Promise((resolve, reject) => {
      client.onConnect = resolve;
      client.onStompError = (f) => reject(new Error(f.headers.message));
      client.onWebSocketError = reject;
      client.activate();
    }),
    "CONNECTED",
  );
  const revoked = new Promise((resolve) => (client.onStompError = resolve));
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
  // Resolves with the RECEIPT frame (native sends carry `seq`, reads `last-read-seq`).
  const send = (destination, body, receipt = `r-${Math.random()}`) =>
    timeout(
      new Promise((resolve) => {
        client.watchForReceipt(receipt, resolve);
        client.publish({ destination, body: body === undefined ? "" : JSON.stringify(body), headers: { receipt } });
      }),
      `RECEIPT for ${destination}`,
    );
  const fire = (destination, body) => client.publish({ destination, body: JSON.stringify(body) });
  return { client, frame, sub, waitFor, send, fire, inbox, revoked, closed };
}

// The server revoked `conn`'s session: ERROR code:session_revoked, then close 1008.
async function assertRevoked(conn, what) {
  const error = await timeout(conn.revoked, `ERROR session_revoked (${what})`, REVOKED_WITHIN);
  assert.equal(error.headers.code, "session_revoked", what);
  const close = await timeout(conn.closed, `WebSocket close (${what})`, REVOKED_WITHIN);
  assert.equal(close.code, 1008, `${what}: close code`);
}

// Sends a native message on `conn` and waits for it to come back on its room topic.
async function roundTrip(conn, roomId, content) {
  const receipt = await conn.send(`/app/rooms/${roomId}/messages`, { content });
  const seq = Number(receipt.headers.seq);
  const got = await conn.waitFor(`/topic/rooms/${roomId}`, (m) => m.seq === seq, `"${content}" back`);
  assert.equal(got.content, content);
  return got;
}

async function sessions() {
  // Device 1 uses the sign-up's session; device 2 a separate login.
  const alice = await account("sess");
  const second = await login(alice);
  const room = await call("POST", "/api/rooms", { name: "세션 방" }, alice.token);
  assert.equal(room.status, 201);
  const roomId = room.body.id;
  const d1 = await connect(alice.token);
  await d1.sub("/user/queue/errors");
  await d1.sub(`/topic/rooms/${roomId}`);
  const d2 = await connect(second.token);
  await d2.sub(`/topic/rooms/${roomId}`);
  await roundTrip(d1, roomId, "before logout");

  // --- logout closes the sockets of that session family, and only those
  const out = await call("POST", "/auth/logout", { refreshToken: alice.refresh });
  assert.equal(out.status, 200);
  assert.equal(out.body.success, true);
  await assertRevoked(d1, "after logout");
  assert.ok(d2.client.connected, "the other login's socket stays open");
  await roundTrip(d2, roomId, "still here after the other device logged out");

  // --- the logged-out device logs in again and reconnects
  const fresh = await login(alice);
  const d1b = await connect(fresh.token);
  assert.equal(d1b.frame.headers.version, "1.2");
  await d1b.sub(`/topic/rooms/${roomId}`);
  await roundTrip(d1b, roomId, "back after a new login");

  // --- refresh-token reuse revokes the family: sockets connected with its
  // access tokens, from before and after the rotation, are closed the same way
  const stolen = await login(alice);
  const rotated = await call("POST", "/auth/refresh", { refreshToken: stolen.refresh });
  assert.equal(rotated.status, 200);
  const before = await connect(stolen.token);
  const after = await connect(rotated.body.data.accessToken);
  const reuse = await call("POST", "/auth/refresh", { refreshToken: stolen.refresh });
  assert.equal(reuse.status, 401, "a rotated refresh token is refused");
  await assertRevoked(before, "reuse: token from before the rotation");
  await assertRevoked(after, "reuse: token from after the rotation");
  const again = await call("POST", "/auth/refresh", { refreshToken: rotated.body.data.refreshToken });
  assert.equal(again.status, 401, "the whole family is revoked");
  // Other families are untouched.
  assert.ok(d1b.client.connected && d2.client.connected);
  await roundTrip(d1b, roomId, "other logins survive the reuse");
  await roundTrip(d2, roomId, "every other login survives the reuse");

  for (const x of [d1, d2, d1b, before, after]) await x.client.deactivate();
}

// Pairs `a` (inviting) and `b` (joining); returns the coupleId.
async function pair(a, b) {
  const inv = await call("POST", "/api/couples/invite", null, a.token);
  assert.equal(inv.status, 201);
  const r = await call("POST", "/api/couples/join", { code: inv.body.code }, b.token);
  assert.equal(r.status, 200, "join");
  assert.equal(r.body.partnerId, a.id);
  for (const [x, partner] of [[a, b], [b, a]]) {
    const room = await call("GET", "/chat/room", null, x.token);
    assert.equal(room.status, 200);
    assert.equal(room.body.coupleId, r.body.coupleId);
    assert.equal(room.body.partner.id, partner.id);
  }
  return r.body.coupleId;
}

// `from` sends a contract B message on `coupleId`; `to` receives it.
async function exchange(from, to, coupleId, content) {
  const tempId = `t-${Math.random()}`;
  await from.conn.send(`/app/chat/${coupleId}`, { type: "TEXT", content, imageUrl: null, tempId });
  const got = await to.conn.waitFor(`/topic/couple/${coupleId}`, (m) => m.tempId === tempId, `"${content}"`);
  assert.equal(got.content, content);
  assert.equal(got.senderId, from.id);
  return got;
}

// `who` unpairs (DELETE /api/couples/me); `partner` sees COUPLE_ENDED; neither is paired.
async function unpair(who, partner, coupleId) {
  assert.equal((await call("DELETE", "/api/couples/me", null, who.token)).status, 204, "unpair");
  const ended = await partner.conn.waitFor(`/topic/couple/${coupleId}`, (m) => m.event === "COUPLE_ENDED", "COUPLE_ENDED");
  assert.equal(ended.type, "SYSTEM");
  assert.equal(ended.userId, who.id);
  for (const x of [who, partner]) {
    const r = await call("GET", "/chat/room", null, x.token);
    assert.equal(r.status, 404, "not paired after unpairing");
    assert.equal(r.body.code, "not_paired");
  }
}

async function couple() {
  const [alice, bob, carol] = [await account("alice"), await account("bob"), await account("carol")];
  for (const x of [alice, bob, carol]) {
    x.conn = await connect(x.token, { query: true });
    await x.conn.sub("/user/queue/errors");
  }

  // --- paired: the room is the couple's, not left through the generic room API
  const first = await pair(alice, bob);
  for (const x of [alice, bob]) await x.conn.sub(`/topic/couple/${first}`);
  const hello = await exchange(alice, bob, first, "처음 만난 날");
  await exchange(bob, alice, first, "반가워");
  const leave = await call("POST", `/api/rooms/${first}/leave`, null, bob.token);
  assert.equal(leave.status, 409, "the couple room is left by unpairing");
  assert.equal(leave.body.code, "couple_room");

  // --- Bob unpairs: history stays readable, the old room takes no sends
  await unpair(bob, alice, first);
  const history = await call("GET", `/chat/history/${first}`, null, alice.token);
  assert.equal(history.status, 200, "old history readable");
  assert.ok(history.body.some((m) => String(m.id) === String(hello.id) && m.message === "처음 만난 날"));
  alice.conn.fire(`/app/chat/${first}`, { type: "TEXT", content: "아무도 없니", tempId: "t-old-room" });
  const refused = await alice.conn.waitFor("/user/queue/errors", (m) => m.tempId === "t-old-room", "refused send");
  assert.equal(refused.type, "ERROR");
  const after = await call("GET", `/chat/history/${first}`, null, alice.token);
  assert.ok(!after.body.some((m) => m.message === "아무도 없니"), "the refused send was not stored");

  // --- the same two pair again: a new couple and a new room
  const second = await pair(alice, bob);
  assert.notEqual(second, first, "a new coupleId");
  for (const x of [alice, bob]) await x.conn.sub(`/topic/couple/${second}`);
  await exchange(bob, alice, second, "다시 시작");
  await exchange(alice, bob, second, "좋아");

  // --- Alice unpairs this time, then pairs with Carol
  await unpair(alice, bob, second);
  const third = await pair(carol, alice);
  assert.ok(![first, second].includes(third), "a new coupleId");
  for (const x of [alice, carol]) await x.conn.sub(`/topic/couple/${third}`);
  await exchange(alice, carol, third, "안녕 캐롤");
  await exchange(carol, alice, third, "안녕 앨리스");
  assert.equal((await call("GET", "/chat/room", null, bob.token)).status, 404, "Bob stays unpaired");

  for (const x of [alice, bob, carol]) await x.conn.client.deactivate();
}

async function unread() {
  const [alice, bob, carol] = [await account("gal"), await account("gbob"), await account("gcarol")];

  // --- a private group: Alice creates it, Bob and Carol join with its invite code
  const room = await call("POST", "/api/rooms", { name: "셋이서", visibility: "private" }, alice.token);
  assert.equal(room.status, 201);
  const roomId = room.body.id;
  const code = await call("POST", `/api/rooms/${roomId}/invite-code`, null, alice.token);
  assert.equal(code.status, 201);
  for (const x of [bob, carol]) {
    const r = await call("POST", "/api/rooms/join", { inviteCode: code.body.inviteCode }, x.token);
    assert.equal(r.status, 200, "join by invite code");
  }

  // --- Alice sends; the RECEIPT names the seq
  const topic = `/topic/rooms/${roomId}`;
  const a = await connect(alice.token);
  await a.sub(topic);
  const sent = await a.send(`/app/rooms/${roomId}/messages`, { type: "TEXT", content: "다들 읽었어?" });
  const seq = Number(sent.headers.seq);
  assert.ok(seq >= 1, "RECEIPT carries seq");
  const msg = await a.waitFor(topic, (m) => m.seq === seq, "own message");
  assert.equal(msg.id, sent.headers["message-id"]);

  // --- Bob reads it; Alice's subscription gets the read event
  const b = await connect(bob.token);
  await b.sub("/user/queue/errors");
  const read = await b.send(`/app/rooms/${roomId}/read`, { seq });
  assert.equal(Number(read.headers["last-read-seq"]), seq);
  const event = await a.waitFor(topic, (m) => m.event === "READ" && m.userId === bob.id, "READ event for Bob");
  assert.equal(event.roomId, roomId);
  assert.equal(event.seq, seq);

  // --- a reload: no socket, the message and members come from HTTP
  await a.client.deactivate();
  const page = await call("GET", `/api/rooms/${roomId}/messages?limit=50`, null, alice.token);
  assert.equal(page.status, 200);
  const mine = page.body.messages.find((m) => m.id === msg.id);
  assert.equal(mine.seq, seq);
  const members = await call("GET", `/api/rooms/${roomId}/members`, null, alice.token);
  assert.equal(members.status, 200);
  assert.equal(members.body.members.length, 3);
  for (const m of members.body.members) assert.equal(typeof m.lastReadSeq, "number", `lastReadSeq of ${m.username}`);
  const unreadBy = members.body.members.filter((m) => m.userId !== mine.senderId && m.lastReadSeq < mine.seq);
  assert.equal(unreadBy.length, 1, "unread by 1");
  assert.equal(unreadBy[0].userId, carol.id, "Carol has not read it");
  const bobRow = members.body.members.find((m) => m.userId === bob.id);
  assert.ok(bobRow.lastReadSeq >= seq, "Bob's cursor is at the message");

  await b.client.deactivate();
}

async function main() {
  const all = { sessions, couple, unread };
  for (const name of stories) {
    if (!all[name]) throw new Error(`unknown story ${name}`);
    await all[name]();
    console.log(`lifecycle: ${name} passed`);
  }
  console.log("lifecycle: all checks passed");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("lifecycle check failed:", e);
    process.exit(1);
  },
);
