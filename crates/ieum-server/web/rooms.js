// The room list: favorites first, then by latest message, with unread and
// mention badges, presence of 1:1 partners and "typing…" previews. Every room
// in it is followed live (stomp.watch), so badges move without reloading.
import * as api from "./api.js";
import * as stomp from "./stomp.js";
import { state, emit, on, user, peerOf, isDirect, isCouple, roomTitle, refreshPresence } from "./state.js";
import { $, h, clear, paintAvatar, shortWhen } from "./ui.js";
import { systemText } from "./message.js";

const items = new Map(); // roomId -> li
let renderQueued = false;

/** One line about a message, for previews. */
export function previewText(m) {
  if (!m) return "";
  if (m.deleted) return "삭제된 메시지";
  switch (m.type) {
    case "IMAGE":
      return m.content ? `📷 ${m.content}` : "📷 사진";
    case "FILE":
      return `📎 ${m.file?.name || m.content || "파일"}`;
    case "STICKER":
      return "스티커";
    default:
      return m.content || "";
  }
}

function activityOf(entry) {
  return entry.lastMessage?.createdAt || entry.room.lastMessageAt || entry.room.createdAt || "";
}

function sorted() {
  return [...state.rooms.values()].sort((a, b) => {
    if (a.favorite !== b.favorite) return a.favorite ? -1 : 1;
    const x = activityOf(a);
    const y = activityOf(b);
    return x < y ? 1 : x > y ? -1 : 0;
  });
}

/** Fetches the room list (and the couple), follows new rooms, forgets left ones. */
export async function loadRooms() {
  const { rooms } = await api.get("/api/rooms");
  // A couple's room is a 1:1 room whose id is the couple's (not "dm:...").
  const coupleRoom = rooms.find((r) => r.room.kind !== "group" && !r.room.id.startsWith("dm:"));
  if (!coupleRoom) state.couple = null;
  else if (state.couple?.coupleId !== coupleRoom.room.id || !state.couple.partner?.username) {
    const c = await api.get("/chat/room").catch(() => null);
    state.couple = c && c.coupleId ? c : null;
  }
  const seen = new Set();
  for (const r of rooms) {
    const id = r.room.id;
    seen.add(id);
    const old = state.rooms.get(id);
    const entry = { ...r, peerId: old?.peerId };
    // What we learnt live is newer than a list fetched meanwhile.
    if (old && (old.lastMessage?.seq || 0) > (r.lastMessage?.seq || 0)) {
      entry.lastMessage = old.lastMessage;
      entry.unreadCount = old.unreadCount;
      entry.mentionCount = old.mentionCount;
    }
    if (state.openRoomId === id) {
      entry.unreadCount = old ? old.unreadCount : entry.unreadCount;
      entry.mentionCount = old ? old.mentionCount : entry.mentionCount;
    }
    state.rooms.set(id, entry);
    stomp.watch(id, r.room.lastSeq ?? 0);
  }
  for (const id of [...state.rooms.keys()]) {
    if (!seen.has(id)) {
      state.rooms.delete(id);
      stomp.unwatch(id);
      items.get(id)?.remove();
      items.delete(id);
      emit("room-gone", { roomId: id });
    }
  }
  render();
  // Names and presence of 1:1 partners.
  await Promise.all(
    [...state.rooms.values()].filter((e) => isDirect(e.room)).map(async (e) => {
      const peer = await peerOf(e);
      if (!peer) return;
      await user(peer);
      if (!state.presence.has(peer)) await refreshPresence(peer);
    }),
  );
  render();
  emit("rooms-loaded");
}

/** Re-renders on the next frame (many events may come at once). */
export function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderNow();
  });
}

