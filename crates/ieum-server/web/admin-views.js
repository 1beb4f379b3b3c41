// Console pages: users (search by username; suspend, lift, and for admins
// the server role), rooms (every room, by name) and one room's messages,
// newest first and paged back, with staff deletion.
import * as api from "./api.js";
import { state } from "./state.js";
import { h, clear, field, when, avatar, showError, toast } from "./ui.js";
import { previewText } from "./rooms.js";
import { systemText } from "./message.js";
import {
  enc, pageSize, ROLE_LABEL, suspendDialog, liftDialog, deleteMessageDialog, closeRoomDialog, untilText, moreButton, statusLine, shortId,
} from "./admin-common.js";

const roomNames = new Map(); // roomId -> name, from the room list
const KIND = { group: "그룹", direct: "1:1", couple: "커플" };

function searchForm(label, testid, onSearch, attrs = {}) {
  const [f, input] = field(label, { type: "search", autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: "100", dataset: { testid }, ...attrs });
  const form = h("form.admin-search", { role: "search", "aria-label": label }, f, h("button.primary", { type: "submit", dataset: { testid: `${testid}-submit` } }, "찾기"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    onSearch(input.value.trim());
  });
  return [form, input];
}

// ---------------------------------------------------------------- users

export async function renderUsers(body, ctx) {
  const list = h("ul.admin-list", { dataset: { testid: "admin-user-list" }, "aria-label": "사용자 목록" });
  const status = statusLine("admin-user-status");
  let query = "";
  let n = 0;
  const search = async (q = query) => {
    query = q.toLowerCase();
    const mine = ++n;
    status.textContent = "찾는 중…";
    try {
      const { users } = await api.get(`/api/admin/users${api.query({ q: query, limit: pageSize() })}`);
      if (!ctx.live() || mine !== n) return;
      list.replaceChildren(...users.map((u) => userCard(u, ctx, () => search())));
      status.textContent = users.length ? `${users.length}명` : "찾은 사용자가 없어요";
    } catch (e) {
      if (ctx.live() && mine === n) status.textContent = `찾지 못했어요: ${e.message}`;
    }
  };
  const [form] = searchForm("아이디로 찾기 (앞부분)", "admin-user-search", search, { placeholder: "예: minji" });
  body.append(form, status, list);
  await search("");
}

function userCard(u, ctx, refresh) {
  const self = u.id === state.me.id;
  const s = u.suspension;
  const name = u.displayName || u.username;
  const li = h(
    "li.admin-card.user-card",
    { dataset: { testid: "admin-user", userId: u.id, username: u.username, suspended: s ? "true" : "false" } },
    h(
      "div.user-line",
      null,
      avatar({ name, key: u.id }, "small"),
      h("p.user-names", null, h("strong", null, name), h("span.muted", null, ` @${u.username}`)),
      u.role !== "member" ? h("span.role-tag", { dataset: { testid: "admin-user-role" } }, ROLE_LABEL[u.role] || u.role) : null,
    ),
    h(
      "p",
      { class: s ? "suspension on" : "suspension", dataset: { testid: "user-suspension" } },
      s ? `정지됨 · ${untilText(s.until)} · 사유: ${s.reason}` : "정상",
    ),
    h("p.muted.small", null, `가입 ${when(u.createdAt)} · ID `, h("code", null, u.id)),
  );
  if (self) return li;
  const actions = h("div.row");
  const target = { id: u.id, name };
  const mayTouch = u.role === "member" || (u.role === "moderator" && ctx.isAdmin);
  if (s) {
    actions.append(h("button", { type: "button", dataset: { testid: "user-lift" }, onclick: () => liftDialog(target).then((ok) => ok && refresh()) }, "정지 해제"));
  } else if (mayTouch) {
    actions.append(h("button.danger", { type: "button", dataset: { testid: "user-suspend" }, onclick: () => suspendDialog(target).then((ok) => ok && refresh()) }, "정지"));
  }
  if (ctx.isAdmin) {
    const id = `role-${u.id}`;
    const select = h("select", { id, dataset: { testid: "user-role" } }, Object.entries(ROLE_LABEL).map(([v, label]) => h("option", { value: v, selected: v === u.role }, label)));
    const save = h("button", {
      type: "button",
      dataset: { testid: "user-role-save" },
      onclick: async () => {
        if (select.value === u.role) return;
        save.disabled = true;
        try {
          await api.put(`/api/admin/users/${enc(u.id)}/role`, { role: select.value });
          toast(`${name}님의 역할을 '${ROLE_LABEL[select.value]}'(으)로 바꿨어요`);
          refresh();
        } catch (e) {
          showError(e);
        } finally {
          save.disabled = false;
        }
      },
    }, "역할 변경");
    actions.append(h("span.role-edit", null, h("label", { for: id }, "역할"), select, save));
  }
  li.append(actions);
  return li;
}

// ---------------------------------------------------------------- rooms

