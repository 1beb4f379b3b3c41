//! Serving, attaching to messages, expiry and abandoned uploads.

use chrono::Duration;

use super::*;
use crate::attachment::{Disposition, Rendition, ThumbnailSize, TransferMethod};
use crate::message::MessageKind;

fn presigned_get(expires_in: Duration) -> PresignedRequest {
    PresignedRequest {
        url: "https://store.example/get".into(),
        method: TransferMethod::Get,
        headers: Vec::new(),
        expires_at: now() + expires_in,
    }
}

/// The store presigns any GET; answers what it was asked, in order.
fn presigning(mocks: &mut Mocks) -> Arc<Mutex<Vec<(String, ServeAs, Duration)>>> {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let recorder = asked.clone();
    mocks
        .store
        .expect_presign_get()
        .returning(move |key, serve, expires_in| {
            recorder
                .lock()
                .unwrap()
                .push((key.to_owned(), serve.clone(), expires_in));
            Ok(presigned_get(expires_in))
        });
    asked
}

#[tokio::test]
async fn a_member_downloads_a_clean_image_as_its_detected_type_inline() {
    let mut mocks = Mocks::new();
    let attachment = clean_png();
    mocks.holding(attachment.clone());
    let asked = presigning(&mut mocks);
    let service = mocks.service();
    service
        .download(&bob(), attachment.id, Rendition::File)
        .await
        .unwrap();
    let (key, serve, expires_in) = asked.lock().unwrap()[0].clone();
    assert_eq!(key, attachment.served_key());
    assert_eq!(serve.content_type, ContentType::Png);
    assert_eq!(serve.disposition, Disposition::Inline);
    assert_eq!(serve.file_name, "us.png");
    assert_eq!(expires_in, Duration::hours(1));
}

#[tokio::test]
async fn documents_are_offered_for_saving_not_shown() {
    let mut mocks = Mocks::new();
    let attachment = Attachment {
        state: AttachmentState::Clean,
        ..scanning_pdf(64)
    };
    mocks.holding(attachment.clone());
    let asked = presigning(&mut mocks);
    mocks
        .service()
        .download(&alice(), attachment.id, Rendition::File)
        .await
        .unwrap();
    let (key, serve, _) = asked.lock().unwrap()[0].clone();
    assert_eq!(key, format!("attachments/{}/file", attachment.id));
    assert_eq!(serve.disposition, Disposition::Attachment);
}

#[tokio::test]
async fn thumbnails_are_jpegs_of_images_only() {
    let mut mocks = Mocks::new();
    let image = clean_png();
    mocks.holding(image.clone());
    let asked = presigning(&mut mocks);
    let service = mocks.service();
    service
        .download(
            &alice(),
            image.id,
            Rendition::Thumbnail(ThumbnailSize::Small),
        )
        .await
        .unwrap();
    let (key, serve, _) = asked.lock().unwrap()[0].clone();
    assert!(key.ends_with("/thumb-320"), "{key}");
    assert_eq!(serve.content_type, ContentType::Jpeg);
    assert_eq!(serve.file_name, "us-320.jpg");

    let mut mocks = Mocks::new();
    let document = Attachment {
        state: AttachmentState::Clean,
        ..scanning_pdf(64)
    };
    mocks.holding(document.clone());
    let err = mocks
        .service()
        .download(
            &alice(),
            document.id,
            Rendition::Thumbnail(ThumbnailSize::Large),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "no_thumbnail");
}

#[tokio::test]
async fn a_download_url_never_outlives_the_attachment() {
    let mut mocks = Mocks::new();
    let attachment = Attachment {
        expires_at: Some(now() + Duration::minutes(5)),
        ..clean_png()
    };
    mocks.holding(attachment.clone());
    let asked = presigning(&mut mocks);
    mocks
        .service()
        .download(&alice(), attachment.id, Rendition::File)
        .await
        .unwrap();
    assert_eq!(asked.lock().unwrap()[0].2, Duration::minutes(5));
}

#[tokio::test]
async fn nothing_is_served_before_the_scan_says_clean() {
    for state in [AttachmentState::Pending, AttachmentState::Scanning] {
        let mut mocks = Mocks::new();
        let attachment = Attachment {
            state,
            ..clean_png()
        };
        mocks.holding(attachment.clone());
        mocks.store.expect_presign_get().never();
        let err = mocks
            .service()
            .download(&alice(), attachment.id, Rendition::File)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "not_clean", "{state:?}");
    }
}

