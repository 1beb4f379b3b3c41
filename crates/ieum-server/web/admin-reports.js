// The report queue: open reports oldest first (or the resolved ones), each
// with the reported message or user. Acting on one (delete the message,
// suspend its author, both) resolves it as "actioned"; "기각" dismisses it.
import * as api from "./api.js";
import { h, clear, when, toast, showError } from "./ui.js";
import { previewText } from "./rooms.js";
import {
  enc, pageSize, choice, reasonField, readReason, formDialog, untilOf, untilText, DURATIONS,
  nameEl, moreButton, statusLine, shortId,
} from "./admin-common.js";

const RESOLUTION = { actioned: "조치함", dismissed: "기각함" };
// The page cursor's name: `before` as documented; a server that answers
// 400 invalid_query to it (it took `after` while being built) gets `after`.
let cursorKey = "before";

export async function renderReports(body, ctx) {
  let state = "open";
  let next = null;
  const list = h("ol.admin-list", { dataset: { testid: "report-list" }, "aria-label": "신고 목록" });
  const status = statusLine("report-status");
  const tabs = h("div.segmented", { role: "group", "aria-label": "신고 상태" });
  const more = moreButton("더 보기", "report-more", () => load(false));
  for (const [value, label] of [["open", "처리 대기"], ["resolved", "처리됨"]]) {
    tabs.append(
      h("button", {
        type: "button",
        "aria-pressed": value === state ? "true" : "false",
        dataset: { testid: `report-state-${value}`, value },
        onclick: () => {
          state = value;
          for (const b of tabs.children) b.setAttribute("aria-pressed", b.dataset.value === state ? "true" : "false");
          load(true);
        },
      }, label),
    );
  }
  const reload = () => load(true);
  body.append(h("div.admin-toolbar", null, tabs, h("button", { type: "button", dataset: { testid: "report-reload" }, onclick: reload }, "새로 고침")), status, list, more);

  async function load(fresh) {
    if (fresh) {
      next = null;
      clear(list);
    }
    status.textContent = "불러오는 중…";
    const mine = state;
    try {
      const cursor = fresh ? null : next;
      const url = (key) => `/api/admin/reports${api.query({ state, [key]: cursor, limit: pageSize() })}`;
      const page = await api.get(url(cursorKey)).catch((e) => {
        if (!cursor || cursorKey !== "before" || e.code !== "invalid_query") throw e;
        cursorKey = "after";
        return api.get(url(cursorKey));
      });
      if (!ctx.live() || mine !== state) return;
      for (const r of page.reports) list.append(reportCard(r, reload, ctx));
      next = page.next || null;
      more.hidden = !next;
      status.textContent = list.childElementCount ? "" : state === "open" ? "처리할 신고가 없어요" : "처리한 신고가 없어요";
    } catch (e) {
      if (ctx.live()) status.textContent = `불러오지 못했어요: ${e.message}`;
    }
  }
  await load(true);
}

/** Who the report is about: the message's author, or the user. */
function targetUser(r) {
  if (r.message) return { id: r.message.senderId, name: r.message.senderName || r.message.senderUsername || shortId(r.message.senderId) };
  if (r.user) return { id: r.user.id, name: r.user.displayName || r.user.username };
  return r.targetKind === "user" ? { id: r.targetId, name: shortId(r.targetId) } : null;
}

function messageBlock(r, ctx) {
  const m = r.message;
  if (!m) return h("p.muted", null, `메시지를 찾을 수 없어요 (${shortId(r.targetId)})`);
  const roomId = m.roomId || r.roomId;
  return h(
    "div.report-target",
    null,
    h(
      "p.report-meta",
      null,
      h("strong", null, m.senderName || m.senderUsername || ""),
      " · ",
      h("time", { datetime: m.createdAt }, when(m.createdAt)),
      roomId ? " · " : null,
      roomId ? h("a", { href: `#/admin/rooms/${enc(roomId)}`, dataset: { testid: "report-room-link" }, onclick: (e) => (e.preventDefault(), ctx.go(`rooms/${enc(roomId)}`)) }, "대화방 보기") : null,
    ),
    m.deleted
      ? h("p.report-text.deleted", { dataset: { testid: "report-message-deleted" } }, "삭제된 메시지입니다")
      : h("p.report-text", { dir: "auto", dataset: { testid: "report-message-text" } }, m.type === "TEXT" || m.type === "THREAD" ? m.content || "" : previewText(m)),
  );
}

function userBlock(r) {
  const u = r.user;
  if (!u) return h("p.muted", null, `사용자를 찾을 수 없어요 (${shortId(r.targetId)})`);
  return h("div.report-target", null, h("p", { dataset: { testid: "report-user" } }, h("strong", null, u.displayName || u.username), h("span.muted", null, ` @${u.username}`)));
}

