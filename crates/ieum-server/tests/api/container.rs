//! The container image (scripts/image) as client teams start it: through the
//! `testcontainers` crate, with a mapped port, seeded users, STOMP through the
//! container, a volume across containers, a temporary data option, and two
//! containers on the host's PostgreSQL and Redis.
//!
//! The image is built once per run from this suite's own binary (scripts/image
//! --bin), so what is tested is the code under test. A machine without Docker
//! fails these tests, unless IEUM_TEST_SKIP_DOCKER is set (then each says it
//! skips).

use crate::common;

use std::sync::OnceLock;

use common::{SECRET, Stomp, http_json};
use ieum_test_support::{PgDatabase, RedisPrefix, redis_url};
use serde_json::{Value, json};
use testcontainers::core::WaitFor;
use testcontainers::{Container, GenericImage, RunnableImage, clients::Cli};

/// `IEUM_TEST_IMAGE` (scripts/test makes one per run), else `ieum:test`.
fn tag() -> (String, String) {
    let image = std::env::var("IEUM_TEST_IMAGE").unwrap_or_else(|_| "ieum:test".into());
    match image.split_once(':') {
        Some((name, tag)) => (name.to_owned(), tag.to_owned()),
        None => (image, "latest".to_owned()),
    }
}

/// The image of this build, made once per test run; None when skipped.
fn image() -> Option<GenericImage> {
    static BUILT: OnceLock<Option<()>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        if std::env::var_os("IEUM_TEST_SKIP_DOCKER").is_some() {
            return None;
        }
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let out = std::process::Command::new(format!("{root}/scripts/image"))
            .args(["--bin", env!("CARGO_BIN_EXE_ieum"), "--tag"])
            .arg(format!("{}:{}", tag().0, tag().1))
            .output()
            .expect("run scripts/image");
        assert!(
            out.status.success(),
            "scripts/image failed (a Docker engine is needed; IEUM_TEST_SKIP_DOCKER=1 skips these tests): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(())
    });
    match built {
        Some(()) => Some(
            GenericImage::new(tag().0, tag().1)
                .with_exposed_port(8080)
                // The start log's one line a log-based wait matches.
                .with_wait_for(WaitFor::message_on_stdout("ieum ready")),
        ),
        None => {
            eprintln!("IEUM_TEST_SKIP_DOCKER is set: this container test skips");
            None
        }
    }
}

fn docker() -> &'static Cli {
    static CLI: OnceLock<Cli> = OnceLock::new();
    CLI.get_or_init(Cli::default)
}

/// Starts a container off the async runtime (the client blocks until the
/// wait condition holds).
async fn start(image: RunnableImage<GenericImage>) -> Container<'static, GenericImage> {
    tokio::task::spawn_blocking(move || docker().run(image))
        .await
        .expect("the container started")
}