#[tokio::test]
async fn an_expired_attachment_is_gone_even_before_the_job_ran() {
    let due = Attachment {
        expires_at: Some(now()),
        ..clean_png()
    };
    let expired = Attachment {
        state: AttachmentState::Expired,
        ..clean_png()
    };
    for attachment in [due, expired] {
        let mut mocks = Mocks::new();
        mocks.holding(attachment.clone());
        mocks.store.expect_presign_get().never();
        let err = mocks
            .service()
            .download(&alice(), attachment.id, Rendition::File)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "expired");
    }
}

#[tokio::test]
async fn outsiders_are_told_nothing_exists() {
    let mut mocks = Mocks::new();
    let attachment = clean_png();
    mocks.holding(attachment.clone());
    mocks.store.expect_presign_get().never();
    let err = mocks
        .service()
        .download(&mallory(), attachment.id, Rendition::File)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "attachment_not_found");
}

#[tokio::test]
async fn an_attachment_goes_into_one_message() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    mocks.holding(attachment.clone());
    let mut first = true;
    mocks
        .attachments
        .expect_mark_attached()
        .withf(|id, _| *id == Uuid::from_u128(100))
        .times(2)
        .returning(move |_, _| Ok(std::mem::replace(&mut first, false)));
    let service = mocks.service();
    let message = Uuid::from_u128(7);
    let Attached::Now(attached) = service
        .attach(&alice(), ROOM, attachment.id, message, MessageKind::File)
        .await
        .unwrap()
    else {
        panic!("not taken");
    };
    assert_eq!(attached.message_id, Some(message));
    let second = service
        .attach(
            &alice(),
            ROOM,
            attachment.id,
            Uuid::from_u128(8),
            MessageKind::File,
        )
        .await
        .unwrap();
    assert!(matches!(second, Attached::AlreadyIn(None)), "{second:?}");
}

#[tokio::test]
async fn a_message_cannot_take_someone_elses_upload() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    mocks.holding(attachment.clone());
    mocks.attachments.expect_mark_attached().never();
    let err = mocks
        .service()
        .attach(
            &bob(),
            ROOM,
            attachment.id,
            Uuid::from_u128(7),
            MessageKind::File,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "attachment_not_found");
}

#[tokio::test]
async fn expiry_deletes_every_object_then_marks_it_expired() {
    let mut mocks = Mocks::new();
    let attachment = Attachment {
        expires_at: Some(now()),
        ..clean_png()
    };
    let stored = mocks.holding(attachment.clone());
    let due = vec![attachment.clone()];
    mocks
        .attachments
        .expect_due_expired()
        .withf(|at, limit| *at == now() && *limit == JOB_BATCH)
        .returning(move |_, _| Ok(due.clone()));
    let deleted = mocks.deleted();
    let expired = mocks.service().expire_due(now()).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(*deleted.lock().unwrap(), attachment.keys());
    let stored = stored.lock().unwrap().clone();
    assert_eq!(stored.state, AttachmentState::Expired);
    assert_eq!(stored.scan, ScanOutcome::Clean, "what the scan found stays");
}

#[tokio::test]
async fn a_failed_deletion_leaves_the_attachment_due_for_the_next_round() {
    let mut mocks = Mocks::new();
    let attachment = clean_png();
    let due = vec![attachment.clone()];
    mocks
        .attachments
        .expect_due_expired()
        .returning(move |_, _| Ok(due.clone()));
    mocks.attachments.expect_set_state().never();
    mocks.store = MockObjectStore::new();
    mocks
        .store
        .expect_delete()
        .returning(|_| Err(DomainError::Unavailable("s3 down".into())));
    let err = mocks.service().expire_due(now()).await.unwrap_err();
    assert_eq!(err.code(), "unavailable");
}

#[tokio::test]
async fn uploads_no_message_took_within_a_day_are_deleted() {
    let mut mocks = Mocks::new();
    let attachment = announced("notes.pdf", "application/pdf", 64);
    let stored = mocks.holding(attachment.clone());
    let abandoned = vec![attachment.clone()];
    mocks
        .attachments
        .expect_unattached_before()
        .withf(|cutoff, _| *cutoff == now() - Duration::days(1))
        .returning(move |_, _| Ok(abandoned.clone()));
    let deleted = mocks.deleted();
    let count = mocks.service().delete_unattached(now()).await.unwrap();
    assert_eq!(count, 1);
    assert_eq!(*deleted.lock().unwrap(), attachment.keys());
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Deleted);
}
