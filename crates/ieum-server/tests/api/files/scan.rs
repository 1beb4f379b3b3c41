//! The scan with a real clamd: EICAR found, a clean file passed, and clamd
//! unreachable for a while.

use super::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn clamd_addr() -> String {
    let url = std::env::var("TEST_CLAMD_URL").unwrap_or_else(|_| "tcp://127.0.0.1:3311".into());
    url.trim_start_matches("tcp://").to_owned()
}

/// The EICAR test file, assembled here so no scanner flags this source.
fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-",
        "TEST-FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

/// With a real clamd: the EICAR file ends infected (the room is told, its
/// link stops working, its bytes are gone) and a clean file ends clean.
/// Messages go out at once with `scan: pending`.
async fn a_real_clamd_finds_eicar_and_passes_a_clean_file(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.clamd_url = Some(format!("tcp://{}", clamd_addr()));
    })
    .await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let mut alices = subscribed(&server, &alice, &room).await;
    let mut bobs = subscribed(&server, &bob, &room).await;
    let destination = format!("/app/rooms/{room}/messages");

    let virus = upload(&server, &alice, &room, "eicar.txt", "text/plain", &eicar()).await;
    assert_eq!(virus["state"], "scanning");
    alices
        .send_json(
            &destination,
            &json!({"type": "FILE", "attachmentId": virus["id"], "content": "look"}),
            None,
            &[],
        )
        .await;
    let (_, message) = bobs.next_message().await;
    assert_eq!(message["file"]["scan"], "pending");
    assert_eq!(message["file"]["url"], Value::Null);
    let event = file_updated(&mut bobs, &message["id"]).await;
    assert_eq!(event["file"]["scan"], "infected", "{event}");
    assert_eq!(event["file"]["url"], Value::Null);
    let id = virus["id"].as_str().unwrap();
    let (status, view) = http_json(
        server.addr,
        "GET",
        &format!("/api/attachments/{id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(
        (status, &view["state"]),
        (200, &json!("infected")),
        "{view}"
    );
    assert!(view.get("url").is_none());

    let clean = b"just a note, nothing to see\n".to_vec();
    let note = upload(&server, &alice, &room, "note.txt", "text/plain", &clean).await;
    alices
        .send_json(
            &destination,
            &json!({"type": "FILE", "attachmentId": note["id"], "content": ""}),
            None,
            &[],
        )
        .await;
    let (_, message) = bobs.next_message().await;
    let event = file_updated(&mut bobs, &message["id"]).await;
    assert_eq!(event["file"]["scan"], "clean", "{event}");
    let got = download(event["file"]["url"].as_str().unwrap()).await;
    assert_eq!(got.body, clean);
    server.stop().await;
}

/// A TCP proxy to the real clamd that the test can take down: while down it
/// accepts and closes at once (clamd unreachable), and counts the tries.
struct ClamdSwitch {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl ClamdSwitch {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let (up2, refused2) = (up.clone(), refused.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    refused2.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut clamd) = tokio::net::TcpStream::connect(clamd_addr()).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut clamd).await;
                });
            }
        });
        Self { addr, up, refused }
    }

    /// Waits until the server tried (and failed) `times` scans.
    async fn wait_refused(&self, times: usize) {
        let deadline = Instant::now() + WAIT;
        while self.refused.load(Ordering::SeqCst) < times {
            assert!(Instant::now() < deadline, "the server never tried clamd");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// clamd down: uploads and sends go on, attachments wait in `scanning`;
/// when it is back they finish, nothing lost.
async fn with_clamd_down_attachments_wait_and_finish_when_it_returns(db: TestDb) {
    let switch = ClamdSwitch::start().await;
    let server = TestServer::start_with(&db, |s| {
        s.clamd_url = Some(format!("tcp://{}", switch.addr));
    })
    .await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let mut alices = subscribed(&server, &alice, &room).await;
    let mut bobs = subscribed(&server, &bob, &room).await;
    let destination = format!("/app/rooms/{room}/messages");
    let mut ids = Vec::new();
    for i in 0..3 {
        let bytes = format!("note {i}\n").into_bytes();
        let note = upload(&server, &alice, &room, "note.txt", "text/plain", &bytes).await;
        alices
            .send_json(
                &destination,
                &json!({"type": "FILE", "attachmentId": note["id"], "content": ""}),
                None,
                &[],
            )
            .await;
        let (_, message) = bobs.next_message().await;
        assert_eq!(
            message["file"]["scan"], "pending",
            "the send is not blocked"
        );
        ids.push(message["id"].clone());
    }
    // Two scan rounds failed; everything still waits.
    switch.wait_refused(2).await;
    for message in history(&server, &bob, &room).await {
        if message["file"].is_object() {
            assert_eq!(message["file"]["state"], "scanning", "{message}");
        }
    }
    switch.up.store(true, Ordering::SeqCst);
    for id in &ids {
        let event = file_updated(&mut bobs, id).await;
        assert_eq!(event["file"]["scan"], "clean", "{event}");
    }
    server.stop().await;
}

both_backends!(
    a_real_clamd_finds_eicar_and_passes_a_clean_file,
    with_clamd_down_attachments_wait_and_finish_when_it_returns,
);
