//! `ieum export` and `ieum import` (issue 20): an embedded server moved to
//! PostgreSQL and back answers every read exactly as before, and a
//! non-empty database, a truncated or an altered archive is refused with
//! nothing written.

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use common::{Stomp, TestServer, http_json, signup};
use ieum_test_support::TestDb;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

fn config(db: &TestDb) -> ieum_server::Config {
    ieum_server::Config::resolve(common::settings(db, common::temp_dir())).unwrap()
}

async fn export(db: &TestDb, out: &Path) {
    ieum_server::app::export(
        config(db),
        ieum_server::app::ExportTo {
            out: out.to_owned(),
            ..Default::default()
        },
    )
    .await
    .expect("the export");
}

async fn import(db: &TestDb, file: &Path) -> Result<(), String> {
    ieum_server::app::import(config(db), file.to_owned())
        .await
        .map_err(|e| e.to_string())
}

fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

struct Seeded {
    tokens: Vec<String>,
    room: String,
    dm: String,
    m: Vec<String>,
    last_seq: i64,
}

async fn send(ws: &mut Stomp, room: &str, body: Value) -> (String, i64) {
    ws.send_json(
        &format!("/app/rooms/{room}/messages"),
        &body,
        Some("s"),
        &[],
    )
    .await;
    let r = ws.expect_receipt("s").await;
    (
        r.get("message-id").unwrap().to_owned(),
        r.get("seq").unwrap().parse().unwrap(),
    )
}

async fn ok(server: &TestServer, method: &str, path: &str, token: &str, body: Option<Value>) {
    let (s, b) = http_json(server.addr, method, path, Some(token), body).await;
    assert!((200..300).contains(&s), "{method} {path}: {s} {b}");
}

/// A little of everything an archive carries: a group room and a direct
/// room, Korean messages, a thread, an edit, a delete, reactions, a pin,
/// read receipts at different places.
async fn seed(server: &TestServer) -> Seeded {
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    let (carol, _) = signup(server, "carol").await;
    let room = common::create_room(server.addr, &alice, "이사 준비").await;
    for t in [&bob, &carol] {
        ok(server, "POST", &format!("/api/rooms/{room}/join"), t, None).await;
    }
    let (_, dm) = http_json(
        server.addr,
        "POST",
        "/api/rooms/direct",
        Some(&alice),
        Some(json!({"userId": bob_id})),
    )
    .await;
    let dm = dm["id"].as_str().unwrap().to_owned();
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    let mut m = Vec::new();
    let mut last_seq = 0;
    for i in 0..30 {
        let text = match i % 3 {
            0 => format!("오늘 날씨가 좋네요 {i}"),
            1 => format!("이삿짐 상자 {i}개"),
            _ => format!("점심 🍜 먹자 {i}"),
        };
        let (id, seq) = send(&mut aw, &room, json!({"content": text})).await;
        m.push(id);
        last_seq = seq;
    }
    let (_, reply_seq) = send(
        &mut bw,
        &room,
        json!({"content": "날씨 좋으면 산책", "parentId": m[0]}),
    )
    .await;
    last_seq = last_seq.max(reply_seq);
    send(&mut bw, &dm, json!({"content": "우리끼리 얘기"})).await;
    send(&mut aw, &dm, json!({"content": "응 좋아"})).await;
    ok(
        server,
        "PATCH",
        &format!("/api/rooms/{room}/messages/{}", m[1]),
        &alice,
        Some(json!({"content": "이삿짐 상자 스무 개"})),
    )
    .await;
    ok(
        server,
        "DELETE",
        &format!("/api/rooms/{room}/messages/{}", m[2]),
        &alice,
        None,
    )
    .await;
    for (t, emoji) in [(&bob, "%F0%9F%91%8D"), (&carol, "%E2%9D%A4")] {
        let path = format!("/api/rooms/{room}/messages/{}/reactions/{emoji}", m[0]);
        ok(server, "PUT", &path, t, None).await;
    }
    ok(
        server,
        "PUT",
        &format!("/api/rooms/{room}/pins/{}", m[3]),
        &alice,
        None,
    )
    .await;
    for (t, seq) in [(&bob, 10), (&carol, 25)] {
        let path = format!("/api/rooms/{room}/read");
        ok(server, "POST", &path, t, Some(json!({"seq": seq}))).await;
    }
    aw.disconnect().await;
    bw.disconnect().await;
    // The pin and the delete add SYSTEM messages: the room's last seq is
    // whatever the history ends at.
    let (_, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages?limit=500"),
        Some(&alice),
        None,
    )
    .await;
    for msg in page["messages"].as_array().unwrap() {
        last_seq = last_seq.max(msg["seq"].as_i64().unwrap());
    }
    Seeded {
        tokens: vec![alice, bob, carol],
        room,
        dm,
        m,
        last_seq,
    }
}

