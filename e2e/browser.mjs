// The web client (crates/ieum-server/web) in a real browser: Debian's Chromium
// driven by playwright-core, two users in two browser contexts.
//   1. both sign up through the UI, pair as a couple (code made by one, entered
//      by the other) and chat in Korean typed through the keyboard, with an IME
//      composition whose Enter must not send;
//   2. each sees the other typing and online; own messages go sent, delivered, read;
//   3. edit and delete reach both; markup in a message stays text; search finds
//      날씨 in 오늘 날씨가 좋네요, highlighted in a <mark>;
//   4. one goes offline while the other sends 20 messages: back online, all 20
//      show exactly once and in seq order (resume with last-seq); history pages back;
//   5. an uploaded image shows its thumbnail for both, with a progress bar first;
//   6. axe-core finds nothing serious or critical on the login page, room list
//      and chat (light and dark); the mobile layout, dark theme, profile work.
// Screenshots: one PNG per screen in $IEUM_ARTIFACTS (default ../target/e2e-artifacts).
// Usage (from e2e/): node browser.mjs http://127.0.0.1:PORT
// Prints "browser: all checks passed" and exits 0, or the failed check and exits 1.
import { deflateSync } from "node:zlib";
import { PASSWORD, WAIT, check, connected, messageWithText, messages, sendText, shot, suffix, suite } from "./kit.mjs";

const base = process.argv[2];
if (!base) {
  console.error("usage: node browser.mjs http://127.0.0.1:PORT");
  process.exit(2);
}

let step = "start";
const { log, newUserPage, axeCheck, noPageErrors, run } = suite("browser");

// ---------------------------------------------------------------- a PNG, made here

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A w x h RGB PNG: a gradient with a disc in the middle. */
function png(w, h) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const inDisc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (Math.min(w, h) / 4) ** 2;
      raw[o] = inDisc ? 240 : Math.round((x / w) * 120 + 40);
      raw[o + 1] = inDisc ? 80 : Math.round((y / h) * 160 + 60);
      raw[o + 2] = inDisc ? 120 : 200;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// ---------------------------------------------------------------- helpers

async function signUp(page, username, displayName) {
  await page.getByTestId("tab-signup").click();
  await page.getByTestId("auth-username").fill(username);
  await page.getByTestId("auth-password").fill(PASSWORD);
  await page.getByTestId("auth-displayname").fill(displayName);
  await page.getByTestId("auth-submit").click();
  await connected(page);
  check((await page.getByTestId("me-name").textContent()) === displayName, `${username} signed in as ${displayName}`);
}

/** Records every data-status an own message's mark shows, per client message id. */
async function recordStatuses(page) {
  await page.evaluate(() => {
    window.__statuses = {};
    const note = (el) => {
      const li = el.closest("li");
      const id = li && li.dataset.clientId;
      if (!id) return;
      const list = (window.__statuses[id] ||= []);
      if (list[list.length - 1] !== el.dataset.status) list.push(el.dataset.status);
    };
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") note(r.target);
        else for (const n of r.addedNodes) if (n.nodeType === 1) (n.matches("[data-testid=msg-status]") ? [n] : n.querySelectorAll("[data-testid=msg-status]")).forEach(note);
      }
    }).observe(document.getElementById("scroller"), { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
  });
}

async function statusOf(page, text) {
  return messageWithText(page, text).getByTestId("msg-status");
}

async function openRoomByName(page, name) {
  await page.getByTestId("room-item").filter({ has: page.getByTestId("room-name").getByText(name) }).getByRole("button").click();
  await page.getByTestId("chat-title").filter({ hasText: name }).waitFor();
}

async function createGroup(page, name) {
  await page.getByTestId("new-room").click();
  await page.getByTestId("room-name-input").fill(name);
  await page.getByTestId("room-create-submit").click();
  await page.getByTestId("chat-title").filter({ hasText: name }).waitFor();
}

// ---------------------------------------------------------------- the story

