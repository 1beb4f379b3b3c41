// The side panel beside the chat: a thread, the pinned messages, the room's
// details (members, invite code, favorite, leave), a message's edit history.
import * as api from "./api.js";
import * as chat from "./chat.js";
import { wireEnter } from "./composer.js";
import { state, emit, on, isCouple, roomTitle, refreshPresence } from "./state.js";
import { $, h, clear, avatar, when, toast, showError, confirmDialog } from "./ui.js";
import { setPinned } from "./actions.js";
import { previewText } from "./rooms.js";
import { reportUser } from "./report.js";

let panel = null; // { kind, roomId, parentId? }
const enc = encodeURIComponent;

export function openPanel(kind, title, body, extra = {}) {
  panel = { kind, ...extra };
  $("side-title").textContent = title;
  clear($("side-body")).append(body);
  const aside = $("side-panel");
  aside.hidden = false;
  aside.dataset.kind = kind;
  document.body.classList.add("panel-open");
}

export function closePanel() {
  panel = null;
  $("side-panel").hidden = true;
  clear($("side-body"));
  document.body.classList.remove("panel-open");
}

export const panelKind = () => panel?.kind || null;

function miniMessage(m) {
  return h(
    "li.mini-msg",
    { dataset: { testid: "thread-message", id: m.id } },
    avatar({ name: m.senderName, imageUrl: m.senderImage, key: m.senderId }, "small"),
    h(
      "div",
      null,
      h("p.mini-head", null, h("strong", null, m.senderName || m.senderUsername || ""), " ", h("time", { datetime: m.createdAt }, when(m.createdAt))),
      h("p.mini-text", { dir: "auto" }, m.deleted ? "삭제된 메시지입니다" : previewText(m)),
    ),
  );
}

// ---------------------------------------------------------------- threads

export async function openThread(roomId, parentId) {
  const list = h("ol.mini-list", { dataset: { testid: "thread-replies" }, "aria-label": "답글" });
  const head = h("div.thread-parent");
  const input = h("textarea", { id: "thread-input", rows: "2", maxlength: "4000", placeholder: "스레드에 답글", dataset: { testid: "thread-input" } });
  const sendReply = () => {
    const text = input.value.trim();
    if (!text) return;
    chat.send({ type: "TEXT", content: text, parentId }, { roomId });
    input.value = "";
  };
  wireEnter(input, sendReply);
  const form = h(
    "form.thread-composer",
    { onsubmit: (e) => (e.preventDefault(), sendReply()) },
    h("label.sr-only", { for: "thread-input" }, "스레드 답글"),
    input,
    h("button.primary", { type: "submit", dataset: { testid: "thread-send" } }, "답글"),
  );
  openPanel("thread", "스레드", h("div.stack", null, head, list, form), { roomId, parentId });
  try {
    const t = await api.get(`/api/rooms/${enc(roomId)}/messages/${enc(parentId)}/thread${api.query({ limit: 200 })}`);
    if (panel?.parentId !== parentId) return;
    head.append(h("ol.mini-list", null, miniMessage(t.parent)));
    for (const r of t.replies) list.append(miniMessage(r));
    if (!t.replies.length) list.append(h("li.empty", { dataset: { placeholder: "1" } }, "아직 답글이 없어요"));
  } catch (e) {
    showError(e);
  }
  input.focus();
}

on("thread-message", ({ roomId, message }) => {
  if (panel?.kind !== "thread" || panel.roomId !== roomId || panel.parentId !== message.parentId) return;
  const list = $("side-body").querySelector("[data-testid=thread-replies]");
  if (!list || list.querySelector(`[data-id="${CSS.escape(message.id)}"]`)) return;
  list.querySelector("[data-placeholder]")?.remove();
  list.append(miniMessage(message));
});

// ---------------------------------------------------------------- pins

let pins = [];

