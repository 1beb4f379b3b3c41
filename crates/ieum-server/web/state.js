// What the client knows, shared by the views, and a tiny event bus between them.
import * as api from "./api.js";

export const state = {
  /** GET /api/me */
  me: null,
  /** roomId -> { room, role, favorite, lastReadSeq, unreadCount, mentionCount, lastMessage, peerId } */
  rooms: new Map(),
  /** the room shown in the chat pane */
  openRoomId: null,
  /** GET /chat/room while paired: { coupleId, partner } */
  couple: null,
  /** userId -> user (profiles seen so far) */
  users: new Map(),
  /** userId -> { online, lastSeenAt } */
  presence: new Map(),
  /** roomId -> the highest seq the other member's device got (1:1 rooms, from DELIVERED events) */
  delivered: new Map(),
  /** roomId -> Map(userId -> timer) of members typing now */
  typing: new Map(),
  /** "connected" | "connecting" | "offline" */
  connection: "connecting",
};

const bus = new EventTarget();
export function emit(name, detail) {
  bus.dispatchEvent(new CustomEvent(name, { detail }));
}
export function on(name, fn) {
  bus.addEventListener(name, (e) => fn(e.detail));
}

/** A user's profile, fetched once. */
export async function user(id) {
  if (!id) return null;
  if (state.users.has(id)) return state.users.get(id);
  const p = api.get(`/api/users/${encodeURIComponent(id)}`).catch(() => null);
  state.users.set(id, p);
  const u = await p;
  state.users.set(id, u);
  return u;
}

export function rememberUser(u) {
  if (u && u.id) state.users.set(u.id, u);
}

/** The other member of a 1:1 room: from a `dm:<a>:<b>` id, the couple, or the members. */
export async function peerOf(entry) {
  if (entry.peerId !== undefined) return entry.peerId;
  const room = entry.room;
  const me = state.me.id;
  let peer = null;
  if (room.id.startsWith("dm:")) {
    // dm:<uuid>:<uuid>, the uuids written without hyphens.
    const plain = (id) => id.replace(/-/g, "").toLowerCase();
    const other = room.id.split(":").slice(1).find((id) => plain(id) !== plain(me));
    peer = other ? plain(other).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5") : null;
  } else if (state.couple && state.couple.coupleId === room.id) {
    peer = state.couple.partner.id;
  } else {
    const { members } = await api.get(`/api/rooms/${encodeURIComponent(room.id)}/members`).catch(() => ({ members: [] }));
    peer = members.find((m) => m.userId !== me)?.userId || null;
  }
  entry.peerId = peer;
  return peer;
}

export const isDirect = (room) => room && room.kind !== "group";
export const isCouple = (room) => !!(room && state.couple && state.couple.coupleId === room.id);

/** The name to show for a room: a 1:1 room is named after the other person. */
export function roomTitle(entry) {
  const room = entry.room;
  if (isDirect(room) && entry.peerId) {
    const u = state.users.get(entry.peerId);
    if (u && !(u instanceof Promise)) return u.displayName || u.username;
  }
  return room.name;
}

export async function refreshPresence(userId) {
  try {
    const p = await api.get(`/api/users/${encodeURIComponent(userId)}/presence`);
    state.presence.set(userId, { online: p.online, lastSeenAt: p.lastSeenAt });
    emit("presence", { userId });
  } catch {}
}
