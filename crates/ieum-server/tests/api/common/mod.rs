//! Shared setup for the server's tests: the real actix app on a real database.

use std::path::PathBuf;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test;
use ieum_server::config::Settings;
use ieum_server::{AppState, Config, build_state};
use ieum_test_support::TestDb;
use serde_json::Value;

pub const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978";

pub fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ieum-srv-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn settings(db: &TestDb, data_dir: PathBuf) -> Settings {
    Settings {
        database_url: Some(db.url().to_owned()),
        data_dir: Some(data_dir),
        jwt_secret: Some(SECRET.into()),
        argon2_memory_kib: Some(64),
        argon2_iterations: Some(1),
        login_max_failures_per_user_client: Some(3),
        // Every test client is 127.0.0.1: the per-address and per-user limits
        // are lifted here and set low by the tests of each limit.
        signups_per_hour_per_client: Some(1_000_000),
        rooms_per_hour: Some(1_000_000),
        user_send_rate: Some(1_000_000),
        read_rate: Some(1_000_000),
        reaction_rate: Some(1_000_000),
        couple_code_tries_per_client: Some(1_000_000),
        ..Default::default()
    }
}

pub async fn state(db: &TestDb, data_dir: PathBuf) -> AppState {
    build_state(Config::resolve(settings(db, data_dir)).unwrap())
        .await
        .expect("state")
}

pub async fn app(
    state: AppState,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(ieum_server::app::app(state)).await
}

/// Sends a request and returns status, headers and JSON body.
pub async fn call<S, B>(
    app: &S,
    req: test::TestRequest,
) -> (u16, actix_web::http::header::HeaderMap, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, headers, body)
}

pub fn post_json(path: &str, body: Value) -> test::TestRequest {
    test::TestRequest::post().uri(path).set_json(body)
}

// ---------------------------------------------------------------------------
// A real server on a loopback port, and a real STOMP-over-WebSocket client.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ieum_stomp::{Command, Decoder, Frame, Item, Limits};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const WAIT: Duration = Duration::from_secs(20);

/// The server running on its own actix system thread.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    pub data_dir: PathBuf,
    keep_data: bool,
}

