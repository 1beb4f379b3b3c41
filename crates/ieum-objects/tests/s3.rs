//! S3Store against the suite's S3-compatible server (s3s-fs, which checks
//! SigV4 signatures), a fresh bucket per test. The presigned URLs are used
//! with a plain HTTP client, as a phone would.

use chrono::Duration;
use ieum_domain::attachment::{ContentType, Disposition, ServeAs};
use ieum_domain::ports::{Fetched, ObjectStore};
use ieum_objects::{AccessKey, S3Config, S3Store};
use ieum_test_support::S3Bucket;

const KEY: &str = "attachments/0190b2c4-5d6e-7f00-8a1b-2c3d4e5f6a7b/upload";

fn store(bucket: &S3Bucket) -> S3Store {
    S3Store::connect(S3Config {
        bucket: bucket.name.clone(),
        endpoint: Some(bucket.endpoint.clone()),
        region: "us-east-1".into(),
        path_style: true,
        public_endpoint: None,
        access_key: Some(AccessKey {
            id: bucket.access_key.clone(),
            secret: bucket.secret_key.clone(),
        }),
    })
    .unwrap()
}

fn sample(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 31 % 251) as u8).collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn objects_are_put_read_within_a_limit_and_deleted_twice() {
    let bucket = S3Bucket::create();
    let store = store(&bucket);
    assert_eq!(store.get(KEY, 100).await.unwrap(), Fetched::Missing);
    store.put(KEY, sample(50), "image/png").await.unwrap();
    assert_eq!(bucket.object_count(), 1);
    assert_eq!(
        store.get(KEY, 50).await.unwrap(),
        Fetched::Bytes(sample(50))
    );
    assert_eq!(
        store.get(KEY, 49).await.unwrap(),
        Fetched::TooLarge { size: 50 }
    );
    store.delete(KEY).await.unwrap();
    store.delete(KEY).await.unwrap();
    assert_eq!(bucket.object_count(), 0);
}

#[tokio::test]
async fn a_presigned_put_takes_exactly_the_declared_length_and_type() {
    let bucket = S3Bucket::create();
    let store = store(&bucket);
    let put = store
        .presign_put(KEY, "image/png", 40, Duration::minutes(5))
        .await
        .unwrap();
    let send = |body: Vec<u8>, content_type: &'static str| {
        client()
            .put(&put.url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let longer = send(sample(41), "image/png").await.unwrap();
    assert_eq!(longer.status(), 403, "a longer body breaks the signature");
    let shorter = send(sample(39), "image/png").await.unwrap();
    assert_eq!(shorter.status(), 403);
    let other_type = send(sample(40), "text/html").await.unwrap();
    assert_eq!(other_type.status(), 403, "the type is bound too");
    assert_eq!(bucket.object_count(), 0, "nothing refused is kept");
    let exact = send(sample(40), "image/png").await.unwrap();
    assert_eq!(exact.status(), 200);
    assert_eq!(
        store.get(KEY, 40).await.unwrap(),
        Fetched::Bytes(sample(40))
    );
}

#[tokio::test]
async fn a_presigned_get_serves_as_told_and_a_tampered_one_is_refused() {
    let bucket = S3Bucket::create();
    let store = store(&bucket);
    store
        .put(KEY, sample(30), "application/octet-stream")
        .await
        .unwrap();
    let serve = ServeAs {
        content_type: ContentType::Pdf,
        file_name: "계약서.pdf".into(),
        disposition: Disposition::Attachment,
    };
    let get = store
        .presign_get(KEY, &serve, Duration::minutes(5))
        .await
        .unwrap();
    let answer = client().get(&get.url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("application/pdf"));
    assert!(
        header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=")
    );
    assert_eq!(answer.bytes().await.unwrap().to_vec(), sample(30));
    let tampered = get.url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    assert_ne!(tampered, get.url);
    let refused = client().get(&tampered).send().await.unwrap();
    assert_eq!(refused.status(), 403);
}
