// One message as a list item: sender, text (as text nodes only), image or file,
// reactions, thread link, time, and for one's own messages the sent /
// delivered / read mark.
import { state } from "./state.js";
import { h, clear, avatar, timeOf, dayOf, linkify, isSafeUrl, formatBytes } from "./ui.js";

const GROUP_GAP_MS = 5 * 60 * 1000;

/**
 * ctx: { roomId, direct, meId, peerId, readSeqs: Map(userId -> seq), deliveredSeq,
 *        byId: Map(id -> message) }
 */
export function renderMessage(m, ctx) {
  const li = h("li.msg", { dataset: { testid: "message" } });
  fillMessage(li, m, ctx);
  return li;
}

export function fillMessage(li, m, ctx) {
  const mine = m.senderId === ctx.meId;
  const keep = ["pending", "cont", "new-day", "flash", "time-hidden"].filter((c) => li.classList.contains(c));
  li.className = "msg";
  li.classList.add(...keep);
  li.classList.add(m.type === "SYSTEM" ? "system" : mine ? "mine" : "theirs");
  if (m.seq !== undefined && m.seq !== null) li.dataset.seq = String(m.seq);
  if (m.id) li.dataset.id = m.id;
  if (m.clientMsgId) li.dataset.clientId = m.clientMsgId;
  li.dataset.sender = m.senderId || "";
  li.dataset.mine = mine ? "true" : "false";
  li.dataset.day = dayOf(m.createdAt);
  li.dataset.at = m.createdAt || "";
  clear(li);
  if (m.type === "SYSTEM") {
    li.dataset.testid = "system-message";
    li.append(h("p.system-text", null, systemText(m.content)));
    return li;
  }
  li.dataset.testid = "message";
  if (!mine) {
    li.append(avatar({ name: m.senderName || m.senderUsername, imageUrl: m.senderImage, key: m.senderId }));
  }
  const body = h("div.msg-body");
  if (!mine) body.append(h("p.sender", { dataset: { testid: "msg-sender" } }, m.senderName || m.senderUsername || ""));
  if (m.parentId) body.append(replyQuote(m, ctx));
  const row = h("div.msg-row");
  const bubble = h("div.bubble");
  if (m.deleted) {
    bubble.classList.add("deleted");
    bubble.append(h("p.text", { dataset: { testid: "msg-deleted" } }, m.expired ? "사라진 메시지입니다" : "삭제된 메시지입니다"));
  } else {
    if (m.type === "IMAGE" || m.type === "FILE") bubble.append(attachment(m));
    if (m.content) bubble.append(linkify(h("p.text", { dataset: { testid: "msg-text" }, dir: "auto" }), m.content));
    if (m.type === "STICKER" && !m.content) bubble.append(h("p.text", null, "스티커"));
    if (m.expiresAt) bubble.append(h("p.ttl", null, "⏱ 사라지는 메시지"));
    // A picture alone needs no bubble around it.
    if (m.type === "IMAGE" && !m.content && bubble.querySelector("img")) bubble.classList.add("media");
  }
  row.append(bubble);
  const side = h("div.msg-side");
  if (mine) side.append(h("span.status", { dataset: { testid: "msg-status", status: "sending" } }));
  if (m.editedAt && !m.deleted) side.append(h("span.edited", { dataset: { testid: "msg-edited" } }, "수정됨"));
  side.append(h("time", { datetime: m.createdAt || "", title: m.createdAt ? new Date(m.createdAt).toLocaleString("ko-KR") : "" }, timeOf(m.createdAt)));
  row.append(side);
  if (!m.deleted && m.id) {
    row.append(
      h("button.msg-menu-btn", { type: "button", "aria-label": "메시지 메뉴", "aria-haspopup": "menu", dataset: { testid: "msg-menu", action: "menu" } }, "⋯"),
    );
  }
  body.append(row);
  const reactions = h("div.reactions", { dataset: { testid: "reactions" } });
  paintReactions(reactions, m, ctx);
  body.append(reactions);
  if (m.replyCount > 0 && !m.deleted) {
    body.append(
      h("button.thread-link", { type: "button", dataset: { testid: "thread-link", action: "thread" } }, `답글 ${m.replyCount}개 ›`),
    );
  }
  li.append(body);
  if (mine) paintStatus(li, m, ctx);
  return li;
}