export async function loadPins(roomId) {
  try {
    ({ pins } = await api.get(`/api/rooms/${enc(roomId)}/pins`));
  } catch {
    pins = [];
  }
  if (state.openRoomId !== roomId) return;
  setPinned(pins.map((p) => p.message.id));
  const bar = $("pin-bar");
  const top = pins[0];
  bar.hidden = !top;
  clear(bar);
  if (top) {
    bar.append(h("span.pin-icon", { "aria-hidden": "true" }, "📌"), h("span.pin-text", null, `${top.message.senderName}: ${previewText(top.message)}`));
    bar.setAttribute("aria-label", `고정된 메시지: ${previewText(top.message)}`);
    bar.onclick = () => chat.jumpTo(top.message.seq);
  }
  if (panel?.kind === "pins" && panel.roomId === roomId) openPins(roomId);
}

export function openPins(roomId) {
  const list = h("ol.mini-list", { dataset: { testid: "pins-list" } });
  if (!pins.length) list.append(h("li.empty", null, "고정된 메시지가 없어요"));
  for (const p of pins) {
    const li = miniMessage(p.message);
    li.append(
      h(
        "div.row",
        null,
        h("button.text-btn", { type: "button", onclick: () => chat.jumpTo(p.message.seq) }, "이동"),
        h("button.text-btn", {
          type: "button",
          dataset: { testid: "unpin" },
          onclick: () => api.del(`/api/rooms/${enc(roomId)}/pins/${enc(p.message.id)}`).catch(showError),
        }, "고정 해제"),
      ),
    );
    list.append(li);
  }
  openPanel("pins", "고정된 메시지", list, { roomId });
}

on("room-event:pinned", ({ roomId }) => {
  if (state.openRoomId === roomId) loadPins(roomId);
});
on("room-event:deleted", ({ roomId }) => {
  if (state.openRoomId === roomId && pins.length) loadPins(roomId);
});

// ---------------------------------------------------------------- room details

export async function openInfo(roomId) {
  const entry = state.rooms.get(roomId);
  if (!entry) return;
  const room = entry.room;
  const admin = room.kind === "group" && (entry.role === "owner" || entry.role === "admin");
  const body = h(
    "div.stack",
    null,
    h("p.info-title", null, roomTitle(entry)),
    room.description ? h("p.muted", null, room.description) : null,
    h("p.muted", null, `${room.kind === "group" ? (room.visibility === "public" ? "공개 방" : "비공개 방") : isCouple(room) ? "커플 방" : "1:1 대화"} · 멤버 ${room.memberCount}명${room.hasPassword ? " · 🔒 비밀번호" : ""}`),
  );
  const fav = h("button", {
    type: "button",
    "aria-pressed": entry.favorite ? "true" : "false",
    dataset: { testid: "favorite-toggle" },
    onclick: async () => {
      try {
        if (entry.favorite) await api.del(`/api/rooms/${enc(roomId)}/favorite`);
        else await api.put(`/api/rooms/${enc(roomId)}/favorite`);
        entry.favorite = !entry.favorite;
        fav.setAttribute("aria-pressed", entry.favorite ? "true" : "false");
        fav.textContent = entry.favorite ? "★ 즐겨찾기 해제" : "☆ 즐겨찾기";
        emit("rooms-changed");
      } catch (e) {
        showError(e);
      }
    },
  }, entry.favorite ? "★ 즐겨찾기 해제" : "☆ 즐겨찾기");
  body.append(h("div.row", null, fav));
  if (admin) body.append(inviteSection(roomId));
  if (room.kind === "group") {
    body.append(h("p.muted.small", null, "방 ID: ", h("code", { dataset: { testid: "room-id" } }, room.id)));
  }
  const members = h("ul.member-list", { dataset: { testid: "member-list" } });
  body.append(h("h3", null, "멤버"), members);
  const leaveText = isCouple(room) ? "커플 연결 끊기" : "방 나가기";
  body.append(
    h("button.danger", {
      type: "button",
      dataset: { testid: "leave-room" },
      onclick: async () => {
        const ok = await confirmDialog(leaveText, isCouple(room) ? "커플 연결을 끊을까요? 대화 기록은 남지만 더 보낼 수 없어요." : "이 방에서 나갈까요?", leaveText);
        if (!ok) return;
        try {
          if (isCouple(room)) await api.del("/api/couples/me");
          else await api.post(`/api/rooms/${enc(roomId)}/leave`);
          closePanel();
          emit("left-room", { roomId });
        } catch (e) {
          showError(e);
        }
      },
    }, leaveText),
  );
  openPanel("info", "대화방 정보", body, { roomId });
  try {
    const { members: list } = await api.get(`/api/rooms/${enc(roomId)}/members`);
    for (const m of list) {
      const p = state.presence.get(m.userId);
      const row = h(
        "li.member",
        { dataset: { testid: "member", userId: m.userId } },
        avatar({ name: m.displayName, imageUrl: m.profileImageUrl, key: m.userId }, "small"),
        h("span.member-name", null, m.displayName, h("span.muted", null, ` @${m.username}`)),
        h("span.role", null, m.role === "owner" ? "방장" : m.role === "admin" ? "관리자" : ""),
        m.userId === state.me.id ? null : h("span.presence-dot", { class: `presence-dot${p?.online ? " online" : ""}` }, h("span.sr-only", null, p?.online ? "온라인" : "오프라인")),
      );
      if (m.userId !== state.me.id && room.kind === "group") {
        row.append(h("button.text-btn", { type: "button", onclick: () => emit("open-direct", { userId: m.userId }) }, "1:1"));
      }
      if (m.userId !== state.me.id) {
        row.append(h("button.text-btn", { type: "button", "aria-label": `${m.displayName} 신고`, dataset: { testid: "member-report" }, onclick: () => reportUser(m.userId, m.displayName) }, "신고"));
      }
      members.append(row);
      if (!p && m.userId !== state.me.id && list.length <= 30) refreshPresence(m.userId);
    }
  } catch (e) {
    showError(e);
  }
}

