//! The archive format on its own: round trips, and every way a file is refused.

use super::*;
use serde_json::json;

fn header() -> Header {
    Header {
        format: FORMAT.into(),
        version: VERSION,
        schema: "m1".into(),
        source: "sqlite".into(),
        created_at: Utc::now(),
        tables: vec![
            Table {
                name: "users".into(),
                columns: vec![
                    Column {
                        name: "id".into(),
                        kind: Kind::Uuid,
                    },
                    Column {
                        name: "name".into(),
                        kind: Kind::Text,
                    },
                ],
                rows: 3,
            },
            Table {
                name: "empty".into(),
                columns: vec![Column {
                    name: "n".into(),
                    kind: Kind::Int,
                }],
                rows: 0,
            },
        ],
        files: false,
    }
}

fn archive(rows: &[Json]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &header()).unwrap();
    w.table("users").unwrap();
    for r in rows {
        w.row(r.as_array().unwrap()).unwrap();
    }
    w.table("empty").unwrap();
    w.finish().unwrap().0
}

fn rows() -> Vec<Json> {
    (0..3)
        .map(|i| json!([Uuid::new_v4().to_string(), format!("이름 {i}")]))
        .collect()
}

fn read_all(bytes: &[u8], batch: usize) -> Result<Vec<(usize, usize)>, ArchiveError> {
    let mut r = Reader::open(bytes, batch)?;
    let mut seen = Vec::new();
    loop {
        match r.next_item()? {
            Item::Rows(t, rows) => seen.push((t, rows.len())),
            Item::Object(_, bytes) => seen.push((usize::MAX, bytes.len())),
            Item::End => return Ok(seen),
        }
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    GzDecoder::new(bytes).read_to_string(&mut s).unwrap();
    s
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[test]
fn an_archive_reads_back_in_batches() {
    let bytes = archive(&rows());
    assert_eq!(read_all(&bytes, 2).unwrap(), vec![(0, 2), (0, 1)]);
    assert_eq!(read_all(&bytes, 10).unwrap(), vec![(0, 3)]);
}

#[test]
fn stored_files_follow_the_tables_in_chunks() {
    let big: Vec<u8> = (0..(CHUNK * 2 + 7)).map(|i| (i % 251) as u8).collect();
    let mut w = Writer::new(
        Vec::new(),
        &Header {
            files: true,
            ..header()
        },
    )
    .unwrap();
    w.table("users").unwrap();
    for r in rows() {
        w.row(r.as_array().unwrap()).unwrap();
    }
    w.table("empty").unwrap();
    w.object("attachments/a/image", &big).unwrap();
    w.object("attachments/b/file", b"").unwrap();
    let (bytes, rows, objects) = w.finish().unwrap();
    assert_eq!((rows, objects), (3, 2));
    let mut r = Reader::open(&bytes[..], 10).unwrap();
    assert!(matches!(r.next_item().unwrap(), Item::Rows(0, ref b) if b.len() == 3));
    match r.next_item().unwrap() {
        Item::Object(key, got) => assert_eq!((key.as_str(), got), ("attachments/a/image", big)),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(r.next_item().unwrap(), Item::Object(ref k, ref b) if k == "attachments/b/file" && b.is_empty())
    );
    assert!(matches!(r.next_item().unwrap(), Item::End));
    // A chunk changed, or one gone, is refused.
    let text = gunzip(&bytes);
    let at = text.find("{\"chunk\":\"").unwrap() + 12;
    let flipped = format!(
        "{}{}{}",
        &text[..at],
        if &text[at..at + 1] == "A" { "B" } else { "A" },
        &text[at + 1..]
    );
    let err = read_all(&gzip(&flipped), 10).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let start = text.find("{\"chunk\"").unwrap();
    let end = start + text[start..].find('\n').unwrap() + 1;
    let dropped = format!("{}{}", &text[..start], &text[end..]);
    assert!(read_all(&gzip(&dropped), 10).is_err());
}

#[test]
fn a_truncated_archive_is_refused_at_any_cut() {
    let bytes = archive(&rows());
    for cut in [1, 10, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
        let err = read_all(&bytes[..cut], 2).unwrap_err();
        assert!(
            matches!(err, ArchiveError::Damaged(ref m) if m.contains("truncated") || m.contains("damaged") || m.contains("not an ieum archive")),
            "cut at {cut}: {err}"
        );
    }
    // A cut on a line boundary of the plain text is still refused.
    let text = gunzip(&bytes);
    let without_end = &text[..text.trim_end().rfind('\n').unwrap() + 1];
    let err = read_all(&gzip(without_end), 2).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn an_altered_row_fails_the_checksum() {
    let text = gunzip(&archive(&rows()));
    let altered = text.replace("이름 1", "이름 9");
    assert_ne!(text, altered);
    let err = read_all(&gzip(&altered), 2).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn wrong_shapes_name_their_line() {
    let text = gunzip(&archive(&rows()));
    let extra = text.replacen("\"]\n", "\",1]\n", 1);
    let err = read_all(&gzip(&extra), 2).unwrap_err();
    assert!(
        err.to_string()
            .contains("line 3: a row of users has 3 values"),
        "{err}"
    );
    let bad_uuid = text.replacen("[\"", "[\"x", 1);
    let err = read_all(&gzip(&bad_uuid), 2).unwrap_err();
    assert!(
        err.to_string().contains("users.id: not a Uuid value"),
        "{err}"
    );
    let trailing = format!("{text}{{\"table\":\"users\"}}\n");
    let err = read_all(&gzip(&trailing), 2).unwrap_err();
    assert!(err.to_string().contains("data after the end line"), "{err}");
}

#[test]
fn another_file_or_version_is_refused() {
    let err = read_all(&gzip("{\"hello\":1}\n"), 2).unwrap_err();
    assert!(err.to_string().contains("not an ieum archive"), "{err}");
    let err = read_all(b"plain text", 2).unwrap_err();
    assert!(matches!(err, ArchiveError::Damaged(_)), "{err}");
    let text = gunzip(&archive(&rows())).replacen("\"version\":1", "\"version\":7", 1);
    let err = read_all(&gzip(&text), 2).unwrap_err();
    assert!(matches!(err, ArchiveError::Version(7)), "{err}");
}

#[test]
fn values_convert_by_kind_with_typed_nulls() {
    let t = Utc::now();
    assert_eq!(
        to_value(Kind::Timestamp, timestamp(t)).unwrap(),
        Value::ChronoDateTimeUtc(Some(t))
    );
    assert_eq!(
        to_value(Kind::Int, json!(null)).unwrap(),
        Value::BigInt(None)
    );
    assert_eq!(
        to_value(Kind::Bool, json!(true)).unwrap(),
        Value::Bool(Some(true))
    );
    assert!(to_value(Kind::Int, json!("1")).is_err());
    assert!(to_value(Kind::Text, json!(1)).is_err());
}