export async function renderRooms(body, ctx) {
  const list = h("ul.admin-list", { dataset: { testid: "admin-room-list" }, "aria-label": "대화방 목록" });
  const status = statusLine("admin-room-status");
  let query = "";
  let next = null;
  let n = 0;
  const more = moreButton("더 보기", "admin-room-more", () => load(false));
  const load = async (fresh) => {
    const mine = fresh ? ++n : n;
    if (fresh) next = null;
    status.textContent = "불러오는 중…";
    try {
      const page = await api.get(`/api/admin/rooms${api.query({ q: query, before: fresh ? null : next, limit: pageSize() })}`);
      if (!ctx.live() || mine !== n) return;
      if (fresh) clear(list);
      for (const r of page.rooms) list.append(roomCard(r, ctx));
      next = page.next || null;
      more.hidden = !next;
      status.textContent = list.childElementCount ? "" : "대화방이 없어요";
    } catch (e) {
      if (ctx.live() && mine === n) status.textContent = `불러오지 못했어요: ${e.message}`;
    }
  };
  const [form] = searchForm("방 이름으로 찾기", "admin-room-search", (q) => {
    query = q;
    load(true);
  });
  body.append(form, status, list, more);
  await load(true);
}

function roomCard(r, ctx) {
  roomNames.set(r.id, r.name);
  const path = `rooms/${enc(r.id)}`;
  return h(
    "li.admin-card.room-card",
    { dataset: { testid: "admin-room", roomId: r.id } },
    h(
      "p.room-card-head",
      null,
      h("a", { href: `#/admin/${path}`, dataset: { testid: "admin-room-open" }, onclick: (e) => (e.preventDefault(), ctx.go(path)) }, r.name || shortId(r.id)),
      h("span.kind-tag", null, KIND[r.kind] || r.kind),
    ),
    h("p.muted.small", null, `멤버 ${r.memberCount}명 · 마지막 메시지 ${r.lastMessageAt ? when(r.lastMessageAt) : "없음"} · 만든 날 ${when(r.createdAt)}`),
    h("p.muted.small", null, "ID ", h("code", null, r.id)),
  );
}

// ---------------------------------------------------------------- one room

export async function renderRoom(body, ctx, roomId) {
  ctx.setTitle(roomNames.get(roomId) || `대화방 ${shortId(roomId)}`);
  const list = h("ol.admin-list.admin-messages", { dataset: { testid: "admin-messages" }, "aria-label": "메시지 (최신순)" });
  const status = statusLine("admin-messages-status");
  let oldest = null;
  const limit = pageSize();
  const more = moreButton("이전 메시지 더 보기", "admin-messages-more", () => load());
  const load = async () => {
    status.textContent = "불러오는 중…";
    try {
      const page = await api.get(`/api/admin/rooms/${enc(roomId)}/messages${api.query({ before: oldest, limit })}`);
      if (!ctx.live()) return;
      for (const m of page.messages) {
        list.append(messageRow(m));
        oldest = oldest === null ? m.seq : Math.min(oldest, m.seq);
      }
      more.hidden = page.messages.length < limit || oldest <= 1;
      status.textContent = list.childElementCount ? "" : "메시지가 없어요";
    } catch (e) {
      if (ctx.live()) status.textContent = `불러오지 못했어요: ${e.message}`;
    }
  };
  const back = h("a.admin-back", { href: "#/admin/rooms", dataset: { testid: "admin-room-back" }, onclick: (e) => (e.preventDefault(), ctx.go("rooms")) }, "← 대화방 목록");
  const room = { id: roomId, name: roomNames.get(roomId) || shortId(roomId) };
  const close = h("button.danger", {
    type: "button",
    dataset: { testid: "admin-room-close" },
    onclick: () => closeRoomDialog(room).then((ok) => {
      if (ok && ctx.live()) {
        clear(list);
        oldest = null;
        load();
      }
    }),
  }, "방 닫기");
  body.append(h("div.admin-toolbar", null, back, h("p.muted.small", null, "방 ID ", h("code", null, roomId)), close), status, list, more);
  await load();
}

function messageRow(m) {
  const li = h("li.admin-card.admin-msg", { dataset: { testid: "admin-message", seq: String(m.seq), id: m.id } });
  const paint = () => {
    clear(li);
    li.dataset.deleted = m.deleted ? "true" : "false";
    const system = m.type === "SYSTEM";
    li.append(
      h(
        "p.mini-head",
        null,
        h("strong", null, system ? "알림" : m.senderName || m.senderUsername || ""),
        " ",
        h("time", { datetime: m.createdAt }, when(m.createdAt)),
        h("span.seq", null, ` #${m.seq}`),
      ),
      m.deleted
        ? h("p.admin-msg-text.deleted", { dataset: { testid: "admin-message-deleted" } }, m.expired ? "사라진 메시지입니다" : "삭제된 메시지입니다")
        : h("p.admin-msg-text", { dir: "auto", dataset: { testid: "admin-message-text" } }, system ? systemText(m.content) : m.type === "TEXT" || m.type === "THREAD" ? m.content || "" : previewText(m)),
    );
    if (!m.deleted && !system && m.id) {
      li.append(
        h("div.row", null, h("button.danger", {
          type: "button",
          "aria-label": `${m.senderName || ""}의 메시지 #${m.seq} 삭제`,
          dataset: { testid: "admin-message-delete" },
          onclick: () => deleteMessageDialog(m).then((ok) => {
            if (!ok) return;
            Object.assign(m, { deleted: true, content: "" });
            paint();
          }),
        }, "삭제")),
      );
    }
  };
  paint();
  return li;
}
