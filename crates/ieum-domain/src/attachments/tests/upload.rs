//! begin_upload and complete.

use chrono::Duration;

use super::*;
use crate::attachment::{ProcessedImage, Purpose, TransferMethod};
use crate::throttle::RateLimit;

fn request(file_name: &str, declared_type: &str, size: u64) -> UploadRequest {
    UploadRequest {
        file_name: file_name.into(),
        declared_type: declared_type.into(),
        size,
        purpose: Purpose::Message,
    }
}

fn presigned_put() -> PresignedRequest {
    PresignedRequest {
        url: "https://store.example/put".into(),
        method: TransferMethod::Put,
        headers: vec![("Content-Type".into(), "image/jpeg".into())],
        expires_at: now() + Duration::minutes(15),
    }
}

/// Alice has used `used` bytes; inserting and presigning work.
fn ready_to_begin(mocks: &mut Mocks, used: u64) {
    mocks
        .attachments
        .expect_bytes_used_by()
        .returning(move |_| Ok(used));
    mocks.attachments.expect_insert().returning(|_| Ok(()));
    mocks
        .store
        .expect_presign_put()
        .returning(|_, _, _, _| Ok(presigned_put()));
}

#[tokio::test]
async fn beginning_stores_a_pending_upload_and_presigns_a_put_bound_to_length_and_type() {
    let mut mocks = Mocks::new();
    mocks
        .attachments
        .expect_bytes_used_by()
        .returning(|_| Ok(0));
    mocks
        .attachments
        .expect_insert()
        .withf(|attachment| {
            attachment.state == AttachmentState::Pending
                && attachment.owner == alice().user_id
                && attachment.room_id == ROOM
                && attachment.file_name == "우리.jpg"
                && attachment.declared_type == "image/jpeg"
                && attachment.expires_at.is_none()
        })
        .times(1)
        .returning(|_| Ok(()));
    mocks
        .store
        .expect_presign_put()
        .withf(|key, content_type, length, expires_in| {
            key.starts_with("attachments/")
                && key.ends_with("/upload")
                && content_type == "image/jpeg"
                && *length == 2048
                && *expires_in == Duration::minutes(15)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(presigned_put()));
    let started = mocks
        .service()
        .begin_upload(
            &alice(),
            Some(ROOM),
            request("우리.jpg", "Image/JPEG; q=1", 2048),
        )
        .await
        .unwrap();
    assert_eq!(started.upload, presigned_put());
}

#[tokio::test]
async fn only_members_of_the_room_may_upload_into_it() {
    let mut mocks = Mocks::new();
    mocks.attachments.expect_insert().never();
    let err = mocks
        .service()
        .begin_upload(&mallory(), Some(ROOM), request("a.png", "image/png", 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_a_member");
}

#[tokio::test]
async fn an_upload_over_the_quota_is_refused_with_429() {
    let mut mocks = Mocks::new();
    let quota = AttachmentPolicy::default().quota_bytes;
    mocks
        .attachments
        .expect_bytes_used_by()
        .returning(move |_| Ok(quota - 5));
    mocks.attachments.expect_insert().never();
    let err = mocks
        .service()
        .begin_upload(&alice(), Some(ROOM), request("a.png", "image/png", 6))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "quota_exceeded");
    assert_eq!(err.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn an_upload_that_exactly_fills_the_quota_is_accepted() {
    let mut mocks = Mocks::new();
    ready_to_begin(&mut mocks, AttachmentPolicy::default().quota_bytes - 5);
    let started = mocks
        .service()
        .begin_upload(&alice(), Some(ROOM), request("a.png", "image/png", 5))
        .await;
    assert!(started.is_ok());
}

#[tokio::test]
async fn a_declared_size_over_the_limit_is_too_large_before_anything_is_stored() {
    let mut mocks = Mocks::new();
    mocks.attachments.expect_insert().never();
    let err = mocks
        .service()
        .begin_upload(
            &alice(),
            Some(ROOM),
            request("a.png", "image/png", 20 * 1024 * 1024 + 1),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "too_large");
}

#[tokio::test]
async fn a_program_by_name_or_an_unaccepted_declared_type_is_refused_up_front() {
    let mut mocks = Mocks::new();
    mocks.attachments.expect_insert().never();
    let service = mocks.service();
    let by_name = service
        .begin_upload(&alice(), Some(ROOM), request("setup.exe", "image/jpeg", 10))
        .await;
    assert_eq!(by_name.unwrap_err().code(), "unsupported_type");
    let by_type = service
        .begin_upload(
            &alice(),
            Some(ROOM),
            request("a", "application/x-msdownload", 10),
        )
        .await;
    assert_eq!(by_type.unwrap_err().code(), "unsupported_type");
}

#[tokio::test]
async fn beginning_too_many_uploads_is_rate_limited() {
    let mut mocks = Mocks::new();
    ready_to_begin(&mut mocks, 0);
    let policy = AttachmentPolicy {
        upload_rate: RateLimit::new(
            "upload-test",
            "upload_rate_limited",
            1,
            Duration::minutes(1),
        ),
        ..AttachmentPolicy::default()
    };
    let service = mocks.service_with(policy);
    let upload = || request("a.png", "image/png", 10);
    service
        .begin_upload(&alice(), Some(ROOM), upload())
        .await
        .unwrap();
    let err = service
        .begin_upload(&alice(), Some(ROOM), upload())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upload_rate_limited");
}

#[tokio::test]
async fn a_verified_file_waits_for_the_scan_with_its_type_and_hash() {
    let mut mocks = Mocks::new();
    let attachment = announced("notes.pdf", "application/pdf", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), pdf(64));
    mocks.scanner();
    copies_to_the_served_key(&mut mocks, &attachment);
    let done = mocks
        .service()
        .complete(&alice(), attachment.id)
        .await
        .unwrap();
    assert_eq!(done.state, AttachmentState::Scanning);
    assert_eq!(done.detected_type, Some(ContentType::Pdf));
    assert_eq!(
        done.sha256,
        Some(crate::attachments::upload::sha256_hex(&pdf(64)))
    );
    assert_eq!(done.sha256.as_ref().map(String::len), Some(64));
    assert_eq!(*stored.lock().unwrap(), done);
}

#[tokio::test]
async fn without_a_scanner_a_verified_file_is_clean_and_says_skipped() {
    let mut mocks = Mocks::new();
    let attachment = announced("notes.pdf", "application/pdf", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), pdf(64));
    copies_to_the_served_key(&mut mocks, &attachment);
    let done = mocks
        .service()
        .complete(&alice(), attachment.id)
        .await
        .unwrap();
    assert_eq!(done.state, AttachmentState::Clean);
    assert_eq!(done.scan, ScanOutcome::Skipped);
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Clean);
}

#[tokio::test]
async fn an_executable_renamed_jpg_declared_as_jpeg_is_unsupported_and_deleted() {
    let mut mocks = Mocks::new();
    let attachment = announced("cute.jpg", "image/jpeg", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), bytes_of(b"MZ\x90\0\x03\0", 64));
    mocks.images.expect_process().never();
    let (code, state, deleted) = complete_refused(mocks, attachment.id, &stored).await;
    assert_eq!(
        (code.as_str(), state),
        ("unsupported_type", AttachmentState::Failed)
    );
    assert_eq!(deleted, attachment.keys());
}

