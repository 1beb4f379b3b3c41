// Message search (GET /api/search/messages): substring, Korean included; the
// matches are shown in <mark> elements built from text nodes.
import * as api from "./api.js";
import * as chat from "./chat.js";
import { openPanel, closePanel } from "./panels.js";
import { state, emit, roomTitle } from "./state.js";
import { h, clear, highlight, when, showError } from "./ui.js";
import { previewText } from "./rooms.js";

let seq = 0;

export function openSearch() {
  const input = h("input", { id: "search-input", type: "search", maxlength: "100", autocomplete: "off", placeholder: "검색어 (예: 날씨)", dataset: { testid: "search-input" } });
  const onlyHere = h("input", { id: "search-here", type: "checkbox", dataset: { testid: "search-here" } });
  const status = h("p.muted", { role: "status", dataset: { testid: "search-status" } });
  const results = h("ol.search-results", { dataset: { testid: "search-results" }, "aria-label": "검색 결과" });
  const more = h("button.text-btn", { type: "button", hidden: true, dataset: { testid: "search-more" } }, "더 보기");
  let cursor = null;
  let query = "";

  const run = async (append) => {
    const q = input.value.trim();
    if (!q) {
      clear(results);
      status.textContent = "";
      more.hidden = true;
      return;
    }
    const mine = ++seq;
    if (!append) {
      cursor = null;
      query = q;
    }
    status.textContent = "검색 중…";
    try {
      const params = { q: query, limit: 30, cursor: append ? cursor : undefined };
      if (onlyHere.checked && state.openRoomId) params.roomId = state.openRoomId;
      const r = await api.get(`/api/search/messages${api.query(params)}`);
      if (mine !== seq) return;
      if (!append) clear(results);
      for (const m of r.messages) results.append(resultItem(m, query));
      cursor = r.nextCursor;
      more.hidden = !cursor;
      const n = results.childElementCount;
      status.textContent = n ? `${n}개 찾음` : "찾은 메시지가 없어요";
    } catch (e) {
      if (mine === seq) status.textContent = "";
      showError(e);
    }
  };

  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => run(false), 250);
  });
  onlyHere.addEventListener("change", () => run(false));
  more.addEventListener("click", () => run(true));
  const form = h(
    "form.stack",
    { role: "search", onsubmit: (e) => (e.preventDefault(), clearTimeout(timer), run(false)) },
    h("label", { for: "search-input" }, "메시지 검색"),
    h("div.row", null, input, h("button.primary", { type: "submit", dataset: { testid: "search-submit" } }, "검색")),
    state.openRoomId ? h("label.check", { for: "search-here" }, onlyHere, " 이 방에서만") : null,
  );
  openPanel("search", "검색", h("div.stack", null, form, status, results, more));
  input.focus();
}

function resultItem(m, q) {
  const entry = state.rooms.get(m.roomId);
  const text = h("p.result-text", { dataset: { testid: "search-snippet" }, dir: "auto" });
  if (m.type === "TEXT" || m.type === "THREAD" || m.type === "TEMP" || m.content) text.append(highlight(m.content || "", q));
  else text.append(previewText(m));
  return h(
    "li",
    null,
    h(
      "button.search-result",
      {
        type: "button",
        dataset: { testid: "search-result", roomId: m.roomId, seq: String(m.seq) },
        onclick: async () => {
          if (window.matchMedia("(max-width: 760px)").matches) closePanel();
          emit("open-room", { roomId: m.roomId });
          await chat.openRoom(m.roomId);
          chat.jumpTo(m.seq);
        },
      },
      h("span.result-head", null, h("strong", null, m.senderName || ""), ` · ${entry ? roomTitle(entry) : "대화방"} · ${when(m.createdAt)}`),
      text,
    ),
  );
}
