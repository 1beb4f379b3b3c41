//! IMAGE and FILE messages end to end: an upload through the presigned URL
//! with a plain HTTP client, the message, and the partner's download of
//! identical bytes through the message's link. On both object stores (the
//! local disk, and S3 on the suite's s3s-fs, which checks signatures) and
//! both databases; with a real clamd for the scan; with expiry across a
//! restart; and contract B's `imageUrl`.

use crate::common;
use crate::uploads::{begin, complete, download, png, put, raw, room_with_bob, sha256_hex};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Stomp, TestServer, WAIT, http_json, signup};
use ieum_server::config::Settings;
use ieum_test_support::{S3Bucket, TestDb, both_backends, count_files};
use serde_json::{Value, json};

/// Where a test's server keeps files.
enum Storage {
    Local,
    S3(S3Bucket),
}

impl Storage {
    fn apply(&self, s: &mut Settings) {
        if let Storage::S3(bucket) = self {
            s.s3_bucket = Some(bucket.name.clone());
            s.s3_endpoint = Some(bucket.endpoint.clone());
            s.s3_path_style = Some(true);
            s.s3_access_key_id = Some(bucket.access_key.clone());
            s.s3_secret_access_key = Some(bucket.secret_key.clone());
        }
    }

    /// Objects kept, wherever they are.
    fn objects(&self, server: &TestServer) -> usize {
        match self {
            Storage::Local => count_files(&server.data_dir.join("files")),
            Storage::S3(bucket) => bucket.object_count(),
        }
    }
}

/// A small PDF: enough for the magic numbers.
fn pdf() -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    bytes.extend((0..2000).map(|i| b"0123456789abcdef"[i % 16]));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

/// Uploads `bytes` for `token` into `room` and completes it: the completed
/// attachment.
async fn upload(
    server: &TestServer,
    token: &str,
    room: &str,
    name: &str,
    kind: &str,
    bytes: &[u8],
) -> Value {
    let started = begin(server, token, room, name, kind, bytes.len()).await;
    let stored = put(&started, bytes.to_vec()).await;
    assert_eq!(
        stored.status,
        200,
        "{}",
        String::from_utf8_lossy(&stored.body)
    );
    let (status, completed) = complete(server, token, &started).await;
    assert_eq!(status, 200, "{completed}");
    completed
}

/// The next refusal of a SEND: an ERROR frame, or an `error` event.
async fn refusal(stomp: &mut Stomp) -> ieum_stomp::Frame {
    loop {
        let frame = stomp.recv().await.expect("open");
        if frame.command == ieum_stomp::Command::Error || frame.get("event") == Some("error") {
            return frame;
        }
    }
}

