// ieum (이음) web client: the entry module. Signs in, starts the live
// connection, and ties the views together. Plain ES modules, no build step.
import * as api from "./api.js";
import * as stomp from "./stomp.js";
import * as rooms from "./rooms.js";
import * as chat from "./chat.js";
import * as composer from "./composer.js";
import * as actions from "./actions.js";
import * as panels from "./panels.js";
import * as dialogs from "./dialogs.js";
import * as profile from "./profile.js";
import * as admin from "./admin.js";
import { openSearch } from "./search.js";
import { state, emit, on } from "./state.js";
import { $, initDialog, closeDialog, showError, errorText, toast } from "./ui.js";

// ---------------------------------------------------------------- theme

const THEME_KEY = "ieum.theme";
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

function effectiveDark() {
  const chosen = localStorage.getItem(THEME_KEY);
  return chosen ? chosen === "dark" : systemDark.matches;
}

function applyTheme() {
  const chosen = localStorage.getItem(THEME_KEY);
  if (chosen) document.documentElement.dataset.theme = chosen;
  else delete document.documentElement.dataset.theme;
  const dark = effectiveDark();
  const btn = $("theme-toggle");
  btn.setAttribute("aria-pressed", dark ? "true" : "false");
  btn.title = dark ? "밝은 테마로" : "어두운 테마로";
}

function toggleTheme() {
  localStorage.setItem(THEME_KEY, effectiveDark() ? "light" : "dark");
  applyTheme();
}

// ---------------------------------------------------------------- auth view

let mode = "login";

function setMode(m) {
  mode = m;
  const signup = m === "signup";
  $("tab-login").setAttribute("aria-selected", String(!signup));
  $("tab-signup").setAttribute("aria-selected", String(signup));
  $("auth-panel").setAttribute("aria-labelledby", signup ? "tab-signup" : "tab-login");
  $("signup-fields").hidden = !signup;
  $("auth-submit").textContent = signup ? "가입하기" : "로그인";
  $("auth-password").autocomplete = signup ? "new-password" : "current-password";
  $("auth-error").textContent = "";
}

async function onAuthSubmit(e) {
  e.preventDefault();
  const username = $("auth-username").value.trim();
  const password = $("auth-password").value;
  const err = $("auth-error");
  err.textContent = "";
  delete err.dataset.code;
  if (username.length < 3) return (err.textContent = "아이디는 3자 이상이에요");
  if (password.length < 8) return (err.textContent = "비밀번호는 8자 이상이에요");
  const btn = $("auth-submit");
  btn.disabled = true;
  try {
    if (mode === "signup") await api.signup(username, password, $("auth-display").value.trim(), $("auth-invite").value.trim());
    else await api.login(username, password);
    $("auth-password").value = "";
  } catch (x) {
    if (x.code) err.dataset.code = x.code;
    err.textContent =
      x.status === 409 ? "이미 쓰고 있는 아이디예요" : x.status === 401 ? "아이디 또는 비밀번호가 맞지 않아요" : errorText(x);
  } finally {
    btn.disabled = false;
  }
}

function showAuth() {
  const why = api.takeEndReason();
  const ended = { suspended: "계정이 이용 정지되어 로그아웃되었어요", session_revoked: "다른 곳에서 로그아웃되어 다시 로그인해야 해요" };
  if (ended[why]) {
    $("auth-error").dataset.code = why;
    $("auth-error").textContent = ended[why];
  }
  $("app-view").hidden = true;
  $("auth-view").hidden = false;
  document.title = "이음 ieum · 로그인";
  $("auth-username").focus();
}

// ---------------------------------------------------------------- signed in

let running = false;

async function startApp() {
  if (running) return;
  running = true;
  try {
    state.me = await api.get("/api/me");
  } catch (e) {
    running = false;
    if (e.status === 401) api.forget();
    else showError(e);
    return showAuth();
  }
  $("auth-view").hidden = true;
  $("app-view").hidden = false;
  document.title = "이음 ieum";
  profile.paintMe();
  stomp.start({
    onMessage: (roomId, m) => {
      rooms.noteMessage(roomId, m, chat.isReading(roomId));
      chat.onMessage(roomId, m);
    },
    onEvent: (roomId, name, body) => chat.onEvent(roomId, name, body),
    onState: setConnection,
    onConnected: () => emit("connected"),
    onFatal: (code) => {
      if (!api.signedIn()) return;
      toast(code === "suspended" ? "계정이 이용 정지되었어요" : "다른 곳에서 로그아웃되어 다시 로그인해야 해요", "error");
      api.forget(code);
    },
    onNotice: (n) => {
      if (n.code === "resume_truncated") toast("놓친 메시지가 많아 최근 것만 받았어요");
      else if (n.command !== "SUBSCRIBE") toast(errorText(n), "error");
    },
  });
  try {
    await Promise.all([rooms.loadRooms(), admin.start()]);
  } catch (e) {
    showError(e);
  }
  route();
}

