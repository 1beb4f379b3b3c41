//! LocalDiskStore on a real directory: a fresh one per test, removed after.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use ieum_domain::attachment::{ContentType, Disposition, ServeAs, TransferMethod};
use ieum_domain::ports::{Clock, Fetched, ObjectStore};
use ieum_objects::{LocalDiskConfig, LocalDiskStore, TokenError, TokenKey, TransferError};
use sha2::{Digest as _, Sha256};

const UPLOAD: &str = "attachments/0190b2c4-5d6e-7f00-8a1b-2c3d4e5f6a7b/upload";
const OTHER: &str = "attachments/0190b2c4-5d6e-7f00-8a1b-2c3d4e5f6a7c/upload";

/// A directory under the system temp dir, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("ieum-objects-{}", uuid::Uuid::new_v4())))
    }
    fn objects(&self) -> PathBuf {
        self.0.join("objects")
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
}

fn store(temp: &TempRoot) -> LocalDiskStore {
    let config = LocalDiskConfig {
        root: temp.objects(),
        public_base: "https://chat.example.com/".into(),
        token_key: TokenKey::new(b"0123456789abcdef0123456789abcdef").unwrap(),
    };
    LocalDiskStore::open(config, Arc::new(FixedClock(noon()))).unwrap()
}

fn sample(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 31 % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

fn token_of(url: &str) -> &str {
    url.strip_prefix("https://chat.example.com/files/")
        .expect("a URL served by ieum")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

async fn presigned_put_token(store: &LocalDiskStore, length: u64) -> String {
    let request = store
        .presign_put(UPLOAD, "image/png", length, Duration::minutes(15))
        .await
        .unwrap();
    token_of(&request.url).to_owned()
}

#[tokio::test]
async fn put_get_and_delete_keep_the_bytes_and_then_none() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let bytes = sample(300_000);

    store.put(UPLOAD, bytes.clone(), "image/png").await.unwrap();
    let Fetched::Bytes(read) = store.get(UPLOAD, 300_000).await.unwrap() else {
        panic!("the object should be read");
    };
    assert_eq!(sha256(&read), sha256(&bytes));

    store.delete(UPLOAD).await.unwrap();
    assert_eq!(store.get(UPLOAD, 300_000).await.unwrap(), Fetched::Missing);
    store.delete(UPLOAD).await.unwrap();
    assert!(
        files_under(&temp.objects()).is_empty(),
        "nothing left behind"
    );
}

#[tokio::test]
async fn the_root_is_private_to_the_owner() {
    let temp = TempRoot::new();
    let _store = store(&temp);
    let mode = std::fs::metadata(temp.objects())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[tokio::test]
async fn a_put_replaces_the_object_whole() {
    let temp = TempRoot::new();
    let store = store(&temp);
    store.put(UPLOAD, sample(10), "image/png").await.unwrap();
    store
        .put(UPLOAD, b"new".to_vec(), "image/png")
        .await
        .unwrap();
    assert_eq!(
        store.get(UPLOAD, 10).await.unwrap(),
        Fetched::Bytes(b"new".to_vec())
    );
    assert_eq!(
        files_under(&temp.objects()).len(),
        1,
        "no staging file left"
    );
}

#[tokio::test]
async fn an_object_over_the_limit_is_not_read() {
    let temp = TempRoot::new();
    let store = store(&temp);
    store.put(UPLOAD, sample(101), "image/png").await.unwrap();
    assert_eq!(
        store.get(UPLOAD, 100).await.unwrap(),
        Fetched::TooLarge { size: 101 }
    );
    assert!(matches!(
        store.get(UPLOAD, 101).await.unwrap(),
        Fetched::Bytes(_)
    ));
}

#[tokio::test]
async fn keys_that_could_escape_the_root_are_refused() {
    let temp = TempRoot::new();
    let store = store(&temp);
    for key in [
        "",
        "../escaped",
        "attachments/../../escaped",
        "/tmp/escaped",
        "attachments\\..\\escaped",
        "attachments/a\0b",
        "attachments//upload",
        ".staging/x",
    ] {
        let error = store
            .put(key, b"x".to_vec(), "text/plain")
            .await
            .unwrap_err();
        assert_eq!(error.code(), "internal", "{key:?}");
        assert!(
            error.to_string().contains("object key refused"),
            "{key:?}: {error}"
        );
        assert!(store.get(key, 10).await.is_err(), "{key:?}");
        assert!(store.delete(key).await.is_err(), "{key:?}");
        assert!(
            store
                .presign_put(key, "text/plain", 1, Duration::minutes(1))
                .await
                .is_err(),
            "{key:?}"
        );
    }
    assert!(!temp.0.join("escaped").exists());
    assert!(files_under(&temp.0).is_empty());
}

#[tokio::test]
async fn a_presigned_put_names_ieum_and_the_bound_type() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let request = store
        .presign_put(UPLOAD, "image/png", 5, Duration::seconds(900))
        .await
        .unwrap();
    assert_eq!(request.method, TransferMethod::Put);
    assert!(request.url.starts_with("https://chat.example.com/files/"));
    assert_eq!(
        request.headers,
        vec![("Content-Type".to_owned(), "image/png".to_owned())]
    );
    assert_eq!(request.expires_at, noon() + Duration::seconds(900));
}

#[tokio::test]
async fn a_presigned_put_with_the_bound_body_is_stored() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let bytes = sample(4096);
    let token = presigned_put_token(&store, 4096).await;

    assert_eq!(
        store.authorize_put(&token, "image/png", noon()).unwrap(),
        4096
    );
    store
        .accept_put(&token, "image/png", bytes.clone(), noon())
        .await
        .unwrap();
    let Fetched::Bytes(read) = store.get(UPLOAD, 4096).await.unwrap() else {
        panic!("the upload should be stored");
    };
    assert_eq!(sha256(&read), sha256(&bytes));
}