/// The room's newest page, as a member reads it.
async fn history(server: &TestServer, token: &str, room: &str) -> Vec<Value> {
    let (status, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().expect("messages").clone()
}

async fn subscribed(server: &TestServer, token: &str, room: &str) -> Stomp {
    let mut stomp = Stomp::connect(&server.ws_url(), token).await;
    stomp
        .subscribe("r", &format!("/topic/rooms/{room}"), &[])
        .await;
    stomp
}

async fn file_messages_reach_the_partner(db: TestDb, storage: Storage) {
    let server = TestServer::start_with(&db, |s| storage.apply(s)).await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let mut alices = subscribed(&server, &alice, &room).await;
    let mut bobs = subscribed(&server, &bob, &room).await;

    let image = png();
    let attachment = upload(&server, &alice, &room, "cat.png", "image/png", &image).await;
    assert_eq!(
        (&attachment["state"], &attachment["scan"]),
        (&json!("clean"), &json!("skipped"))
    );
    let send = |kind: &str, id: &Value, cmid: &str| json!({"type": kind, "attachmentId": id, "content": "", "clientMsgId": cmid});
    let destination = format!("/app/rooms/{room}/messages");
    alices
        .send_json(
            &destination,
            &send("IMAGE", &attachment["id"], "m-1"),
            None,
            &[],
        )
        .await;
    let (_, message) = bobs.next_message().await;
    assert_eq!(message["type"], "IMAGE");
    let file = &message["file"];
    assert_eq!(file["id"], attachment["id"]);
    assert_eq!(
        (&file["name"], &file["contentType"], &file["scan"]),
        (&json!("cat.png"), &json!("image/png"), &json!("skipped"))
    );
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(4), Some(3))
    );
    let got = download(file["url"].as_str().expect("a link")).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image), "identical bytes");
    assert_eq!(got.header("content-type"), Some("image/png"));
    let thumb = download(file["thumbnailUrl"].as_str().expect("a thumbnail link")).await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    assert_eq!(&thumb.body[..2], b"\xFF\xD8", "a JPEG");

    let document = pdf();
    let attachment = upload(
        &server,
        &alice,
        &room,
        "계약서.pdf",
        "application/pdf",
        &document,
    )
    .await;
    alices
        .send_json(
            &destination,
            &send("FILE", &attachment["id"], "m-2"),
            None,
            &[],
        )
        .await;
    let (_, message) = bobs.next_message().await;
    assert_eq!(message["type"], "FILE");
    assert_eq!(message["file"]["name"], "계약서.pdf");
    assert_eq!(message["file"]["thumbnailUrl"], Value::Null);
    let got = download(message["file"]["url"].as_str().unwrap()).await;
    assert_eq!(sha256_hex(&got.body), sha256_hex(&document));
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert!(
        got.header("content-disposition")
            .unwrap()
            .starts_with("attachment;"),
        "documents download, not display"
    );

    // A retry of the same send answers the stored message; another message
    // cannot take the file.
    alices
        .send_json(
            &destination,
            &send("FILE", &attachment["id"], "m-2"),
            None,
            &[],
        )
        .await;
    alices
        .send_json(
            &destination,
            &send("FILE", &attachment["id"], "m-3"),
            Some("r-3"),
            &[],
        )
        .await;
    let error = refusal(&mut alices).await;
    let body: Value = serde_json::from_slice(&error.body).unwrap_or(Value::Null);
    assert!(
        format!("{error:?}{body}").contains("attachment_in_use"),
        "{error:?}"
    );

    // History shows both files.
    let page = history(&server, &bob, &room).await;
    let files: Vec<&Value> = page.iter().filter(|m| m["file"].is_object()).collect();
    assert_eq!(files.len(), 2, "{page:?}");
    assert_eq!(files[1]["file"]["name"], "계약서.pdf");

    // Deleting the photo's message takes the photo with it.
    let photo_link = files[0]["file"]["url"].as_str().unwrap().to_owned();
    let before = storage.objects(&server);
    let (status, body) = http_json(
        server.addr,
        "DELETE",
        &format!(
            "/api/rooms/{room}/messages/{}",
            files[0]["id"].as_str().unwrap()
        ),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let gone = raw("GET", &photo_link, &[], Vec::new()).await;
    assert_eq!(gone.status, 404, "a deleted message's file is not served");
    assert_eq!(
        storage.objects(&server),
        before - 3,
        "the image and its two thumbnails are deleted, the PDF stays"
    );
    server.stop().await;
}

async fn file_messages_on_the_local_disk(db: TestDb) {
    file_messages_reach_the_partner(db, Storage::Local).await;
}

async fn file_messages_on_s3(db: TestDb) {
    file_messages_reach_the_partner(db, Storage::S3(S3Bucket::create())).await;
}

