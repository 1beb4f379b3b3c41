// The message input: Enter sends, Shift+Enter is a newline, and Enter while a
// Korean (or any) IME is composing only commits the syllable. Typing notices,
// editing one's own message, and uploads with a progress bar.
import * as api from "./api.js";
import * as stomp from "./stomp.js";
import * as chat from "./chat.js";
import { state } from "./state.js";
import { $, showError } from "./ui.js";

// The server drops more than one typing notice per second and room; a notice
// lasts 5 s on the other side. While the user types, send one every ~1.1 s.
const TYPING_EVERY_MS = 1100;
let composing = false;
let lastTyping = 0;
let typingTimer = null;
let editing = null; // { roomId, messageId, original }

/** Whether this keydown is an Enter that should send (not one that ends an IME composition). */
export function isSendingEnter(e, composingNow) {
  if (e.key !== "Enter" || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return false;
  // Enter that commits a composition: isComposing in modern browsers, keyCode 229
  // where the IME swallowed the key (Safari, older Chrome), or our own flag.
  if (e.isComposing || e.keyCode === 229 || composingNow) return false;
  return true;
}

/** Wires an input (the composer or a thread's) so Enter submits through `submit`. */
export function wireEnter(input, submit) {
  let comp = false;
  input.addEventListener("compositionstart", () => (comp = true));
  input.addEventListener("compositionend", () => (comp = false));
  input.addEventListener("keydown", (e) => {
    if (isSendingEnter(e, comp)) {
      e.preventDefault();
      submit();
    }
  });
}

function autosize() {
  const input = $("composer-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

function submit() {
  const input = $("composer-input");
  const text = input.value.replace(/\s+$/, "");
  const roomId = state.openRoomId;
  if (!roomId || !text.trim()) return;
  if (editing) {
    const { messageId } = editing;
    if (text !== editing.original) {
      api.patch(`/api/rooms/${encodeURIComponent(roomId)}/messages/${encodeURIComponent(messageId)}`, { content: text }).catch(showError);
    }
    stopEditing();
    return;
  }
  chat.send({ type: "TEXT", content: text });
  input.value = "";
  autosize();
  clearTimeout(typingTimer);
  typingTimer = null;
}

function noteTyping() {
  const input = $("composer-input");
  if (!state.openRoomId || !input.value.trim() || editing) return;
  const wait = lastTyping + TYPING_EVERY_MS - Date.now();
  if (wait <= 0) {
    lastTyping = Date.now();
    stomp.typing(state.openRoomId);
  } else if (!typingTimer) {
    typingTimer = setTimeout(() => {
      typingTimer = null;
      noteTyping();
    }, wait);
  }
}

export function startEditing(message) {
  editing = { roomId: state.openRoomId, messageId: message.id, original: message.content };
  const input = $("composer-input");
  input.value = message.content;
  $("edit-banner").hidden = false;
  $("composer").classList.add("editing");
  autosize();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

export function stopEditing() {
  if (!editing) return;
  editing = null;
  $("edit-banner").hidden = true;
  $("composer").classList.remove("editing");
  $("composer-input").value = "";
  autosize();
}

// ---------------------------------------------------------------- uploads

/** Announce, PUT (with progress), complete, then send an IMAGE or FILE message. */
export async function sendFile(file, roomId = state.openRoomId) {
  if (!roomId) return;
  const isImage = /^image\/(png|jpeg|gif|webp)$/.test(file.type);
  const preview = isImage ? URL.createObjectURL(file) : null;
  let dims = null;
  if (preview) {
    // Its size first, so the list does not jump when it shows.
    const probe = new Image();
    probe.src = preview;
    try {
      await probe.decode();
      dims = [probe.naturalWidth, probe.naturalHeight];
    } catch {}
  }
  const ui = chat.addUpload(file, preview, dims);
  try {
    const att = await api.uploadFile(file, { roomId, onProgress: ui.progress });
    const image = (att.contentType || "").startsWith("image/") && att.width;
    chat.send(
      { type: image ? "IMAGE" : "FILE", attachmentId: att.id, content: "" },
      { clientMsgId: ui.clientMsgId, roomId, local: { localPreview: preview, localName: file.name, localDims: dims } },
    );
  } catch (e) {
    ui.fail(e);
    showError(e);
  }
}

export function init() {
  const input = $("composer-input");
  input.addEventListener("compositionstart", () => (composing = true));
  input.addEventListener("compositionend", () => (composing = false));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && editing) {
      e.preventDefault();
      stopEditing();
      return;
    }
    if (isSendingEnter(e, composing)) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", () => {
    autosize();
    noteTyping();
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
    input.focus();
  });
  $("edit-cancel").addEventListener("click", stopEditing);
  $("attach-button").addEventListener("click", () => $("attach-input").click());
  $("attach-input").addEventListener("change", (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    for (const f of files) sendFile(f);
  });
  // Paste or drop images and files into the chat.
  input.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) {
      e.preventDefault();
      for (const f of files) sendFile(f);
    }
  });
  const pane = $("chat");
  pane.addEventListener("dragover", (e) => {
    if (e.dataTransfer?.types?.includes("Files")) {
      e.preventDefault();
      pane.classList.add("dropping");
    }
  });
  pane.addEventListener("dragleave", () => pane.classList.remove("dropping"));
  pane.addEventListener("drop", (e) => {
    pane.classList.remove("dropping");
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) {
      e.preventDefault();
      for (const f of files) sendFile(f);
    }
  });
}

export function onRoomChange() {
  clearTimeout(typingTimer);
  typingTimer = null;
  lastTyping = 0;
  stopEditing();
  $("composer-input").value = "";
  autosize();
}
