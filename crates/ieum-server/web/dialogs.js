// Dialogs that bring the user into a room: make a group room, join one (invite
// code, or id and password), open a 1:1 room with someone (user search), and
// pair as a couple (make a code, or enter the partner's).
import * as api from "./api.js";
import { state, emit, rememberUser } from "./state.js";
import { h, field, openDialog, closeDialog, showError, errorText, toast, avatar } from "./ui.js";

const enc = encodeURIComponent;

function errorLine() {
  return h("p.form-error", { role: "alert", dataset: { testid: "dialog-error" } });
}

/** Runs `fn` for a form submit, showing its error in `err` and disabling `btn` meanwhile. */
function guarded(err, btn, fn) {
  return async (e) => {
    e.preventDefault();
    err.textContent = "";
    btn.disabled = true;
    try {
      await fn();
    } catch (x) {
      err.textContent = errorText(x);
    } finally {
      btn.disabled = false;
    }
  };
}

async function entered(room) {
  closeDialog();
  emit("room-joined", { roomId: room.id });
}

// ---------------------------------------------------------------- create

export function createRoom() {
  const [fName, name] = field("방 이름", { required: true, maxlength: "100", dataset: { testid: "room-name-input" } });
  const [fDesc, desc] = field("설명 (선택)", { maxlength: "500" });
  const vis = h("select", { id: "room-visibility", dataset: { testid: "room-visibility" } }, h("option", { value: "public" }, "공개: 누구나 방 ID로 들어올 수 있어요"), h("option", { value: "private" }, "비공개: 초대 코드로만"));
  const [fPw, pw] = field("비밀번호 (선택)", { type: "password", autocomplete: "new-password", maxlength: "128" });
  const [fLimit, limit] = field("최대 인원", { type: "number", min: "2", max: "1000", value: "50" });
  const err = errorLine();
  const btn = h("button.primary", { type: "submit", dataset: { testid: "room-create-submit" } }, "만들기");
  const form = h("form.stack", null, fName, fDesc, h("div.field", null, h("label", { for: "room-visibility" }, "공개 범위"), vis), fPw, fLimit, err, btn);
  form.addEventListener(
    "submit",
    guarded(err, btn, async () => {
      if (!name.value.trim()) throw new Error("방 이름을 입력하세요");
      const body = { name: name.value.trim(), visibility: vis.value };
      if (desc.value.trim()) body.description = desc.value.trim();
      if (pw.value) body.password = pw.value;
      const n = Number(limit.value);
      if (n >= 2) body.memberLimit = n;
      const room = await api.post("/api/rooms", body);
      toast(`'${room.name}' 방을 만들었어요`);
      await entered(room);
    }),
  );
  openDialog("새 대화방", form, { testid: "create-room" });
}

// ---------------------------------------------------------------- join

export function joinRoom() {
  const [fCode, code] = field("초대 코드", { autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: "64", dataset: { testid: "join-code" } });
  const [fId, id] = field("또는 방 ID", { autocomplete: "off", spellcheck: "false", maxlength: "128", dataset: { testid: "join-room-id" } });
  const [fPw, pw] = field("비밀번호 (있다면)", { type: "password", autocomplete: "off", dataset: { testid: "join-password" } });
  const err = errorLine();
  const btn = h("button.primary", { type: "submit", dataset: { testid: "join-submit" } }, "입장하기");
  const form = h("form.stack", null, h("p.muted", null, "받은 초대 코드를 넣거나, 방 ID와 비밀번호로 들어가세요."), fCode, fId, fPw, err, btn);
  form.addEventListener(
    "submit",
    guarded(err, btn, async () => {
      let room;
      if (id.value.trim()) {
        const body = {};
        if (pw.value) body.password = pw.value;
        if (code.value.trim()) body.inviteCode = code.value.trim();
        room = await api.post(`/api/rooms/${enc(id.value.trim())}/join`, body);
      } else if (code.value.trim()) {
        room = await api.post("/api/rooms/join", { inviteCode: code.value.trim() });
      } else {
        throw new Error("초대 코드나 방 ID를 입력하세요");
      }
      toast(`'${room.name}' 방에 들어왔어요`);
      await entered(room);
    }),
  );
  openDialog("대화방 입장", form, { testid: "join-room" });
}

// ---------------------------------------------------------------- direct

/** Opens (or makes) the 1:1 room with `userId`. */
export async function openDirect(userId) {
  try {
    const room = await api.post("/api/rooms/direct", { userId });
    await entered(room);
  } catch (e) {
    showError(e);
  }
}

/** A list of people with actions; used by the 1:1 dialog and the friends view. */
export function personRow(u, ...actions) {
  rememberUser(u);
  return h(
    "li.person",
    { dataset: { testid: "person", userId: u.id } },
    avatar({ name: u.displayName, imageUrl: u.profileImageUrl, key: u.id }, "small"),
    h("span.person-name", null, h("strong", null, u.displayName || u.username), h("span.muted", null, ` @${u.username}`), u.statusMessage ? h("span.status-msg", null, u.statusMessage) : null),
    h("span.person-actions", null, ...actions),
  );
}

