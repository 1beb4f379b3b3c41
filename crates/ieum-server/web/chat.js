// The open room's timeline: history paged backwards as the user scrolls up,
// live messages merged by seq (never twice, always in order), one's own sends
// (with a client message id, retried after a reconnect), read marking,
// typing and presence, and the room events that change messages.
import * as api from "./api.js";
import * as stomp from "./stomp.js";
import { state, emit, on, user, peerOf, isDirect, isCouple, roomTitle, refreshPresence } from "./state.js";
import { $, clear, paintAvatar, announce, showError, ago } from "./ui.js";
import { renderMessage, fillMessage, paintStatus, paintReactions, regroup } from "./message.js";
import { previewText, noteRead, render as renderRooms, updateLastMessage } from "./rooms.js";
import { pendingOf, settled, resetOutbox } from "./outbox.js";
import { setTyping, clearTyping, paintTyping } from "./typing.js";

export { send, addUpload } from "./outbox.js";

// History page size (a test may make it small to exercise paging).
const PAGE = Number(localStorage.getItem("ieum.pageSize")) || 50;

let cur = null;
let readTimer = null;

function timeline(roomId, entry) {
  return {
    roomId,
    entry,
    direct: isDirect(entry.room),
    meId: state.me.id,
    peerId: null,
    msgs: new Map(), // seq -> message
    els: new Map(), // seq -> li
    byId: new Map(), // id -> message
    order: [], // seqs, ascending
    pending: new Map(), // clientMsgId -> li
    readSeqs: new Map(), // userId -> lastReadSeq
    deliveredSeq: state.delivered.get(roomId) || 0,
    members: [],
    hasMore: true,
    loading: false,
    sentRead: entry.lastReadSeq || 0,
  };
}

export const current = () => cur;

// ---------------------------------------------------------------- opening

export function openRoom(roomId) {
  const entry = state.rooms.get(roomId);
  if (!entry) return Promise.resolve();
  if (cur && cur.roomId === roomId) return cur.ready;
  closeRoom();
  state.openRoomId = roomId;
  cur = timeline(roomId, entry);
  const t = cur;
  $("chat-empty").hidden = true;
  $("chat").hidden = false;
  document.body.classList.add("chat-open");
  clear($("messages"));
  clear($("pending"));
  $("history-status").textContent = "불러오는 중…";
  $("jump-latest").hidden = true;
  paintHeader();
  paintTyping();
  emit("room-opened", { roomId });
  for (const o of pendingOf(roomId)) addPending(o.msg);
  t.ready = load(t);
  return t.ready;
}

async function load(t) {
  const { roomId, entry } = t;
  try {
    if (t.direct) t.peerId = await peerOf(entry);
    const [page, members] = await Promise.all([
      api.get(`/api/rooms/${encodeURIComponent(roomId)}/messages${api.query({ limit: PAGE })}`),
      api.get(`/api/rooms/${encodeURIComponent(roomId)}/members`).catch(() => ({ members: [] })),
    ]);
    if (cur !== t) return;
    t.members = members.members;
    for (const m of t.members) {
      t.readSeqs.set(m.userId, Math.max(t.readSeqs.get(m.userId) || 0, m.lastReadSeq || 0));
    }
    if (t.direct && t.peerId) {
      await user(t.peerId);
      refreshPresence(t.peerId);
      if (cur !== t) return;
    }
    for (const m of page.messages) upsert(m);
    t.hasMore = page.hasMore;
    $("history-status").textContent = t.hasMore ? "" : "대화의 시작입니다";
    paintHeader();
    repaintStatuses();
    scrollToBottom();
    maybeLoadOlder();
    maybeMarkRead();
  } catch (e) {
    if (cur === t) $("history-status").textContent = "불러오지 못했어요";
    showError(e);
  }
}

export function closeRoom() {
  cur = null;
  state.openRoomId = null;
  clearTimeout(readTimer);
  document.body.classList.remove("chat-open");
  $("chat").hidden = true;
  $("chat-empty").hidden = false;
  emit("room-closed");
  renderRooms();
}

export function paintHeader() {
  if (!cur) return;
  const entry = cur.entry;
  const title = roomTitle(entry);
  $("chat-title").textContent = (isCouple(entry.room) ? "♥ " : "") + title;
  const peer = cur.peerId ? state.users.get(cur.peerId) : null;
  const image = cur.direct && peer && !(peer instanceof Promise) ? peer.profileImageUrl : entry.room.imageUrl;
  paintAvatar($("chat-avatar"), { name: title, imageUrl: image, key: cur.direct && cur.peerId ? cur.peerId : entry.room.id });
  const sub = $("chat-sub");
  if (cur.direct && cur.peerId) {
    const p = state.presence.get(cur.peerId);
    sub.dataset.online = p?.online ? "true" : "false";
    sub.textContent = p?.online ? "● 온라인" : p?.lastSeenAt ? `오프라인 · ${ago(p.lastSeenAt)} 접속` : "오프라인";
  } else {
    delete sub.dataset.online;
    sub.textContent = `멤버 ${entry.room.memberCount}명${entry.room.description ? " · " + entry.room.description : ""}`;
  }
}