#[tokio::test]
async fn a_body_larger_than_declared_is_too_large_unread_and_deleted() {
    let mut mocks = Mocks::new();
    let attachment = announced("notes.pdf", "application/pdf", 64);
    let stored = mocks.holding(attachment.clone());
    // The store is asked for at most the declared size and reports more.
    mocks.object(attachment.upload_key(), pdf(65));
    let (code, state, deleted) = complete_refused(mocks, attachment.id, &stored).await;
    assert_eq!(
        (code.as_str(), state),
        ("too_large", AttachmentState::Failed)
    );
    assert_eq!(deleted, attachment.keys());
}

#[tokio::test]
async fn a_body_shorter_than_declared_is_refused_and_deleted() {
    let mut mocks = Mocks::new();
    let attachment = announced("notes.pdf", "application/pdf", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), pdf(63));
    let (code, state, deleted) = complete_refused(mocks, attachment.id, &stored).await;
    assert_eq!(
        (code.as_str(), state),
        ("size_mismatch", AttachmentState::Failed)
    );
    assert!(!deleted.is_empty());
}

#[tokio::test]
async fn bytes_of_another_family_than_declared_are_unsupported() {
    let mut mocks = Mocks::new();
    let attachment = announced("cute.jpg", "image/jpeg", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), pdf(64));
    let err = mocks
        .service()
        .complete(&alice(), attachment.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsupported_type");
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Failed);
}