function renderNow() {
  const list = $("room-list");
  const order = sorted();
  $("room-empty").hidden = order.length > 0;
  order.forEach((entry, i) => {
    const li = itemFor(entry);
    paint(li, entry);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
}

function itemFor(entry) {
  const id = entry.room.id;
  let li = items.get(id);
  if (li) return li;
  const btn = h(
    "button.room-btn",
    { type: "button", onclick: () => emit("open-room", { roomId: id }) },
    h("span.room-avatar", null, h("span.avatar", { "aria-hidden": "true" }), h("span.presence-dot", { hidden: true, dataset: { testid: "presence-dot" } })),
    h(
      "span.room-main",
      null,
      h("span.room-line", null, h("span.room-name", { dataset: { testid: "room-name" } }), h("span.room-time")),
      h("span.room-line", null, h("span.room-preview", { dataset: { testid: "room-preview" } }), h("span.badges")),
    ),
  );
  li = h("li.room-item", { dataset: { testid: "room-item", roomId: id } }, btn);
  items.set(id, li);
  return li;
}

function paint(li, entry) {
  const room = entry.room;
  const title = roomTitle(entry);
  const peer = entry.peerId ? state.users.get(entry.peerId) : null;
  const btn = li.firstElementChild;
  li.classList.toggle("active", state.openRoomId === room.id);
  if (state.openRoomId === room.id) btn.setAttribute("aria-current", "true");
  else btn.removeAttribute("aria-current");
  const av = btn.querySelector(".avatar");
  const image = isDirect(room) && peer && !(peer instanceof Promise) ? peer.profileImageUrl : room.imageUrl;
  if (av.dataset.painted !== `${title}|${image || ""}`) {
    paintAvatar(av, { name: title, imageUrl: image, key: isDirect(room) && entry.peerId ? entry.peerId : room.id });
    av.dataset.painted = `${title}|${image || ""}`;
  }
  const dot = btn.querySelector(".presence-dot");
  const online = entry.peerId && state.presence.get(entry.peerId)?.online;
  dot.hidden = !isDirect(room) || !entry.peerId;
  dot.classList.toggle("online", !!online);
  dot.dataset.online = online ? "true" : "false";
  const name = btn.querySelector(".room-name");
  clear(name);
  if (entry.favorite) name.append(h("span.fav", { "aria-label": "즐겨찾기" }, "★ "));
  if (isCouple(room)) name.append(h("span.heart", { "aria-label": "커플" }, "♥ "));
  name.append(title);
  if (room.kind === "group" && room.memberCount > 2) name.append(h("span.count", null, ` ${room.memberCount}`));
  btn.querySelector(".room-time").textContent = shortWhen(activityOf(entry));
  const typing = state.typing.get(room.id);
  const preview = btn.querySelector(".room-preview");
  if (typing && typing.size) {
    preview.textContent = "입력 중…";
    preview.classList.add("is-typing");
  } else {
    const m = entry.lastMessage;
    const who = m && room.kind === "group" && m.type !== "SYSTEM" && m.senderName ? `${m.senderName}: ` : "";
    preview.textContent = m ? who + (m.type === "SYSTEM" ? systemText(m.content) : previewText(m)) : room.description || "아직 메시지가 없어요";
    preview.classList.remove("is-typing");
  }
  const badges = clear(btn.querySelector(".badges"));
  if (entry.mentionCount > 0) {
    badges.append(h("span.badge.mention", { dataset: { testid: "mention-badge" } }, h("span", { "aria-hidden": "true" }, "@"), h("span.sr-only", null, `, 나를 언급 ${entry.mentionCount}개`)));
  }
  if (entry.unreadCount > 0) {
    const n = entry.unreadCount > 999 ? "999+" : String(entry.unreadCount);
    badges.append(h("span.badge", { dataset: { testid: "unread-badge" } }, h("span", { "aria-hidden": "true" }, n), h("span.sr-only", null, `, 읽지 않은 메시지 ${n}개`)));
  }
  dot.textContent = "";
  if (!dot.hidden) dot.append(h("span.sr-only", null, online ? "온라인, " : "오프라인, "));
}

/** A live message: preview, order, and badges unless the user is reading that room. */
export function noteMessage(roomId, m, reading) {
  const entry = state.rooms.get(roomId);
  if (!entry) return;
  if (!entry.lastMessage || m.seq >= (entry.lastMessage.seq || 0)) {
    entry.lastMessage = m;
    entry.room.lastSeq = m.seq;
    entry.room.lastMessageAt = m.createdAt;
  }
  const mine = m.senderId === state.me.id;
  if (!mine && m.type !== "SYSTEM" && !reading && m.seq > (entry.lastReadSeq || 0)) {
    entry.unreadCount = (entry.unreadCount || 0) + 1;
    if ((m.mentions || []).includes(state.me.id)) entry.mentionCount = (entry.mentionCount || 0) + 1;
  }
  render();
}

/** The user read up to `seq` (here or on another device). */
export function noteRead(roomId, seq) {
  const entry = state.rooms.get(roomId);
  if (!entry) return;
  if (seq > (entry.lastReadSeq || 0)) entry.lastReadSeq = seq;
  if (!entry.lastMessage || seq >= entry.lastMessage.seq) {
    entry.unreadCount = 0;
    entry.mentionCount = 0;
  }
  render();
}

export function updateLastMessage(roomId, messageId, change) {
  const entry = state.rooms.get(roomId);
  if (entry?.lastMessage?.id === messageId) {
    Object.assign(entry.lastMessage, change);
    render();
  }
}

export function init() {
  on("presence", render);
  on("typing-changed", render);
  on("room-opened", render);
  // Rooms others put us in (a direct room, a couple) announce nothing to us:
  // look again now and then, and whenever the window comes back.
  setInterval(() => {
    if (state.me && document.visibilityState === "visible") loadRooms().catch(() => {});
  }, 20000);
  window.addEventListener("focus", () => state.me && loadRooms().catch(() => {}));
}

export function resetRooms() {
  items.clear();
  clear($("room-list"));
}

export { roomTitle };