// ---------------------------------------------------------------- the list

function indexFor(seq) {
  const o = cur.order;
  let lo = 0;
  let hi = o.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (o[mid] < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Puts a message in its place by seq; a seq seen before only updates it. */
function upsert(m, reuse) {
  const t = cur;
  if (t.msgs.has(m.seq)) {
    const old = t.msgs.get(m.seq);
    const merged = { ...old, ...m, reactions: m.reactions ?? old.reactions, replyCount: m.replyCount ?? old.replyCount };
    t.msgs.set(m.seq, merged);
    t.byId.set(merged.id, merged);
    fillMessage(t.els.get(m.seq), merged, t);
    return false;
  }
  t.msgs.set(m.seq, m);
  t.byId.set(m.id, m);
  const li = reuse || renderMessage(m, t);
  if (reuse) fillMessage(li, m, t);
  const i = indexFor(m.seq);
  const before = i < t.order.length ? t.els.get(t.order[i]) : null;
  $("messages").insertBefore(li, before);
  t.order.splice(i, 0, m.seq);
  t.els.set(m.seq, li);
  regroup(li);
  regroup(li.nextElementSibling);
  return true;
}

export function addPending(msg) {
  const li = renderMessage(msg, cur);
  li.classList.add("pending");
  cur.pending.set(msg.clientMsgId, li);
  $("pending").append(li);
  regroup(li);
  return li;
}

const scroller = () => $("scroller");
const atBottom = () => {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < 60;
};
/** Whether the view follows the newest message (images that load later keep it there). */
let stick = true;
export function scrollToBottom() {
  const s = scroller();
  s.scrollTop = s.scrollHeight;
  stick = true;
  $("jump-latest").hidden = true;
}

/** One page further back, keeping what is on screen where it is. */
async function loadOlder(limit = PAGE) {
  const t = cur;
  if (!t || t.loading || !t.hasMore || !t.order.length) return;
  t.loading = true;
  $("history-status").textContent = "이전 메시지를 불러오는 중…";
  try {
    const page = await api.get(`/api/rooms/${encodeURIComponent(t.roomId)}/messages${api.query({ before: t.order[0], limit })}`);
    if (cur !== t) return;
    const s = scroller();
    const fromBottom = s.scrollHeight - s.scrollTop;
    for (const m of page.messages) upsert(m);
    t.hasMore = page.hasMore && page.messages.length > 0;
    s.scrollTop = s.scrollHeight - fromBottom;
    $("history-status").textContent = t.hasMore ? "" : "대화의 시작입니다";
  } catch (e) {
    if (cur === t) $("history-status").textContent = "불러오지 못했어요";
  } finally {
    t.loading = false;
  }
}

function maybeLoadOlder() {
  if (cur && cur.hasMore && !cur.loading && scroller().scrollTop < 200) {
    loadOlder().then(() => requestAnimationFrame(maybeLoadOlder));
  }
}

/** Scrolls to a message, paging back until it is loaded. */
export async function jumpTo(seq) {
  const t = cur;
  if (!t) return false;
  while (t === cur && !t.els.has(seq) && t.hasMore && t.order.length && seq < t.order[0]) {
    await loadOlder(200);
  }
  const li = t.els.get(seq);
  if (!li) return false;
  li.scrollIntoView({ block: "center" });
  li.classList.remove("flash");
  void li.offsetWidth;
  li.classList.add("flash");
  return true;
}

// ---------------------------------------------------------------- reading

function maybeMarkRead() {
  const t = cur;
  if (!t || document.visibilityState !== "visible" || !t.order.length || !atBottom()) return;
  const last = t.order[t.order.length - 1];
  if (last <= t.sentRead) return;
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (cur !== t || last <= t.sentRead) return;
    t.sentRead = last;
    noteRead(t.roomId, last);
    Promise.resolve(stomp.markRead(t.roomId, last)).catch(() => (t.sentRead = Math.min(t.sentRead, last - 1)));
  }, 150);
}

export const isReading = (roomId) =>
  !!cur && cur.roomId === roomId && document.visibilityState === "visible" && atBottom();

function repaintStatuses() {
  for (const [seq, li] of cur.els) {
    const m = cur.msgs.get(seq);
    if (m.senderId === cur.meId) paintStatus(li, m, cur);
  }
}

// ---------------------------------------------------------------- live input

/** A live message of any room (from stomp): the list, and the timeline if open. */
export function onMessage(roomId, m) {
  const t = cur && cur.roomId === roomId ? cur : null;
  if (m.senderId && m.senderId !== state.me.id) clearTyping(roomId, m.senderId);
  if (m.clientMsgId && m.senderId === state.me.id) settled(m.clientMsgId);
  if (!t) return;
  const bottom = atBottom();
  const li = m.clientMsgId && m.senderId === t.meId ? t.pending.get(m.clientMsgId) : null;
  if (li) {
    t.pending.delete(m.clientMsgId);
    li.classList.remove("pending");
  }
  const added = upsert(m, li);
  if (li && !added) li.remove();
  if (m.parentId) {
    const parent = t.byId.get(m.parentId);
    if (parent && added) {
      parent.replyCount = (parent.replyCount || 0) + 1;
      parent.lastReplyAt = m.createdAt;
      fillMessage(t.els.get(parent.seq), parent, t);
    }
    emit("thread-message", { roomId, message: m });
  }
  if (added && m.senderId !== t.meId && m.type !== "SYSTEM") {
    announce(`${m.senderName}: ${previewText(m)}`);
  }
  if (bottom || li) scrollToBottom();
  else if (added) $("jump-latest").hidden = false;
  maybeMarkRead();
}

