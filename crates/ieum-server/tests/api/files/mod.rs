//! IMAGE and FILE messages end to end: an upload through the presigned URL
//! with a plain HTTP client, the message, and the partner's download of
//! identical bytes through the message's link. On both object stores (the
//! local disk, and S3 on the suite's s3s-fs, which checks signatures) and
//! both databases; with a real clamd for the scan; with expiry across a
//! restart; contract B's `imageUrl`; profile and room images.
//!
//! One module per area: `messages` (the round trip, refusals, contract B),
//! `scan` (a real clamd, and clamd down), `expiry` (across a restart),
//! `images` (profile and room images). The helpers they share are here.

use crate::common;
use crate::uploads::{begin, complete, download, png, put, raw, room_with_bob, sha256_hex};

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

/// Waits for the FILE_UPDATED event of `message_id`.
async fn file_updated(stomp: &mut Stomp, message_id: &Value) -> Value {
    loop {
        let (_, event) = stomp.next_event("file_updated").await;
        if &event["messageId"] == message_id {
            return event;
        }
    }
}

/// Runs `$body(db, storage)` on the local disk as `$local` and on a fresh S3
/// bucket as `$s3`, for `both_backends!`.
macro_rules! on_both_stores {
    ($body:ident => $local:ident, $s3:ident) => {
        async fn $local(db: TestDb) {
            $body(db, Storage::Local).await;
        }

        async fn $s3(db: TestDb) {
            $body(db, Storage::S3(S3Bucket::create())).await;
        }
    };
}

mod expiry;
mod images;
mod messages;
mod scan;
