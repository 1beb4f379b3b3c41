const $ = (id) => document.getElementById(id);
async function call(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => ({ success: false, message: res.statusText }));
  if (!json.success) throw new Error(json.message || res.statusText);
  return json.data;
}
async function showMe(tokens) {
  sessionStorage.setItem("ieum.tokens", JSON.stringify(tokens));
  const res = await fetch("/api/me", { headers: { authorization: "Bearer " + tokens.accessToken } });
  const me = await res.json();
  $("status").textContent = "Signed in as " + me.displayName + " (@" + me.username + ")";
}
function fail(e) { $("status").textContent = "Error: " + e.message; }
$("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  call("/auth/login", { username: $("username").value, password: $("password").value }).then(showMe, fail);
});
$("signup").addEventListener("click", () => {
  const body = { username: $("username").value, password: $("password").value };
  if ($("displayName").value) body.displayName = $("displayName").value;
  call("/auth/signup", body).then(showMe, fail);
});