function reportCard(r, reload, ctx) {
  const isMessage = r.targetKind === "message";
  const li = h(
    "li.admin-card.report",
    { dataset: { testid: "report", reportId: r.id, targetKind: r.targetKind, targetId: r.targetId } },
    h(
      "p.report-head",
      null,
      h("span.kind-tag", null, isMessage ? "메시지" : "사용자"),
      h("span", null, "신고자 ", h("strong", null, r.reporterName || shortId(r.reporterId))),
      h("time.muted", { datetime: r.createdAt }, when(r.createdAt)),
    ),
    h("p.report-reason", { dataset: { testid: "report-reason" } }, h("span.label", null, "사유 "), r.reason),
    isMessage ? messageBlock(r, ctx) : userBlock(r),
  );
  if (r.state !== "open") {
    li.append(
      h(
        "p.report-resolved.muted",
        { dataset: { testid: "report-resolution" } },
        `${RESOLUTION[r.resolution || r.state] || r.resolution || r.state}`,
        r.resolvedAt ? ` · ${when(r.resolvedAt)}` : "",
        r.resolvedBy ? " · " : "",
        r.resolvedBy ? nameEl(r.resolvedBy) : "",
        r.note ? ` · ${r.note}` : "",
      ),
    );
    return li;
  }
  const who = targetUser(r);
  const canDelete = isMessage && r.message && !r.message.deleted;
  const act = (preset) => actionDialog(r, who, canDelete, preset).then((done) => done && reload());
  const actions = h("div.row.report-actions");
  if (canDelete) actions.append(h("button.danger", { type: "button", dataset: { testid: "report-delete" }, onclick: () => act("delete") }, "메시지 삭제"));
  if (who) actions.append(h("button.danger", { type: "button", dataset: { testid: "report-suspend" }, onclick: () => act("suspend") }, isMessage ? "작성자 정지" : "사용자 정지"));
  actions.append(h("button", { type: "button", dataset: { testid: "report-dismiss" }, onclick: () => dismissDialog(r).then((done) => done && reload()) }, "기각"));
  li.append(actions);
  return li;
}

/**
 * One dialog for the actions on a report: delete the message and/or suspend
 * the person, with one reason; then the report is resolved as "actioned".
 * A step that worked is not repeated when a later one fails and the form is
 * sent again.
 */
function actionDialog(r, who, canDelete, preset) {
  const done = { deleted: false, suspended: false };
  const nodes = [h("p.report-reason", null, h("span.label", null, "신고 사유 "), r.reason)];
  const del = h("input", { type: "checkbox", id: `act-del-${r.id}`, checked: canDelete && preset === "delete", dataset: { testid: "action-delete" } });
  if (canDelete) {
    nodes.push(h("fieldset.choice", null, h("legend", null, "메시지"), h("label.check", { for: del.id }, del, " 메시지를 모두에게서 삭제")));
  }
  let chosen = () => "none";
  if (who) {
    const [set, get] = choice(`${who.name}님 정지`, [{ value: "none", label: "정지 안 함" }, ...DURATIONS], preset === "suspend" ? "24h" : "none", "action-suspend");
    nodes.push(set);
    chosen = get;
  }
  const [fReason, reason] = reasonField("조치 사유 (감사 기록에 남아요)", "action-reason");
  nodes.push(fReason);
  return formDialog("신고 처리", "report-action", nodes, "조치하고 신고 닫기", async () => {
    const length = chosen();
    const why = readReason(reason);
    if (!del.checked && length === "none" && !done.deleted && !done.suspended) {
      throw new Error("할 조치를 고르세요. 조치 없이 닫으려면 '기각'을 누르세요");
    }
    if (del.checked && !done.deleted) {
      await api.del(`/api/admin/messages/${enc(r.message.id)}`, { reason: why });
      done.deleted = true;
      del.disabled = true;
    }
    if (length !== "none" && !done.suspended) {
      const s = await api.put(`/api/admin/users/${enc(who.id)}/suspension`, { until: untilOf(length), reason: why });
      done.suspended = true;
      toast(`${who.name}님을 정지했어요 (${untilText(s.until)})`);
    }
    await api.post(`/api/admin/reports/${enc(r.id)}/resolve`, { resolution: "actioned", note: why });
    toast(done.deleted ? "메시지를 삭제하고 신고를 닫았어요" : "신고를 처리했어요");
  }, { danger: true });
}

function dismissDialog(r) {
  const [fNote, note] = reasonField("메모 (선택)", "dismiss-note");
  note.required = false;
  const nodes = [h("p", null, "조치 없이 이 신고를 닫아요."), fNote];
  return formDialog("신고 기각", "report-dismiss", nodes, "기각하기", async () => {
    const body = { resolution: "dismissed" };
    if (note.value.trim()) body.note = note.value.trim();
    await api.post(`/api/admin/reports/${enc(r.id)}/resolve`, body);
    toast("신고를 기각했어요");
  }).catch(showError);
}
