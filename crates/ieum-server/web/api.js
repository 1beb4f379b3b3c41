// HTTP side of ieum's native API (docs/PROTOCOL.md): the session (access and
// refresh tokens, rotated on every refresh), JSON requests with one retry after
// a refresh, and presigned uploads with progress.

const STORE_KEY = "ieum.session";
const EARLY_REFRESH_MS = 60_000; // refresh this long before the access token expires

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
  }
}

let session = readStored();
let refreshing = null;
let endReason = null; // why the server ended the session (a code such as "suspended")
const listeners = new Set();

function readStored() {
  try {
    const s = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
    return s && s.accessToken && s.refreshToken ? s : null;
  } catch {
    return null;
  }
}

function store(next) {
  session = next;
  if (next) localStorage.setItem(STORE_KEY, JSON.stringify(next));
  else localStorage.removeItem(STORE_KEY);
}

/** `fn(signedIn)` runs when the session starts or ends (here or in another tab). */
export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
function notify() {
  for (const fn of listeners) fn(!!session);
}

// Another tab logged in, refreshed or logged out.
window.addEventListener("storage", (e) => {
  if (e.key !== STORE_KEY) return;
  const had = !!session;
  session = readStored();
  if (had !== !!session) notify();
});

export const signedIn = () => !!session;

/** The claims of a JWT (exp, iat), or {} if unreadable. */
function claimsOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

/** Whether an access token is about to expire: within a minute, or a quarter of its life if shorter. */
function expiring(jwt) {
  const { exp, iat } = claimsOf(jwt);
  if (!exp) return true;
  const margin = iat ? Math.min(EARLY_REFRESH_MS, ((exp - iat) * 1000) / 4) : EARLY_REFRESH_MS;
  return exp * 1000 - Date.now() < margin;
}

async function authCall(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (!res.ok || !json || !json.success) {
    // The /auth envelope carries no code: a suspension is told by its 403 and message.
    const code = json?.code || (res.status === 403 && /suspended/i.test(json?.message || "") ? "suspended" : "");
    throw new ApiError(res.status, code, json?.message || res.statusText);
  }
  return json.data;
}

export async function login(username, password) {
  store(await authCall("/auth/login", { username, password }));
  notify();
}

export async function signup(username, password, displayName, inviteCode) {
  const body = { username, password };
  if (displayName) body.displayName = displayName;
  if (inviteCode) body.inviteCode = inviteCode;
  store(await authCall("/auth/signup", body));
  notify();
}

/** Ends this login on the server (its sockets close) and here. */
export async function logout() {
  const s = session;
  store(null);
  notify();
  if (s) await authCall("/auth/logout", { refreshToken: s.refreshToken }).catch(() => {});
}

/** Drops the session locally (the server already ended it, for `reason`). */
export function forget(reason = null) {
  if (!session) return;
  endReason = reason;
  store(null);
  notify();
}

/** Why the last session ended on the server's word (once), or null. */
export function takeEndReason() {
  const r = endReason;
  endReason = null;
  return r;
}

/**
 * Rotates the refresh token. One refresh at a time in this tab, and across tabs
 * (Web Locks): presenting a token another tab already rotated would be taken
 * as theft and end the login everywhere.
 */
function refresh() {
  if (refreshing) return refreshing;
  const held = session?.refreshToken;
  const run = async () => {
    const latest = readStored();
    if (!latest) throw new ApiError(401, "signed_out", "로그인이 필요합니다");
    if (latest.refreshToken !== held && !expiring(latest.accessToken)) {
      session = latest; // another tab rotated it already
      return;
    }
    try {
      store(await authCall("/auth/refresh", { refreshToken: latest.refreshToken }));
    } catch (e) {
      if (e.status === 401 || e.code === "suspended") {
        if (e.code === "suspended") endReason = "suspended";
        store(null);
        notify();
      }
      throw e;
    }
  };
  const locked = navigator.locks ? () => navigator.locks.request("ieum-refresh", run) : run;
  refreshing = locked().finally(() => (refreshing = null));
  return refreshing;
}

/** A usable access token (refreshed when about to expire); `force` refreshes anyway. */
export async function accessToken(force = false) {
  if (!session) throw new ApiError(401, "signed_out", "로그인이 필요합니다");
  if (force || expiring(session.accessToken)) await refresh();
  if (!session) throw new ApiError(401, "signed_out", "로그인이 필요합니다");
  return session.accessToken;
}

async function errorOf(res) {
  const body = await res.json().catch(() => null);
  return new ApiError(res.status, body?.code, body?.detail || body?.message || res.statusText);
}

/** A JSON request with the Bearer token; a 401 refreshes once and retries. */
export async function request(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const token = await accessToken(attempt > 0);
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401 && attempt === 0) continue;
    if (!res.ok) {
      const e = await errorOf(res);
      if (e.code === "suspended") forget("suspended");
      throw e;
    }
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path, body) => request("DELETE", path, body);

/** `?a=1&b=2` from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Headers a page may not set itself (the browser does).
const FORBIDDEN = new Set(["content-length", "host", "connection", "accept-encoding"]);

/** PUTs `file` to a presigned URL; `onProgress(fraction)` follows the upload. */
function putFile(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method || "PUT", upload.uploadUrl);
    for (const [k, v] of Object.entries(upload.headers || {})) {
      if (!FORBIDDEN.has(k.toLowerCase())) xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        let code = "";
        try {
          code = JSON.parse(xhr.responseText).code;
        } catch {}
        reject(new ApiError(xhr.status, code, `업로드 실패 (${xhr.status}${code ? " " + code : ""})`));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "업로드 중 연결이 끊겼습니다"));
    xhr.send(file);
  });
}

/**
 * The four steps of "Files and images": announce, PUT the bytes, complete.
 * Answers the attachment. `purpose`: message (with roomId), profile_image.
 */
export async function uploadFile(file, { roomId, purpose, onProgress = () => {} } = {}) {
  const body = { fileName: file.name || "file", contentType: file.type || "application/octet-stream", size: file.size };
  if (roomId) body.roomId = roomId;
  if (purpose) body.purpose = purpose;
  const upload = await post("/api/uploads", body);
  onProgress(0);
  await putFile(upload, file, onProgress);
  return post(`/api/uploads/${encodeURIComponent(upload.uploadId)}/complete`);
}
