// The audit log (admins only): newest first, filtered by action (a name, or
// a prefix ending in ".") and target id, with "older" paging (`next` goes
// back as `before`).
import * as api from "./api.js";
import { h, clear, field, when } from "./ui.js";
import { pageSize, nameEl, moreButton, statusLine } from "./admin-common.js";

const ACTIONS = {
  "user.suspend": "계정 정지",
  "user.lift": "정지 해제",
  "message.delete": "메시지 삭제",
  "report.actioned": "신고 조치",
  "report.dismissed": "신고 기각",
  "room.read": "대화방 열람",
  "room.close": "방 닫기",
  "security.login_throttled": "로그인 시도 제한",
  "role.admin": "관리자 지정",
  "role.moderator": "운영자 지정",
  "role.member": "서버 역할 해제",
  "room.kick": "방에서 내보냄",
  "room.ban": "방에서 차단",
  "room.unban": "방 차단 해제",
  "room.mute": "방에서 말 못 하게 함",
  "room.unmute": "방 말하기 허용",
  "security.suspended_login": "정지된 계정의 로그인",
  "security.refresh_reuse": "재사용된 로그인 토큰",
};
const PREFIXES = ["user.", "message.", "report.", "role.", "room.", "security."];

export async function renderAudit(body, ctx) {
  const [fAction, action] = field("동작 (끝이 '.'이면 앞부분 일치)", { list: "audit-actions", autocomplete: "off", spellcheck: "false", maxlength: "64", placeholder: "예: user.", dataset: { testid: "audit-action" } });
  const [fTarget, target] = field("대상 ID", { autocomplete: "off", spellcheck: "false", maxlength: "200", dataset: { testid: "audit-target" } });
  const options = h("datalist", { id: "audit-actions" }, [...PREFIXES, ...Object.keys(ACTIONS)].map((a) => h("option", { value: a }, ACTIONS[a] || "")));
  const reset = h("button", { type: "button", dataset: { testid: "audit-reset" } }, "초기화");
  const form = h(
    "form.admin-filters",
    { role: "search", "aria-label": "감사 기록 거르기" },
    fAction,
    options,
    fTarget,
    h("div.row", null, h("button.primary", { type: "submit", dataset: { testid: "audit-apply" } }, "적용"), reset),
  );
  const list = h("ol.admin-list", { dataset: { testid: "audit-list" }, "aria-label": "감사 기록 (최신순)" });
  const status = statusLine("audit-status");
  const more = moreButton("이전 기록 더 보기", "audit-more", () => load(false));
  let filter = {};
  let next = null;
  let n = 0;
  const load = async (fresh) => {
    const mine = fresh ? ++n : n;
    status.textContent = "불러오는 중…";
    try {
      const page = await api.get(`/api/admin/audit${api.query({ ...filter, before: fresh ? null : next, limit: pageSize() })}`);
      if (!ctx.live() || mine !== n) return;
      if (fresh) clear(list);
      for (const e of page.entries) list.append(entryRow(e, (id) => {
        target.value = id;
        form.requestSubmit();
      }));
      next = page.next || null;
      more.hidden = !next;
      status.textContent = list.childElementCount ? `${list.childElementCount}건${next ? " (더 있음)" : ""}` : "기록이 없어요";
    } catch (e) {
      if (ctx.live() && mine === n) status.textContent = `불러오지 못했어요: ${e.message}`;
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filter = { action: action.value.trim(), target: target.value.trim() };
    load(true);
  });
  reset.addEventListener("click", () => {
    action.value = "";
    target.value = "";
    filter = {};
    load(true);
  });
  body.append(form, status, list, more);
  await load(true);
}

function entryRow(e, byTarget) {
  return h(
    "li.admin-card.audit-entry",
    { dataset: { testid: "audit-entry", action: e.action, targetId: e.targetId || "" } },
    h(
      "p.audit-head",
      null,
      h("code.action-tag", { dataset: { testid: "audit-entry-action" } }, e.action),
      ACTIONS[e.action] ? h("span", null, ACTIONS[e.action]) : null,
      h("time.muted", { datetime: e.at }, new Date(e.at).toLocaleString("ko-KR")),
    ),
    h(
      "p.small",
      null,
      h("span.label", null, "실행 "),
      nameEl(e.actorId),
      h("span.label", null, " · 대상 "),
      `${e.targetKind || ""} `,
      e.targetId
        ? h("button.text-btn.inline", { type: "button", title: "이 대상의 기록만 보기", "aria-label": `${e.targetId}: 이 대상의 기록만 보기`, onclick: () => byTarget(e.targetId) }, h("code", null, e.targetId))
        : "—",
    ),
    e.reason ? h("p.small", { dataset: { testid: "audit-entry-reason" } }, h("span.label", null, "사유 "), e.reason) : null,
    e.requestId ? h("p.muted.small", null, "요청 ID ", h("code", null, e.requestId)) : null,
  );
}
