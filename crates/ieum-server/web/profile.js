// One's own profile (name, status, photo, discoverability) and friends
// (requests both ways, add by username, open a 1:1 room).
import * as api from "./api.js";
import { state, emit } from "./state.js";
import { h, field, openDialog, closeDialog, showError, errorText, toast, paintAvatar } from "./ui.js";
import { personRow, openDirect } from "./dialogs.js";

const enc = encodeURIComponent;

export function paintMe() {
  const me = state.me;
  if (!me) return;
  document.getElementById("me-name").textContent = me.displayName || me.username;
  paintAvatar(document.getElementById("me-avatar"), { name: me.displayName || me.username, imageUrl: me.profileImageUrl, key: me.id });
}

export function openProfile() {
  const me = state.me;
  const pic = h("span.avatar.large", { "aria-hidden": "true", dataset: { testid: "profile-avatar" } });
  paintAvatar(pic, { name: me.displayName, imageUrl: me.profileImageUrl, key: me.id });
  const file = h("input.file-hidden", { id: "profile-image-input", type: "file", accept: "image/png,image/jpeg,image/webp,image/gif", dataset: { testid: "profile-image-input" } });
  const progress = h("progress", { max: "100", value: "0", hidden: true, "aria-label": "사진 올리는 중" });
  const [fName, name] = field("이름", { value: me.displayName || "", maxlength: "50", required: true, dataset: { testid: "profile-displayname" } });
  const [fStatus, status] = field("상태 메시지", { value: me.statusMessage || "", maxlength: "140", dataset: { testid: "profile-status" } });
  const disc = h("input", { id: "profile-discoverable", type: "checkbox", checked: !!me.discoverable, dataset: { testid: "profile-discoverable" } });
  const err = h("p.form-error", { role: "alert" });
  const save = h("button.primary", { type: "submit", dataset: { testid: "profile-save" } }, "저장");
  file.addEventListener("change", async () => {
    const f = file.files[0];
    file.value = "";
    if (!f) return;
    err.textContent = "";
    progress.hidden = false;
    try {
      const att = await api.uploadFile(f, { purpose: "profile_image", onProgress: (x) => (progress.value = Math.round(x * 100)) });
      state.me = await api.patch("/api/me", { profileImageAttachmentId: att.id });
      paintAvatar(pic, { name: state.me.displayName, imageUrl: state.me.profileImageUrl, key: me.id });
      paintMe();
      toast("프로필 사진을 바꿨어요");
    } catch (e) {
      err.textContent = errorText(e);
    } finally {
      progress.hidden = true;
    }
  });
  const removePic = h("button.text-btn", {
    type: "button",
    hidden: !me.profileImageUrl,
    onclick: async () => {
      try {
        state.me = await api.patch("/api/me", { profileImageUrl: null });
        paintAvatar(pic, { name: state.me.displayName, key: me.id });
        removePic.hidden = true;
        paintMe();
      } catch (e) {
        showError(e);
      }
    },
  }, "사진 지우기");
  const form = h(
    "form.stack",
    null,
    h("div.profile-top", null, pic, h("div.stack", null, h("p", null, h("strong", null, `@${me.username}`)), file, h("label.file-label", { for: "profile-image-input" }, "사진 바꾸기"), progress, removePic)),
    fName,
    fStatus,
    h("label.check", { for: "profile-discoverable" }, disc, " 다른 사람이 내 아이디로 나를 찾을 수 있게 하기"),
    err,
    save,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    save.disabled = true;
    try {
      state.me = await api.patch("/api/me", {
        displayName: name.value.trim() || me.username,
        statusMessage: status.value.trim() || null,
        discoverable: disc.checked,
      });
      paintMe();
      toast("프로필을 저장했어요");
      closeDialog();
    } catch (x) {
      err.textContent = errorText(x);
    } finally {
      save.disabled = false;
    }
  });
  openDialog("내 프로필", form, { testid: "profile" });
}

// ---------------------------------------------------------------- friends

export async function openFriends() {
  const [fAdd, add] = field("아이디로 친구 요청", { autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: "32", dataset: { testid: "friend-username" } });
  const err = h("p.form-error", { role: "alert" });
  const addForm = h("form.stack", null, h("div.row.bottom", null, fAdd, h("button.primary", { type: "submit", dataset: { testid: "friend-add" } }, "요청")), err);
  const incoming = h("ul.people", { dataset: { testid: "friend-incoming" } });
  const outgoing = h("ul.people", { dataset: { testid: "friend-outgoing" } });
  const friends = h("ul.people", { dataset: { testid: "friend-list" } });
  const body = h(
    "div.stack",
    null,
    addForm,
    h("h3", null, "받은 요청"),
    incoming,
    h("h3", null, "친구"),
    friends,
    h("h3", null, "보낸 요청"),
    outgoing,
  );
  const reload = async () => {
    try {
      const [f, r] = await Promise.all([api.get("/api/friends"), api.get("/api/friends/requests")]);
      incoming.replaceChildren(...r.incoming.map((u) =>
        personRow(
          u,
          h("button.primary", { type: "button", dataset: { testid: "friend-accept" }, onclick: () => api.post(`/api/friends/${enc(u.id)}`).then(reload, showError) }, "수락"),
          h("button", { type: "button", onclick: () => api.del(`/api/friends/${enc(u.id)}`).then(reload, showError) }, "거절"),
        )));
      if (!r.incoming.length) incoming.append(h("li.empty", null, "없어요"));
      friends.replaceChildren(...f.friends.map((u) =>
        personRow(
          u,
          h("button.primary", { type: "button", onclick: () => openDirect(u.id) }, "대화"),
          h("button.text-btn", { type: "button", "aria-label": `${u.displayName} 친구 끊기`, onclick: () => api.del(`/api/friends/${enc(u.id)}`).then(reload, showError) }, "끊기"),
        )));
      if (!f.friends.length) friends.append(h("li.empty", null, "아직 친구가 없어요"));
      outgoing.replaceChildren(...r.outgoing.map((u) =>
        personRow(u, h("button.text-btn", { type: "button", onclick: () => api.del(`/api/friends/${enc(u.id)}`).then(reload, showError) }, "취소")),
      ));
      if (!r.outgoing.length) outgoing.append(h("li.empty", null, "없어요"));
    } catch (e) {
      showError(e);
    }
  };
  addForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const v = add.value.trim().toLowerCase();
    if (!v) return;
    try {
      const r = await api.post("/api/friends/requests", { username: v });
      toast(r.state === "friends" ? "친구가 되었어요" : "친구 요청을 보냈어요");
      add.value = "";
      reload();
    } catch (x) {
      err.textContent = errorText(x);
    }
  });
  openDialog("친구", body, { testid: "friends" });
  await reload();
  emit("friends-opened");
}
