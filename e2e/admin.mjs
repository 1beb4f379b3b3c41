// The web client's admin console (crates/ieum-server/web/admin*.js) in a real
// browser: Debian's Chromium driven by playwright-core.
//   1. an admin (made with `ieum admin grant`), an author and a reporter sign
//      up through the UI; the author and the reporter share a group room;
//   2. the reporter reports the author's message (markup in it stays text)
//      and the author, through the message menu and the member list;
//   3. the admin sees both in the queue, deletes the message and suspends the
//      author for 1 h in one step: both chats show the message deleted, the
//      author's open page is signed out as suspended, and logging in again
//      shows the `suspended` error; the user report is dismissed;
//   4. the admin finds the author in the user search and lifts it (the author
//      logs in again); the room list shows the room and its messages, paged;
//   5. the audit log lists user.suspend, user.lift and message.delete, with
//      the action-prefix and target filters and "older" paging;
//   6. a moderator sees the console without the audit log; a plain member
//      sees no console entry and gets 403 from /api/admin/reports;
//   7. axe-core finds nothing serious or critical on the console pages (light,
//      dark, and the phone layout).
// Screenshots: one PNG per console page in $IEUM_ARTIFACTS (default ../target/e2e-artifacts).
// Usage (from e2e/): node admin.mjs http://127.0.0.1:PORT DATA_DIR BIN
//   (DATA_DIR and BIN: the server's, for `BIN admin grant` with IEUM_DATA_DIR=DATA_DIR)
// Each run signs up 4 accounts from 127.0.0.1: with the default
// IEUM_SIGNUPS_PER_HOUR_PER_CLIENT (20) one server takes 5 runs an hour.
// Prints "admin: all checks passed" and exits 0, or the failed check and exits 1.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { PASSWORD, check, connected, messageWithText, sendText, shot, suffix, suite } from "./kit.mjs";

const [base, dataDir, bin] = process.argv.slice(2);
if (!base || !dataDir || !bin) {
  console.error("usage: node admin.mjs http://127.0.0.1:PORT DATA_DIR BIN");
  process.exit(2);
}
const exec = promisify(execFile);

let step = "start";
const { log, newUserPage, axeCheck, noPageErrors, run } = suite("admin", { viewport: { width: 1280, height: 860 } });

/** `BIN admin grant USERNAME [--role ROLE]` on the server's data dir. */
async function grant(username, role) {
  const args = ["admin", "grant", username, ...(role ? ["--role", role] : [])];
  await exec(bin, args, { env: { ...process.env, IEUM_DATA_DIR: dataDir }, timeout: 60000 });
}

async function signUp(page, username, displayName) {
  await page.goto(base);
  await page.getByTestId("tab-signup").click();
  await page.getByTestId("auth-username").fill(username);
  await page.getByTestId("auth-password").fill(PASSWORD);
  await page.getByTestId("auth-displayname").fill(displayName);
  await page.getByTestId("auth-submit").click();
  await connected(page);
}

async function logIn(page, username) {
  await page.getByTestId("tab-login").click();
  await page.getByTestId("auth-username").fill(username);
  await page.getByTestId("auth-password").fill(PASSWORD);
  await page.getByTestId("auth-submit").click();
}

/** An API call with the page's own session. */
function apiCall(page, method, url, body) {
  return page.evaluate(async ({ method, url, body }) => {
    const { accessToken } = JSON.parse(localStorage.getItem("ieum.session"));
    const headers = { authorization: `Bearer ${accessToken}` };
    if (body) headers["content-type"] = "application/json";
    const res = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, json };
  }, { method, url, body });
}

/** Opens a console page from its menu and waits for its title and list. */
async function consolePage(page, id, title, ready) {
  await page.getByTestId(`admin-nav-${id}`).click();
  await page.getByTestId("admin-title").filter({ hasText: title }).waitFor();
  await page.locator(`[data-testid=admin-nav-${id}][aria-current=page]`).waitFor();
  if (ready) await ready.waitFor();
}

const report = (page, text) => page.getByTestId("report").filter({ hasText: text });

