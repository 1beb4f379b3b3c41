// DOM helpers shared by every view. User content only ever goes in as text
// (textContent / text nodes): no innerHTML anywhere in the client.

export const $ = (id) => document.getElementById(id);

/**
 * h("button.primary", { type: "button", dataset: { testid: "x" }, onclick }, "text", child)
 * Strings become text nodes; attributes are set with setAttribute (never HTML).
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else if (k === "hidden") el.hidden = !!v;
      else if (k === "checked" || k === "value" || k === "disabled") el[k] = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A labelled form field: label + input, returns [wrapper, input]. */
export function field(label, attrs) {
  const id = attrs.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  const input = h(attrs.tag || "input", { ...attrs, tag: undefined, id });
  return [h("div.field", null, h("label", { for: id }, label), input), input];
}

// ---- toasts and screen-reader announcements

export function toast(text, kind = "info") {
  const el = h(`div.toast.${kind}`, { dataset: { testid: "toast" } }, text);
  const box = $("toasts");
  box.append(el);
  while (box.childElementCount > 3) box.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 3500);
}

export function showError(e) {
  console.warn(e);
  toast(errorText(e), "error");
}

const CODES = {
  wrong_password: "비밀번호가 맞지 않아요",
  private_room: "초대 코드가 있어야 들어갈 수 있는 방이에요",
  banned: "이 방에서 차단되었어요",
  room_full: "방이 가득 찼어요",
  invalid_invite_code: "초대 코드를 찾을 수 없어요",
  blocked: "차단된 사용자예요",
  user_not_found: "사용자를 찾을 수 없어요",
  not_paired: "커플로 연결되어 있지 않아요",
  not_author: "내가 쓴 메시지만 고칠 수 있어요",
  edit_window_passed: "수정할 수 있는 시간이 지났어요",
  too_large: "파일이 너무 커요",
  unsupported_type: "보낼 수 없는 파일 형식이에요",
  quota_exceeded: "저장 공간을 모두 썼어요",
  upload_rate_limited: "업로드가 너무 잦아요. 잠시 후 다시 시도하세요",
  send_rate_limited: "메시지를 너무 빨리 보내고 있어요",
  couple_code_rate_limited: "코드를 너무 많이 시도했어요. 잠시 후 다시 시도하세요",
  login_throttled: "로그인 시도가 너무 많아요. 잠시 후 다시 시도하세요",
  couple_room: "커플 방은 커플 연결을 끊어야 나갈 수 있어요",
  not_staff: "운영진만 할 수 있어요",
  already_reported: "이미 신고했어요",
  not_suspended: "정지된 사용자가 아니에요",
  invalid_reason: "사유를 1~500자로 적어 주세요",
  invalid_until: "정지 기간이 올바르지 않아요",
};

export function errorText(e) {
  if (!e) return "오류가 발생했어요";
  if (e.code === "suspended") return suspendedText(e.message);
  if (e.code && CODES[e.code]) return CODES[e.code];
  if (e.status === 409 && /couple|paired/i.test(e.message)) return "이미 커플로 연결되어 있어요";
  if (e.status === 404 && /code/i.test(e.message)) return "코드를 찾을 수 없거나 만료되었어요";
  return e.message || String(e);
}

/** "this account is suspended until <RFC 3339>" (or "until lifted") in Korean. */
function suspendedText(message) {
  const m = /until (\d{4}-\d\d-\d\dT[^\s]+)/.exec(message || "");
  const until = m && !Number.isNaN(Date.parse(m[1])) ? `${when(m[1])}까지` : "해제될 때까지";
  return `계정이 이용 정지되었어요 (${until})`;
}

/** Tells screen readers about something that happened (a new message). */
export function announce(text) {
  const el = h("p", null, text);
  const box = $("announcer");
  box.append(el);
  while (box.childElementCount > 5) box.firstElementChild.remove();
}

// ---- the one modal dialog

let dialogCleanup = null;

/** Opens the dialog with `title` and `body` (a node); returns a close function. */
export function openDialog(title, body, { testid, onClose } = {}) {
  const dlg = $("dialog");
  if (dlg.open) closeDialog();
  $("dialog-title").textContent = title;
  clear($("dialog-body")).append(body);
  dlg.dataset.kind = testid || "";
  dialogCleanup = onClose || null;
  dlg.showModal();
  const first = body.querySelector("input, textarea, select, button:not([data-skipfocus])");
  if (first) first.focus();
  return closeDialog;
}

export function closeDialog() {
  const dlg = $("dialog");
  if (dlg.open) dlg.close();
}

