//! A fake of Firebase Cloud Messaging's HTTP v1 API and Google's OAuth2
//! token endpoint, on a loopback port, for the push tests.
//!
//! It checks what the real services would: the JWT-bearer assertion's RS256
//! signature against the test service account's public key (made per test
//! process: no key sits in the repository), its issuer, audience, scope and
//! lifetime; that each send carries a token it issued, names the account's
//! project and has the v1 shape (`data` values all strings, a collapse key,
//! a notification or a data-only message). A request that fails a check is
//! answered as FCM would (401, 400) and listed in [`FakeFcm::problems`].
//! Tests script answers (503 with `Retry-After`, `UNREGISTERED`) and can
//! hold the token endpoint (a node that dies between deciding and sending).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};

pub const PROJECT: &str = "ieum-test";
pub const CLIENT_EMAIL: &str = "push@ieum-test.iam.gserviceaccount.com";
pub const KEY_ID: &str = "test-key-1";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// (private PEM, public PEM), made once per process.
fn key_pair() -> &'static (String, String) {
    static KEYS: OnceLock<(String, String)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa key");
        let private = key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string();
        let public = rsa::RsaPublicKey::from(&key)
            .to_public_key_pem(LineEnding::LF)
            .expect("public pem");
        (private, public)
    })
}

/// What the fake answers a send with, in turn; when none is scripted: 200.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, with `Retry-After` seconds when given.
    Status(u16, Option<u64>),
}

