// The admin console, for the server's staff only (GET /api/admin/me says
// moderator or admin): a shield button in the header opens it in place of the
// chat, at #/admin/<page>. Pages: the report queue, users (suspend, lift,
// roles), rooms and their messages, and the audit log (admins).
// The pages themselves are in admin-reports.js and admin-views.js.
import * as api from "./api.js";
import { $, h, clear, showError } from "./ui.js";
import { renderReports } from "./admin-reports.js";
import { renderUsers, renderRooms, renderRoom } from "./admin-views.js";
import { renderAudit } from "./admin-audit.js";

let role = null; // "member" | "moderator" | "admin" | null (not known yet)
let shell = null; // { nav, main, title, links: Map(page -> a) }
let token = 0; // the render in progress; older ones drop their results

const PAGES = [
  { id: "reports", label: "신고", title: "신고 대기열", render: renderReports },
  { id: "users", label: "사용자", title: "사용자", render: renderUsers },
  { id: "rooms", label: "대화방", title: "대화방", render: renderRooms },
  { id: "audit", label: "감사 기록", title: "감사 기록", render: renderAudit, adminOnly: true },
];

export const isStaff = () => role === "moderator" || role === "admin";
export const isAdmin = () => role === "admin";

/** Asks the server for the caller's role; shows the console's button to staff. */
export async function start() {
  role = null;
  try {
    ({ role } = await api.get("/api/admin/me"));
  } catch (e) {
    role = "member";
    if (e.status !== 404 && e.status !== 403) console.warn("admin role", e);
  }
  $("open-admin").hidden = !isStaff();
}

export function stop() {
  role = null;
  token++;
  $("open-admin").hidden = true;
  hide();
  if (shell) clear($("admin-view"));
  shell = null;
}

/** Goes to a console path ("reports", "rooms/<id>", ...) as a history entry. */
export function go(path) {
  const hash = `#/admin/${path}`;
  if (location.hash !== hash) history.pushState(null, "", hash);
  route(location.hash);
}

function leave() {
  history.pushState(null, "", location.pathname);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

function hide() {
  const view = $("admin-view");
  if (view.hidden) return;
  view.hidden = true;
  document.body.classList.remove("admin-open");
  $("open-admin").removeAttribute("aria-current");
  document.title = "이음 ieum";
}

/**
 * Shows the console page of `hash` (#/admin/<page>[/<id>]) and answers true,
 * or hides the console and answers false (another route, or not staff).
 */
export function route(hash) {
  const m = /^#\/admin(?:\/([a-z]+)(?:\/(.+))?)?$/.exec(hash || "");
  if (!m) {
    hide();
    return false;
  }
  if (!isStaff()) {
    hide();
    history.replaceState(null, "", location.pathname);
    return false;
  }
  let page = PAGES.find((p) => p.id === (m[1] || "reports")) || PAGES[0];
  if (page.adminOnly && !isAdmin()) page = PAGES[0];
  const param = m[2] ? decodeURIComponent(m[2]) : null;
  show(page, param);
  return true;
}

function link(page) {
  return h(
    "a.admin-link",
    {
      href: `#/admin/${page.id}`,
      dataset: { testid: `admin-nav-${page.id}` },
      onclick: (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        go(page.id);
        shell.title.focus();
      },
    },
    page.label,
  );
}

function build() {
  const links = new Map();
  const list = h("ul.admin-tabs");
  for (const p of PAGES) {
    if (p.adminOnly && !isAdmin()) continue;
    const a = link(p);
    links.set(p.id, a);
    list.append(h("li", null, a));
  }
  const exit = h("a.admin-link.admin-exit", {
    href: "#",
    dataset: { testid: "admin-exit" },
    onclick: (e) => {
      e.preventDefault();
      leave();
    },
  }, "← 채팅으로");
  const nav = h(
    "nav.admin-nav",
    { "aria-label": "관리 콘솔 메뉴" },
    h("p.admin-brand", null, "관리 콘솔 ", h("span.role-tag", { dataset: { testid: "admin-role" } }, role === "admin" ? "관리자" : "운영자")),
    list,
    exit,
  );
  const title = h("h2.admin-title", { id: "admin-page-title", tabindex: "-1", dataset: { testid: "admin-title" } });
  const body = h("div.admin-body");
  const main = h("main.admin-main", { "aria-labelledby": "admin-page-title", dataset: { testid: "admin-main" } }, title, body);
  clear($("admin-view")).append(nav, main);
  shell = { nav, main, title, body, links };
}

function show(page, param) {
  if (!shell) build();
  const view = $("admin-view");
  view.hidden = false;
  view.dataset.page = page.id;
  document.body.classList.add("admin-open");
  $("open-admin").setAttribute("aria-current", "page");
  for (const [id, a] of shell.links) {
    if (id === page.id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const mine = ++token;
  shell.title.textContent = page.title;
  document.title = `${page.title} · 관리 콘솔 · 이음`;
  const body = clear(shell.body);
  const ctx = {
    isAdmin: isAdmin(),
    go,
    live: () => mine === token,
    setTitle: (t) => {
      shell.title.textContent = t;
      document.title = `${t} · 관리 콘솔 · 이음`;
    },
  };
  const render = page.id === "rooms" && param ? renderRoom : page.render;
  Promise.resolve(render(body, ctx, param)).catch(showError);
}

$("open-admin").addEventListener("click", () => {
  go(shell && !$("admin-view").hidden ? $("admin-view").dataset.page : "reports");
  shell?.title.focus();
});