export function newDirect() {
  const [fq, q] = field("아이디로 찾기", { type: "search", autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: "32", placeholder: "예: minji", dataset: { testid: "user-search" } });
  const status = h("p.muted", { role: "status" });
  const list = h("ul.people", { dataset: { testid: "user-results" } });
  let n = 0;
  const search = async () => {
    const v = q.value.trim().toLowerCase();
    const mine = ++n;
    list.replaceChildren();
    if (!v) return (status.textContent = "");
    if (!/^[a-z0-9_.-]{1,32}$/.test(v)) return (status.textContent = "아이디는 영문 소문자, 숫자, _ . - 만 쓸 수 있어요");
    try {
      const { users } = await api.get(`/api/users${api.query({ q: v, limit: 20 })}`);
      if (mine !== n) return;
      status.textContent = users.length ? "" : "찾은 사람이 없어요. 상대가 '검색 허용'을 켜야 찾을 수 있어요.";
      for (const u of users) {
        list.append(
          personRow(
            u,
            h("button.primary", { type: "button", dataset: { testid: "start-direct" }, onclick: () => openDirect(u.id) }, "대화"),
            h("button", { type: "button", onclick: () => api.post(`/api/friends/${enc(u.id)}`).then((r) => toast(r.state === "friends" ? "친구가 되었어요" : "친구 요청을 보냈어요"), showError) }, "친구 요청"),
          ),
        );
      }
    } catch (e) {
      if (mine === n) status.textContent = errorText(e);
    }
  };
  let timer;
  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
  const form = h("form.stack", { onsubmit: (e) => (e.preventDefault(), search()) }, fq, status, list);
  openDialog("1:1 대화", form, { testid: "new-direct" });
}

// ---------------------------------------------------------------- couple

export async function couple() {
  if (state.couple) {
    closeDialog();
    emit("room-joined", { roomId: state.couple.coupleId });
    return;
  }
  const err = errorLine();
  const codeOut = h("p.couple-code", { dataset: { testid: "couple-code" }, "aria-live": "polite" });
  const wait = h("p.muted", { role: "status" });
  let polling = null;
  const makeBtn = h("button.primary", { type: "button", dataset: { testid: "couple-create" } }, "초대 코드 만들기");
  makeBtn.addEventListener("click", async () => {
    err.textContent = "";
    makeBtn.disabled = true;
    try {
      const r = await api.post("/api/couples/invite");
      codeOut.textContent = r.code;
      wait.textContent = "상대가 이 코드를 입력하면 연결돼요 (24시간 동안, 한 번만 쓸 수 있어요). 기다리는 중…";
      // Nothing tells the inviter that the partner joined: ask now and then.
      clearInterval(polling);
      polling = setInterval(async () => {
        const { rooms } = await api.get("/api/rooms").catch(() => ({ rooms: [] }));
        if (!rooms.some((r) => r.room.kind !== "group" && !r.room.id.startsWith("dm:"))) return;
        const c = await api.get("/chat/room").catch(() => null);
        if (c && c.coupleId) {
          clearInterval(polling);
          state.couple = c;
          toast("커플로 연결되었어요 ♥");
          closeDialog();
          emit("room-joined", { roomId: c.coupleId });
        }
      }, 1500);
    } catch (e) {
      err.textContent = errorText(e);
    } finally {
      makeBtn.disabled = false;
    }
  });
  const [fCode, code] = field("상대에게 받은 코드", { autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: "32", dataset: { testid: "couple-code-input" } });
  const joinBtn = h("button.primary", { type: "submit", dataset: { testid: "couple-join" } }, "연결하기");
  const joinForm = h("form.stack", null, fCode, joinBtn);
  joinForm.addEventListener(
    "submit",
    guarded(err, joinBtn, async () => {
      if (!code.value.trim()) throw new Error("코드를 입력하세요");
      const r = await api.post("/api/couples/join", { code: code.value.trim().toUpperCase() });
      state.couple = { coupleId: r.coupleId, partner: { id: r.partnerId } };
      toast("커플로 연결되었어요 ♥");
      await entered({ id: r.coupleId });
    }),
  );
  const body = h(
    "div.stack",
    null,
    h("p.muted", null, "둘만의 대화방을 만들어요. 한 사람이 코드를 만들고, 다른 사람이 그 코드를 입력하세요."),
    h("section.couple-half", { "aria-label": "코드 만들기" }, h("h3", null, "내가 초대하기"), makeBtn, codeOut, wait),
    h("section.couple-half", { "aria-label": "코드 입력" }, h("h3", null, "초대 받기"), joinForm),
    err,
  );
  openDialog("♥ 커플 연결", body, { testid: "couple", onClose: () => clearInterval(polling) });
}