export function onEvent(roomId, name, ev) {
  const t = cur && cur.roomId === roomId ? cur : null;
  switch (name) {
    case "read":
      if (ev.userId === state.me.id) noteRead(roomId, ev.seq);
      if (t) {
        t.readSeqs.set(ev.userId, Math.max(t.readSeqs.get(ev.userId) || 0, ev.seq));
        repaintStatuses();
      }
      break;
    case "delivered":
      if (ev.userId === state.me.id) break;
      state.delivered.set(roomId, Math.max(state.delivered.get(roomId) || 0, ev.seq));
      if (t) {
        t.deliveredSeq = state.delivered.get(roomId);
        repaintStatuses();
      }
      break;
    case "typing":
      setTyping(roomId, ev.userId, ev.until && ev.at ? new Date(ev.until) - new Date(ev.at) : 5000);
      break;
    case "presence":
      state.presence.set(ev.userId, { online: ev.online, lastSeenAt: ev.online ? null : ev.at });
      if (!ev.online) clearTyping(roomId, ev.userId);
      emit("presence", { userId: ev.userId });
      break;
    case "edited":
      changeMessage(t, roomId, ev.messageId, { content: ev.content, editedAt: ev.editedAt });
      break;
    case "deleted":
      changeMessage(t, roomId, ev.messageId, { deleted: true, content: "", file: null, reactions: [], expired: !!ev.expired });
      break;
    case "file_updated":
      changeMessage(t, roomId, ev.messageId, { file: ev.file });
      break;
    case "reaction":
      if (t) react(t, ev);
      break;
    case "room_updated":
      if (state.rooms.has(roomId)) Object.assign(state.rooms.get(roomId).room, ev.room);
      renderRooms();
      if (t) paintHeader();
      break;
    case "member_joined":
    case "member_left":
      if (ev.userId === state.me.id && name === "member_left") emit("left-room", { roomId });
      else {
        emit("members-changed", { roomId });
        emit("rooms-changed"); // member counts
      }
      break;
  }
  emit(`room-event:${name}`, { roomId, event: ev });
}

function changeMessage(t, roomId, messageId, change) {
  updateLastMessage(roomId, messageId, change);
  if (!t) return;
  const m = t.byId.get(messageId);
  if (!m) return;
  Object.assign(m, change);
  fillMessage(t.els.get(m.seq), m, t);
}

function react(t, ev) {
  const m = t.byId.get(ev.messageId);
  if (!m) return;
  const list = (m.reactions = m.reactions || []);
  let r = list.find((x) => x.emoji === ev.emoji);
  if (!r) list.push((r = { emoji: ev.emoji, count: 0, userIds: [] }));
  const has = r.userIds.includes(ev.userId);
  if (ev.added && !has) r.userIds.push(ev.userId);
  if (!ev.added && has) r.userIds = r.userIds.filter((u) => u !== ev.userId);
  r.count = r.userIds.length;
  m.reactions = list.filter((x) => x.count > 0);
  paintReactions(t.els.get(m.seq).querySelector(".reactions"), m, t);
}

// ---------------------------------------------------------------- wiring

export function init() {
  const s = scroller();
  s.addEventListener("scroll", () => {
    stick = atBottom();
    if (stick) $("jump-latest").hidden = true;
    maybeLoadOlder();
    maybeMarkRead();
  }, { passive: true });
  // An image that loads grows the list: stay at the bottom if we were there.
  s.addEventListener("load", (e) => {
    if (e.target.tagName === "IMG" && stick) scrollToBottom();
  }, true);
  $("jump-latest").addEventListener("click", () => {
    scrollToBottom();
    maybeMarkRead();
  });
  document.addEventListener("visibilitychange", maybeMarkRead);
  window.addEventListener("focus", maybeMarkRead);
  on("presence", ({ userId }) => {
    if (cur && cur.peerId === userId) paintHeader();
  });
  on("members-changed", async ({ roomId }) => {
    if (!cur || cur.roomId !== roomId) return;
    // The room may close meanwhile (this member removed too): keep what is known.
    const answer = await api.get(`/api/rooms/${encodeURIComponent(roomId)}/members`).catch(() => null);
    if (!answer || !cur || cur.roomId !== roomId) return;
    const { members } = answer;
    cur.members = members;
    for (const m of members) if (!cur.readSeqs.has(m.userId)) cur.readSeqs.set(m.userId, m.lastReadSeq || 0);
    repaintStatuses();
  });
}

export function reset() {
  resetOutbox();
  if (cur) closeRoom();
}