/// Files in the staging area: what an unfinished or refused PUT left.
fn staged(temp: &TempRoot) -> usize {
    std::fs::read_dir(temp.objects().join(".staging"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_body_streams_to_disk_in_chunks_and_a_refused_or_dropped_one_leaves_nothing() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let bytes = sample(10_000);
    let token = presigned_put_token(&store, 10_000).await;

    let mut writer = store.begin_put(&token, "image/png", noon()).await.unwrap();
    assert_eq!(writer.expected(), 10_000);
    for chunk in bytes.chunks(3000) {
        writer.write(chunk.to_vec()).await.unwrap();
    }
    writer.finish().await.unwrap();
    assert_eq!(
        store.get(UPLOAD, 10_000).await.unwrap(),
        Fetched::Bytes(bytes.clone())
    );
    assert_eq!(staged(&temp), 0);

    // Past the bound length: refused at that chunk; the object stays as it was.
    let mut longer = store.begin_put(&token, "image/png", noon()).await.unwrap();
    longer.write(sample(9_000)).await.unwrap();
    let error = longer.write(sample(1_001)).await.unwrap_err();
    assert!(
        matches!(
            error,
            TransferError::WrongLength {
                expected: 10_000,
                got: 10_001
            }
        ),
        "{error:?}"
    );
    drop(longer);
    // Dropped before finishing (the client went away).
    let mut gone = store.begin_put(&token, "image/png", noon()).await.unwrap();
    gone.write(sample(5_000)).await.unwrap();
    drop(gone);
    assert_eq!(staged(&temp), 0, "nothing is left in staging");
    assert_eq!(
        store.get(UPLOAD, 10_000).await.unwrap(),
        Fetched::Bytes(bytes)
    );
}

#[tokio::test]
async fn a_longer_or_shorter_body_is_refused_and_nothing_kept() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let token = presigned_put_token(&store, 4096).await;

    for length in [4097, 4095, 0] {
        let error = store
            .accept_put(&token, "image/png", sample(length), noon())
            .await
            .unwrap_err();
        assert!(
            matches!(error, TransferError::WrongLength { expected: 4096, got } if got == length as u64),
            "{error:?}"
        );
    }
    assert_eq!(store.get(UPLOAD, u64::MAX).await.unwrap(), Fetched::Missing);
    assert!(files_under(&temp.objects()).is_empty());
}

#[tokio::test]
async fn a_body_of_another_type_is_refused_and_nothing_kept() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let token = presigned_put_token(&store, 16).await;

    for content_type in ["image/jpeg", "", "image/png; charset=utf-8"] {
        let error = store
            .accept_put(&token, content_type, sample(16), noon())
            .await
            .unwrap_err();
        assert!(
            matches!(error, TransferError::WrongContentType { .. }),
            "{error:?}"
        );
        assert!(store.authorize_put(&token, content_type, noon()).is_err());
    }
    assert!(files_under(&temp.objects()).is_empty());
}