/// S3 itself refuses a body longer than the presigned PUT declares (its
/// signature binds the length), and nothing is kept.
async fn s3_refuses_a_longer_body(db: TestDb) {
    let storage = Storage::S3(S3Bucket::create());
    let server = TestServer::start_with(&db, |s| storage.apply(s)).await;
    let (alice, _, room) = room_with_bob(&server).await;
    let bytes = png();
    let started = begin(&server, &alice, &room, "cat.png", "image/png", bytes.len()).await;
    assert!(
        started["uploadUrl"]
            .as_str()
            .unwrap()
            .contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "{started}"
    );
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 64]);
    let refused = put(&started, longer).await;
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(storage.objects(&server), 0);
    let (status, body) = complete(&server, &alice, &started).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("upload_missing"))
    );
    // The exact body is taken.
    let stored = put(&started, bytes).await;
    assert_eq!(stored.status, 200);
    let (status, body) = complete(&server, &alice, &started).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

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

/// Waits for the FILE_UPDATED event of `message_id`.
async fn file_updated(stomp: &mut Stomp, message_id: &Value) -> Value {
    loop {
        let (_, event) = stomp.next_event("file_updated").await;
        if &event["messageId"] == message_id {
            return event;
        }
    }
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

/// A two-second expiry: after it, with a restart in between, the objects
/// are gone from storage, the message says expired and the link answers 410.
async fn attachments_expire_across_a_restart(db: TestDb, storage: Storage) {
    let expiring = |s: &mut Settings| {
        storage.apply(s);
        s.attachment_expiry_secs = Some(2);
    };
    let server = TestServer::start_with(&db, expiring).await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let mut alices = subscribed(&server, &alice, &room).await;
    let attachment = upload(&server, &alice, &room, "cat.png", "image/png", &png()).await;
    let expires_at: chrono::DateTime<chrono::Utc> =
        attachment["expiresAt"].as_str().unwrap().parse().unwrap();
    alices
        .send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"type": "IMAGE", "attachmentId": attachment["id"], "content": ""}),
            None,
            &[],
        )
        .await;
    let (_, message) = alices.next_message().await;
    let link = message["file"]["url"].as_str().unwrap().to_owned();
    assert_eq!(download(&link).await.status, 200);
    assert!(storage.objects(&server) > 0);
    alices.disconnect().await;
    let data_dir = server.stop_keeping_data().await;

    // Down while the expiry comes.
    while chrono::Utc::now() <= expires_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = TestServer::start_in(&db, data_dir, expiring).await;
    // The restarted server finds the due deletion in the store.
    let deadline = Instant::now() + WAIT;
    let shown = loop {
        let shown = history(&server, &bob, &room)
            .await
            .into_iter()
            .find(|m| m["id"] == message["id"])
            .expect("the message");
        if shown["file"]["state"] == "expired" {
            break shown;
        }
        assert!(Instant::now() < deadline, "never expired: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shown["file"]["url"], Value::Null);
    assert_eq!(storage.objects(&server), 0, "the objects are gone");
    // The link names the first server's port; the path is what counts.
    let link = server.url(&link[link.find("/media/").unwrap()..]);
    let gone = raw("GET", &link, &[], Vec::new()).await;
    assert_eq!(gone.status, 410, "{}", String::from_utf8_lossy(&gone.body));
    assert_eq!(gone.json()["code"], "expired");
    server.stop().await;
}

async fn expiry_on_the_local_disk(db: TestDb) {
    attachments_expire_across_a_restart(db, Storage::Local).await;
}

async fn expiry_on_s3(db: TestDb) {
    attachments_expire_across_a_restart(db, Storage::S3(S3Bucket::create())).await;
}

/// Contract B: the upload answers an `imageUrl`; an IMAGE message with it
/// reaches the partner with an `imageUrl` a plain GET downloads.
async fn contract_b_image_messages_carry_a_downloadable_image_url(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (ann, _) = signup(&server, "ann").await;
    let (ben, _) = signup(&server, "ben").await;
    let (status, invite) = http_json(a, "POST", "/api/couples/invite", Some(&ann), None).await;
    assert_eq!(status, 201);
    let (status, couple) = http_json(
        a,
        "POST",
        "/api/couples/join",
        Some(&ben),
        Some(json!({"code": invite["code"]})),
    )
    .await;
    assert_eq!(status, 200, "{couple}");
    let couple = couple["coupleId"].as_str().unwrap().to_owned();
    let mut bens = Stomp::connect(&server.ws_url(), &ben).await;
    bens.subscribe("c", &format!("/topic/couple/{couple}"), &[])
        .await;
    let mut anns = Stomp::connect(&server.ws_url(), &ann).await;

    let image = png();
    let attachment = upload(&server, &ann, &couple, "us.png", "image/png", &image).await;
    let image_url = attachment["imageUrl"]
        .as_str()
        .expect("an imageUrl")
        .to_owned();
    anns.send_json(
        &format!("/app/chat/{couple}"),
        &json!({"type": "IMAGE", "content": "", "imageUrl": image_url, "tempId": "t-1"}),
        None,
        &[],
    )
    .await;
    let (_, delivered) = bens.next_message().await;
    assert_eq!(delivered["type"], "IMAGE");
    assert_eq!(delivered["tempId"], "t-1");
    let url = delivered["imageUrl"].as_str().expect("imageUrl");
    assert_eq!(url, image_url);
    let got = download(url).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image));
    // History gives the same link.
    let (status, page) = http_json(
        a,
        "GET",
        &format!("/chat/rooms/{couple}/messages"),
        Some(&ben),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["imageUrl"], image_url);
    // Another host's URL, even one shaped like a link, is delivered as sent.
    let outside = format!(
        "https://cdn.example/media/{}/file.png",
        uuid::Uuid::now_v7()
    );
    anns.send_json(
        &format!("/app/chat/{couple}"),
        &json!({"type": "IMAGE", "content": "", "imageUrl": outside, "tempId": "t-2"}),
        None,
        &[],
    )
    .await;
    let (_, delivered) = bens.next_message().await;
    assert_eq!(delivered["imageUrl"], json!(outside));
    server.stop().await;
}

