// Reporting a message or a user to the server's staff (POST /api/reports):
// a small dialog asks what is wrong; the staff see it in the admin console.
import * as api from "./api.js";
import { h, field, openDialog, closeDialog, errorText, toast } from "./ui.js";

const KINDS = ["스팸·광고", "욕설·괴롭힘", "음란·불법 콘텐츠", "사칭·사기", "기타"];

/**
 * Opens the report dialog. target: { messageId } or { userId }; `what` says
 * what is reported (a line of the message, or the person's name).
 */
function openReport(target, title, what) {
  const kind = h("select", { id: "report-kind", dataset: { testid: "report-kind" } }, KINDS.map((k) => h("option", { value: k }, k)));
  const [fDetail, detail] = field("자세한 내용 (선택)", { tag: "textarea", rows: "3", maxlength: "400", dataset: { testid: "report-detail" } });
  const err = h("p.form-error", { role: "alert", dataset: { testid: "dialog-error" } });
  const btn = h("button.primary", { type: "submit", dataset: { testid: "report-submit" } }, "신고하기");
  const form = h(
    "form.stack",
    null,
    h("p.report-what", { dataset: { testid: "report-target" } }, what),
    h("div.field", null, h("label", { for: "report-kind" }, "신고 사유"), kind),
    fDetail,
    h("p.hint", null, "운영진이 확인한 뒤 조치해요. 신고한 사람은 상대에게 알려지지 않아요."),
    err,
    h("div.row.end", null, h("button", { type: "button", onclick: () => closeDialog() }, "취소"), btn),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    btn.disabled = true;
    const more = detail.value.trim();
    try {
      await api.post("/api/reports", { ...target, reason: more ? `${kind.value}: ${more}` : kind.value });
      closeDialog();
      toast("신고했어요. 운영진이 확인할게요");
    } catch (x) {
      err.textContent = x.code === "already_reported" ? "이미 신고했어요. 운영진이 확인 중이에요" : errorText(x);
    } finally {
      btn.disabled = false;
    }
  });
  openDialog(title, form, { testid: "report" });
}

export function reportMessage(message) {
  const text = message.content ? message.content.slice(0, 120) : "첨부 파일";
  openReport({ messageId: message.id }, "메시지 신고", `${message.senderName || message.senderUsername || ""}: ${text}`);
}

export function reportUser(userId, name) {
  openReport({ userId }, "사용자 신고", `${name || "이 사용자"}님을 신고해요`);
}
