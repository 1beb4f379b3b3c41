// What one can do with a message: react, reply in a thread, pin, copy, edit,
// delete, report. A "⋯" button on each message opens a small menu.
import * as api from "./api.js";
import * as chat from "./chat.js";
import * as panels from "./panels.js";
import { startEditing } from "./composer.js";
import { state } from "./state.js";
import { $, h, clear, toast, showError, confirmDialog } from "./ui.js";
import { quickReactions } from "./message.js";
import { reportMessage } from "./report.js";

let menuFor = null; // { li, message }
let pinned = new Set(); // message ids pinned in the open room

const msgPath = (roomId, id) => `/api/rooms/${encodeURIComponent(roomId)}/messages/${encodeURIComponent(id)}`;

export function setPinned(ids) {
  pinned = new Set(ids);
}

function messageOf(li) {
  const t = chat.current();
  if (!t || !li?.dataset.seq) return null;
  return t.msgs.get(Number(li.dataset.seq)) || null;
}

export async function toggleReaction(roomId, message, emoji) {
  const mine = (message.reactions || []).some((r) => r.emoji === emoji && (r.userIds || []).includes(state.me.id));
  const path = `${msgPath(roomId, message.id)}/reactions/${encodeURIComponent(emoji)}`;
  try {
    if (mine) await api.del(path);
    else await api.put(path);
  } catch (e) {
    showError(e);
  }
}

function closeMenu() {
  const menu = $("msg-menu");
  if (menu.hidden) return;
  menu.hidden = true;
  clear(menu);
  const back = menuFor?.li.querySelector(".msg-menu-btn");
  menuFor = null;
  back?.setAttribute("aria-expanded", "false");
  return back;
}

function item(label, testid, fn, danger = false) {
  return h(`button.menu-item${danger ? ".danger" : ""}`, { type: "button", role: "menuitem", dataset: { testid }, onclick: () => { closeMenu(); fn(); } }, label);
}

function openMenu(li, button) {
  const message = messageOf(li);
  if (!message) return;
  const roomId = state.openRoomId;
  const entry = state.rooms.get(roomId);
  const mine = message.senderId === state.me.id;
  const admin = entry && (entry.role === "owner" || entry.role === "admin") && entry.room.kind === "group";
  const menu = clear($("msg-menu"));
  menuFor = { li, message };
  const row = h("div.menu-reactions", { role: "group", "aria-label": "반응" });
  for (const emoji of quickReactions) {
    row.append(
      h("button.menu-emoji", { type: "button", role: "menuitem", "aria-label": `${emoji} 반응`, dataset: { testid: "react-option", emoji }, onclick: () => { closeMenu(); toggleReaction(roomId, message, emoji); } }, emoji),
    );
  }
  menu.append(row);
  if (!message.parentId) menu.append(item("💬 스레드로 답글", "msg-reply", () => panels.openThread(roomId, message.id)));
  const isPinned = pinned.has(message.id);
  menu.append(
    item(isPinned ? "📌 고정 해제" : "📌 고정", "msg-pin", async () => {
      try {
        if (isPinned) await api.del(`/api/rooms/${encodeURIComponent(roomId)}/pins/${encodeURIComponent(message.id)}`);
        else await api.put(`/api/rooms/${encodeURIComponent(roomId)}/pins/${encodeURIComponent(message.id)}`);
        toast(isPinned ? "고정을 해제했어요" : "메시지를 고정했어요");
      } catch (e) {
        showError(e);
      }
    }),
  );
  if (message.content) {
    menu.append(item("📋 복사", "msg-copy", () => navigator.clipboard?.writeText(message.content).then(() => toast("복사했어요"), () => {})));
  }
  if (mine && (message.type === "TEXT" || message.type === "THREAD") && !message.deleted) {
    menu.append(item("✏️ 수정", "msg-edit", () => startEditing(message)));
  }
  if (message.editedAt) menu.append(item("🕘 수정 기록", "msg-history", () => panels.openEdits(roomId, message)));
  if (mine || admin) {
    menu.append(
      item("🗑 삭제", "msg-delete", async () => {
        if (!(await confirmDialog("메시지 삭제", "이 메시지를 모두에게서 삭제할까요?", "삭제"))) return;
        api.del(msgPath(roomId, message.id)).catch(showError);
      }, true),
    );
  }
  if (!mine && message.senderId && message.type !== "SYSTEM") {
    menu.append(item("🚩 신고", "msg-report", () => reportMessage(message), true));
  }
  menu.hidden = false;
  button.setAttribute("aria-expanded", "true");
  // Place it beside the button, inside the window.
  const r = button.getBoundingClientRect();
  const mw = menu.offsetWidth;
  const mh = menu.offsetHeight;
  const left = Math.max(8, Math.min(window.innerWidth - mw - 8, mine ? r.right - mw : r.left));
  const top = r.bottom + mh + 8 > window.innerHeight ? Math.max(8, r.top - mh - 4) : r.bottom + 4;
  menu.style.left = `${left}px`;
  menu.style.top = `${top}px`;
  menu.querySelector("button")?.focus();
}

export function init() {
  const touch = window.matchMedia("(hover: none)");
  $("messages").addEventListener("click", (e) => {
    let target = e.target.closest("[data-action]");
    // On touch screens a tap on a bubble opens its menu (links and images keep their tap).
    if (!target && touch.matches && e.target.closest(".bubble") && !e.target.closest("a")) {
      target = e.target.closest("li.msg")?.querySelector(".msg-menu-btn");
    }
    if (!target) return;
    const li = target.closest("li.msg");
    const message = messageOf(li);
    switch (target.dataset.action) {
      case "menu":
        if (menuFor?.li === li) closeMenu();
        else openMenu(li, target);
        break;
      case "react":
        if (message) toggleReaction(state.openRoomId, message, target.dataset.emoji);
        break;
      case "thread":
        if (message) panels.openThread(state.openRoomId, target.dataset.parent || message.id);
        break;
    }
  });
  document.addEventListener("click", (e) => {
    if (!$("msg-menu").hidden && !e.target.closest("#msg-menu") && !e.target.closest(".msg-menu-btn")) closeMenu();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("msg-menu").hidden) {
      closeMenu()?.focus();
    }
  });
  $("scroller").addEventListener("scroll", () => closeMenu(), { passive: true });
  window.addEventListener("resize", () => closeMenu());
}
