// Who is typing: a TYPING event lasts until its `until` (5 s) unless renewed,
// and ends early when that person's message arrives or they go offline.
import { state, emit } from "./state.js";
import { $ } from "./ui.js";
import { current } from "./chat.js";

export function setTyping(roomId, userId, ms) {
  if (userId === state.me.id) return;
  let room = state.typing.get(roomId);
  if (!room) state.typing.set(roomId, (room = new Map()));
  clearTimeout(room.get(userId));
  room.set(userId, setTimeout(() => clearTyping(roomId, userId), Math.min(Math.max(ms, 1000), 10000)));
  paintTyping();
  emit("typing-changed", { roomId });
}

export function clearTyping(roomId, userId) {
  const room = state.typing.get(roomId);
  if (!room || !room.has(userId)) return;
  clearTimeout(room.get(userId));
  room.delete(userId);
  paintTyping();
  emit("typing-changed", { roomId });
}

export function paintTyping() {
  const el = $("typing");
  const cur = current();
  const room = cur && state.typing.get(cur.roomId);
  if (!room || !room.size) {
    el.textContent = "";
    delete el.dataset.active;
    return;
  }
  const names = [...room.keys()].map((id) => {
    const u = state.users.get(id);
    const member = cur.members.find((m) => m.userId === id);
    return (u && !(u instanceof Promise) && u.displayName) || member?.displayName || "누군가";
  });
  el.dataset.active = "true";
  el.textContent = names.length === 1 ? `${names[0]}님이 입력 중…` : `${names.length}명이 입력 중…`;
}