function inviteSection(roomId) {
  const code = h("code.invite-code", { dataset: { testid: "invite-code" } }, "…");
  const paint = (c) => (code.textContent = c || "없음");
  api.get(`/api/rooms/${enc(roomId)}/invite-code`).then((r) => paint(r.inviteCode), () => paint(null));
  return h(
    "div.invite",
    null,
    h("h3", null, "초대 코드"),
    h("p", null, code),
    h(
      "div.row",
      null,
      h("button", {
        type: "button",
        dataset: { testid: "invite-create" },
        onclick: () => api.post(`/api/rooms/${enc(roomId)}/invite-code`).then((r) => { paint(r.inviteCode); toast("새 초대 코드를 만들었어요"); }, showError),
      }, "새 코드 만들기"),
      h("button.text-btn", {
        type: "button",
        onclick: () => api.del(`/api/rooms/${enc(roomId)}/invite-code`).then(() => paint(null), showError),
      }, "코드 없애기"),
    ),
  );
}

// ---------------------------------------------------------------- edit history

export async function openEdits(roomId, message) {
  const list = h("ol.mini-list", { dataset: { testid: "edit-history" } });
  openPanel("edits", "수정 기록", list, { roomId });
  try {
    const { edits } = await api.get(`/api/rooms/${enc(roomId)}/messages/${enc(message.id)}/edits`);
    for (const e of edits) list.append(h("li.mini-msg", null, h("div", null, h("p.mini-head", null, `${when(e.replacedAt)}까지`), h("p.mini-text", null, e.content))));
    list.append(h("li.mini-msg", null, h("div", null, h("p.mini-head", null, "지금"), h("p.mini-text", null, message.content))));
  } catch (e) {
    showError(e);
  }
}

export function init() {
  $("side-close").addEventListener("click", closePanel);
  $("chat-pins").addEventListener("click", () => state.openRoomId && openPins(state.openRoomId));
  $("chat-info").addEventListener("click", () => state.openRoomId && openInfo(state.openRoomId));
  on("room-opened", ({ roomId }) => {
    if (panel && panel.kind !== "search") closePanel();
    $("pin-bar").hidden = true;
    pins = [];
    setPinned([]);
    loadPins(roomId);
  });
  on("members-changed", ({ roomId }) => {
    if (panel?.kind === "info" && panel.roomId === roomId) openInfo(roomId);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && panel && !$("dialog").open && $("msg-menu").hidden) closePanel();
  });
}
