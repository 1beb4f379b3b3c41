// One room, every transport at once (issue 18): a STOMP client
// (@stomp/stompjs), a Socket.IO client (socket.io-client), a SockJS client
// (sockjs-client with stompjs on top), an SSE listener (eventsource) and a
// JSON WebSocket client (ws). Each writer sends; every
// reader sees the same messages in the same order, and history agrees.
// Usage: node mixed.mjs http://127.0.0.1:PORT
import { Client } from "@stomp/stompjs";
import { io } from "socket.io-client";
import { EventSource } from "eventsource";
import WebSocket from "ws";
import SockJS from "sockjs-client";
import assert from "node:assert/strict";

const base = process.argv[2];
const wsBase = base.replace(/^http/, "ws");
const suffix = Math.random().toString(36).slice(2, 8);
const TIMEOUT = 20000;
const PER_WRITER = 10;
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

// A reader collects message seqs (with content) and resolves once it holds `n`.
function collector(n) {
  const got = [];
  let done;
  const full = new Promise((resolve) => (done = resolve));
  return {
    add(seq, content) {
      if (got.some((m) => m.seq === seq)) throw new Error(`duplicate seq ${seq}`);
      got.push({ seq, content });
      if (got.length === n) done(got);
    },
    full,
  };
}

async function main() {
  const names = ["stomp", "sio", "json", "sse", "sockjs"];
  const tokens = {};
  for (const n of names) tokens[n] = await account(n);
  let r = await call("POST", "/api/chatrooms/new", { chatType: "group", chatName: "모두", password: "", isDirected: false }, tokens.stomp);
  const room = r.body.chatSeq;
  for (const n of names.slice(1)) assert.equal((await call("PUT", `/api/chatrooms/join/${room}`, { chatSeq: room }, tokens[n])).status, 200);
  const total = 3 * PER_WRITER;
  const readers = Object.fromEntries(names.map((n) => [n, collector(total)]));

  // STOMP.
  const stomp = new Client({
    webSocketFactory: () => new WebSocket(`${wsBase}/ws/chat`, ["v12.stomp"]),
    connectHeaders: { Authorization: `Bearer ${tokens.stomp}` },
    reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
  });
  await timeout(new Promise((resolve) => { stomp.onConnect = resolve; stomp.activate(); }), "STOMP");
  const subscribed = new Promise((resolve) => stomp.watchForReceipt("sub", resolve));
  stomp.subscribe(`/topic/rooms/${room}`, (m) => {
    const b = JSON.parse(m.body);
    if (b.type === "TEXT") readers.stomp.add(b.seq, b.content);
  }, { receipt: "sub" });
  await timeout(subscribed, "STOMP subscribed");

  // Socket.IO.
  const sio = io(base, { auth: { token: tokens.sio }, reconnection: false });
  sio.on("chat", (m) => readers.sio.add(m.msgSeq, m.message));
  await timeout(new Promise((resolve) => sio.once("rooms", resolve)), "Socket.IO");

  // JSON WebSocket.
  const json = new WebSocket(`${wsBase}/ws/json?token=${tokens.json}`);
  const jsonAnswers = new Map();
  await timeout(new Promise((resolve) => {
    json.on("message", (data) => {
      const o = JSON.parse(data.toString());
      if (o.type === "connected") json.send(JSON.stringify({ type: "subscribe", id: "s", roomId: room, requestId: "sub" }));
      if (o.requestId === "sub") resolve();
      if (o.type === "event" && o.event === "message" && o.data.type === "TEXT") readers.json.add(o.data.seq, o.data.content);
      if (o.requestId) jsonAnswers.get(o.requestId)?.(o);
    });
  }), "JSON subscribed");

  // SSE.
  const ticket = (await call("POST", "/api/events/ticket", null, tokens.sse)).body.ticket;
  const sse = new EventSource(`${base}/api/events?ticket=${ticket}&roomId=${room}`);
  sse.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "TEXT") readers.sse.add(m.seq, m.content);
  });
  await timeout(new Promise((resolve) => sse.addEventListener("subscribed", resolve)), "SSE subscribed");

  // SockJS, STOMP on top.
  const sock = new Client({
    webSocketFactory: () => new SockJS(`${base}/ws/chat`, null, { transports: ["websocket"] }),
    connectHeaders: { Authorization: `Bearer ${tokens.sockjs}` },
    reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
  });
  await timeout(new Promise((resolve) => { sock.onConnect = resolve; sock.activate(); }), "SockJS");
  const sockSubscribed = new Promise((resolve) => sock.watchForReceipt("sub", resolve));
  sock.subscribe(`/topic/rooms/${room}`, (m) => {
    const b = JSON.parse(m.body);
    if (b.type === "TEXT") readers.sockjs.add(b.seq, b.content);
  }, { receipt: "sub" });
  await timeout(sockSubscribed, "SockJS subscribed");

  // Three writers at once: STOMP, Socket.IO and JSON.
  const writers = [
    (async () => { for (let i = 0; i < PER_WRITER; i++) stomp.publish({ destination: `/app/rooms/${room}/messages`, body: JSON.stringify({ content: `stomp ${i}` }) }); })(),
    (async () => { for (let i = 0; i < PER_WRITER; i++) await sio.emitWithAck("chat", { chatSeq: room, message: `sio ${i}` }); })(),
    (async () => {
      for (let i = 0; i < PER_WRITER; i++) {
        const answered = new Promise((resolve) => jsonAnswers.set(`w${i}`, resolve));
        json.send(JSON.stringify({ type: "send", roomId: room, content: `json ${i}`, requestId: `w${i}` }));
        assert.equal((await answered).type, "sent");
      }
    })(),
  ];
  await timeout(Promise.all(writers), "writers");
  const seen = {};
  for (const n of names) seen[n] = await timeout(readers[n].full, `${n} reading all`);
  const order = seen.stomp.map((m) => `${m.seq}:${m.content}`);
  for (const n of names) {
    assert.deepEqual(seen[n].map((m) => `${m.seq}:${m.content}`), order, `${n} saw the same messages in the same order`);
  }
  const seqs = seen.stomp.map((m) => m.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], "in seq order");
  r = await call("GET", `/api/chatrooms/message/${room}/-1/100`, null, tokens.sse);
  const history = r.body.filter((m) => m.type === "TEXT").map((m) => `${m.msgSeq}:${m.message}`);
  assert.deepEqual(history, order, "history agrees");

  sio.close(); sse.close(); json.close(); await stomp.deactivate(); await sock.deactivate();
  console.log("mixed room: all checks passed");
  process.exit(0);
}

main().catch((e) => { console.error("mixed room check failed:", e); process.exit(1); });