/// Every read the comparison covers, as each person sees it.
async fn answers(server: &TestServer, s: &Seeded) -> Vec<(String, Value)> {
    let room = &s.room;
    let mut paths = vec![
        "/api/rooms".to_owned(),
        format!("/api/rooms/{room}"),
        format!("/api/rooms/{room}/members"),
        format!("/api/rooms/{room}/messages?limit=500"),
        format!("/api/rooms/{room}/messages?limit=5&beforeSeq=20"),
        format!("/api/rooms/{}/messages?limit=500", s.dm),
        format!("/chat/history/{room}"),
        format!("/api/rooms/{room}/pins"),
        format!("/api/rooms/{room}/messages/{}/reactions", s.m[0]),
        format!("/api/rooms/{room}/messages/{}/thread", s.m[0]),
        format!("/api/rooms/{room}/messages/{}/edits", s.m[1]),
        format!("/api/search/messages?q={}", enc("날씨")),
        format!("/api/search/messages?q={}", enc("상자")),
        format!("/api/search/messages?q={}&roomId={room}", enc("🍜")),
    ];
    paths.push("/api/me".into());
    let mut out = Vec::new();
    for (who, token) in s.tokens.iter().enumerate() {
        for path in &paths {
            let (status, body) = http_json(server.addr, "GET", path, Some(token), None).await;
            // Carol is not in the direct room; every other read answers.
            let expected = if who == 2 && path.contains(&s.dm) {
                403
            } else {
                200
            };
            assert_eq!(status, expected, "GET {path} as user {who}: {body}");
            out.push((format!("user {who} GET {path} -> {status}"), body));
        }
    }
    out
}

fn assert_same(before: &[(String, Value)], after: &[(String, Value)], leg: &str) {
    assert_eq!(before.len(), after.len());
    for ((what, a), (what_after, b)) in before.iter().zip(after) {
        assert_eq!(what, what_after, "{leg}: the status changed");
        assert_eq!(a, b, "{leg}: {what} answers differently");
    }
}

fn scratch(name: &str) -> PathBuf {
    common::temp_dir().join(name)
}

