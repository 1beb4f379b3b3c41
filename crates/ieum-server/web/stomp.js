// The live connection: STOMP 1.2 over WebSocket at /ws/chat with the vendored
// @stomp/stompjs (global StompJs). Every room the user is in is subscribed to
// /topic/rooms/{id}; a reconnect resubscribes with `last-seq`, so messages sent
// meanwhile are replayed in order, with no gap and no duplicate.
import * as api from "./api.js";

let client = null;
let handlers = null;
let usedToken = null; // the access token of the current connection
let refused = null; // a token the server said had expired: never reuse it
let subCounter = 0;
/** roomId -> { seq, sub } */
const rooms = new Map();
/** receipt id -> { resolve, reject } */
const waiting = new Map();
let receiptCounter = 0;

function setState(s) {
  handlers.onState(s);
}

/**
 * Starts the connection. handlers:
 *  onMessage(roomId, message)   a chat message (seq order per room, once each)
 *  onEvent(roomId, name, body)  read, delivered, typing, presence, edited, ...
 *  onState("connected" | "connecting" | "offline")
 *  onConnected()                after every (re)connect, subscriptions restored
 *  onFatal(code)                the login ended (session_revoked, suspended)
 *  onNotice(notice)             an error notice nobody was waiting for
 */
export function start(h) {
  const { Client, ReconnectionTimeMode } = window.StompJs;
  handlers = h;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/chat`;
  const c = new Client({
    brokerURL: url,
    // The server's heart-beats tell us it is there. Ours would run on page
    // timers, which browsers slow down in background tabs (and the server
    // would then drop the connection); without them the server's WebSocket
    // pings, which the browser answers by itself, keep the connection checked.
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 0,
    reconnectDelay: 1000,
    maxReconnectDelay: 30000,
    reconnectTimeMode: ReconnectionTimeMode.EXPONENTIAL,
    connectionTimeout: 10000,
    debug: () => {},
  });
  client = c;
  c.beforeConnect = async () => {
    setState(navigator.onLine ? "connecting" : "offline");
    try {
      let token = await api.accessToken();
      if (token === refused) token = await api.accessToken(true);
      usedToken = token;
      c.connectHeaders = { Authorization: `Bearer ${token}` };
    } catch (e) {
      if (e.status === 401) {
        handlers.onFatal("signed_out");
        await c.deactivate({ force: true });
      }
      // A network failure: the handshake fails too and the client retries.
    }
  };
  c.onConnect = () => {
    c.subscribe("/user/queue/errors", (m) => onErrorNotice(JSON.parse(m.body)));
    for (const roomId of rooms.keys()) subscribe(roomId);
    setState("connected");
    handlers.onConnected();
  };
  c.onStompError = (frame) => {
    const code = frame.headers.code || "";
    if (code === "token_expired" || code === "token_invalid") refused = usedToken;
    if (code === "session_revoked" || code === "unknown_user" || code === "suspended") {
      handlers.onFatal(code);
      void c.deactivate({ force: true });
    }
  };
  c.onWebSocketClose = (evt) => {
    for (const r of rooms.values()) r.sub = null;
    failWaiting("연결이 끊겼습니다");
    if (evt && evt.reason === "token_expired") refused = usedToken;
    if (evt && evt.reason === "suspended" && client === c) {
      handlers.onFatal("suspended");
      void c.deactivate({ force: true });
      return;
    }
    if (c.active && client === c) setState(navigator.onLine ? "connecting" : "offline");
  };
  c.activate();
  window.addEventListener("offline", goOffline);
  window.addEventListener("online", goOnline);
}

/** The browser lost the network: drop the socket now rather than wait for heart-beats. */
function goOffline() {
  if (!client) return;
  setState("offline");
  void client.deactivate({ force: true });
}

function goOnline() {
  if (!client) return;
  setState("connecting");
  client.activate();
}

export async function stop() {
  window.removeEventListener("offline", goOffline);
  window.removeEventListener("online", goOnline);
  const c = client;
  client = null;
  rooms.clear();
  failWaiting("로그아웃");
  if (c) await c.deactivate({ force: true });
}

export const connected = () => !!client && client.connected;

function failWaiting(why) {
  for (const w of waiting.values()) w.reject(Object.assign(new Error(why), { code: "disconnected" }));
  waiting.clear();
}

function onErrorNotice(n) {
  const w = n.receiptId && waiting.get(n.receiptId);
  if (w) {
    waiting.delete(n.receiptId);
    w.reject(Object.assign(new Error(n.message || n.code), { code: n.code }));
    return;
  }
  if (n.command === "SUBSCRIBE" && n.destination) {
    const roomId = n.destination.replace(/^\/topic\/rooms\//, "");
    rooms.delete(roomId);
  }
  handlers.onNotice(n);
}

function subscribe(roomId) {
  const r = rooms.get(roomId);
  if (!r || !client?.connected || r.sub) return;
  const headers = { id: `room-${++subCounter}` };
  if (r.seq !== null && r.seq !== undefined) headers["last-seq"] = String(r.seq);
  r.sub = client.subscribe(
    `/topic/rooms/${roomId}`,
    (m) => {
      const body = JSON.parse(m.body);
      const event = m.headers.event || "message";
      if (event === "message") {
        const cur = rooms.get(roomId);
        if (!cur) return;
        if (cur.seq !== null && body.seq <= cur.seq) return; // never twice
        cur.seq = body.seq;
        handlers.onMessage(roomId, body);
      } else {
        handlers.onEvent(roomId, event, body);
      }
    },
    headers,
  );
}

/** Follows a room from `seq` on (messages after it are replayed first). */
export function watch(roomId, seq) {
  if (rooms.has(roomId)) return;
  rooms.set(roomId, { seq: seq ?? null, sub: null });
  subscribe(roomId);
}

export function unwatch(roomId) {
  const r = rooms.get(roomId);
  rooms.delete(roomId);
  if (r?.sub && client?.connected) r.sub.unsubscribe();
}

export const watching = (roomId) => rooms.has(roomId);

/** Sends a frame with a receipt; resolves with the RECEIPT's headers. */
function withReceipt(destination, body, extra = {}) {
  return new Promise((resolve, reject) => {
    if (!client?.connected) {
      reject(Object.assign(new Error("연결되어 있지 않아요"), { code: "disconnected" }));
      return;
    }
    const receipt = `r-${++receiptCounter}-${Date.now().toString(36)}`;
    waiting.set(receipt, { resolve, reject });
    client.watchForReceipt(receipt, (frame) => {
      if (!waiting.delete(receipt)) return;
      resolve(frame.headers);
    });
    client.publish({ destination, body: JSON.stringify(body), headers: { receipt, "content-type": "application/json", ...extra } });
  });
}

/** A native message; resolves with { seq, "message-id", duplicate }. */
export function sendMessage(roomId, body) {
  const extra = body.clientMsgId ? { "client-msg-id": body.clientMsgId } : {};
  return withReceipt(`/app/rooms/${roomId}/messages`, body, extra);
}

export function markRead(roomId, seq) {
  if (!client?.connected) return api.post(`/api/rooms/${encodeURIComponent(roomId)}/read`, { seq });
  return withReceipt(`/app/rooms/${roomId}/read`, { seq });
}

export function typing(roomId) {
  if (client?.connected) client.publish({ destination: `/app/rooms/${roomId}/typing`, body: "" });
}
