//! Uploads through the embedded object store, end to end over real HTTP on
//! both backends: a presigned PUT with a plain HTTP client, completion, the
//! attachment view, and the partner's download through the presigned GET.

use crate::common;

use std::time::{Duration, Instant};

use common::{TestServer, WAIT, http_json, signup};
use ieum_test_support::{TestDb, both_backends};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A plain HTTP/1.1 answer: status, headers (lower-case names) and body.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `body` with exactly these headers over a fresh TCP connection to
/// the URL's host, as any HTTP client would to a presigned URL or a file
/// link (no bearer token).
pub(crate) async fn raw(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Answer {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut head = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect::<String>();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n{head}\r\n");
    let authority = authority.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&authority).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        // A server may answer (and close) before the whole body is sent.
        let _ = stream.write_all(&body);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let split = answer
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let mut body = answer[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Answer {
            status,
            headers,
            body,
        }
    })
    .await
    .unwrap()
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

/// GETs a file link and follows its redirect to the presigned URL: what a
/// phone's image loader does.
pub(crate) async fn download(link: &str) -> Answer {
    let first = raw("GET", link, &[], Vec::new()).await;
    if first.status != 302 {
        return first;
    }
    let location = first.header("location").expect("a Location").to_owned();
    raw("GET", &location, &[], Vec::new()).await
}

/// A 4x3 PNG without metadata, so the served copy is byte for byte the upload.
pub(crate) fn png() -> Vec<u8> {
    let image =
        image::RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8 * 60, y as u8 * 80, 200]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Alice's room with bob in it: (alice's token, bob's token, room id).
pub(crate) async fn room_with_bob(server: &TestServer) -> (String, String, String) {
    let (alice, _) = signup(server, "alice").await;
    let (bob, _) = signup(server, "bob").await;
    let (status, room) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "photos"})),
    )
    .await;
    assert_eq!(status, 201, "{room}");
    let room = room["id"].as_str().unwrap().to_owned();
    let (status, joined) = http_json(
        server.addr,
        "POST",
        &format!("/api/rooms/{room}/join"),
        Some(&bob),
        Some(json!({})),
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {joined}");
    (alice, bob, room)
}

/// `POST /api/uploads`; answers the upload (201).
pub(crate) async fn begin(
    server: &TestServer,
    token: &str,
    room: &str,
    name: &str,
    kind: &str,
    size: usize,
) -> Value {
    let (status, upload) = http_json(
        server.addr,
        "POST",
        "/api/uploads",
        Some(token),
        Some(json!({"roomId": room, "fileName": name, "contentType": kind, "size": size})),
    )
    .await;
    assert_eq!(status, 201, "{upload}");
    assert_eq!(upload["method"], "PUT");
    upload
}

/// PUTs `body` to the upload's URL with the headers it names.
pub(crate) async fn put(upload: &Value, body: Vec<u8>) -> Answer {
    let headers: Vec<(&str, String)> = upload["headers"]
        .as_object()
        .unwrap()
        .iter()
        // The length is the body's own, as any client computes it; the
        // store compares it with the one the URL was signed for.
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.as_str(), value.as_str().unwrap().to_owned()))
        .collect();
    raw("PUT", upload["uploadUrl"].as_str().unwrap(), &headers, body).await
}

pub(crate) async fn complete(server: &TestServer, token: &str, upload: &Value) -> (u16, Value) {
    let id = upload["uploadId"].as_str().unwrap();
    http_json(
        server.addr,
        "POST",
        &format!("/api/uploads/{id}/complete"),
        Some(token),
        None,
    )
    .await
}

/// Files the store holds (its staging area aside).
fn stored_files(server: &TestServer) -> usize {
    ieum_test_support::count_files(&server.data_dir.join("files"))
}