async function stopApp() {
  if (!running) return;
  running = false;
  await stomp.stop();
  chat.reset();
  admin.stop();
  panels.closePanel();
  closeDialog();
  rooms.resetRooms();
  state.me = null;
  state.rooms.clear();
  state.couple = null;
  state.delivered.clear();
  for (const room of state.typing.values()) for (const timer of room.values()) clearTimeout(timer);
  state.typing.clear();
  state.presence.clear();
  state.users.clear();
  history.replaceState(null, "", location.pathname);
  showAuth();
}

function setConnection(s) {
  state.connection = s;
  const el = $("conn-status");
  el.dataset.state = s;
  el.textContent = s === "connected" ? "연결됨" : s === "offline" ? "오프라인 · 다시 연결되면 이어서 받아요" : "연결 중…";
}

// ---------------------------------------------------------------- navigation

/** #/room/<id> is the open room, #/admin/... the console (so reloads and the back button work). */
function route() {
  if (admin.route(location.hash)) {
    // The console takes the chat's place.
    if (state.openRoomId) chat.closeRoom();
    if (panels.panelKind()) panels.closePanel();
    return;
  }
  const m = location.hash.match(/^#\/room\/(.+)$/);
  const id = m ? decodeURIComponent(m[1]) : null;
  if (id && state.rooms.has(id)) {
    composer.onRoomChange();
    chat.openRoom(id);
  } else if (state.openRoomId) {
    chat.closeRoom();
  }
}

function goRoom(roomId) {
  const hash = `#/room/${encodeURIComponent(roomId)}`;
  if (location.hash !== hash) history.pushState(null, "", hash);
  route();
}

function goList() {
  if (location.hash) history.pushState(null, "", location.pathname);
  route();
}

window.addEventListener("popstate", route);

on("open-room", ({ roomId }) => goRoom(roomId));
on("room-joined", async ({ roomId }) => {
  await rooms.loadRooms().catch(showError);
  goRoom(roomId);
});
on("left-room", async () => {
  goList();
  await rooms.loadRooms().catch(showError);
});
on("room-gone", ({ roomId }) => {
  if (state.openRoomId === roomId) goList();
});
on("rooms-changed", () => rooms.loadRooms().catch(showError));
on("open-direct", ({ userId }) => dialogs.openDirect(userId));
on("room-opened", () => {
  if (window.matchMedia("(max-width: 760px)").matches) return;
  $("composer-input").focus({ preventScroll: true });
});

// ---------------------------------------------------------------- boot

function boot() {
  applyTheme();
  systemDark.addEventListener("change", applyTheme);
  initDialog();
  rooms.init();
  chat.init();
  composer.init();
  actions.init();
  panels.init();
  $("theme-toggle").addEventListener("click", toggleTheme);
  $("tab-login").addEventListener("click", () => setMode("login"));
  $("tab-signup").addEventListener("click", () => setMode("signup"));
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("logout").addEventListener("click", () => api.logout());
  $("back-to-list").addEventListener("click", goList);
  $("open-search").addEventListener("click", () => (panels.panelKind() === "search" ? panels.closePanel() : openSearch()));
  $("open-friends").addEventListener("click", () => profile.openFriends());
  $("open-profile").addEventListener("click", () => profile.openProfile());
  $("new-room").addEventListener("click", dialogs.createRoom);
  $("join-room").addEventListener("click", dialogs.joinRoom);
  $("new-direct").addEventListener("click", dialogs.newDirect);
  $("couple-button").addEventListener("click", dialogs.couple);
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k" && state.me) {
      e.preventDefault();
      openSearch();
    }
  });
  api.onSession((on) => (on ? startApp() : stopApp()));
  setMode("login");
  if (api.signedIn()) startApp();
  else showAuth();
}

if (!window.StompJs) {
  document.body.textContent = "STOMP 라이브러리를 불러오지 못했어요 (/web/vendor/stomp).";
} else {
  boot();
}