/** Waits until the audit list is not empty and every action in it starts with `prefix`. */
async function auditShowsOnly(page, prefix) {
  await page.waitForFunction((prefix) => {
    const actions = [...document.querySelectorAll("[data-testid=audit-list] > li")].map((li) => li.dataset.action);
    return actions.length > 0 && actions.every((a) => a.startsWith(prefix));
  }, prefix);
}

// ---------------------------------------------------------------- the story

async function story(browser) {
  const ADM = await newUserPage(browser, "admin");
  const AU = await newUserPage(browser, "author");
  const RP = await newUserPage(browser, "reporter");
  const adm = ADM.page;
  const au = AU.page;
  const rp = RP.page;
  const names = { adm: `adm${suffix}`, au: `au${suffix}`, rp: `rp${suffix}`, md: `md${suffix}` };
  const roomName = `신고 테스트 ${suffix}`;
  const detail = `같은 광고를 계속 올려요 (${suffix})`;

  step = "1. sign up and the first admin";
  await signUp(adm, names.adm, "관리자 한결");
  await signUp(au, names.au, "작성자 이솔");
  await signUp(rp, names.rp, "신고자 박담");
  check(await adm.getByTestId("open-admin").isHidden(), "no console entry before the grant");
  await grant(names.adm);
  await adm.reload();
  await connected(adm);
  await adm.getByTestId("open-admin").waitFor();
  log(`${names.adm} was made admin with \`ieum admin grant\` and sees the console button`);

  step = "1. a shared group room";
  await au.getByTestId("new-room").click();
  await au.getByTestId("room-name-input").fill(roomName);
  await au.getByTestId("room-create-submit").click();
  await au.getByTestId("chat-title").filter({ hasText: roomName }).waitFor();
  await au.getByTestId("chat-info").click();
  const roomId = (await au.getByTestId("room-id").textContent()).trim();
  await au.getByTestId("side-close").click();
  await rp.getByTestId("join-room").click();
  await rp.getByTestId("join-room-id").fill(roomId);
  await rp.getByTestId("join-submit").click();
  await rp.getByTestId("chat-title").filter({ hasText: roomName }).waitFor();
  for (let i = 1; i <= 4; i++) await sendText(au, `평범한 메시지 ${i}`);
  const evil = `광고 ${suffix} <img src=x onerror="window.__xss=1"><b>지금 클릭</b>`;
  await sendText(au, evil);
  await messageWithText(rp, evil).waitFor();
  const seq = await messageWithText(rp, evil).getAttribute("data-seq");
  log(`the author and the reporter share room ${roomId}; the message to report is seq ${seq}`);

  step = "2. the reporter reports the message";
  const target = messageWithText(rp, evil);
  await target.hover();
  await target.getByTestId("msg-menu").click();
  await rp.getByTestId("msg-report").click();
  await rp.getByTestId("report-kind").selectOption("스팸·광고");
  await rp.getByTestId("report-detail").fill(detail);
  await shot(rp, "admin-00-report-dialog");
  await axeCheck(rp, "report dialog");
  await rp.getByTestId("report-submit").click();
  await rp.getByTestId("toast").filter({ hasText: "신고했어요" }).waitFor();
  await rp.locator("#dialog[open]").waitFor({ state: "detached" });
  // Twice is refused, and said so.
  await target.hover();
  await target.getByTestId("msg-menu").click();
  await rp.getByTestId("msg-report").click();
  await rp.getByTestId("report-submit").click();
  await rp.getByTestId("dialog-error").filter({ hasText: "이미 신고했어요" }).waitFor();
  await rp.getByTestId("dialog-close").click();
  // No report entry on one's own messages.
  await sendText(rp, "내 메시지");
  const own = messageWithText(rp, "내 메시지");
  await own.locator("[data-status]:not([data-status=sending])").waitFor();
  await own.hover();
  await own.getByTestId("msg-menu").click();
  await rp.getByTestId("msg-copy").waitFor();
  check((await rp.getByTestId("msg-report").count()) === 0, "no report entry on one's own message");
  await rp.keyboard.press("Escape");
  // The author as a user, from the member list.
  await rp.getByTestId("chat-info").click();
  await rp.getByTestId("member").filter({ hasText: "작성자 이솔" }).getByTestId("member-report").click();
  await rp.getByTestId("report-kind").selectOption("사칭·사기");
  await rp.getByTestId("report-detail").fill(`사칭 (${suffix})`);
  await rp.getByTestId("report-submit").click();
  await rp.locator("#dialog[open]").waitFor({ state: "detached" });
  await rp.getByTestId("toast").filter({ hasText: "신고했어요" }).last().waitFor();
  await rp.getByTestId("side-close").click();
  log("the reporter reported the message (twice is refused) and the author");

  step = "3. the queue";
  await adm.getByTestId("open-admin").click();
  await adm.getByTestId("admin-title").filter({ hasText: "신고 대기열" }).waitFor();
  const card = report(adm, detail);
  await card.waitFor();
  const shown = card.getByTestId("report-message-text");
  check((await shown.textContent()) === evil, `the reported message shows as text (${await shown.textContent()})`);
  check((await card.locator("img, b").count()) === 0, "markup in the reported message is not rendered");
  check((await adm.evaluate(() => window.__xss)) === undefined, "no script from the message ran");
  const userCard = report(adm, `사칭 (${suffix})`);
  await userCard.getByTestId("report-user").filter({ hasText: "작성자 이솔" }).waitFor();
  const order = await adm.getByTestId("report").filter({ hasText: suffix }).evaluateAll((els) => els.map((e) => e.dataset.targetKind));
  check(order.indexOf("message") < order.indexOf("user"), `oldest report first (${order.join(", ")})`);
  await shot(adm, "admin-01-reports");
  await axeCheck(adm, "report queue");

  step = "3. delete the message and suspend the author";
  await card.getByTestId("report-delete").click();
  check(await adm.getByTestId("action-delete").isChecked(), "the delete box is ticked");
  await adm.getByTestId("action-suspend-1h").check();
  await adm.getByTestId("action-reason").fill("광고 도배");
  await shot(adm, "admin-02-report-action");
  await axeCheck(adm, "report action dialog");
  await adm.getByTestId("report-action-submit").click();
  await adm.locator("#dialog[open]").waitFor({ state: "detached" });
  await card.waitFor({ state: "detached" });
  for (const p of [rp]) {
    await p.locator(`#messages > li[data-seq="${seq}"] [data-testid=msg-deleted]`).waitFor();
    await p.getByTestId("system-message").filter({ hasText: "운영진이 메시지를 삭제했어요" }).waitFor();
  }
  log("the message shows deleted in the reporter's chat, with the staff notice");
  // The author's open page: signed out, and told why.
  await au.getByTestId("auth-view").waitFor();
  await au.locator("[data-testid=auth-error][data-code=suspended]").filter({ hasText: "정지" }).waitFor();
  await shot(au, "admin-03-author-signed-out");
  await logIn(au, names.au);
  await au.locator("[data-testid=auth-error][data-code=suspended]").filter({ hasText: /정지.*까지/ }).waitFor();
  check(await au.getByTestId("auth-view").isVisible(), "the suspended author stays on the login page");
  log(`the author was signed out as suspended; logging in again says: ${await au.getByTestId("auth-error").textContent()}`);

  step = "3. resolved, and the user report dismissed";
  await adm.getByTestId("report-state-resolved").click();
  await report(adm, detail).getByTestId("report-resolution").filter({ hasText: "조치함" }).waitFor();
  check((await report(adm, detail).getByTestId("report-message-deleted").count()) === 1, "the resolved report shows the message deleted");
  await shot(adm, "admin-04-reports-resolved");
  await adm.getByTestId("report-state-open").click();
  await userCard.getByTestId("report-dismiss").click();
  await adm.getByTestId("dismiss-note").fill("같은 건으로 이미 조치함");
  await adm.getByTestId("report-dismiss-submit").click();
  await userCard.waitFor({ state: "detached" });
  await adm.getByTestId("report-state-resolved").click();
  await report(adm, `사칭 (${suffix})`).getByTestId("report-resolution").filter({ hasText: "기각함" }).waitFor();
  log("the report shows as actioned; the user report was dismissed");

  step = "4. user search, lift";
  await consolePage(adm, "users", "사용자", adm.getByTestId("admin-user").first());
  await adm.getByTestId("admin-user-search").fill(names.au);
  await adm.getByTestId("admin-user-search-submit").click();
  const person = adm.locator(`[data-testid=admin-user][data-username="${names.au}"]`);
  // The first list is everyone; the search's answer replaces it with the author alone.
  await adm.waitForFunction((username) => {
    const cards = [...document.querySelectorAll("[data-testid=admin-user]")];
    return cards.length === 1 && cards[0].dataset.username === username;
  }, names.au);
  await person.and(adm.locator("[data-suspended=true]")).waitFor();
  check(/정지됨 · .+까지 · 사유: 광고 도배/.test(await person.getByTestId("user-suspension").textContent()), "the card shows the suspension, its end and reason");
  const authorId = await person.getAttribute("data-user-id");
  await shot(adm, "admin-05-users");
  await axeCheck(adm, "user search");
  await person.getByTestId("user-lift").click();
  await adm.getByTestId("lift-reason").fill("소명 확인");
  await axeCheck(adm, "lift dialog");
  await adm.getByTestId("lift-submit").click();
  await person.and(adm.locator("[data-suspended=false]")).waitFor();
  await person.getByTestId("user-suspend").waitFor();
  await logIn(au, names.au);
  await connected(au);
  log("the admin found the author and lifted the suspension; the author logs in again");

  step = "4. rooms and a room's messages";
  await adm.evaluate(() => localStorage.setItem("ieum.adminPageSize", "3"));
  await consolePage(adm, "rooms", "대화방", adm.getByTestId("admin-room").first());
  await adm.getByTestId("admin-room-search").fill(roomName);
  await adm.getByTestId("admin-room-search-submit").click();
  await adm.waitForFunction((name) => {
    const cards = [...document.querySelectorAll("[data-testid=admin-room]")];
    return cards.length > 0 && cards.every((c) => c.textContent.includes(name));
  }, roomName);
  const room = adm.locator(`[data-testid=admin-room][data-room-id="${roomId}"]`);
  await room.waitFor();
  await shot(adm, "admin-06-rooms");
  await axeCheck(adm, "room list");
  await room.getByTestId("admin-room-open").click();
  await adm.getByTestId("admin-title").filter({ hasText: roomName }).waitFor();
  await adm.getByTestId("admin-message").nth(2).waitFor();
  check((await adm.getByTestId("admin-message").count()) === 3, "a page of 3 messages");
  // Page back until the reported message and the one before it show.
  const deleted = adm.locator(`[data-testid=admin-message][data-seq="${seq}"]`);
  const plain = adm.getByTestId("admin-message").filter({ has: adm.getByTestId("admin-message-text").getByText("평범한 메시지 4", { exact: true }) });
  while (!(await deleted.count()) || !(await plain.count())) {
    const before = await adm.getByTestId("admin-message").count();
    await adm.getByTestId("admin-messages-more").click();
    await adm.getByTestId("admin-message").nth(before).waitFor();
  }
  await deleted.getByTestId("admin-message-deleted").waitFor();
  const seqs = await adm.getByTestId("admin-message").evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  check(new Set(seqs).size === seqs.length, `no message twice (${seqs.join(",")})`);
  for (let i = 1; i < seqs.length; i++) check(seqs[i] < seqs[i - 1], `newest first (${seqs.join(",")})`);
  await plain.scrollIntoViewIfNeeded();
  await shot(adm, "admin-07-room-messages");
  await axeCheck(adm, "room messages");
  log(`the room list finds the room; its messages page back newest first (${seqs.join(",")})`);

  step = "4. staff delete from the room view";
  const plainSeq = await plain.getAttribute("data-seq");
  await plain.getByTestId("admin-message-delete").click();
  await adm.getByTestId("delete-reason").fill("테스트 삭제");
  await adm.getByTestId("delete-message-submit").click();
  await adm.locator(`[data-testid=admin-message][data-seq="${plainSeq}"] [data-testid=admin-message-deleted]`).waitFor();
  await rp.locator(`#messages > li[data-seq="${plainSeq}"] [data-testid=msg-deleted]`).waitFor();
  log("a message deleted from the room view shows deleted in the chat");

  step = "4. staff close the room";
  await adm.getByTestId("admin-room-close").click();
  await adm.getByTestId("close-reason").fill("테스트로 방 닫기");
  await adm.getByTestId("close-room-submit").click();
  await adm.getByTestId("admin-message").first().getByTestId("admin-message-text").getByText("운영진이 이 방을 닫았어요: 테스트로 방 닫기").waitFor();
  await rp.locator(`[data-testid=room-item][data-room-id="${roomId}"]`).waitFor({ state: "detached" });
  const rejoin = await apiCall(rp, "POST", `/api/rooms/${roomId}/join`);
  check(rejoin.status === 403 && rejoin.json?.code === "room_closed", `nobody joins a closed room (${JSON.stringify(rejoin)})`);
  log("closing the room from its view removes its members (the room leaves their list) and nobody joins again");

  step = "5. the audit log";
  await consolePage(adm, "audit", "감사 기록", adm.getByTestId("audit-entry").first());
  // Page size 3: page back until the three actions show.
  const entry = (action) => adm.locator(`[data-testid=audit-entry][data-action="${action}"]`);
  for (;;) {
    const have = await Promise.all(["user.suspend", "user.lift", "message.delete"].map((a) => entry(a).count()));
    if (have.every((n) => n > 0)) break;
    const more = adm.getByTestId("audit-more");
    check(await more.isVisible(), `the audit log has user.suspend, user.lift, message.delete (${have})`);
    const before = await adm.getByTestId("audit-entry").count();
    await more.click();
    await adm.getByTestId("audit-entry").nth(before).waitFor();
  }
  const ids = await adm.getByTestId("audit-entry").evaluateAll((els) => els.map((e) => e.textContent));
  check(new Set(ids).size === ids.length, "no audit entry twice after paging");
  await entry("user.suspend").filter({ hasText: "광고 도배" }).first().waitFor();
  await entry("user.lift").filter({ hasText: "소명 확인" }).first().waitFor();
  await shot(adm, "admin-08-audit");
  await axeCheck(adm, "audit log");
  // The filters.
  await adm.getByTestId("audit-action").fill("user.");
  await adm.getByTestId("audit-action").press("Escape"); // closes the suggestion list over the form
  await adm.getByTestId("audit-target").fill(authorId);
  await adm.getByTestId("audit-apply").click();
  await auditShowsOnly(adm, "user.");
  await entry("user.lift").waitFor();
  await entry("user.suspend").waitFor();
  const actions = await adm.getByTestId("audit-entry").evaluateAll((els) => els.map((e) => `${e.dataset.action} ${e.dataset.targetId}`));
  check(actions.length >= 2 && actions.every((a) => a.startsWith("user.") && a.endsWith(authorId)), `filtered by prefix and target (${actions.join("; ")})`);
  await shot(adm, "admin-09-audit-filtered");
  await adm.getByTestId("audit-action").fill("message.delete");
  await adm.getByTestId("audit-action").press("Escape"); // closes the suggestion list over the form
  await adm.getByTestId("audit-target").fill("");
  await adm.getByTestId("audit-apply").click();
  await auditShowsOnly(adm, "message.delete");
  await entry("message.delete").first().waitFor();
  log(`the audit log lists user.suspend, user.lift, message.delete; filters and paging work`);

  step = "6. dark theme and the phone layout";
  await adm.evaluate(() => localStorage.removeItem("ieum.adminPageSize"));
  await adm.emulateMedia({ colorScheme: "dark" });
  await adm.getByTestId("audit-reset").click();
  await entry("user.lift").first().waitFor();
  await shot(adm, "admin-10-audit-dark");
  await axeCheck(adm, "audit log, dark");
  // The resolved reports, one a page: "더 보기" brings the next, never one twice.
  await adm.evaluate(() => localStorage.setItem("ieum.adminPageSize", "1"));
  await consolePage(adm, "reports", "신고 대기열");
  await adm.getByTestId("report-status").filter({ hasText: "불러오는 중" }).waitFor({ state: "detached" });
  await adm.getByTestId("report-state-resolved").click();
  await adm.getByTestId("report").first().waitFor();
  check((await adm.getByTestId("report").count()) === 1, "one resolved report a page");
  await adm.getByTestId("report-more").click();
  await adm.getByTestId("report").nth(1).waitFor();
  const reportIds = await adm.getByTestId("report").evaluateAll((els) => els.map((e) => e.dataset.reportId));
  check(new Set(reportIds).size === 2, `the next page of reports is another report (${reportIds.join(", ")})`);
  await adm.evaluate(() => localStorage.removeItem("ieum.adminPageSize"));
  await shot(adm, "admin-11-reports-dark");
  await axeCheck(adm, "report queue, dark");
  await consolePage(adm, "users", "사용자", adm.getByTestId("admin-user").first());
  await axeCheck(adm, "user search, dark");
  await adm.emulateMedia({ colorScheme: "light" });
  const M = await newUserPage(browser, "phone", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const m = M.page;
  await m.goto(base);
  await logIn(m, names.adm);
  await connected(m);
  await m.getByTestId("open-admin").tap();
  await m.getByTestId("report-state-resolved").tap();
  await m.getByTestId("report").first().waitFor();
  await shot(m, "admin-12-phone-reports");
  await axeCheck(m, "report queue, phone");
  await m.getByTestId("admin-nav-users").tap();
  await m.getByTestId("admin-user").first().waitFor();
  await shot(m, "admin-13-phone-users");
  await m.getByTestId("admin-nav-audit").tap();
  await m.getByTestId("audit-entry").first().waitFor();
  await shot(m, "admin-14-phone-audit");
  await axeCheck(m, "audit log, phone");
  await m.getByTestId("admin-exit").tap();
  await m.getByTestId("room-list").waitFor();
  check(await m.getByTestId("admin-view").isHidden(), "leaving the console shows the chat again");
  await M.context.close();
  log("dark theme and the phone layout pass axe");

  step = "6. a moderator";
  const MD = await newUserPage(browser, "moderator");
  const md = MD.page;
  await signUp(md, names.md, "운영자 최");
  await grant(names.md, "moderator");
  await md.reload();
  await connected(md);
  await md.getByTestId("open-admin").click();
  await md.getByTestId("admin-role").filter({ hasText: "운영자" }).waitFor();
  await md.getByTestId("admin-nav-users").waitFor();
  check((await md.getByTestId("admin-nav-audit").count()) === 0, "a moderator has no audit log in the menu");
  await md.evaluate(() => {
    history.pushState(null, "", "#/admin/audit");
    dispatchEvent(new PopStateEvent("popstate"));
  });
  await md.getByTestId("admin-title").filter({ hasText: "신고 대기열" }).waitFor();
  check((await apiCall(md, "GET", "/api/admin/audit")).status === 403, "the audit log answers a moderator 403");
  await MD.context.close();
  log("a moderator sees the console without the audit log");

  step = "6. a plain member";
  await rp.reload();
  await connected(rp);
  check(await rp.getByTestId("open-admin").isHidden(), "a member has no console entry");
  const denied = await apiCall(rp, "GET", "/api/admin/reports");
  check(denied.status === 403 && denied.json?.code === "not_staff", `a member gets 403 not_staff from /api/admin/reports (${denied.status} ${JSON.stringify(denied.json)})`);
  await rp.evaluate(() => {
    history.pushState(null, "", "#/admin/reports");
    dispatchEvent(new PopStateEvent("popstate"));
  });
  await rp.waitForFunction(() => location.hash === "");
  check(await rp.getByTestId("admin-view").isHidden(), "a member going to #/admin sees no console");
  log("a plain member sees no console and gets 403 not_staff");

  noPageErrors();
}

run(story, () => step);