#[tokio::test]
async fn completing_before_the_bytes_arrived_keeps_the_upload_pending() {
    let mut mocks = Mocks::new();
    let attachment = announced("notes.pdf", "application/pdf", 64);
    let stored = mocks.holding(attachment.clone());
    mocks
        .store
        .expect_get()
        .returning(|_, _| Ok(Fetched::Missing));
    let (code, state, deleted) = complete_refused(mocks, attachment.id, &stored).await;
    assert_eq!(
        (code.as_str(), state),
        ("upload_missing", AttachmentState::Pending)
    );
    assert!(deleted.is_empty());
}

#[tokio::test]
async fn completing_twice_answers_the_attachment_without_reading_again() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    mocks.holding(attachment.clone());
    mocks.store.expect_get().never();
    let done = mocks
        .service()
        .complete(&alice(), attachment.id)
        .await
        .unwrap();
    assert_eq!(done, attachment);
}

#[tokio::test]
async fn only_the_owner_completes_an_upload() {
    let mut mocks = Mocks::new();
    let attachment = announced("notes.pdf", "application/pdf", 64);
    mocks.holding(attachment.clone());
    mocks.store.expect_get().never();
    let err = mocks
        .service()
        .complete(&bob(), attachment.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "attachment_not_found");
}

#[tokio::test]
async fn an_image_is_served_from_a_copy_without_metadata_and_gets_two_thumbnails() {
    let mut mocks = Mocks::new();
    let attachment = announced("us.png", "image/png", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), png(64));
    mocks
        .images
        .expect_process()
        .withf(|bytes, content_type| bytes.len() == 64 && *content_type == ContentType::Png)
        .returning(|_, _| {
            Ok(ProcessedImage {
                width: 4000,
                height: 3000,
                served: png(40),
                small: b"small".to_vec(),
                large: b"large".to_vec(),
            })
        });
    let put = Arc::new(Mutex::new(Vec::new()));
    let recorder = put.clone();
    mocks
        .store
        .expect_put()
        .returning(move |key, bytes, content_type| {
            recorder
                .lock()
                .unwrap()
                .push((key.to_owned(), bytes.len(), content_type.to_owned()));
            Ok(())
        });
    let deleted = mocks.deleted();
    mocks.scanner();
    let done = mocks
        .service()
        .complete(&alice(), attachment.id)
        .await
        .unwrap();

    assert_eq!((done.width, done.height), (Some(4000), Some(3000)));
    assert_eq!(
        done.size, 40,
        "the served copy is what is stored and counted"
    );
    assert_eq!(
        done.sha256,
        Some(crate::attachments::upload::sha256_hex(&png(40)))
    );
    let id = attachment.id;
    assert_eq!(
        *put.lock().unwrap(),
        vec![
            (
                format!("attachments/{id}/thumb-320"),
                5,
                "image/jpeg".to_owned()
            ),
            (
                format!("attachments/{id}/thumb-1280"),
                5,
                "image/jpeg".to_owned()
            ),
            (
                format!("attachments/{id}/image"),
                40,
                "image/png".to_owned()
            ),
        ]
    );
    // The upload, which may carry GPS, is gone once the copy is stored.
    assert_eq!(*deleted.lock().unwrap(), vec![attachment.upload_key()]);
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Scanning);
}

#[tokio::test]
async fn an_image_the_processor_cannot_read_is_unsupported_and_deleted() {
    let mut mocks = Mocks::new();
    let attachment = announced("us.png", "image/png", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), png(64));
    mocks
        .images
        .expect_process()
        .returning(|_, _| Err(crate::error::named::unsupported_type("corrupt PNG")));
    let (code, state, deleted) = complete_refused(mocks, attachment.id, &stored).await;
    assert_eq!(
        (code.as_str(), state),
        ("unsupported_type", AttachmentState::Failed)
    );
    assert_eq!(deleted.len(), 5);
}

#[tokio::test]
async fn a_processor_in_trouble_leaves_the_upload_pending_to_complete_again() {
    let mut mocks = Mocks::new();
    let attachment = announced("us.png", "image/png", 64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.upload_key(), png(64));
    mocks
        .images
        .expect_process()
        .returning(|_, _| Err(DomainError::Unavailable("busy".into())));
    let (code, state, deleted) = complete_refused(mocks, attachment.id, &stored).await;
    assert_eq!(
        (code.as_str(), state),
        ("unavailable", AttachmentState::Pending)
    );
    assert!(deleted.is_empty());
}

#[tokio::test]
async fn an_upload_past_its_expiry_cannot_be_completed() {
    let mut mocks = Mocks::new();
    let attachment = Attachment {
        expires_at: Some(now()),
        ..announced("notes.pdf", "application/pdf", 64)
    };
    mocks.holding(attachment.clone());
    mocks.store.expect_get().never();
    let err = mocks
        .service()
        .complete(&alice(), attachment.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "expired");
}

