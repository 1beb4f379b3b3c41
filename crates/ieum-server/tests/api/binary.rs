//! The real `ieum` binary as an operator runs it: embedded defaults, PostgreSQL
//! by URL, `ieum migrate`, refusal of development secrets in production,
//! graceful exit on SIGTERM, and its open-files limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ieum_test_support::PgDatabase;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ieum");
const WAIT: Duration = Duration::from_secs(30);

pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) addr: String,
    /// The "ieum starting" log line.
    started: String,
    /// Every log line so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Waits for a log line holding every one of `parts`; answers the log.
    pub(crate) fn wait_for_log(&self, parts: &[&str]) -> Vec<String> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.iter().any(|l| parts.iter().all(|p| l.contains(p))) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {parts:?} in {log:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn base_command(data_dir: &Path) -> Command {
    with_env(Command::new(BIN), data_dir)
}

fn with_env(mut cmd: Command, data_dir: &Path) -> Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IEUM_ADDR", "127.0.0.1:0")
        .env("IEUM_DATA_DIR", data_dir)
        .env("IEUM_ARGON2_MEMORY_KIB", "64")
        .env("IEUM_ARGON2_ITERATIONS", "1")
        .env("IEUM_LOG", "info");
    cmd
}

/// Starts the binary and waits for its "listening" log line, which names the port.
pub(crate) fn start(mut cmd: Command) -> Server {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ieum");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        let mut started = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line.clone());
            if line.contains("ieum starting") {
                started = line.clone();
            }
            if let Some(i) = line.find("open http://") {
                let rest = &line[i + "open http://".len()..];
                let addr = rest.split('/').next().unwrap().to_owned();
                let _ = tx.send((addr, std::mem::take(&mut started)));
            }
        }
    });
    let (addr, started) = rx
        .recv_timeout(WAIT)
        .expect("server did not report listening in time");
    Server {
        child: Some(child),
        addr,
        started,
        log,
    }
}

fn http(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status: u16 = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let payload = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

pub(crate) fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ieum-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sigterm(server: &mut Server) -> std::process::ExitStatus {
    let mut child = server.child.take().expect("running");
    let pid = child.id().to_string();
    let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(ok.success());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(WAIT) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("no exit within {WAIT:?} after SIGTERM");
        }
    }
}

#[test]
fn embedded_defaults_serve_and_keep_accounts_across_restarts() {
    let dir = temp_dir();
    let mut server = start(base_command(&dir));
    // The start log says what runs, how, and where its data is.
    for said in [
        concat!("version=", env!("CARGO_PKG_VERSION")),
        "mode=Development",
        "database=sqlite:",
        "fan_out=in-process",
        &format!("data_dir={}", dir.display()),
        "files=\"local disk\"",
        "ws_max_connections=",
        "db_max_connections=",
    ] {
        assert!(
            server.started.contains(said),
            "{said:?} in {:?}",
            server.started
        );
    }
    let (s, body) = http(&server.addr, "GET", "/health", None);
    assert_eq!((s, &body["status"]), (200, &json!("ok")));
    let (s, body) = http(
        &server.addr,
        "POST",
        "/auth/signup",
        Some(json!({"username":"testuser","password":"testpass"})),
    );
    assert_eq!(s, 201, "{body}");
    assert!(
        dir.join("ieum.db").exists(),
        "SQLite file under the data dir"
    );
    // Requests log at info, probes at debug; the generated secret is warned of.
    let log = server.wait_for_log(&["path=/auth/signup", "request", "status=201"]);
    assert!(
        !log.iter().any(|l| l.contains("path=/health")),
        "a probe logged at info: {log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("WARN") && l.contains("development secret")),
        "{log:#?}"
    );
    // A connection is logged when it signs in and when it ends, with its
    // user, transport and duration.
    let token = body["data"]["accessToken"].as_str().unwrap().to_owned();
    let ws = format!("ws://{}/ws/chat", server.addr);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        crate::common::Stomp::connect(&ws, &token)
            .await
            .disconnect()
            .await
    });
    server.wait_for_log(&["connected", "user=testuser", "transport=\"stomp\""]);
    server.wait_for_log(&["disconnected", "user=testuser", "seconds="]);
    let status = sigterm(&mut server);
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");

    let server = start(base_command(&dir));
    let (s, body) = http(
        &server.addr,
        "POST",
        "/auth/login",
        Some(json!({"username":"testuser","password":"testpass"})),
    );
    assert_eq!(s, 200, "account survived the restart: {body}");
    assert_eq!(body["success"], true);
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}

/// (soft, hard) "Max open files" of a process, from /proc.
#[cfg(target_os = "linux")]
fn open_files_limit(pid: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let n = |v: &str| v.parse().unwrap_or(u64::MAX); // "unlimited"
    let mut v = line["Max open files".len()..].split_whitespace();
    (n(v.next().unwrap()), n(v.next().unwrap()))
}

#[cfg(target_os = "linux")]
#[test]
fn raises_its_open_files_limit_to_the_hard_limit() {
    const LOW: u64 = 256;
    let (_, hard) = open_files_limit("self");
    assert!(
        hard > LOW,
        "this test needs a hard open-files limit above {LOW}, not {hard}"
    );
    let dir = temp_dir();
    // Started as systemd and many shells start services: a low soft limit
    // under a higher hard one.
    let mut sh = Command::new("bash");
    sh.args(["-c", &format!("ulimit -S -n {LOW} && exec \"$0\""), BIN]);
    let server = start(with_env(sh, &dir));
    let pid = server.child.as_ref().unwrap().id().to_string();
    assert_eq!(open_files_limit(&pid), (hard, hard));
    let (s, _) = http(&server.addr, "GET", "/health", None);
    assert_eq!(s, 200);
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn production_refuses_a_development_secret() {
    let dir = temp_dir();
    for secret in [None, Some("dev-secret")] {
        let mut cmd = base_command(&dir);
        cmd.env("IEUM_ENV", "production");
        if let Some(s) = secret {
            cmd.env("IEUM_JWT_SECRET", s);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("IEUM_JWT_SECRET"), "{err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_by_url_with_migrate_subcommand() {
    let db = PgDatabase::create().await;
    let dir = temp_dir();
    let url = db.url().to_owned();
    let dir2 = dir.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let out = base_command(&dir2)
            .env("DATABASE_URL", &url)
            .arg("migrate")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("applied ") && !stdout.contains("applied 0 "),
            "{stdout}"
        );
        let mut cmd = base_command(&dir2);
        cmd.env("DATABASE_URL", &url);
        let server = start(cmd);
        let (s, body) = http(&server.addr, "GET", "/ready", None);
        assert_eq!(s, 200, "{body}");
        let (s, _) = http(
            &server.addr,
            "POST",
            "/auth/signup",
            Some(json!({"username":"pguser","password":"testpass"})),
        );
        assert_eq!(s, 201);
        assert!(
            !dir2.join("ieum.db").exists(),
            "no SQLite file when on PostgreSQL"
        );
    });
    handle.await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}