async function story(browser) {
  const A = await newUserPage(browser, "A");
  const B = await newUserPage(browser, "B");
  const a = A.page;
  const b = B.page;
  const nameA = "김이음";
  const nameB = "박하늘";

  step = "1. sign up";
  await a.goto(base);
  await a.getByTestId("auth-view").waitFor();
  await shot(a, "01-login");
  await axeCheck(a, "login page");
  await signUp(a, `ua${suffix}`, nameA);
  await b.goto(base);
  await signUp(b, `ub${suffix}`, nameB);
  log("both signed up through the UI");

  step = "1. couple";
  await a.getByTestId("couple-button").click();
  await a.getByTestId("couple-create").click();
  const code = (await a.getByTestId("couple-code").filter({ hasText: /^[A-Z0-9]{4,}$/ }).textContent()).trim();
  await b.getByTestId("couple-button").click();
  await b.getByTestId("couple-code-input").fill(code);
  await b.getByTestId("couple-join").click();
  for (const p of [a, b]) await p.getByTestId("chat-title").filter({ hasText: "♥" }).waitFor();
  const coupleTitleA = await a.getByTestId("chat-title").textContent();
  check(coupleTitleA.includes(nameB), `A's couple room is named after B (${coupleTitleA})`);
  log(`paired as a couple with code ${code}`);

  step = "1. Korean through the keyboard";
  await a.getByTestId("composer-input").click();
  await a.keyboard.type("안녕하세요");
  await a.keyboard.press("Enter");
  await messageWithText(b, "안녕하세요").waitFor();
  check((await a.getByTestId("composer-input").inputValue()) === "", "the composer is empty after sending");

  step = "1. IME composition: Enter while composing does not send";
  const inputB = b.getByTestId("composer-input");
  await inputB.click();
  await inputB.dispatchEvent("compositionstart", { data: "" });
  await b.keyboard.type("반가워요");
  const during = await b.evaluate(() => {
    const el = document.getElementById("composer-input");
    const count = () => document.querySelectorAll("#messages > li, #pending > li").length;
    const before = count();
    // Enter as an IME delivers it mid-composition: isComposing, keyCode 229.
    const ime = new KeyboardEvent("keydown", { key: "Enter", code: "Enter", keyCode: 229, isComposing: true, bubbles: true, cancelable: true });
    el.dispatchEvent(ime);
    // An Enter without the flag while the composition is still open (some browsers).
    const plain = new KeyboardEvent("keydown", { key: "Enter", code: "Enter", keyCode: 13, bubbles: true, cancelable: true });
    el.dispatchEvent(plain);
    return { value: el.value, grew: count() - before, prevented: ime.defaultPrevented || plain.defaultPrevented };
  });
  check(during.value === "반가워요" && during.grew === 0 && !during.prevented, `Enter during composition did not send (${JSON.stringify(during)})`);
  await inputB.dispatchEvent("compositionend", { data: "요" });
  await b.keyboard.press("Enter");
  await messageWithText(a, "반가워요").waitFor();
  check((await inputB.inputValue()) === "", "Enter after the composition sent");
  // Shift+Enter is a newline.
  await inputB.click();
  await b.keyboard.type("첫 줄");
  await b.keyboard.press("Shift+Enter");
  await b.keyboard.type("둘째 줄");
  check((await inputB.inputValue()) === "첫 줄\n둘째 줄", "Shift+Enter made a newline");
  await b.keyboard.press("Enter");
  await messageWithText(a, "첫 줄\n둘째 줄").waitFor();
  log("Korean typed and sent; Enter while composing did not send; Shift+Enter is a newline");

  step = "2. typing and presence";
  await a.getByTestId("composer-input").click();
  await typingSeen(a, b, nameA, "지금 쓰는 중");
  await a.getByTestId("composer-input").fill("");
  await inputB.click();
  await typingSeen(b, a, nameB, "나도 쓰는 중");
  await inputB.fill("");
  await a.locator("[data-testid=presence][data-online=true]").waitFor();
  await b.locator("[data-testid=presence][data-online=true]").waitFor();
  log("each saw the other typing and online");

  step = "2. sent, delivered, read";
  for (const [me, other, meName, room] of [[a, b, nameA, "하늘의 방"], [b, a, nameB, "이음의 방"]]) {
    // The other looks at another room: the message reaches their device (delivered), unread.
    await createGroup(other, room);
    await recordStatuses(me);
    const text = `${meName}: 잘 지냈어요? (${room})`;
    await sendText(me, text);
    await (await statusOf(me, text)).and(me.locator("[data-status=delivered]")).waitFor();
    const badge = other.getByTestId("room-item").filter({ has: other.getByTestId("room-name").getByText("♥") }).getByTestId("unread-badge");
    await badge.filter({ hasText: /^[1-9]/ }).waitFor();
    if (me === a) await shot(b, "02-room-list");
    await openRoomByName(other, "♥");
    await (await statusOf(me, text)).and(me.locator("[data-status=read]")).waitFor();
    const id = await messageWithText(me, text).getAttribute("data-client-id");
    const seen = await me.evaluate((id) => window.__statuses[id] || [], id);
    const at = (s) => seen.indexOf(s);
    check(at("sent") >= 0 && at("sent") < at("delivered") && at("delivered") < at("read"), `marks went sent, delivered, read (saw ${seen.join(" > ")})`);
    await badge.waitFor({ state: "detached" });
  }
  log("own messages went sent, then delivered, then read, both ways");

  step = "3. edit and delete";
  await sendText(a, "수정 전 메시지");
  await messageWithText(b, "수정 전 메시지").waitFor();
  const mineA = messageWithText(a, "수정 전 메시지");
  await mineA.hover();
  await mineA.getByTestId("msg-menu").click();
  await a.getByTestId("msg-edit").click();
  check((await a.getByTestId("composer-input").inputValue()) === "수정 전 메시지", "the composer holds the text to edit");
  await a.getByTestId("edit-banner").waitFor();
  await a.getByTestId("composer-input").fill("수정 후 메시지");
  await a.getByTestId("composer-input").press("Enter");
  for (const p of [a, b]) await messageWithText(p, "수정 후 메시지").getByTestId("msg-edited").waitFor();
  const seq = await messageWithText(a, "수정 후 메시지").getAttribute("data-seq");
  const edited = messageWithText(a, "수정 후 메시지");
  await edited.hover();
  await edited.getByTestId("msg-menu").click();
  await a.getByTestId("msg-delete").click();
  await a.getByTestId("confirm-ok").click();
  for (const p of [a, b]) await p.locator(`#messages > li[data-seq="${seq}"] [data-testid=msg-deleted]`).waitFor();
  check((await b.locator(`#messages > li[data-seq="${seq}"] [data-testid=msg-text]`).count()) === 0, "the deleted text is gone for B");
  log("edit and delete reached both");
  // Markup in a message is text, never HTML.
  const evil = `<img src=x onerror="window.__xss=1"><b>굵게</b> & <script>window.__xss=2</script>`;
  await sendText(a, evil);
  const shown = messageWithText(b, evil);
  await shown.waitFor();
  check((await shown.locator(".bubble img, .bubble b, .bubble script").count()) === 0, "markup in a message is not rendered");
  check((await b.evaluate(() => window.__xss)) === undefined && (await a.evaluate(() => window.__xss)) === undefined, "no script from a message ran");

  step = "3. search";
  await sendText(a, "오늘 날씨가 좋네요");
  await messageWithText(b, "오늘 날씨가 좋네요").waitFor();
  await b.getByTestId("open-search").click();
  await b.getByTestId("search-input").fill("날씨");
  await b.getByTestId("search-input").press("Enter");
  const hit = b.getByTestId("search-result").filter({ hasText: "오늘 날씨가 좋네요" });
  await hit.waitFor();
  const marks = await hit.locator("mark").allTextContents();
  check(marks.length === 1 && marks[0] === "날씨", `the match is highlighted in a <mark> (${JSON.stringify(marks)})`);
  check((await hit.getByTestId("search-snippet").textContent()) === "오늘 날씨가 좋네요", "the snippet is the message");
  await shot(b, "03-search");
  await hit.click();
  await messageWithText(b, "오늘 날씨가 좋네요").and(b.locator(".flash")).waitFor();
  await b.getByTestId("side-close").click();
  log("search found 날씨 and highlighted it");

  step = "4. offline, 20 messages, back online";
  await B.context.setOffline(true);
  await b.locator("[data-testid=conn-status][data-state=offline]").waitFor();
  const burst = Array.from({ length: 20 }, (_, i) => `오프라인 동안 ${String(i + 1).padStart(2, "0")}`);
  for (const text of burst) await sendText(a, text);
  for (const text of burst) await (await statusOf(a, text)).and(a.locator("[data-status=sent], [data-status=delivered], [data-status=read]")).waitFor();
  check((await messages(b).filter({ hasText: "오프라인 동안" }).count()) === 0, "nothing reached B while offline");
  await B.context.setOffline(false);
  await connected(b);
  // A message after the burst: when B has it, every replay before it is in.
  await sendText(a, "다시 만나서 반가워요");
  await messageWithText(b, "다시 만나서 반가워요").waitFor();
  const gotB = await messages(b).evaluateAll((els) => els.map((li) => ({ seq: Number(li.dataset.seq), text: li.querySelector("[data-testid=msg-text]")?.textContent ?? "" })));
  const burstSeen = gotB.filter((m) => m.text.startsWith("오프라인 동안")).map((m) => m.text);
  check(JSON.stringify(burstSeen) === JSON.stringify(burst), `B shows the 20 messages once each, in order (got ${burstSeen.length}: ${burstSeen.join(", ")})`);
  for (let i = 1; i < gotB.length; i++) check(gotB[i].seq > gotB[i - 1].seq, `B's messages in seq order (${gotB[i - 1].seq} then ${gotB[i].seq})`);
  log("B went offline during 20 messages and showed all 20 exactly once, in order, after reconnecting");

  step = "4. reload and page history back";
  await b.evaluate(() => localStorage.setItem("ieum.pageSize", "8"));
  const pages = [];
  b.on("request", (r) => /\/messages\?.*before=/.test(r.url()) && pages.push(r.url()));
  await b.reload();
  await b.getByTestId("chat-title").filter({ hasText: "♥" }).waitFor();
  await messageWithText(b, "다시 만나서 반가워요").waitFor();
  // Scroll to the top until the start of the conversation is loaded.
  await b.waitForFunction(() => {
    document.getElementById("scroller").scrollTop = 0;
    return document.getElementById("history-status").textContent.includes("대화의 시작");
  }, null, { polling: 100, timeout: WAIT });
  check(pages.length >= 2, `history was paged back (${pages.length} older pages)`);
  const all = await messages(b).evaluateAll((els) => els.map((li) => Number(li.dataset.seq)));
  check(new Set(all).size === all.length, "no message twice after paging back");
  for (let i = 1; i < all.length; i++) check(all[i] > all[i - 1], "paged history in seq order");
  await messageWithText(b, "안녕하세요").waitFor();
  await b.evaluate(() => localStorage.removeItem("ieum.pageSize"));
  log(`the session survived a reload; history paged back to the start (${all.length} messages)`);

  step = "5. image upload";
  await a.evaluate(() => {
    window.__progress = [];
    new MutationObserver(() => {
      const bar = document.querySelector("[data-testid=upload-progress]");
      if (bar && window.__progress[window.__progress.length - 1] !== bar.value) window.__progress.push(bar.value);
    }).observe(document.getElementById("scroller"), { subtree: true, childList: true, attributes: true });
  });
  let release;
  const held = new Promise((r) => (release = r));
  await a.route("**/files/**", async (route) => {
    if (route.request().method() === "PUT") await held;
    await route.continue();
  });
  await a.getByTestId("attach-input").setInputFiles({ name: "노을.png", mimeType: "image/png", buffer: png(96, 64) });
  await a.getByTestId("upload-progress").waitFor();
  await shot(a, "04-upload-progress");
  release();
  for (const p of [a, b]) {
    await p.waitForFunction(() =>
      [...document.querySelectorAll("#messages img[data-testid=msg-image]")].some((el) => el.complete && el.naturalWidth > 0 && /\/media\/.+\/thumb-320/.test(el.src)),
    );
  }
  await a.unroute("**/files/**");
  const progress = await a.evaluate(() => window.__progress);
  check(progress.length > 0 && progress[progress.length - 1] === 100, `the progress bar went to 100 (${progress.join(",")})`);
  for (const p of [a, b]) await p.locator("#messages img[data-testid=msg-image]").last().scrollIntoViewIfNeeded();
  await shot(b, "05-upload-thumbnail");
  await shot(a, "06-chat");
  log("the image's thumbnail shows for both users");

  step = "6. accessibility of the room list and chat";
  await axeCheck(b, "chat view");
  // The room list with no room open (the page's own route for it).
  await b.evaluate(() => {
    history.pushState(null, "", location.pathname);
    dispatchEvent(new PopStateEvent("popstate"));
  });
  await b.locator("#chat-empty").waitFor();
  await axeCheck(b, "room list");

  step = "profile";
  await a.getByTestId("open-profile").click();
  await a.getByTestId("profile-image-input").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: png(120, 120) });
  await a.locator("[data-testid=profile-avatar] img").waitFor();
  await a.getByTestId("profile-displayname").fill("김이음 ✨");
  await a.getByTestId("profile-status").fill("오늘도 좋은 하루");
  await shot(a, "07-profile");
  await axeCheck(a, "profile dialog");
  await a.getByTestId("profile-save").click();
  await a.getByTestId("me-name").filter({ hasText: "김이음 ✨" }).waitFor();
  await a.locator("#me-avatar img").waitFor();
  log("profile name, status and photo changed");

  step = "dark theme";
  await b.emulateMedia({ colorScheme: "dark" });
  await openRoomByName(b, "♥");
  await messageWithText(b, "다시 만나서 반가워요").waitFor();
  await b.waitForFunction(() => !document.getElementById("history-status").textContent.includes("불러오는 중"));
  check((await b.getByTestId("theme-toggle").getAttribute("aria-pressed")) === "true", "the toggle says dark");
  await shot(b, "08-dark-theme");
  await axeCheck(b, "chat view, dark");
  await b.getByTestId("theme-toggle").click();
  check((await b.evaluate(() => document.documentElement.dataset.theme)) === "light", "the toggle switches to light");
  await b.getByTestId("theme-toggle").click();
  check((await b.evaluate(() => document.documentElement.dataset.theme)) === "dark", "and back to dark");
  log("dark theme by system preference and by the toggle");

  step = "mobile layout";
  const M = await newUserPage(browser, "mobile", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const m = M.page;
  await m.goto(base);
  await m.getByTestId("auth-username").fill(`ua${suffix}`);
  await m.getByTestId("auth-password").fill(PASSWORD);
  await m.getByTestId("auth-submit").click();
  await connected(m);
  await m.getByTestId("room-list").getByTestId("room-item").first().waitFor();
  check(!(await m.getByTestId("chat-pane").isVisible()), "on a phone the list shows alone");
  await shot(m, "09-mobile-list");
  await m.getByTestId("room-item").filter({ has: m.getByTestId("room-name").getByText("♥") }).getByRole("button").tap();
  await messageWithText(m, "다시 만나서 반가워요").waitFor();
  check(!(await m.getByTestId("room-list").isVisible()), "on a phone the chat shows alone");
  await shot(m, "10-mobile-chat");
  await m.getByTestId("chat-back").tap();
  await m.getByTestId("room-list").waitFor();
  await M.context.close();
  log("mobile: list and chat are separate views");

  step = "logout";
  await a.getByTestId("logout").click();
  await a.getByTestId("auth-view").waitFor();
  await a.reload();
  await a.getByTestId("auth-view").waitFor();
  log("logout ends the session");

  noPageErrors();
}

run(story, () => step);

// Typing notices are best effort (the server drops those past one a second,
// and the indicator fades): the typist keeps typing, as a person does, until
// the watcher shows it, within WAIT.
async function typingSeen(typist, watcher, name, text) {
  const indicator = watcher.getByTestId("typing-indicator").filter({ hasText: `${name}님이 입력 중` });
  const deadline = Date.now() + WAIT;
  await typist.keyboard.type(text);
  for (;;) {
    try {
      await indicator.waitFor({ timeout: 3000 });
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await typist.keyboard.type(" …");
    }
  }
}