impl TestServer {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: &TestDb, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::start_in(db, temp_dir(), tweak).await
    }

    /// Starts on `data_dir` (a restart: what an earlier server left there).
    pub async fn start_in(
        db: &TestDb,
        data_dir: PathBuf,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut s = settings(db, data_dir.clone());
        s.ws_send_rate = Some(100_000);
        // Bound first, so the URLs the server hands out name its real address.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        s.public_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        tweak(&mut s);
        let config = Config::resolve(s).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let state = build_state(config).await.expect("state");
                let addr = listener.local_addr().expect("addr");
                let options = ieum_server::wsio::listener::Options {
                    workers: Some(2),
                    shutdown_timeout: 1,
                    client_request_timeout: Duration::from_secs(5),
                };
                let server =
                    ieum_server::wsio::listener::serve(state, listener, &options).expect("listen");
                let _ = tx.send((addr, server.handle()));
                let _ = server.await;
            })
        });
        let (addr, handle) = tokio::time::timeout(WAIT, rx)
            .await
            .expect("server start")
            .unwrap();
        Self {
            addr,
            handle,
            thread: Some(thread),
            data_dir,
            keep_data: false,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops, leaving the data directory for [`Self::start_in`].
    pub async fn stop_keeping_data(mut self) -> PathBuf {
        self.keep_data = true;
        let dir = self.data_dir.clone();
        self.stop().await;
        dir
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !self.keep_data {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A tiny HTTP/1.1 client over std TCP (blocking, run on a blocking thread).
pub async fn http_json(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = method.to_owned();
    let path = path.to_owned();
    let token = token.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let status: u16 = raw.split(' ').nth(1).unwrap().parse().unwrap();
        let payload = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        // Chunked bodies are not used by these endpoints' JSON responses.
        (status, serde_json::from_str(payload).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

/// Signs up and returns (access token, user id).
pub async fn signup(server: &TestServer, username: &str) -> (String, String) {
    signup_at(server.addr, username).await
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Stomp {
    ws: Ws,
    decoder: Decoder,
    pending: std::collections::VecDeque<Frame>,
    pub closed: bool,
    /// The code of the server's close frame, once it came.
    pub close_code: Option<u16>,
}

impl Stomp {
    /// Opens the WebSocket only.
    pub async fn open(url: &str) -> Self {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "v12.stomp".parse().unwrap());
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("ws connect in time")
            .expect("ws connect");
        Self {
            ws,
            decoder: Decoder::new(Limits {
                max_frame_bytes: 16 * 1024 * 1024,
                ..Limits::default()
            }),
            pending: Default::default(),
            closed: false,
            close_code: None,
        }
    }

    /// Opens and CONNECTs with a bearer token.
    pub async fn connect(url: &str, token: &str) -> Self {
        let mut c = Self::open(url).await;
        c.send_frame(
            &Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("host", "ieum")
                .header("heart-beat", "0,0")
                .header("Authorization", format!("Bearer {token}")),
        )
        .await;
        let f = c.recv().await.expect("CONNECTED");
        assert_eq!(f.command, Command::Connected, "{f:?}");
        c
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.ws
            .send(WsMessage::Text(
                String::from_utf8_lossy(bytes).into_owned().into(),
            ))
            .await
            .expect("ws send");
    }

    pub async fn send_frame(&mut self, f: &Frame) {
        let bytes = ieum_stomp::encode(f);
        self.send_raw(&bytes).await;
    }

    /// The next frame, or None when the server closed the connection. Panics
    /// after [`WAIT`].
    pub async fn recv(&mut self) -> Option<Frame> {
        self.recv_within(WAIT).await.expect("a frame in time")
    }

    /// Err(()) on timeout.
    pub async fn recv_within(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(f) = self.pending.pop_front() {
                return Ok(Some(f));
            }
            if self.closed {
                return Ok(None);
            }
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(()),
                Ok(m) => m,
            };
            match msg {
                Some(Ok(WsMessage::Text(t))) => self.decoder.push(t.as_bytes()),
                Some(Ok(WsMessage::Binary(b))) => self.decoder.push(&b),
                Some(Ok(WsMessage::Close(frame))) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    self.closed = true;
                    continue;
                }
                None | Some(Err(_)) => {
                    self.closed = true;
                    continue;
                }
                Some(Ok(_)) => continue,
            }
            while let Some(item) = self.decoder.next().expect("server frames decode") {
                if let Item::Frame(f) = item {
                    self.pending.push_back(f);
                }
            }
        }
    }

    pub async fn subscribe(
        &mut self,
        id: &str,
        destination: &str,
        extra: &[(&str, &str)],
    ) -> Frame {
        let mut f = Frame::new(Command::Subscribe)
            .header("id", id)
            .header("destination", destination)
            .header("receipt", format!("sub-{id}"));
        for (k, v) in extra {
            f = f.header(*k, *v);
        }
        self.send_frame(&f).await;
        self.expect_receipt(&format!("sub-{id}")).await
    }

    /// Waits for the RECEIPT with this id; MESSAGE frames before it are kept.
    pub async fn expect_receipt(&mut self, receipt: &str) -> Frame {
        let mut kept = std::collections::VecDeque::new();
        loop {
            let f = self
                .recv()
                .await
                .unwrap_or_else(|| panic!("closed before RECEIPT {receipt}"));
            match f.command {
                Command::Receipt if f.get("receipt-id") == Some(receipt) => {
                    kept.extend(self.pending.drain(..));
                    self.pending = kept;
                    return f;
                }
                Command::Error => panic!("ERROR instead of RECEIPT {receipt}: {f:?}"),
                _ => kept.push_back(f),
            }
        }
    }

    pub async fn send_json(
        &mut self,
        destination: &str,
        body: &Value,
        receipt: Option<&str>,
        extra: &[(&str, &str)],
    ) {
        let mut f = Frame::new(Command::Send)
            .header("destination", destination)
            .header("content-type", "application/json");
        if let Some(r) = receipt {
            f = f.header("receipt", r);
        }
        for (k, v) in extra {
            f = f.header(*k, *v);
        }
        self.send_frame(&f.body(body.to_string())).await;
    }

    /// Sends `content` to `room` (native destination) and waits for its RECEIPT.
    pub async fn say(&mut self, room: &str, content: &str) {
        let receipt = format!("say-{}", uuid::Uuid::new_v4().simple());
        self.send_json(
            &format!("/app/rooms/{room}/messages"),
            &serde_json::json!({ "content": content }),
            Some(&receipt),
            &[],
        )
        .await;
        self.expect_receipt(&receipt).await;
    }

    /// The next MESSAGE frame carrying a chat message (or an error notice) and its
    /// JSON body; events (presence, typing, receipts) and other frames are skipped.
    pub async fn next_message(&mut self) -> (Frame, Value) {
        loop {
            let f = self.recv().await.expect("connection open");
            if f.command == Command::Message && f.get("event").is_none_or(|e| e == "message") {
                let v: Value = serde_json::from_slice(&f.body).expect("JSON body");
                if v["type"] == "SYSTEM" {
                    continue; // joins, leaves, pins: see next_system
                }
                return (f, v);
            }
            assert_ne!(f.command, Command::Error, "{f:?}");
        }
    }

    /// The next SYSTEM message (joins, leaves, kicks, renames, pins).
    pub async fn next_system(&mut self) -> Value {
        loop {
            let f = self.recv().await.expect("connection open");
            if f.command == Command::Message && f.get("event") == Some("message") {
                let v: Value = serde_json::from_slice(&f.body).expect("JSON body");
                if v["type"] == "SYSTEM" {
                    return v;
                }
            }
        }
    }

    /// The next MESSAGE frame whose `event` header is `name`; others are skipped.
    pub async fn next_event(&mut self, name: &str) -> (Frame, Value) {
        loop {
            let f = self.recv().await.expect("connection open");
            if f.command == Command::Message && f.get("event") == Some(name) {
                let v: Value = serde_json::from_slice(&f.body).expect("JSON body");
                return (f, v);
            }
            assert_ne!(f.command, Command::Error, "{f:?}");
        }
    }

    /// Frames that arrive within `wait`, stopping at the first quiet gap.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Ok(Some(f)) = self.recv_within(wait).await {
            out.push(f);
        }
        out
    }

    pub async fn disconnect(mut self) {
        self.send_frame(&Frame::new(Command::Disconnect).header("receipt", "bye"))
            .await;
        let _ = self.expect_receipt("bye").await;
    }
}