#[tokio::test]
async fn a_profile_image_is_an_image_in_no_room_and_never_expires() {
    let mut mocks = Mocks::new();
    let inserted = Arc::new(Mutex::new(None));
    let keep = inserted.clone();
    mocks
        .attachments
        .expect_insert()
        .returning(move |attachment| {
            *keep.lock().unwrap() = Some(attachment.clone());
            Ok(())
        });
    mocks
        .attachments
        .expect_bytes_used_by()
        .returning(|_| Ok(0));
    mocks.store.expect_presign_put().returning(|_, _, _, _| {
        Ok(PresignedRequest {
            url: "https://store.example/put".into(),
            method: TransferMethod::Put,
            headers: Vec::new(),
            expires_at: now(),
        })
    });
    let policy = AttachmentPolicy {
        expires_after: Some(Duration::seconds(2)),
        ..AttachmentPolicy::default()
    };
    let service = mocks.service_with(policy);
    let profile = |name: &str, kind: &str| UploadRequest {
        purpose: Purpose::ProfileImage,
        ..request(name, kind, 100)
    };
    let refused = service
        .begin_upload(&alice(), None, profile("cv.pdf", "application/pdf"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "unsupported_type");
    let in_a_room = service
        .begin_upload(&alice(), Some(ROOM), profile("me.png", "image/png"))
        .await
        .unwrap_err();
    assert_eq!(in_a_room.code(), "invalid_room");
    service
        .begin_upload(&alice(), None, profile("me.png", "image/png"))
        .await
        .unwrap();
    let stored = inserted.lock().unwrap().clone().expect("stored");
    assert_eq!(
        stored.room_id,
        crate::attachment::personal_room(alice().user_id)
    );
    assert_eq!(stored.expires_at, None, "profile images do not expire");
    let message = service
        .begin_upload(&alice(), None, request("a.png", "image/png", 100))
        .await
        .unwrap_err();
    assert_eq!(
        message.code(),
        "invalid_room",
        "a message's file needs its room"
    );
}

#[tokio::test]
async fn only_a_clean_image_of_the_right_purpose_and_room_is_adopted() {
    let room_image = |state| Attachment {
        purpose: Purpose::RoomImage,
        state,
        ..clean_png()
    };
    let mut mocks = Mocks::new();
    let cell = mocks.holding(room_image(AttachmentState::Scanning));
    mocks
        .attachments
        .expect_mark_attached()
        .times(1)
        .returning(|_, _| Ok(true));
    let service = mocks.service();
    let id = cell.lock().unwrap().id;
    let scanning = service.adopt(&alice(), id, Some(ROOM)).await.unwrap_err();
    assert_eq!(scanning.code(), "not_clean");
    cell.lock().unwrap().state = AttachmentState::Clean;
    let elsewhere = service
        .adopt(&alice(), id, Some("room-2"))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), "attachment_purpose");
    let as_profile = service.adopt(&alice(), id, None).await.unwrap_err();
    assert_eq!(as_profile.code(), "attachment_purpose");
    let not_mine = service.adopt(&bob(), id, Some(ROOM)).await.unwrap_err();
    assert_eq!(not_mine.code(), "attachment_not_found");
    let adopted = service.adopt(&alice(), id, Some(ROOM)).await.unwrap();
    assert_eq!(adopted.holder, crate::attachment::room_image_holder(ROOM));
    assert!(adopted.now);
}

/// A verified file is copied once to `attachments/{id}/file`, the key no
/// presigned PUT names (the upload URL may be used again until it expires).
fn copies_to_the_served_key(mocks: &mut Mocks, attachment: &Attachment) {
    let key = format!("attachments/{}/file", attachment.id);
    mocks
        .store
        .expect_put()
        .withf(move |put, _, content_type| put == key && content_type == "application/pdf")
        .times(1)
        .returning(|_, _, _| Ok(()));
}

/// Completes Alice's upload `id`, which must be refused: the refusal's
/// code, the state stored after it, and the keys the store was told to delete.
async fn complete_refused(
    mocks: Mocks,
    id: Uuid,
    stored: &Arc<Mutex<Attachment>>,
) -> (String, AttachmentState, Vec<String>) {
    let deleted = mocks.deleted();
    let err = mocks.service().complete(&alice(), id).await.unwrap_err();
    let state = stored.lock().unwrap().state;
    let keys = deleted.lock().unwrap().clone();
    (err.code().to_owned(), state, keys)
}