export function initDialog() {
  const dlg = $("dialog");
  $("dialog-close").addEventListener("click", closeDialog);
  dlg.addEventListener("close", () => {
    const fn = dialogCleanup;
    dialogCleanup = null;
    clear($("dialog-body"));
    if (fn) fn();
  });
  // A click on the backdrop closes.
  dlg.addEventListener("click", (e) => {
    if (e.target === dlg) closeDialog();
  });
}

/** A yes/no question in the dialog; resolves true on yes. */
export function confirmDialog(title, text, yes = "확인") {
  return new Promise((resolve) => {
    let answer = false;
    const body = h(
      "div.stack",
      null,
      h("p", null, text),
      h(
        "div.row.end",
        null,
        h("button", { type: "button", onclick: () => closeDialog(), dataset: { testid: "confirm-cancel" } }, "취소"),
        h(
          "button.danger",
          { type: "button", dataset: { testid: "confirm-ok" }, onclick: () => ((answer = true), closeDialog()) },
          yes,
        ),
      ),
    );
    openDialog(title, body, { testid: "confirm", onClose: () => resolve(answer) });
  });
}

// ---- people

const PALETTE = ["#3b5bdb", "#c2255c", "#2b8a3e", "#a61e4d", "#5f3dc4", "#0b7285", "#d9480f", "#1864ab"];

function colorOf(key) {
  let n = 0;
  for (const c of String(key)) n = (n * 31 + c.codePointAt(0)) >>> 0;
  return PALETTE[n % PALETTE.length];
}

/** Fills an avatar element: the profile image, else the initial on a color. */
export function paintAvatar(el, { name, imageUrl, key }) {
  clear(el);
  el.classList.add("avatar");
  if (imageUrl && isSafeUrl(imageUrl)) {
    el.style.backgroundColor = "";
    el.append(h("img", { src: imageUrl, alt: "", loading: "lazy", decoding: "async" }));
  } else {
    el.style.backgroundColor = colorOf(key || name || "?");
    el.append(document.createTextNode((name || "?").trim().charAt(0).toUpperCase() || "?"));
  }
  return el;
}

export function avatar(person, size = "") {
  return paintAvatar(h(`span.avatar${size ? "." + size : ""}`, { "aria-hidden": "true" }), person);
}

/** Only http(s) URLs and paths of this server: never `javascript:` and the like. */
export function isSafeUrl(url) {
  if (typeof url !== "string") return false;
  if (url.startsWith("/") && !url.startsWith("//")) return true;
  try {
    const u = new URL(url, location.href);
    return u.protocol === "https:" || u.protocol === "http:";
  } catch {
    return false;
  }
}

// ---- time

const timeFmt = new Intl.DateTimeFormat("ko-KR", { hour: "numeric", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat("ko-KR", { year: "numeric", month: "long", day: "numeric", weekday: "short" });
const shortDayFmt = new Intl.DateTimeFormat("ko-KR", { month: "numeric", day: "numeric" });

export const timeOf = (iso) => (iso ? timeFmt.format(new Date(iso)) : "");
export const dayOf = (iso) => (iso ? dayFmt.format(new Date(iso)) : "");

/** "오후 3:04" today, else "3. 14." */
export function shortWhen(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  return d.toDateString() === now.toDateString() ? timeFmt.format(d) : shortDayFmt.format(d);
}

/** "오후 3:04" today, else "3. 14. 오후 3:04" */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : `${shortDayFmt.format(d)} ${timeFmt.format(d)}`;
}

export function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return "방금 전";
  if (s < 3600) return `${Math.floor(s / 60)}분 전`;
  if (s < 86400) return `${Math.floor(s / 3600)}시간 전`;
  return `${Math.floor(s / 86400)}일 전`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Text split into nodes with every (case-insensitive) match of `q` in a <mark>. */
export function highlight(text, q) {
  const frag = document.createDocumentFragment();
  if (!q) {
    frag.append(text);
    return frag;
  }
  const lower = text.toLowerCase();
  const lq = q.toLowerCase();
  // Lower-casing can change lengths (rare scripts): then match exactly.
  const same = lower.length === text.length && lq.length === q.length;
  const hay = same ? lower : text;
  const needle = same ? lq : q;
  let i = 0;
  for (;;) {
    const j = hay.indexOf(needle, i);
    if (j < 0 || !needle) break;
    if (j > i) frag.append(text.slice(i, j));
    frag.append(h("mark", null, text.slice(j, j + needle.length)));
    i = j + needle.length;
  }
  frag.append(text.slice(i));
  return frag;
}

/** Appends `text` to `el` with http(s) links made clickable (as text nodes and <a>). */
export function linkify(el, text) {
  const re = /\bhttps?:\/\/[^\s<>"']+/g;
  let i = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > i) el.append(text.slice(i, m.index));
    el.append(h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
    i = m.index + m[0].length;
  }
  el.append(text.slice(i));
  return el;
}