// The server writes its notices in English ("X joined"): say them in Korean.
const SYSTEM = [
  [/^A moderator removed a message$/, () => "운영진이 메시지를 삭제했어요"],
  [/^The server's moderators closed this room: (.+)$/s, (r) => `운영진이 이 방을 닫았어요: ${r}`],
  [/^(.+) joined$/s, (x) => `${x}님이 들어왔어요`],
  [/^(.+) left$/s, (x) => `${x}님이 나갔어요`],
  [/^(.+) pinned a message$/s, (x) => `${x}님이 메시지를 고정했어요`],
  [/^(.+) renamed the room to (.+)$/s, (x, y) => `${x}님이 방 이름을 '${y}'(으)로 바꿨어요`],
  [/^(.+) removed (.+)$/s, (x, y) => `${x}님이 ${y}님을 내보냈어요`],
  [/^(.+) banned (.+)$/s, (x, y) => `${x}님이 ${y}님을 차단했어요`],
];

export function systemText(content) {
  for (const [re, say] of SYSTEM) {
    const m = re.exec(content || "");
    if (m) return say(...m.slice(1));
  }
  return content || "";
}

function replyQuote(m, ctx) {
  const parent = ctx.byId.get(m.parentId);
  const text = parent ? `${parent.senderName || ""}: ${parent.deleted ? "삭제된 메시지" : parent.content || "첨부"}` : "스레드 답글";
  return h("button.reply-quote", { type: "button", dataset: { action: "thread", parent: m.parentId, testid: "reply-quote" } }, `↪ ${text}`);
}

function attachment(m) {
  const f = m.file;
  if (!f && m.localPreview) {
    const [w, hgt] = fit(m.localDims?.[0], m.localDims?.[1]);
    return h("img.msg-image.preview", { src: m.localPreview, width: w, height: hgt, alt: `보내는 중: ${m.localName || ""}`, dataset: { testid: "upload-preview" } });
  }
  if (!f && m.localName) return h("p.text", null, `📎 ${m.localName}`);
  if (m.type === "IMAGE") {
    if (f) {
      const [w, hgt] = fit(f.width, f.height);
      if (f.thumbnailUrl || f.url) {
        const img = h("img.msg-image", {
          src: f.thumbnailUrl || f.url,
          alt: `사진 ${f.name || ""}`.trim(),
          width: w,
          height: hgt,
          loading: "lazy",
          decoding: "async",
          dataset: { testid: "msg-image" },
        });
        return isSafeUrl(f.url) ? h("a.image-link", { href: f.url, target: "_blank", rel: "noopener" }, img) : img;
      }
      const box = h("div.image-wait", { dataset: { testid: "image-wait" } }, waitText(f));
      box.style.width = `${w}px`;
      box.style.height = `${hgt}px`;
      return box;
    }
    if (m.imageUrl && isSafeUrl(m.imageUrl) && new URL(m.imageUrl, location.href).origin === location.origin) {
      return h("img.msg-image", { src: m.imageUrl, alt: "사진", loading: "lazy", dataset: { testid: "msg-image" } });
    }
    if (m.imageUrl && isSafeUrl(m.imageUrl)) return h("a", { href: m.imageUrl, target: "_blank", rel: "noopener noreferrer" }, "사진 열기");
    return h("p.text", null, "사진");
  }
  const name = f?.name || "파일";
  const info = f ? `${formatBytes(f.size || 0)}${f.url ? "" : ` · ${waitText(f)}`}` : "";
  const card = h("div.file-card", { dataset: { testid: "msg-file" } }, h("span.file-icon", { "aria-hidden": "true" }, "📄"), h("span.file-meta", null, h("span.file-name", null, name), h("span.file-size", null, info)));
  if (f?.url && isSafeUrl(f.url)) {
    return h("a.file-link", { href: f.url, target: "_blank", rel: "noopener", download: name, "aria-label": `${name} 내려받기` }, card);
  }
  return card;
}

function waitText(f) {
  if (f.state === "infected") return "악성 파일로 차단됨";
  if (f.state === "failed") return "확인할 수 없는 파일";
  if (f.state === "expired") return "보관 기간 만료";
  if (f.state === "deleted") return "삭제됨";
  return "검사 중…";
}

/** Width and height to show an image at: at most 240 x 320. */
export function fit(w, hgt) {
  if (!w || !hgt) return [240, 180];
  const s = Math.min(1, 240 / w, 320 / hgt);
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(hgt * s))];
}