/// A link this server did not sign is not found; a FILE without an
/// attachment is refused.
async fn forged_links_and_empty_files_are_refused(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _, room) = room_with_bob(&server).await;
    let attachment = upload(&server, &alice, &room, "cat.png", "image/png", &png()).await;
    let link = attachment["url"].as_str().unwrap();
    let forged = format!("{}AAAA", &link[..link.len() - 4]);
    let answer = raw("GET", &forged, &[], Vec::new()).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["code"], "attachment_not_found");
    let mut alices = subscribed(&server, &alice, &room).await;
    alices
        .send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"type": "FILE", "content": "nothing attached"}),
            None,
            &[],
        )
        .await;
    let error = refusal(&mut alices).await;
    assert!(
        format!("{error:?}").contains("missing_attachment"),
        "{error:?}"
    );
    server.stop().await;
}

/// Profile and room images take the same flow: upload with a purpose,
/// complete, then name the upload in `PATCH /api/me` or `PATCH
/// /api/rooms/{id}`. The profile or room shows the link; a replaced image is
/// deleted; such an upload cannot go into a message.
async fn profile_and_room_images_use_the_same_flow(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, bob, room) = room_with_bob(&server).await;
    let image = png();
    let upload_as = |token: String, purpose: &'static str, room: Option<String>| {
        let server = &server;
        let image = image.clone();
        async move {
            let mut body = json!({"fileName": "me.png", "contentType": "image/png",
                                  "size": image.len(), "purpose": purpose});
            if let Some(room) = room {
                body["roomId"] = json!(room);
            }
            let (status, started) = http_json(
                server.addr,
                "POST",
                "/api/uploads",
                Some(&token),
                Some(body),
            )
            .await;
            assert_eq!(status, 201, "{started}");
            assert_eq!(put(&started, image).await.status, 200);
            let (status, done) = complete(server, &token, &started).await;
            assert_eq!(status, 200, "{done}");
            assert_eq!(
                done["expiresAt"],
                Value::Null,
                "profile and room images never expire"
            );
            done["id"].clone()
        }
    };

    let first = upload_as(alice.clone(), "profile_image", None).await;
    let (status, me) = http_json(
        a,
        "PATCH",
        "/api/me",
        Some(&alice),
        Some(json!({"profileImageAttachmentId": first})),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    let first_link = me["profileImageUrl"].as_str().expect("a link").to_owned();
    let got = download(&first_link).await;
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image));
    let second = upload_as(alice.clone(), "profile_image", None).await;
    let (status, me) = http_json(
        a,
        "PATCH",
        "/api/me",
        Some(&alice),
        Some(json!({"profileImageAttachmentId": second})),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_ne!(me["profileImageUrl"], json!(first_link));
    assert_eq!(
        download(&first_link).await.status,
        404,
        "the replaced image is gone"
    );
    assert_eq!(
        download(me["profileImageUrl"].as_str().unwrap())
            .await
            .status,
        200
    );

    // A profile image is in no room: no message of a room can take it.
    let mut alices = subscribed(&server, &alice, &room).await;
    alices
        .send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"type": "IMAGE", "attachmentId": second, "content": ""}),
            None,
            &[],
        )
        .await;
    let error = refusal(&mut alices).await;
    assert!(
        format!("{error:?}").contains("attachment_not_found"),
        "{error:?}"
    );

    // The room's image: its admin may set it, a member may not.
    let picture = upload_as(alice.clone(), "room_image", Some(room.clone())).await;
    let (status, updated) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{room}"),
        Some(&alice),
        Some(json!({"imageAttachmentId": picture})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let got = download(updated["imageUrl"].as_str().expect("a link")).await;
    assert_eq!(sha256_hex(&got.body), sha256_hex(&image));
    let bobs = upload_as(bob.clone(), "room_image", Some(room.clone())).await;
    let (status, refused) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{room}"),
        Some(&bob),
        Some(json!({"imageAttachmentId": bobs})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    server.stop().await;
}

/// The upload URL stays usable until it expires, but what was checked and
/// scanned is a copy it cannot reach: a second PUT after completion changes
/// nothing that is served.
async fn a_put_after_completion_changes_nothing_served(db: TestDb, storage: Storage) {
    let server = TestServer::start_with(&db, |s| storage.apply(s)).await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let document = pdf();
    let started = begin(
        &server,
        &alice,
        &room,
        "a.pdf",
        "application/pdf",
        document.len(),
    )
    .await;
    assert_eq!(put(&started, document.clone()).await.status, 200);
    let (status, done) = complete(&server, &alice, &started).await;
    assert_eq!(status, 200, "{done}");
    let mut swapped = document.clone();
    swapped[20] ^= 0xff;
    let again = put(&started, swapped).await;
    assert_eq!(again.status, 200, "the URL itself still works");
    let id = done["id"].as_str().unwrap();
    let (_, view) = http_json(
        server.addr,
        "GET",
        &format!("/api/attachments/{id}"),
        Some(&bob),
        None,
    )
    .await;
    let got = download(view["url"].as_str().expect("a link")).await;
    assert_eq!(
        sha256_hex(&got.body),
        sha256_hex(&document),
        "the checked bytes"
    );
    server.stop().await;
}

async fn a_late_put_on_the_local_disk(db: TestDb) {
    a_put_after_completion_changes_nothing_served(db, Storage::Local).await;
}

async fn a_late_put_on_s3(db: TestDb) {
    a_put_after_completion_changes_nothing_served(db, Storage::S3(S3Bucket::create())).await;
}

both_backends!(
    file_messages_on_the_local_disk,
    file_messages_on_s3,
    s3_refuses_a_longer_body,
    a_real_clamd_finds_eicar_and_passes_a_clean_file,
    with_clamd_down_attachments_wait_and_finish_when_it_returns,
    expiry_on_the_local_disk,
    expiry_on_s3,
    contract_b_image_messages_carry_a_downloadable_image_url,
    forged_links_and_empty_files_are_refused,
    profile_and_room_images_use_the_same_flow,
    a_late_put_on_the_local_disk,
    a_late_put_on_s3,
);
