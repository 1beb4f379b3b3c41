// One's own sends: shown at once as pending, kept in an outbox until the
// server's RECEIPT (or the message's echo) confirms them, and sent again after
// a reconnect (the client message id makes a resend harmless). Uploads get a
// placeholder with a progress bar that becomes their message.
import * as stomp from "./stomp.js";
import { on } from "./state.js";
import { h, clear, showError } from "./ui.js";
import { fillMessage, paintStatus, pendingMessage, fit } from "./message.js";
import { current, addPending, scrollToBottom } from "./chat.js";

/** clientMsgId -> { roomId, body, msg } : sends not yet acknowledged */
const outbox = new Map();

/** Pending sends of a room (to show when it opens). */
export const pendingOf = (roomId) => [...outbox.values()].filter((o) => o.roomId === roomId);

/** The server has the message (its echo came): nothing to resend. */
export const settled = (clientMsgId) => outbox.delete(clientMsgId);

export function resetOutbox() {
  outbox.clear();
}

function newClientId() {
  return `w-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Sends a message: shown at once as pending, confirmed by its RECEIPT and echo. */
export function send(body, { clientMsgId, roomId = current()?.roomId, local } = {}) {
  if (!roomId) return;
  const cur = current();
  const id = clientMsgId || newClientId();
  const full = { type: "TEXT", ...body, clientMsgId: id };
  const msg = pendingMessage(full, local);
  const o = outbox.get(id) || { roomId, body: full, msg };
  o.body = full;
  outbox.set(id, o);
  if (cur && cur.roomId === roomId) {
    const li = cur.pending.get(id) || addPending(msg);
    fillMessage(li, msg, cur);
    scrollToBottom();
  }
  transmit(o);
  return id;
}

function transmit(o) {
  if (!stomp.connected()) return; // retried on reconnect
  stomp.sendMessage(o.roomId, o.body).then(
    (receipt) => {
      const seq = Number(receipt.seq);
      outbox.delete(o.body.clientMsgId);
      const t = current();
      const li = t && t.roomId === o.roomId ? t.pending.get(o.body.clientMsgId) : null;
      if (li && !Number.isNaN(seq)) {
        o.msg.seq = seq;
        o.msg.id = receipt["message-id"];
        paintStatus(li, o.msg, t);
      }
    },
    (e) => {
      if (e.code === "disconnected") return; // stays in the outbox
      outbox.delete(o.body.clientMsgId);
      o.msg.failed = true;
      const t = current();
      const li = t?.pending.get(o.body.clientMsgId);
      if (li) {
        paintStatus(li, o.msg, t);
        li.querySelector(".msg-side")?.append(
          h("button.text-btn.retry", { type: "button", dataset: { testid: "msg-retry" }, onclick: () => retry(o) }, "다시 보내기"),
        );
      }
      showError(e);
    },
  );
}

function retry(o) {
  const cur = current();
  o.msg.failed = false;
  const li = cur?.pending.get(o.body.clientMsgId);
  li?.querySelector(".retry")?.remove();
  if (li) paintStatus(li, o.msg, cur);
  outbox.set(o.body.clientMsgId, o);
  transmit(o);
}

/** A placeholder for an upload; becomes the message once it is sent. */
export function addUpload(file, previewUrl, dims) {
  const cur = current();
  const id = newClientId();
  const msg = pendingMessage({ type: previewUrl ? "IMAGE" : "FILE", content: "", clientMsgId: id }, { uploading: true });
  const li = addPending(msg);
  const bubble = li.querySelector(".bubble");
  clear(bubble);
  if (previewUrl) {
    const [w, hgt] = fit(dims?.[0], dims?.[1]);
    bubble.append(h("img.msg-image.preview", { src: previewUrl, width: w, height: hgt, alt: `올리는 중: ${file.name}`, dataset: { testid: "upload-preview" } }));
  } else {
    bubble.append(h("p.text", null, `📎 ${file.name}`));
  }
  const bar = h("progress", { max: "100", value: "0", dataset: { testid: "upload-progress" }, "aria-label": `${file.name} 올리는 중` });
  const label = h("p.upload-label", { "aria-hidden": "true" }, `${file.name} · 0%`);
  bubble.append(bar, label);
  scrollToBottom();
  return {
    clientMsgId: id,
    progress: (f) => {
      bar.value = Math.round(f * 100);
      label.textContent = `${file.name} · ${bar.value}%`;
    },
    fail: (e) => {
      msg.failed = true;
      msg.uploading = false;
      paintStatus(li, msg, cur);
      bar.remove();
      label.remove();
      bubble.append(h("p.text.error", null, `올리지 못했어요: ${e.message}`));
      setTimeout(() => (current()?.pending.delete(id), li.remove()), 8000);
    },
  };
}

on("connected", () => {
  for (const o of outbox.values()) transmit(o);
});