async fn a_png_uploaded_by_alice_downloads_identically_for_bob(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, bob, room) = room_with_bob(&server).await;
    let bytes = png();
    let upload = begin(&server, &alice, &room, "cat.png", "image/png", bytes.len()).await;
    let stored = put(&upload, bytes.clone()).await;
    assert_eq!(stored.status, 200, "{}", stored.json());
    let (status, completed) = complete(&server, &alice, &upload).await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["contentType"], "image/png");
    assert_eq!(
        (completed["width"].as_u64(), completed["height"].as_u64()),
        (Some(4), Some(3))
    );

    let id = upload["uploadId"].as_str().unwrap();
    let deadline = Instant::now() + WAIT;
    let view = loop {
        let (status, view) = http_json(
            server.addr,
            "GET",
            &format!("/api/attachments/{id}"),
            Some(&bob),
            None,
        )
        .await;
        assert_eq!(status, 200, "{view}");
        if view["state"] == "clean" {
            break view;
        }
        assert!(Instant::now() < deadline, "never clean: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view["scan"], "skipped");
    assert_eq!(view["sha256"], sha256_hex(&bytes));
    // The store's files are where the "nothing is kept" checks look.
    assert!(stored_files(&server) > 0, "the upload is on disk");
    assert!(view["thumbnailUrl"].is_string(), "{view}");

    // The view's URL is a stable link; it redirects to a presigned GET.
    let link = view["url"].as_str().expect("a download link");
    let redirect = raw("GET", link, &[], Vec::new()).await;
    assert_eq!(redirect.status, 302);
    let url = redirect.header("location").expect("a Location");
    let download = raw("GET", url, &[], Vec::new()).await;
    assert_eq!(download.status, 200);
    assert_eq!(sha256_hex(&download.body), sha256_hex(&bytes));
    assert_eq!(download.header("content-type"), Some("image/png"));
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    assert!(
        download
            .header("cache-control")
            .unwrap()
            .starts_with("private, max-age=")
    );

    let part = raw("GET", url, &[("Range", "bytes=1-3".into())], Vec::new()).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, bytes[1..4]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1-3/{}", bytes.len()).as_str())
    );
    let past = format!("bytes={}-", bytes.len());
    let beyond = raw("GET", url, &[("Range", past)], Vec::new()).await;
    assert_eq!(beyond.status, 416);
    server.stop().await;
}

async fn a_body_longer_than_declared_is_refused_and_nothing_is_kept(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _, room) = room_with_bob(&server).await;
    let bytes = png();
    let upload = begin(&server, &alice, &room, "cat.png", "image/png", bytes.len()).await;
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 64]);
    let refused = put(&upload, longer).await;
    assert_eq!(refused.status, 413, "{}", refused.json());
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(stored_files(&server), 0);
    let (status, body) = complete(&server, &alice, &upload).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "upload_missing");
    server.stop().await;
}

async fn an_executable_declared_as_jpeg_is_refused_at_complete(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _, room) = room_with_bob(&server).await;
    let mut executable = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
    executable.resize(512, 0);
    let upload = begin(
        &server,
        &alice,
        &room,
        "holiday.jpg",
        "image/jpeg",
        executable.len(),
    )
    .await;
    let stored = put(&upload, executable).await;
    assert_eq!(stored.status, 200, "{}", stored.json());
    let (status, body) = complete(&server, &alice, &upload).await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["code"], "unsupported_type");
    assert_eq!(stored_files(&server), 0, "a refused upload leaves nothing");
    server.stop().await;
}

async fn an_outsider_cannot_see_the_attachment(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _, room) = room_with_bob(&server).await;
    let (eve, _) = signup(&server, "eve").await;
    let bytes = png();
    let upload = begin(&server, &alice, &room, "cat.png", "image/png", bytes.len()).await;
    let stored = put(&upload, bytes).await;
    assert_eq!(stored.status, 200);
    let (status, _) = complete(&server, &alice, &upload).await;
    assert_eq!(status, 200);
    let id = upload["uploadId"].as_str().unwrap();
    let (status, body) = http_json(
        server.addr,
        "GET",
        &format!("/api/attachments/{id}"),
        Some(&eve),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "attachment_not_found");
    server.stop().await;
}

both_backends!(
    a_png_uploaded_by_alice_downloads_identically_for_bob,
    a_body_longer_than_declared_is_refused_and_nothing_is_kept,
    an_executable_declared_as_jpeg_is_refused_at_complete,
    an_outsider_cannot_see_the_attachment,
);
