//! A database outage under traffic (issue 21): a PostgreSQL cluster of the
//! test's own (initdb on a free port, so the shared one is untouched) is
//! stopped for 10 s while a real STOMP client sends and another listens,
//! then started again. Every acknowledged message is stored once, the
//! room's seqs have no gap, the listener gets everything (resuming by seq
//! if its connection ended), SENDs during the outage get a retryable code,
//! and `/ready` says 503 while it lasts and 200 after, without a restart.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binary::{base_command, start, temp_dir};
use crate::common::{Stomp, WAIT, http_json, signup_at};
use ieum_stomp::Command as StompCommand;
use serde_json::{Value, json};

/// Debian's server binaries of the newest PostgreSQL installed.
fn pg_bin() -> String {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries under /usr/lib/postgresql (Debian: postgresql)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let v = versions
        .last()
        .expect("a PostgreSQL version under /usr/lib/postgresql");
    format!("/usr/lib/postgresql/{v}/bin")
}

/// A PostgreSQL cluster of one test, run as the `postgres` user; stopped
/// and removed on drop.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

fn as_postgres(args: &[&str]) -> std::process::ExitStatus {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .status()
        .expect("runuser")
}

impl Cluster {
    fn create() -> Self {
        let dir = std::env::temp_dir().join(format!("ieum-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap()
                .success()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        let initdb = format!("{}/initdb", pg_bin());
        let status = as_postgres(&[
            &initdb,
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        assert!(status.success(), "initdb failed");
        let cluster = Self { dir, port };
        cluster.start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let pg_ctl = format!("{}/pg_ctl", pg_bin());
        let log = self.dir.join("log");
        let status = as_postgres(&[
            &pg_ctl,
            "-D",
            self.data().to_str().unwrap(),
            "-o",
            &options,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        assert!(
            status.success(),
            "pg_ctl start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn stop(&self) {
        let pg_ctl = format!("{}/pg_ctl", pg_bin());
        let status = as_postgres(&[
            &pg_ctl,
            "-D",
            self.data().to_str().unwrap(),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
        assert!(status.success(), "pg_ctl stop");
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = format!("{}/pg_ctl", pg_bin());
        let _ = as_postgres(&[
            &pg_ctl,
            "-D",
            self.data().to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ready(addr: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = write!(
        s,
        "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Polls `/ready` until it answers `want`.
fn wait_ready(addr: &str, want: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = ready(addr);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/ready answered {got}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends message `n` until a RECEIPT acknowledges it; answers the refusals
/// seen on the way (reconnecting when the connection ended).
async fn send_until_acked(
    ws: &mut Stomp,
    url: &str,
    token: &str,
    room: &str,
    n: usize,
) -> Vec<String> {
    let mut refusals = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < give_up,
            "message {n} never acknowledged: {refusals:?}"
        );
        let receipt = format!("r{n}-{}", refusals.len());
        ws.send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"content": format!("m{n}"), "clientMsgId": format!("c{n}")}),
            Some(&receipt),
            &[],
        )
        .await;
        loop {
            match ws.recv_within(Duration::from_secs(30)).await {
                Ok(Some(f))
                    if f.command == StompCommand::Receipt
                        && f.get("receipt-id") == Some(&receipt) =>
                {
                    return refusals;
                }
                Ok(Some(f)) if f.get("destination") == Some("/user/queue/errors") => {
                    let body: Value = serde_json::from_slice(&f.body).unwrap();
                    if body["receiptId"] == receipt.as_str() {
                        refusals.push(body["code"].as_str().unwrap().to_owned());
                        break;
                    }
                }
                Ok(Some(f)) if f.command == StompCommand::Error => {
                    refusals.push(f.get("code").unwrap_or("error").to_owned());
                    *ws = reconnect(url, token).await;
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(()) => {
                    refusals.push("connection".into());
                    *ws = reconnect(url, token).await;
                    break;
                }
            }
        }
        // A client backs off before it retries.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn reconnect(url: &str, token: &str) -> Stomp {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Ok(mut ws)) = tokio::time::timeout(Duration::from_secs(5), async {
            Ok::<_, ()>(Stomp::connect(url, token).await)
        })
        .await
        {
            ws.subscribe("e", "/user/queue/errors", &[]).await;
            return ws;
        }
        assert!(Instant::now() < deadline, "no reconnect");
    }
}

/// A message frame's (seq, content).
fn message_of(f: &ieum_stomp::Frame) -> Option<(i64, String)> {
    if f.command != StompCommand::Message {
        return None;
    }
    let body: Value = serde_json::from_slice(&f.body).ok()?;
    Some((body["seq"].as_i64()?, body["content"].as_str()?.to_owned()))
}

#[test]
fn a_database_outage_loses_and_doubles_nothing() {
    let cluster = Cluster::create();
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            use sea_orm::{ConnectionTrait, Database};
            let admin = Database::connect(cluster.url("postgres")).await.unwrap();
            admin
                .execute_unprepared("CREATE DATABASE ieum")
                .await
                .unwrap();
            admin.close().await.unwrap();
        });
    }
    let dir = temp_dir();
    let mut cmd = base_command(&dir);
    cmd.env("DATABASE_URL", cluster.url("ieum"));
    let server = start(cmd);
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let url = format!("ws://{addr}/ws/chat");
    assert_eq!(ready(&server.addr), 200);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (alice, _) = signup_at(addr, "alice").await;
        let (bob, _) = signup_at(addr, "bob").await;
        let room = crate::common::create_room(addr, &alice, "r").await;
        crate::common::join_room(addr, &bob, &room).await;
        let topic = format!("/topic/rooms/{room}");
        let mut bw = Stomp::connect(&url, &bob).await;
        bw.subscribe("s", &topic, &[]).await;
        let mut aw = reconnect(&url, &alice).await;

        let mut refusals = Vec::new();
        for n in 0..15 {
            refusals.extend(send_until_acked(&mut aw, &url, &alice, &room, n).await);
        }
        assert!(refusals.is_empty(), "{refusals:?}");

        cluster.stop();
        let stopped = Instant::now();
        let probe = server.addr.clone();
        tokio::task::spawn_blocking(move || wait_ready(&probe, 503))
            .await
            .unwrap();
        // Sends during the outage: refused with a retryable code, retried.
        let mut during = Vec::new();
        let outage = Duration::from_secs(10);
        let sender = async {
            let mut n = 15;
            while stopped.elapsed() < outage + Duration::from_secs(20) && n < 30 {
                during.extend(send_until_acked(&mut aw, &url, &alice, &room, n).await);
                n += 1;
            }
            n
        };
        let restart = async {
            tokio::time::sleep(outage.saturating_sub(stopped.elapsed())).await;
            cluster.start();
            let probe = server.addr.clone();
            tokio::task::spawn_blocking(move || wait_ready(&probe, 200))
                .await
                .unwrap();
        };
        let (sent, ()) = tokio::join!(sender, restart);
        assert!(
            !during.is_empty()
                && during
                    .iter()
                    .all(|c| c == "unavailable" || c == "connection"),
            "refusals during the outage are retryable: {during:?}"
        );
        for n in sent..30 {
            refusals.extend(send_until_acked(&mut aw, &url, &alice, &room, n).await);
        }
        assert!(
            refusals.is_empty(),
            "after the restart every SEND is taken: {refusals:?}"
        );

        // A failover: every connection of the server cut at once.
        {
            use sea_orm::{ConnectionTrait, Database};
            let admin = Database::connect(cluster.url("postgres")).await.unwrap();
            admin
                .execute_unprepared(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = 'ieum' AND pid <> pg_backend_pid()",
                )
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
        let mut after_cut = Vec::new();
        for n in 30..40 {
            after_cut.extend(send_until_acked(&mut aw, &url, &alice, &room, n).await);
        }
        assert!(
            after_cut
                .iter()
                .all(|c| c == "unavailable" || c == "connection"),
            "refusals after the cut are retryable: {after_cut:?}"
        );
        assert_eq!(ready(&server.addr), 200);

        // The store: each of the 40 once, seqs without a gap.
        let (s, page) = http_json(
            addr,
            "GET",
            &format!("/api/rooms/{room}/messages?limit=500"),
            Some(&alice),
            None,
        )
        .await;
        assert_eq!(s, 200, "{page}");
        let messages = page["messages"].as_array().unwrap();
        let seqs: Vec<i64> = messages
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "no gap");
        let mut texts: Vec<&str> = messages
            .iter()
            .filter(|m| m["type"] == "TEXT")
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        texts.sort_unstable();
        let mut expected: Vec<String> = (0..40).map(|n| format!("m{n}")).collect();
        expected.sort_unstable();
        assert_eq!(texts, expected, "every acknowledged message once");

        // The listener has all of them, resuming by seq where it lost any.
        let mut heard = std::collections::BTreeSet::new();
        let mut last = 0;
        let deadline = tokio::time::Instant::now() + WAIT;
        while heard.len() < 40 {
            match bw.recv_within(deadline - tokio::time::Instant::now()).await {
                Ok(Some(f)) => {
                    if let Some((seq, content)) = message_of(&f) {
                        last = last.max(seq);
                        if content.starts_with('m') {
                            heard.insert(content);
                        }
                    }
                }
                Ok(None) => {
                    bw = Stomp::connect(&url, &bob).await;
                    let from = last.to_string();
                    bw.subscribe("s", &topic, &[("last-seq", from.as_str())])
                        .await;
                }
                Err(()) => panic!("the listener has {} of 40: {heard:?}", heard.len()),
            }
        }
        let expected: std::collections::BTreeSet<String> =
            (0..40).map(|n| format!("m{n}")).collect();
        assert_eq!(heard, expected, "the listener heard every message");
    });
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}