const QUICK = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
export const quickReactions = QUICK;

export function paintReactions(el, m, ctx) {
  clear(el);
  const list = (m.reactions || []).filter((r) => r.count > 0);
  el.hidden = list.length === 0;
  for (const r of list) {
    const mine = (r.userIds || []).includes(ctx.meId);
    el.append(
      h(
        "button.reaction",
        {
          type: "button",
          "aria-pressed": mine ? "true" : "false",
          "aria-label": `${r.emoji} ${r.count}명${mine ? ", 내 반응" : ""}`,
          dataset: { testid: "reaction", action: "react", emoji: r.emoji },
        },
        `${r.emoji} ${r.count}`,
      ),
    );
  }
}

/** The mark on one's own message: sending, sent, delivered, read (1:1) or "unread by N" (groups). */
export function paintStatus(li, m, ctx) {
  const el = li.querySelector(".status");
  if (!el) return;
  let status;
  let text = "";
  let label;
  if (m.failed) {
    status = "failed";
    text = "⚠ 실패";
    label = "보내지 못함";
  } else if (m.seq === undefined || m.seq === null) {
    status = m.uploading ? "uploading" : "sending";
    text = "🕓";
    label = m.uploading ? "올리는 중" : "보내는 중";
  } else if (ctx.direct) {
    const read = (ctx.readSeqs.get(ctx.peerId) || 0) >= m.seq;
    const delivered = read || ctx.deliveredSeq >= m.seq;
    status = read ? "read" : delivered ? "delivered" : "sent";
    text = read ? "✓✓" : delivered ? "✓✓" : "✓";
    label = read ? "읽음" : delivered ? "전달됨" : "전송됨";
  } else {
    let unread = 0;
    for (const [uid, seq] of ctx.readSeqs) if (uid !== m.senderId && seq < m.seq) unread++;
    status = unread === 0 ? "read" : "sent";
    text = unread === 0 ? "" : String(unread);
    label = unread === 0 ? "모두 읽음" : `${unread}명 안 읽음`;
  }
  if (el.dataset.status !== status || el.textContent !== text) {
    el.dataset.status = status;
    el.textContent = text;
    el.setAttribute("aria-label", label);
    el.title = label;
  }
}

/** Groups consecutive messages of one sender and marks the first of each day. */
export function regroup(li) {
  if (!li || !li.classList.contains("msg")) return;
  // The first pending message follows the last one of the list proper.
  const prev = li.previousElementSibling || (li.parentElement?.id === "pending" ? document.getElementById("messages").lastElementChild : null);
  const newDay = !prev || prev.dataset.day !== li.dataset.day;
  li.classList.toggle("new-day", newDay);
  if (newDay) li.dataset.dayLabel = li.dataset.day;
  else delete li.dataset.dayLabel;
  const cont =
    !newDay &&
    prev &&
    !li.classList.contains("system") &&
    !prev.classList.contains("system") &&
    prev.dataset.sender === li.dataset.sender &&
    Math.abs(new Date(li.dataset.at) - new Date(prev.dataset.at)) < GROUP_GAP_MS;
  li.classList.toggle("cont", !!cont);
  // One time per minute and sender: on the last message of the run.
  if (prev) prev.classList.toggle("time-hidden", !!cont && sameMinute(prev.dataset.at, li.dataset.at));
}

function sameMinute(a, b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate() && x.getHours() === y.getHours() && x.getMinutes() === y.getMinutes();
}

/** The body to show for a message `state` knows nothing else about (a pending send). */
export function pendingMessage(body, extra = {}) {
  return {
    ...body,
    senderId: state.me.id,
    senderName: state.me.displayName,
    senderUsername: state.me.username,
    createdAt: new Date().toISOString(),
    ...extra,
  };
}
