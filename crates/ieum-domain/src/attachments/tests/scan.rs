//! The scan job.

use super::*;
use crate::attachment::Rendition;
use crate::ports::ScanVerdict;

fn eicar() -> ScanVerdict {
    ScanVerdict::Infected {
        signature: "Eicar-Test-Signature".into(),
    }
}

#[tokio::test]
async fn a_clean_verdict_makes_the_attachment_clean() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.served_key(), pdf(64));
    mocks
        .scanner()
        .expect_scan()
        .withf(|bytes| bytes.len() == 64)
        .times(1)
        .returning(|_| Ok(ScanVerdict::Clean));
    let round = mocks.service().scan_pending(10).await.unwrap();
    assert!(round.stopped_by.is_none());
    assert_eq!(round.finished.len(), 1);
    let scanned = stored.lock().unwrap().clone();
    assert_eq!(
        (scanned.state, scanned.scan),
        (AttachmentState::Clean, ScanOutcome::Clean)
    );
}

#[tokio::test]
async fn an_infected_file_is_marked_deleted_from_storage_and_never_downloadable() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.served_key(), pdf(64));
    mocks.scanner().expect_scan().returning(|_| Ok(eicar()));
    mocks.store.expect_presign_get().never();
    let deleted = mocks.deleted();
    let service = mocks.service();

    let round = service.scan_pending(10).await.unwrap();
    assert_eq!(round.finished.len(), 1);
    let infected = stored.lock().unwrap().clone();
    assert_eq!(infected.state, AttachmentState::Infected);
    assert_eq!(
        infected.scan,
        ScanOutcome::Infected {
            signature: "Eicar-Test-Signature".into()
        }
    );
    assert_eq!(*deleted.lock().unwrap(), attachment.keys());
    for who in [alice(), bob()] {
        let err = service
            .download(&who, attachment.id, Rendition::File)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "not_clean");
    }
    // Nothing is left to scan, so nothing can turn it clean later.
    let again = service.scan_pending(10).await.unwrap();
    assert!(again.finished.is_empty());
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Infected);
}

#[tokio::test]
async fn an_unavailable_scanner_leaves_everything_scanning_and_ends_the_round() {
    let mut mocks = Mocks::new();
    let first = scanning_pdf(64);
    let second = Attachment {
        id: Uuid::from_u128(101),
        ..scanning_pdf(64)
    };
    let waiting = vec![first.clone(), second.clone()];
    mocks
        .attachments
        .expect_awaiting_scan()
        .returning(move |_| Ok(waiting.clone()));
    mocks.attachments.expect_set_state().never();
    mocks
        .store
        .expect_get()
        .returning(|_, _| Ok(Fetched::Bytes(pdf(64))));
    // Asked once: a dead clamd is not asked again for every waiting file.
    mocks
        .scanner()
        .expect_scan()
        .times(1)
        .returning(|_| Err(DomainError::Unavailable("clamd: connection refused".into())));
    let deleted = mocks.deleted();
    let round = mocks.service().scan_pending(10).await.unwrap();
    assert!(round.finished.is_empty());
    assert_eq!(
        round.stopped_by.map(|error| error.code()),
        Some("unavailable")
    );
    assert!(deleted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_file_left_scanning_finishes_when_the_scanner_returns() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.served_key(), pdf(64));
    let mut calls = 0;
    mocks.scanner().expect_scan().times(2).returning(move |_| {
        calls += 1;
        if calls == 1 {
            Err(DomainError::Unavailable("down".into()))
        } else {
            Ok(ScanVerdict::Clean)
        }
    });
    let service = mocks.service();
    let first = service.scan_pending(10).await.unwrap();
    assert!(first.stopped_by.is_some());
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Scanning);
    let second = service.scan_pending(10).await.unwrap();
    assert_eq!(second.finished.len(), 1);
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Clean);
}

#[tokio::test]
async fn a_file_the_scanner_refuses_as_too_large_fails_and_is_deleted() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let stored = mocks.holding(attachment.clone());
    mocks.object(attachment.served_key(), pdf(64));
    mocks
        .scanner()
        .expect_scan()
        .returning(|_| Err(crate::error::named::too_large("over StreamMaxLength")));
    let deleted = mocks.deleted();
    let round = mocks.service().scan_pending(10).await.unwrap();
    assert!(round.stopped_by.is_none());
    assert_eq!(round.finished.len(), 1);
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Failed);
    assert_eq!(
        stored.lock().unwrap().scan_status(),
        crate::attachment::ScanStatus::Failed
    );
    assert_eq!(*deleted.lock().unwrap(), attachment.keys());
}

#[tokio::test]
async fn a_vanished_object_fails_instead_of_passing_as_clean() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let stored = mocks.holding(attachment.clone());
    mocks
        .store
        .expect_get()
        .returning(|_, _| Ok(Fetched::Missing));
    mocks.scanner().expect_scan().never();
    mocks.service().scan_pending(10).await.unwrap();
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Failed);
}

#[tokio::test]
async fn a_store_in_trouble_ends_the_round_and_keeps_the_file_scanning() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let stored = mocks.holding(attachment.clone());
    mocks
        .store
        .expect_get()
        .returning(|_, _| Err(DomainError::Unavailable("s3 down".into())));
    mocks.scanner().expect_scan().never();
    let round = mocks.service().scan_pending(10).await.unwrap();
    assert!(round.stopped_by.is_some());
    assert_eq!(stored.lock().unwrap().state, AttachmentState::Scanning);
}

#[tokio::test]
async fn without_a_scanner_waiting_files_become_clean_and_say_skipped() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let stored = mocks.holding(attachment.clone());
    mocks.store.expect_get().never();
    let round = mocks.service().scan_pending(10).await.unwrap();
    assert_eq!(round.finished.len(), 1);
    let skipped = stored.lock().unwrap().clone();
    assert_eq!(
        (skipped.state, skipped.scan),
        (AttachmentState::Clean, ScanOutcome::Skipped)
    );
}

#[tokio::test]
async fn a_file_another_node_scanned_first_is_left_to_it() {
    let mut mocks = Mocks::new();
    let attachment = scanning_pdf(64);
    let waiting = vec![attachment.clone()];
    mocks
        .attachments
        .expect_awaiting_scan()
        .returning(move |_| Ok(waiting.clone()));
    mocks
        .attachments
        .expect_set_state()
        .returning(|_, _| Ok(false));
    mocks.object(attachment.served_key(), pdf(64));
    mocks.scanner().expect_scan().returning(|_| Ok(eicar()));
    let deleted = mocks.deleted();
    let round = mocks.service().scan_pending(10).await.unwrap();
    assert!(round.finished.is_empty());
    assert!(deleted.lock().unwrap().is_empty(), "the winner deletes");
}

#[tokio::test]
async fn images_are_scanned_as_served() {
    let mut mocks = Mocks::new();
    let attachment = Attachment {
        state: AttachmentState::Scanning,
        scan: ScanOutcome::NotScanned,
        ..clean_png()
    };
    mocks.holding(attachment.clone());
    let served = attachment.served_key();
    assert!(served.ends_with("/image"));
    mocks.object(served, png(10));
    mocks
        .scanner()
        .expect_scan()
        .times(1)
        .returning(|_| Ok(ScanVerdict::Clean));
    let round = mocks.service().scan_pending(10).await.unwrap();
    assert_eq!(round.finished.len(), 1);
}