async fn table_count(db: &TestDb) -> i64 {
    let c = Database::connect(db.url()).await.unwrap();
    let sql = if db.is_postgres() {
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public'"
    } else {
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'"
    };
    let row = c
        .query_one_raw(sea_orm::Statement::from_string(
            c.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    c.close().await.unwrap();
    n
}

fn rewrite(from: &Path, to: &Path, edit: impl Fn(String) -> String) {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(from).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(edited.as_bytes()).unwrap();
    gz.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_server_moves_to_postgresql_and_back_answering_the_same() {
    let sqlite = TestDb::sqlite().await;
    let server = TestServer::start(&sqlite).await;
    let seeded = seed(&server).await;
    let before = answers(&server, &seeded).await;
    server.stop().await;

    let archive = scratch("ieum.archive");
    export(&sqlite, &archive).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the archive holds password hashes");

    let pg = TestDb::postgres().await;
    import(&pg, &archive)
        .await
        .expect("the import into PostgreSQL");
    let server = TestServer::start(&pg).await;
    assert_same(
        &before,
        &answers(&server, &seeded).await,
        "SQLite to PostgreSQL",
    );

    // Into a database holding rows: refused, and nothing changed.
    let err = import(&pg, &archive).await.unwrap_err();
    assert!(err.contains("the database is not empty"), "{err}");
    assert!(err.contains("messages: "), "it names what is there: {err}");
    assert_same(
        &before,
        &answers(&server, &seeded).await,
        "after the refusal",
    );

    // The room's seq goes on where it stopped, with no gap.
    let mut aw = Stomp::connect(&server.ws_url(), &seeded.tokens[0]).await;
    let (_, seq) = send(
        &mut aw,
        &seeded.room,
        json!({"content": "새 집에서 첫 메시지"}),
    )
    .await;
    assert_eq!(seq, seeded.last_seq + 1);
    aw.disconnect().await;
    server.stop().await;

    // And back: PostgreSQL to a new embedded server.
    let again = scratch("again.archive");
    export(&pg, &again).await;
    let back = TestDb::sqlite().await;
    import(&back, &again).await.expect("the import into SQLite");
    let server = TestServer::start(&back).await;
    let after_send = answers(&server, &seeded).await;
    let found = after_send
        .iter()
        .find(|(w, _)| w.starts_with("user 0 GET /api/rooms/") && w.contains("messages?limit=500"))
        .unwrap();
    assert_eq!(
        found.1["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["content"] == "새 집에서 첫 메시지")
            .count(),
        1
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(archive.parent().unwrap());
    let _ = std::fs::remove_dir_all(again.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_or_altered_archive_is_refused_before_anything_is_written() {
    let sqlite = TestDb::sqlite().await;
    let server = TestServer::start(&sqlite).await;
    let (alice, _) = signup(&server, "alice").await;
    let room = common::create_room(server.addr, &alice, "r").await;
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    for i in 0..20 {
        send(&mut aw, &room, json!({"content": format!("메시지 {i}")})).await;
    }
    aw.disconnect().await;
    server.stop().await;
    let archive = scratch("ieum.archive");
    export(&sqlite, &archive).await;
    let dir = archive.parent().unwrap().to_owned();

    let bytes = std::fs::read(&archive).unwrap();
    let truncated = dir.join("truncated.archive");
    std::fs::write(&truncated, &bytes[..bytes.len() - 40]).unwrap();
    let altered = dir.join("altered.archive");
    rewrite(&archive, &altered, |t| {
        t.replacen("메시지 7", "메시지 8", 1)
    });
    let recounted = dir.join("recounted.archive");
    rewrite(&archive, &recounted, |t| {
        let cut = t.find("메시지 7").unwrap();
        let start = t[..cut].rfind('\n').unwrap();
        let end = cut + t[cut..].find('\n').unwrap();
        format!("{}{}", &t[..start], &t[end..])
    });
    for (file, expect) in [
        (&truncated, "truncated"),
        (&altered, "checksum does not match"),
        (&recounted, "expected"),
    ] {
        for db in [TestDb::postgres().await, TestDb::sqlite().await] {
            let err = import(&db, file).await.unwrap_err();
            assert!(
                err.starts_with("the archive is refused: ") && err.contains(expect),
                "{}: {err}",
                file.display()
            );
            assert_eq!(table_count(&db).await, 0, "nothing was written: {err}");
        }
    }

    // A scheduled backup: time-named archives in a directory, the newest two kept.
    let backups = dir.join("backups");
    std::fs::create_dir(&backups).unwrap();
    for _ in 0..3 {
        ieum_server::app::export(
            config(&sqlite),
            ieum_server::app::ExportTo {
                out: backups.clone(),
                keep: Some(2),
                with_files: false,
            },
        )
        .await
        .expect("the backup");
    }
    let mut names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("ieum-") && n.ends_with("Z.archive")),
        "{names:?}"
    );
    let pg = TestDb::postgres().await;
    import(&pg, &backups.join(&names[1]))
        .await
        .expect("the newest backup restores");
    let err = ieum_server::app::export(
        config(&sqlite),
        ieum_server::app::ExportTo {
            out: archive.clone(),
            keep: Some(2),
            with_files: false,
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("--keep needs --out to name a directory"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `--with-files`: an uploaded photo moves with the database to a new data
/// directory and downloads byte for byte from the new server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_files_move_with_the_archive() {
    use crate::uploads::{begin, complete, download, png, put};
    let sqlite = TestDb::sqlite().await;
    let server = TestServer::start(&sqlite).await;
    let (alice, _) = signup(&server, "alice").await;
    let room = common::create_room(server.addr, &alice, "photos").await;
    let bytes = png();
    let upload = begin(&server, &alice, &room, "cat.png", "image/png", bytes.len()).await;
    assert_eq!(put(&upload, bytes.clone()).await.status, 200);
    let (status, done) = complete(&server, &alice, &upload).await;
    assert_eq!(status, 200, "{done}");
    let id = upload["uploadId"].as_str().unwrap().to_owned();
    let source_dir = server.data_dir.clone();
    let out = scratch("with-files.archive");
    let mut settings = common::settings(&sqlite, source_dir.clone());
    settings.public_url = Some(format!("http://{}", server.addr));
    ieum_server::app::export(
        ieum_server::Config::resolve(settings).unwrap(),
        ieum_server::app::ExportTo {
            out: out.clone(),
            keep: None,
            with_files: true,
        },
    )
    .await
    .expect("the export with files");
    server.stop().await;

    let pg = TestDb::postgres().await;
    let target_dir = common::temp_dir();
    ieum_server::app::import(
        ieum_server::Config::resolve(common::settings(&pg, target_dir.clone())).unwrap(),
        out.clone(),
    )
    .await
    .expect("the import with files");
    let server = TestServer::start_in(&pg, target_dir, |_| {}).await;
    let (status, view) = http_json(
        server.addr,
        "GET",
        &format!("/api/attachments/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    let link = view["url"].as_str().expect("a download link");
    let got = download(link).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, bytes, "the photo came through byte for byte");
    server.stop().await;
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}