#[derive(Default)]
struct Shared {
    token_uri: String,
    issued: Mutex<HashSet<String>>,
    /// Accepted pushes: the `message` objects.
    pushes: Mutex<Vec<Value>>,
    /// Every send that reached the fake (accepted or not).
    attempts: Mutex<Vec<Value>>,
    problems: Mutex<Vec<String>>,
    script: Mutex<VecDeque<Reply>>,
    unregistered: Mutex<HashSet<String>>,
    hold_tokens: AtomicBool,
    token_requests: Mutex<usize>,
    /// Bumped on every request, for waiters.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    fn problem(&self, what: String) -> HttpResponse {
        self.problems.lock().unwrap().push(what.clone());
        HttpResponse::BadRequest()
            .json(json!({"error": {"code": 400, "message": what, "status": "INVALID_ARGUMENT"}}))
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

pub struct FakeFcm {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    aud: String,
    iat: i64,
    exp: i64,
}

async fn token(shared: web::Data<Arc<Shared>>, form: web::Bytes) -> HttpResponse {
    *shared.token_requests.lock().unwrap() += 1;
    shared.bump();
    while shared.hold_tokens.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pairs: Vec<(String, String)> = url_pairs(&form);
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if field("grant_type").as_deref() != Some(GRANT) {
        return shared.problem(format!("grant_type is {:?}", field("grant_type")));
    }
    let Some(assertion) = field("assertion") else {
        return shared.problem("no assertion".into());
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(key_pair().1.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[shared.token_uri.as_str()]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let decoded = match jsonwebtoken::decode::<Claims>(&assertion, &key, &validation) {
        Ok(decoded) => decoded,
        Err(e) => return shared.problem(format!("assertion refused: {e}")),
    };
    let claims = decoded.claims;
    if decoded.header.kid.as_deref() != Some(KEY_ID) {
        return shared.problem(format!("kid is {:?}", decoded.header.kid));
    }
    if claims.scope != SCOPE || claims.iss != CLIENT_EMAIL || claims.aud != shared.token_uri {
        return shared.problem(format!(
            "claims: {} {} {}",
            claims.scope, claims.iss, claims.aud
        ));
    }
    if claims.exp - claims.iat > 3600 || claims.exp <= claims.iat {
        return shared.problem(format!("lifetime {}", claims.exp - claims.iat));
    }
    let access = format!("ya29.fake-{}", uuid::Uuid::new_v4().simple());
    shared.issued.lock().unwrap().insert(access.clone());
    HttpResponse::Ok()
        .json(json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"}))
}

/// `application/x-www-form-urlencoded`, decoded (`+` and `%XX`).
fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The v1 shape: what FCM would refuse, as a sentence.
fn shape_problem(message: &Value) -> Option<String> {
    if message["token"].as_str().is_none_or(|t| t.is_empty()) {
        return Some("message.token missing".into());
    }
    let Some(data) = message["data"].as_object() else {
        return Some("message.data missing".into());
    };
    if let Some((key, _)) = data.iter().find(|(_, v)| !v.is_string()) {
        return Some(format!("data.{key} is not a string"));
    }
    for key in ["roomId", "messageId", "seq", "type"] {
        if !data.contains_key(key) {
            return Some(format!("data.{key} missing"));
        }
    }
    if !message["android"]["collapse_key"].is_string() {
        return Some("android.collapse_key missing".into());
    }
    let collapse = message["apns"]["headers"]["apns-collapse-id"]
        .as_str()
        .unwrap_or("");
    if collapse.is_empty() || collapse.len() > 64 {
        return Some(format!("apns-collapse-id {collapse:?}"));
    }
    let shown =
        message["notification"]["title"].is_string() && message["notification"]["body"].is_string();
    let data_only = message.get("notification").is_none() && data.contains_key("title");
    if !shown && !data_only {
        return Some("neither a notification nor a data-only message".into());
    }
    let known = [
        "token",
        "data",
        "notification",
        "android",
        "apns",
        "webpush",
        "fcm_options",
    ];
    if let Some(key) = message
        .as_object()
        .and_then(|m| m.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Some(format!("unknown field message.{key}"));
    }
    None
}

async fn send(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let result = send_checked(&shared, &req, &path, &body);
    shared.bump();
    result
}

fn send_checked(shared: &Shared, req: &HttpRequest, project: &str, body: &[u8]) -> HttpResponse {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !shared.issued.lock().unwrap().contains(bearer) {
        shared
            .problems
            .lock()
            .unwrap()
            .push(format!("unknown bearer {bearer:?}"));
        return HttpResponse::Unauthorized().json(
            json!({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}}),
        );
    }
    if project != format!("{PROJECT}/messages:send") {
        return shared.problem(format!("path names {project}"));
    }
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return shared.problem(format!("body is not JSON: {e}")),
    };
    let message = parsed["message"].clone();
    if let Some(problem) = shape_problem(&message) {
        return shared.problem(problem);
    }
    shared.attempts.lock().unwrap().push(message.clone());
    if let Some(reply) = shared.script.lock().unwrap().pop_front() {
        let Reply::Status(status, after) = reply;
        let mut answer =
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
        if let Some(after) = after {
            answer.insert_header(("Retry-After", after.to_string()));
        }
        return answer.json(
            json!({"error": {"code": status, "status": "UNAVAILABLE", "message": "scripted"}}),
        );
    }
    let token = message["token"].as_str().unwrap_or("").to_owned();
    if shared.unregistered.lock().unwrap().contains(&token) {
        return HttpResponse::NotFound().json(json!({"error": {
            "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]
        }}));
    }
    shared.pushes.lock().unwrap().push(message);
    HttpResponse::Ok().json(
        json!({"name": format!("projects/{PROJECT}/messages/{}", uuid::Uuid::new_v4().simple())}),
    )
}

impl FakeFcm {
    /// Starts on a free loopback port, on its own thread.
    pub fn start() -> Self {
        key_pair();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            token_uri: format!("http://{addr}/token"),
            changed: tokio::sync::watch::channel(0).0,
            ..Shared::default()
        });
        let data = shared.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(data.clone()))
                        .route("/token", web::post().to(token))
                        .route("/v1/projects/{rest:.*}", web::post().to(send))
                })
                .workers(1)
                .shutdown_timeout(0)
                .listen(listener)
                .expect("listen")
                .run();
                let _ = tx.send(server.handle());
                let _ = server.await;
            })
        });
        let handle = rx.recv().expect("fake fcm started");
        Self {
            addr,
            shared,
            handle,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:port`: IEUM_FCM_ENDPOINT.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service account's JSON key, its `token_uri` this fake's.
    pub fn account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": KEY_ID,
            "private_key": key_pair().0,
            "client_email": CLIENT_EMAIL,
            "client_id": "1",
            "token_uri": self.shared.token_uri,
        })
        .to_string()
    }

    /// The next sends are answered so, in turn.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Sends to this token are answered `UNREGISTERED`.
    pub fn unregister(&self, token: &str) {
        self.shared
            .unregistered
            .lock()
            .unwrap()
            .insert(token.to_owned());
    }

    /// While held, the token endpoint answers nothing.
    pub fn hold_tokens(&self, hold: bool) {
        self.shared.hold_tokens.store(hold, Ordering::SeqCst);
    }

    pub fn token_requests(&self) -> usize {
        *self.shared.token_requests.lock().unwrap()
    }

    /// Accepted pushes (their `message` objects), in order.
    pub fn pushes(&self) -> Vec<Value> {
        self.shared.pushes.lock().unwrap().clone()
    }

    /// Every well-formed send, whatever it was answered.
    pub fn attempts(&self) -> Vec<Value> {
        self.shared.attempts.lock().unwrap().clone()
    }

    /// Requests that failed a check, as sentences: a test ends with none.
    pub fn problems(&self) -> Vec<String> {
        self.shared.problems.lock().unwrap().clone()
    }

    /// Waits until `done` holds of the fake, or panics after `within`.
    pub async fn wait_until(&self, within: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let mut changed = self.shared.changed.subscribe();
        let waited = tokio::time::timeout(within, async {
            loop {
                if done(self) {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(
            waited.is_ok() && done(self),
            "fake FCM: {what} not within {within:?}; pushes {:?}, problems {:?}",
            self.pushes(),
            self.problems()
        );
    }

    /// Waits for `n` accepted pushes in all.
    pub async fn wait_pushes(&self, n: usize, within: Duration) -> Vec<Value> {
        self.wait_until(within, &format!("{n} pushes"), |f| f.pushes().len() >= n)
            .await;
        self.pushes()
    }
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        self.hold_tokens(false);
        let handle = self.handle.clone();
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
