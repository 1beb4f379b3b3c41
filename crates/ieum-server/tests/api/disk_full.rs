//! A full disk (issue 21): the embedded server's data directory on a small
//! tmpfs of the test's own. Once the disk is full a SEND is refused with
//! `storage_full` (nothing half written), the node stays up, the SQLite
//! file passes its integrity check, and after space is freed the same SEND
//! goes through, stored once. Needs root to mount; fails loudly otherwise.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binary::{base_command, start};
use crate::common::{Stomp, http_json, signup_at};
use ieum_stomp::Command as StompCommand;
use serde_json::{Value, json};

/// A tmpfs of `size` mounted for one test; unmounted and removed on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ieum-full-{}", uuid::Uuid::new_v4().simple()));
        Self::mount_at(dir, size)
    }

    fn mount_at(dir: PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: the disk-full test needs root (scripts/test runs as root in CI)"
        );
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a file until the disk has no room left.
fn fill(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

/// SENDs message `n` once: the RECEIPT, or the refusal's code.
async fn send_once(ws: &mut Stomp, room: &str, n: usize, body: &str) -> Result<(), String> {
    let receipt = format!("r{n}-{}", uuid::Uuid::new_v4().simple());
    ws.send_json(
        &format!("/app/rooms/{room}/messages"),
        &json!({"content": body, "clientMsgId": format!("c{n}")}),
        Some(&receipt),
        &[],
    )
    .await;
    loop {
        let f = ws.recv().await.expect("the connection stays open");
        if f.command == StompCommand::Receipt && f.get("receipt-id") == Some(&receipt) {
            return Ok(());
        }
        if f.get("destination") == Some("/user/queue/errors") {
            let e: Value = serde_json::from_slice(&f.body).unwrap();
            if e["receiptId"] == receipt.as_str() {
                return Err(e["code"].as_str().unwrap().to_owned());
            }
        }
    }
}

#[test]
fn a_full_disk_refuses_clearly_and_recovers() {
    let disk = SmallDisk::mount("6m");
    let data = disk.0.join("data");
    let cmd = base_command(&data);
    let server = start(cmd);
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (alice, _) = signup_at(addr, "alice").await;
        let room = crate::common::create_room(addr, &alice, "r").await;
        let mut ws = Stomp::connect(&format!("ws://{addr}/ws/chat"), &alice).await;
        ws.subscribe("e", "/user/queue/errors", &[]).await;
        let text = |n: usize| format!("{n:04} {}", "가".repeat(600));
        for n in 0..5 {
            send_once(&mut ws, &room, n, &text(n))
                .await
                .expect("room on the disk");
        }

        let filler = disk.0.join("filler");
        fill(&filler);
        // SQLite may still find room in free pages for a while: send until
        // the disk says no, and every refusal must be storage_full.
        let mut n = 5;
        let refused = loop {
            assert!(n < 2000, "the disk never filled");
            match send_once(&mut ws, &room, n, &text(n)).await {
                Ok(()) => n += 1,
                Err(code) => break code,
            }
        };
        assert_eq!(refused, "storage_full");
        let (status, _) = http_json(addr, "GET", "/health", None, None).await;
        assert_eq!(status, 200, "the node stays up");
        let (status, body) = http_json(
            addr,
            "POST",
            &format!("/api/rooms/{room}/read"),
            Some(&alice),
            Some(json!({"seq": 1})),
        )
        .await;
        assert!(
            status == 200 || (status == 503 && body["code"] == "storage_full"),
            "{status} {body}"
        );

        std::fs::remove_file(&filler).unwrap();
        // The refused message goes through with the same client id, once.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match send_once(&mut ws, &room, n, &text(n)).await {
                Ok(()) => break,
                Err(code) => {
                    assert_eq!(code, "storage_full");
                    assert!(
                        Instant::now() < deadline,
                        "no recovery after space was freed"
                    );
                }
            }
        }
        send_once(&mut ws, &room, n + 1, &text(n + 1))
            .await
            .unwrap();
        let (status, page) = http_json(
            addr,
            "GET",
            &format!("/api/rooms/{room}/messages?limit=500"),
            Some(&alice),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let msgs = page["messages"].as_array().unwrap();
        let seqs: Vec<i64> = msgs.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "no gap");
        let mut texts: Vec<String> = msgs
            .iter()
            .filter(|m| m["type"] == "TEXT")
            .map(|m| m["content"].as_str().unwrap()[..4].to_owned())
            .collect();
        let count = texts.len();
        texts.dedup();
        assert_eq!(texts.len(), count, "nothing stored twice");
        assert_eq!(count, n + 2, "every acknowledged message, and only those");

        // The file is sound.
        use sea_orm::{ConnectionTrait, Database};
        let url = format!("sqlite://{}?mode=ro", data.join("ieum.db").display());
        let db = Database::connect(url).await.unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "PRAGMA integrity_check",
            ))
            .await
            .unwrap()
            .unwrap();
        let verdict: String = row.try_get_by_index(0).unwrap();
        assert_eq!(verdict, "ok");
        db.close().await.unwrap();
        ws.disconnect().await;
    });
    drop(server);
}

/// The upload directory alone on a small disk (the database elsewhere, as
/// when files outgrow the disk first): a presigned PUT that finds the disk
/// full is refused with 503 `storage_full`, leaves nothing behind, and chat
/// goes on; once space is freed the same PUT goes through and completes.
#[tokio::test]
async fn a_full_upload_disk_refuses_uploads_clearly_and_recovers() {
    use crate::common::{TestServer, signup};
    use crate::uploads::{begin, complete, put};
    let data = crate::common::temp_dir();
    let files = SmallDisk::mount_at(data.join("files"), "2m");
    let db = ieum_test_support::TestDb::sqlite().await;
    let server = TestServer::start_in(&db, data.clone(), |_| {}).await;
    let (alice, _) = signup(&server, "alice").await;
    let room = crate::common::create_room(server.addr, &alice, "r").await;
    let mut document =
        b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    document.extend((0..512 * 1024).map(|i| b"0123456789abcdef"[i % 16]));
    document.extend_from_slice(b"\n%%EOF\n");

    let filler = files.0.join("filler");
    fill(&filler);
    let upload = begin(
        &server,
        &alice,
        &room,
        "보고서.pdf",
        "application/pdf",
        document.len(),
    )
    .await;
    let refused = put(&upload, document.clone()).await;
    assert_eq!(
        refused.status,
        503,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let problem: Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(problem["code"], "storage_full");
    let left: Vec<PathBuf> = all_files(&files.0)
        .into_iter()
        .filter(|path| path != &filler)
        .collect();
    assert!(left.is_empty(), "nothing half written stays: {left:?}");
    // Chat does not need the upload disk.
    let mut ws = Stomp::connect(&server.ws_url(), &alice).await;
    ws.subscribe("e", "/user/queue/errors", &[]).await;
    send_once(&mut ws, &room, 0, "디스크가 꽉 차도 대화는 된다")
        .await
        .expect("a text message is stored");

    std::fs::remove_file(&filler).unwrap();
    let stored = put(&upload, document.clone()).await;
    assert_eq!(
        stored.status,
        200,
        "{}",
        String::from_utf8_lossy(&stored.body)
    );
    let (status, completed) = complete(&server, &alice, &upload).await;
    assert_eq!(status, 200, "{completed}");
    server.stop().await;
    drop(files);
    let _ = std::fs::remove_dir_all(&data);
}

/// Every file under `dir`, hidden ones (a staging area) included.
fn all_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(all_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}
