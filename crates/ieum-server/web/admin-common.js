// What the admin console's pages share: suspension lengths, the dialogs that
// ask for a reason (suspend, lift, delete a message), names for user ids, and
// the "more" button of paged lists.
import * as api from "./api.js";
import { user } from "./state.js";
import { h, field, openDialog, closeDialog, errorText, when, toast } from "./ui.js";

export const enc = encodeURIComponent;

/** Page size of the console's lists (a test may make it small to exercise paging). */
export const pageSize = () => Number(localStorage.getItem("ieum.adminPageSize")) || 50;

export const ROLE_LABEL = { admin: "관리자", moderator: "운영자", member: "회원" };

export const DURATIONS = [
  { value: "1h", label: "1시간", secs: 3600 },
  { value: "24h", label: "24시간", secs: 86400 },
  { value: "7d", label: "7일", secs: 7 * 86400 },
  { value: "lifted", label: "해제할 때까지", secs: null },
];

/** The `until` of a suspension of that length from now (null: until lifted). */
export function untilOf(value) {
  const d = DURATIONS.find((x) => x.value === value);
  return d && d.secs ? new Date(Date.now() + d.secs * 1000).toISOString() : null;
}

let uid = 0;

/** A group of radio buttons; answers [fieldset, () => the chosen value]. */
export function choice(legend, options, checked, testid) {
  const name = `choice-${++uid}`;
  const set = h("fieldset.choice", { dataset: { testid } }, h("legend", null, legend));
  for (const o of options) {
    const id = `${name}-${o.value}`;
    set.append(
      h(
        "label.check",
        { for: id },
        h("input", { type: "radio", id, name, value: o.value, checked: o.value === checked, dataset: { testid: `${testid}-${o.value}` } }),
        ` ${o.label}`,
      ),
    );
  }
  return [set, () => set.querySelector("input:checked")?.value || null];
}

/** A required reason of 1 to 500 characters. */
export function reasonField(label = "사유", testid = "admin-reason", value = "") {
  return field(label, { tag: "textarea", rows: "3", maxlength: "500", required: true, value, dataset: { testid } });
}

export function readReason(input) {
  const v = input.value.trim();
  if (!v) {
    input.focus();
    throw new Error("사유를 적어 주세요");
  }
  return v;
}

/** "해제할 때까지" or "12. 3. 오후 6:36까지". */
export function untilText(until) {
  return until ? `${when(until)}까지` : "해제할 때까지";
}

/**
 * A form in the dialog: `nodes`, an error line and two buttons. `fn` runs on
 * submit (its error is shown, the form stays); resolves its result once it
 * succeeds, or null if the dialog is closed.
 */
export function formDialog(title, testid, nodes, submitLabel, fn, { danger = false } = {}) {
  return new Promise((resolve) => {
    let result = null;
    const err = h("p.form-error", { role: "alert", dataset: { testid: "dialog-error" } });
    const btn = h(`button.${danger ? "danger" : "primary"}`, { type: "submit", dataset: { testid: `${testid}-submit` } }, submitLabel);
    const form = h("form.stack", { novalidate: true }, ...nodes, err, h("div.row.end", null, h("button", { type: "button", onclick: () => closeDialog() }, "취소"), btn));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.textContent = "";
      btn.disabled = true;
      try {
        result = (await fn()) ?? true;
        closeDialog();
      } catch (x) {
        err.textContent = errorText(x);
      } finally {
        btn.disabled = false;
      }
    });
    openDialog(title, form, { testid, onClose: () => resolve(result) });
  });
}

/** Suspends `target` ({ id, name }); resolves the suspension, or null. */
export function suspendDialog(target) {
  const [length, chosen] = choice("기간", DURATIONS, "24h", "suspend-length");
  const [fReason, reason] = reasonField("사유 (당사자와 감사 기록에 남아요)", "suspend-reason");
  const nodes = [h("p", null, `${target.name}님의 계정을 정지해요. 모든 접속이 바로 끊기고, 기간 동안 로그인할 수 없어요.`), length, fReason];
  return formDialog("계정 정지", "suspend", nodes, "정지하기", async () => {
    const s = await api.put(`/api/admin/users/${enc(target.id)}/suspension`, { until: untilOf(chosen()), reason: readReason(reason) });
    toast(`${target.name}님을 정지했어요 (${untilText(s.until)})`);
    return s;
  }, { danger: true });
}

/** Lifts `target`'s suspension; resolves true, or null. */
export function liftDialog(target) {
  const [fReason, reason] = reasonField("사유", "lift-reason");
  return formDialog("정지 해제", "lift", [h("p", null, `${target.name}님의 정지를 풀어요.`), fReason], "정지 해제", async () => {
    await api.del(`/api/admin/users/${enc(target.id)}/suspension`, { reason: readReason(reason) });
    toast(`${target.name}님의 정지를 풀었어요`);
  });
}

/** Deletes a message anywhere (staff); resolves true, or null. */
export function deleteMessageDialog(message) {
  const [fReason, reason] = reasonField("사유", "delete-reason");
  const quote = h("blockquote.admin-quote", null, h("strong", null, message.senderName || ""), h("span", { dir: "auto" }, message.content || "첨부"));
  const nodes = [h("p", null, "이 메시지를 모두에게서 지워요. 방에는 운영진이 지웠다는 알림이 남아요."), quote, fReason];
  return formDialog("메시지 삭제", "delete-message", nodes, "삭제하기", async () => {
    await api.del(`/api/admin/messages/${enc(message.id)}`, { reason: readReason(reason) });
    toast("메시지를 삭제했어요");
  }, { danger: true });
}

/** Closes a group room (staff): everyone is removed, nobody joins again; resolves true, or null. */
export function closeRoomDialog(room) {
  const [fReason, reason] = reasonField("사유", "close-reason");
  const nodes = [
    h("p", null, `'${room.name}' 방을 닫아요. 모든 멤버가 방에서 나가고, 누구도 다시 들어올 수 없어요. 대화 기록은 운영진에게 남아요.`),
    fReason,
  ];
  return formDialog("방 닫기", "close-room", nodes, "방 닫기", async () => {
    await api.post(`/api/admin/rooms/${enc(room.id)}/close`, { reason: readReason(reason) });
    toast("방을 닫았어요");
  }, { danger: true });
}

export const shortId = (id) => String(id || "").slice(0, 8);

/** A user's display name for an id (shown as a short id until it is known). */
export function nameEl(userId) {
  const el = h("span.user-ref", { title: userId || "" }, userId ? shortId(userId) : "시스템");
  if (userId) {
    user(userId).then((u) => {
      if (u && u.displayName) el.textContent = `${u.displayName} (@${u.username})`;
    });
  }
  return el;
}

/** A "more" button under a paged list: hidden when there is no next page. */
export function moreButton(label, testid, load) {
  const btn = h("button.admin-more", { type: "button", hidden: true, dataset: { testid } }, label);
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      await load();
    } finally {
      btn.disabled = false;
    }
  });
  return btn;
}

/** A status line for lists ("불러오는 중…", errors, "없어요"). */
export function statusLine(testid) {
  return h("p.admin-status", { role: "status", dataset: { testid } });
}
