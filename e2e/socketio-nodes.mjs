// Two nodes: a socket.io-client (default transports) on node 1 and a
// @stomp/stompjs client on node 2 chat in one room, both ways.
// Usage: node socketio-nodes.mjs http://NODE1 http://NODE2
import { io } from "socket.io-client";
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";
import assert from "node:assert/strict";

const [one, two] = process.argv.slice(2);
const suffix = Math.random().toString(36).slice(2, 8);
const TIMEOUT = 15000;
const timeout = (p, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), TIMEOUT))]);

async function call(base, method, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function account(base, name) {
  const r = await call(base, "POST", "/auth/signup", { username: name + suffix, password: "testpass" });
  assert.equal(r.status, 201);
  return r.body.data.accessToken;
}

async function main() {
  const bob = await account(one, "bob");
  const alice = await account(two, "alice");
  let r = await call(two, "POST", "/api/chatrooms/new", { chatType: "group", chatName: "두 노드", password: "", isDirected: false }, alice);
  assert.equal(r.status, 201);
  const chatSeq = r.body.chatSeq;
  assert.equal((await call(one, "PUT", `/api/chatrooms/join/${chatSeq}`, { chatSeq }, bob)).status, 200);

  // Bob: Socket.IO on node 1.
  const socket = io(one, { auth: { token: bob }, reconnection: false });
  const chats = [];
  const waiters = [];
  socket.on("chat", (m) => {
    chats.push(m);
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  });
  const bobGets = (text) =>
    timeout(new Promise((resolve) => {
      const w = () => chats.some((m) => m.message === text) && (resolve(), true);
      if (!w()) waiters.push(w);
    }), `bob getting ${text}`);
  await timeout(new Promise((resolve, reject) => { socket.once("rooms", resolve); socket.once("connect_error", reject); }), "socket.io connect");

  // Alice: STOMP on node 2.
  const received = [];
  const client = new Client({
    webSocketFactory: () => new WebSocket(two.replace(/^http/, "ws") + "/ws/chat", ["v12.stomp"]),
    connectHeaders: { Authorization: `Bearer ${alice}` },
    reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
  });
  await timeout(new Promise((resolve) => { client.onConnect = resolve; client.activate(); }), "STOMP connect");
  const subscribed = new Promise((resolve) => client.watchForReceipt("sub", resolve));
  client.subscribe(`/topic/rooms/${chatSeq}`, (m) => received.push(JSON.parse(m.body)), { receipt: "sub" });
  await timeout(subscribed, "subscribed");

  client.publish({ destination: `/app/rooms/${chatSeq}/messages`, body: JSON.stringify({ content: "from STOMP on node 2" }) });
  await bobGets("from STOMP on node 2");
  const ack = await timeout(socket.emitWithAck("chat", { chatSeq, message: "from Socket.IO on node 1" }), "ack");
  assert.equal(ack.ok, true);
  await timeout(new Promise((resolve) => {
    const check = setInterval(() => {
      if (received.some((m) => m.content === "from Socket.IO on node 1")) { clearInterval(check); resolve(); }
    }, 20);
  }), "alice getting bob's message");
  const order = received.filter((m) => m.type === "TEXT").map((m) => m.seq);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), "in seq order");

  socket.close();
  await client.deactivate();
  console.log("socket.io across nodes: all checks passed");
}

main().then(() => process.exit(0), (e) => { console.error("socket.io across nodes failed:", e); process.exit(1); });