#[tokio::test]
async fn an_expired_put_token_is_refused() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let token = presigned_put_token(&store, 16).await;
    let later = noon() + Duration::minutes(15);

    let error = store
        .accept_put(&token, "image/png", sample(16), later)
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransferError::Token(TokenError::Expired(_))),
        "{error:?}"
    );
    assert!(files_under(&temp.objects()).is_empty());
}

fn serve_png() -> ServeAs {
    ServeAs {
        content_type: ContentType::Png,
        file_name: "우리 사진.png".into(),
        disposition: Disposition::Inline,
    }
}

#[tokio::test]
async fn a_presigned_get_opens_the_object_served_as_told() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let bytes = sample(2048);
    store
        .put(UPLOAD, bytes.clone(), "application/octet-stream")
        .await
        .unwrap();
    let request = store
        .presign_get(UPLOAD, &serve_png(), Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(request.method, TransferMethod::Get);

    let mut download = store
        .open_get(token_of(&request.url), noon())
        .await
        .unwrap();
    assert_eq!(download.length, 2048);
    assert_eq!(download.content_type, "image/png");
    assert_eq!(download.disposition, Disposition::Inline);
    assert_eq!(download.file_name, "우리 사진.png");
    let mut read = Vec::new();
    download.file.read_to_end(&mut read).unwrap();
    assert_eq!(sha256(&read), sha256(&bytes));
}

#[tokio::test]
async fn a_get_token_does_not_open_another_key() {
    let temp = TempRoot::new();
    let store = store(&temp);
    store.put(UPLOAD, sample(8), "image/png").await.unwrap();
    store.put(OTHER, sample(8), "image/png").await.unwrap();
    let request = store
        .presign_get(UPLOAD, &serve_png(), Duration::hours(1))
        .await
        .unwrap();

    // The same token with the other key written in: the signature no longer holds.
    let mut bytes = URL_SAFE_NO_PAD.decode(token_of(&request.url)).unwrap();
    let at = bytes
        .windows(UPLOAD.len())
        .position(|window| window == UPLOAD.as_bytes())
        .unwrap();
    bytes[at..at + OTHER.len()].copy_from_slice(OTHER.as_bytes());
    let forged = URL_SAFE_NO_PAD.encode(bytes);

    let error = store.open_get(&forged, noon()).await.unwrap_err();
    assert!(
        matches!(error, TransferError::Token(TokenError::BadSignature)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_put_token_does_not_download() {
    let temp = TempRoot::new();
    let store = store(&temp);
    store.put(UPLOAD, sample(16), "image/png").await.unwrap();
    let token = presigned_put_token(&store, 16).await;
    let error = store.open_get(&token, noon()).await.unwrap_err();
    assert!(
        matches!(error, TransferError::Token(TokenError::WrongMethod { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_get_for_a_deleted_object_is_missing() {
    let temp = TempRoot::new();
    let store = store(&temp);
    let request = store
        .presign_get(UPLOAD, &serve_png(), Duration::hours(1))
        .await
        .unwrap();
    let error = store
        .open_get(token_of(&request.url), noon())
        .await
        .unwrap_err();
    assert!(matches!(error, TransferError::Missing), "{error:?}");
}