fn docker_cli(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

async fn login(at: std::net::SocketAddr, username: &str, password: &str) -> (u16, Value) {
    http_json(
        at,
        "POST",
        "/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

fn token(body: &Value) -> String {
    body["data"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a token in {body}"))
        .to_owned()
}

/// A named volume, removed with the value.
struct Volume(String);

impl Volume {
    fn new() -> Self {
        let name = format!("ieum-test-{}", uuid::Uuid::new_v4().simple());
        docker_cli(&["volume", "create", &name]);
        Self(name)
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

const SEED: &str = r#"{
  "users": [
    {"username": "alice", "password": "alice-pass", "displayName": "앨리스", "role": "admin"},
    {"username": "bob", "password": "bob-pass", "displayName": "밥"}
  ],
  "rooms": [
    {"id": "general", "name": "General", "owner": "alice", "members": ["bob"]},
    {"type": "couple", "members": ["alice", "bob"]}
  ]
}"#;

/// The one-node path a client team takes: start the image with a mapped port
/// and a seed, log in as a seeded user, sign up a new one over HTTP, chat over
/// STOMP through the container; the process runs as a non-root user, answers
/// its HEALTHCHECK command, and drains on SIGTERM with exit status 0.
#[tokio::test]
async fn a_seeded_container_is_chatted_through_over_http_and_stomp() {
    let Some(image) = image() else { return };
    let node = start(RunnableImage::from(image).with_env_var(("IEUM_SEED", SEED))).await;
    let at = addr(node.get_host_port_ipv4(8080));
    let (s, ready) = http_json(at, "GET", "/ready", None, None).await;
    assert_eq!(s, 200, "{ready}");

    // The seed is there before the first request.
    let (s, body) = login(at, "alice", "alice-pass").await;
    assert_eq!(s, 200, "{body}");
    let alice = token(&body);
    let (_, rooms) = http_json(at, "GET", "/api/rooms", Some(&alice), None).await;
    let rooms = rooms["rooms"].as_array().cloned().unwrap_or_default();
    assert!(
        rooms.iter().any(|r| r["room"]["id"] == "general"),
        "the seeded group: {rooms:?}"
    );
    let (_, couple) = http_json(at, "GET", "/chat/room", Some(&alice), None).await;
    assert_eq!(couple["partner"]["username"], "bob", "{couple}");
    let (_, me) = http_json(at, "GET", "/api/me", Some(&alice), None).await;
    assert_eq!(me["displayName"], "앨리스", "{me}");
    // Her seeded role: the audit log answers her (a member gets 403).
    let (status, audit) = http_json(at, "GET", "/api/admin/audit", Some(&alice), None).await;
    assert_eq!(status, 200, "alice is an admin: {audit}");

    // A new account over HTTP, and a message through the container.
    let (carol, _) = common::signup_at(at, "carol").await;
    common::join_room(at, &carol, "general").await;
    let ws = format!("ws://{at}/ws/chat");
    let mut listener = Stomp::connect(&ws, &carol).await;
    listener.subscribe("s", "/topic/rooms/general", &[]).await;
    let (_, body) = login(at, "bob", "bob-pass").await;
    let mut sender = Stomp::connect(&ws, &token(&body)).await;
    sender.say("general", "컨테이너에서 안녕").await;
    let (_, message) = listener.next_message().await;
    assert_eq!(message["content"], "컨테이너에서 안녕");

    // Non-root, and the HEALTHCHECK's command answers.
    assert_eq!(
        docker_cli(&["inspect", "-f", "{{.Config.User}}", node.id()]),
        "65532:65532"
    );
    let pid = docker_cli(&["inspect", "-f", "{{.State.Pid}}", node.id()]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|id| id == "65532"),
        "{uid}"
    );
    docker_cli(&["exec", node.id(), "/usr/local/bin/ieum", "health"]);

    // SIGTERM with a client connected: the server drains and exits cleanly
    // (a kill after docker's grace period would be 137).
    let id = node.id().to_owned();
    tokio::task::spawn_blocking(move || docker_cli(&["stop", "-t", "20", &id]))
        .await
        .unwrap();
    assert_eq!(
        docker_cli(&["inspect", "-f", "{{.State.ExitCode}}", node.id()]),
        "0"
    );
    // The client was told to go elsewhere before the connection ended.
    let mut told = None;
    while let Some(frame) = listener.recv().await {
        if frame.command == ieum_stomp::Command::Error {
            told = frame.get("code").map(str::to_owned);
        }
    }
    assert_eq!(told.as_deref(), Some("server_shutdown"));
}

/// Data kept in a /data volume outlives the container: a second container on
/// the same volume logs in the account the first made. The seed is not
/// applied twice.
#[tokio::test]
async fn a_volume_keeps_the_data_across_containers() {
    let Some(image) = image() else { return };
    let volume = Volume::new();
    let first = start(
        RunnableImage::from(image.clone())
            .with_volume((volume.0.clone(), "/data".to_owned()))
            .with_env_var(("IEUM_SEED", SEED)),
    )
    .await;
    let at = addr(first.get_host_port_ipv4(8080));
    common::signup_at(at, "dana").await;
    drop(first);

    let second = start(
        RunnableImage::from(image)
            .with_volume((volume.0.clone(), "/data".to_owned()))
            .with_env_var(("IEUM_SEED", SEED)),
    )
    .await;
    let at = addr(second.get_host_port_ipv4(8080));
    let (s, body) = login(at, "dana", "testpass").await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = login(at, "alice", "alice-pass").await;
    assert_eq!(s, 200, "{body}");
    let (_, rooms) = http_json(at, "GET", "/api/rooms", Some(&token(&body)), None).await;
    let groups = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["room"]["id"] == "general")
        .count();
    assert_eq!(groups, 1, "seeded once: {rooms}");
}

/// IEUM_EPHEMERAL: the same container restarted starts clean.
#[tokio::test]
async fn an_ephemeral_container_starts_clean_after_a_restart() {
    let Some(image) = image() else { return };
    let node = start(RunnableImage::from(image).with_env_var(("IEUM_EPHEMERAL", "true"))).await;
    let at = addr(node.get_host_port_ipv4(8080));
    common::signup_at(at, "erin").await;
    let (s, _) = login(at, "erin", "testpass").await;
    assert_eq!(s, 200);
    let id = node.id().to_owned();
    let port = tokio::task::spawn_blocking(move || {
        docker_cli(&["restart", "-t", "20", &id]);
        wait_for_second_start(&id);
        let mapped = docker_cli(&["port", &id, "8080/tcp"]);
        let port = mapped.lines().next().unwrap().rsplit(':').next().unwrap();
        port.parse::<u16>().unwrap()
    })
    .await
    .unwrap();
    let (s, body) = login(addr(port), "erin", "testpass").await;
    assert_eq!(s, 401, "the account went with the temporary data: {body}");
}

/// Follows the container's log until "ieum ready" came a second time (the
/// restarted process listens), within [`common::WAIT`].
fn wait_for_second_start(id: &str) {
    use std::io::BufRead;
    let mut follow = std::process::Command::new("docker")
        .args(["logs", "-f", id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(follow.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let starts = lines.lines().map_while(Result::ok);
        if starts.filter(|l| l.contains("ieum ready")).nth(1).is_some() {
            let _ = tx.send(());
        }
    });
    let seen = rx.recv_timeout(common::WAIT);
    let _ = follow.kill();
    let _ = follow.wait();
    seen.expect("the restarted container said \"ieum ready\"");
}

/// Two containers on the host's PostgreSQL and Redis (host network, each on
/// its own port): a message sent on one reaches a subscriber on the other.
#[tokio::test]
async fn two_containers_share_the_hosts_postgres_and_redis() {
    let Some(image) = image() else { return };
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    // Port 0: each node takes a free port and says which in its ready line.
    let node = || {
        RunnableImage::from(image.clone())
            .with_network("host")
            .with_env_var(("IEUM_ADDR", "127.0.0.1:0"))
            .with_env_var(("DATABASE_URL", db.url().to_owned()))
            .with_env_var(("REDIS_URL", redis_url()))
            .with_env_var(("IEUM_REDIS_PREFIX", prefix.0.clone()))
            .with_env_var(("IEUM_JWT_SECRET", SECRET))
    };
    let a = start(node()).await;
    let b = start(node()).await;
    let (a_at, b_at) = (addr(ready_port(a.id())), addr(ready_port(b.id())));
    let (alice, _) = common::signup_at(a_at, "alice").await;
    let (bob, _) = common::signup_at(b_at, "bob").await;
    let room = common::create_room(a_at, &alice, "across").await;
    common::join_room(b_at, &bob, &room).await;
    for at in [a_at, b_at] {
        crate::multinode::wait_for_bus_at(at).await;
    }
    let mut listener = Stomp::connect(&format!("ws://{b_at}/ws/chat"), &bob).await;
    listener
        .subscribe("s", &format!("/topic/rooms/{room}"), &[])
        .await;
    let mut sender = Stomp::connect(&format!("ws://{a_at}/ws/chat"), &alice).await;
    sender.say(&room, "다른 컨테이너로").await;
    let (_, message) = listener.next_message().await;
    assert_eq!(message["content"], "다른 컨테이너로");
    drop((a, b));
}

/// The port a host-network container listens on, from its "ieum ready on
/// 127.0.0.1:PORT" line (there once the container started).
fn ready_port(id: &str) -> u16 {
    let logs = docker_cli(&["logs", id]);
    let at = logs.find("ieum ready on 127.0.0.1:").expect("a ready line") + 24;
    let digits: String = logs[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a port")
}