// ---------------------------------------------------------------------------
// Real `ieum` processes, for multi-node tests.

/// A running `ieum` binary.
pub struct Node {
    pub child: Option<std::process::Child>,
    pub addr: std::net::SocketAddr,
    pub data_dir: PathBuf,
}

impl Node {
    /// Starts the binary with these extra environment variables and waits for
    /// its "listening" log line.
    pub fn spawn(env: &[(&str, String)]) -> Node {
        use std::io::BufRead;
        let data_dir = temp_dir();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ieum"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IEUM_ADDR", "127.0.0.1:0")
            .env("IEUM_DATA_DIR", &data_dir)
            .env("IEUM_JWT_SECRET", SECRET)
            .env("IEUM_ARGON2_MEMORY_KIB", "64")
            .env("IEUM_ARGON2_ITERATIONS", "1")
            .env("IEUM_WS_SEND_RATE", "100000")
            // Every client is 127.0.0.1: lift the per-address and per-user limits.
            .env("IEUM_SIGNUPS_PER_HOUR_PER_CLIENT", "1000000")
            .env("IEUM_ROOMS_PER_HOUR", "1000000")
            .env("IEUM_USER_SEND_RATE", "1000000")
            .env("IEUM_READ_RATE", "1000000")
            .env("IEUM_REACTION_RATE", "1000000")
            .env("IEUM_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ieum");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if !sent && let Some(i) = line.find("open http://") {
                    let addr = line[i + 12..].split('/').next().unwrap().to_owned();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .expect("node reported listening")
            .parse()
            .unwrap();
        Node {
            child: Some(child),
            addr,
            data_dir,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Signs up on a server's or node's address; returns (access token, user id).
pub async fn signup_at(addr: std::net::SocketAddr, username: &str) -> (String, String) {
    let (s, body) = http_json(
        addr,
        "POST",
        "/auth/signup",
        None,
        Some(serde_json::json!({"username": username, "password": "testpass"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let token = body["data"]["accessToken"].as_str().unwrap().to_owned();
    let (_, me) = http_json(addr, "GET", "/api/me", Some(&token), None).await;
    (token, me["id"].as_str().unwrap().to_owned())
}

/// `POST /api/rooms` with this name (a public group room); answers its id.
pub async fn create_room(addr: std::net::SocketAddr, token: &str, name: &str) -> String {
    let (status, room) = http_json(
        addr,
        "POST",
        "/api/rooms",
        Some(token),
        Some(serde_json::json!({ "name": name })),
    )
    .await;
    assert_eq!(status, 201, "{room}");
    room["id"].as_str().unwrap().to_owned()
}

/// `POST /api/rooms/{room}/join` as `token`'s user; must answer 200.
pub async fn join_room(addr: std::net::SocketAddr, token: &str, room: &str) {
    let (status, body) = http_json(
        addr,
        "POST",
        &format!("/api/rooms/{room}/join"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
