//! Sends that carry an attachment: `ChatService::send` with `attachmentId`.

use super::*;
use crate::attachment::ScanStatus;
use crate::chat::{ChatPorts, ChatService, Sender};
use crate::message::{Appended, Message, MessageKind, MessagePolicy, SendMessage};
use crate::ports::MockReceiptRepository;
use crate::rooms::Entry;

fn sender() -> Sender {
    Sender {
        id: alice().user_id,
        username: "alice".into(),
        display_name: "Alice".into(),
        image: None,
    }
}

fn chat(attachments: AttachmentService, messages: MockMessageRepository) -> ChatService {
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    let messages = Arc::new(messages);
    let mut room_repo = MockRoomRepository::new();
    room_repo.expect_members().returning(|_| Ok(Vec::new()));
    let hub = Hub::new(messages.clone(), Arc::new(LocalBus));
    ChatService::new(
        ChatPorts {
            rooms: room_service(),
            room_repo: Arc::new(room_repo),
            messages,
            receipts: Arc::new(MockReceiptRepository::new()),
            social: Arc::new(MockSocialRepository::new()),
            hub,
            clock: Arc::new(clock),
        },
        MessagePolicy::default(),
    )
    .with_attachments(Arc::new(attachments))
}

fn file_send(id: Uuid, client_msg_id: &str) -> SendMessage {
    SendMessage {
        parent_id: None,
        ttl_seconds: None,
        kind: Some(MessageKind::File),
        content: String::new(),
        image_url: None,
        attachment_id: Some(id),
        client_msg_id: Some(client_msg_id.into()),
    }
}

/// The store appends as asked, seq 1.
fn appending() -> MockMessageRepository {
    let mut messages = MockMessageRepository::new();
    messages.expect_append().returning(|new| {
        Ok(Appended {
            message: Message {
                id: new.id,
                kind: new.kind,
                client_msg_id: new.client_msg_id.clone(),
                ..Message::text(&new.room_id, 1, new.sender_id, "")
            },
            duplicate: false,
        })
    });
    messages
}

#[tokio::test]
async fn a_file_message_takes_its_attachment_and_shows_it_pending() {
    let mut mocks = Mocks::new();
    let cell = mocks.holding(scanning_pdf(10));
    let taken = cell.clone();
    mocks
        .attachments
        .expect_mark_attached()
        .times(1)
        .returning(move |_, message_id| {
            taken.lock().unwrap().message_id = Some(message_id);
            Ok(true)
        });
    let chat = chat(mocks.service(), appending());
    let id = cell.lock().unwrap().id;
    let appended = chat
        .send(&sender(), ROOM, Entry::MembersOnly, file_send(id, "c-1"))
        .await
        .unwrap();
    let file = appended.message.file.expect("the file is shown");
    assert_eq!((file.id, file.name.as_str()), (id, "notes.pdf"));
    assert_eq!(
        file.scan,
        ScanStatus::Pending,
        "the scan never blocks a send"
    );
    assert_eq!(
        cell.lock().unwrap().message_id,
        Some(appended.message.id),
        "the attachment names its message"
    );
}

#[tokio::test]
async fn a_send_that_is_not_stored_gives_the_attachment_back() {
    let mut mocks = Mocks::new();
    let cell = mocks.holding(scanning_pdf(10));
    mocks
        .attachments
        .expect_mark_attached()
        .returning(|_, _| Ok(true));
    mocks
        .attachments
        .expect_release()
        .times(1)
        .returning(|_, _| Ok(()));
    let mut messages = MockMessageRepository::new();
    messages
        .expect_append()
        .returning(|_| Err(DomainError::Unavailable("database down".into())));
    let chat = chat(mocks.service(), messages);
    let id = cell.lock().unwrap().id;
    let error = chat
        .send(&sender(), ROOM, Entry::MembersOnly, file_send(id, "c-1"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn a_taken_attachment_goes_with_no_other_message_but_a_retry_gets_its_own() {
    let earlier = Uuid::from_u128(500);
    let mut mocks = Mocks::new();
    let cell = mocks.holding(Attachment {
        message_id: Some(earlier),
        ..scanning_pdf(10)
    });
    mocks
        .attachments
        .expect_mark_attached()
        .returning(|_, _| Ok(false));
    let mut messages = MockMessageRepository::new();
    messages.expect_find().returning(move |id| {
        Ok(Some(Message {
            id,
            kind: MessageKind::File,
            client_msg_id: Some("c-1".into()),
            ..Message::text(ROOM, 1, alice().user_id, "")
        }))
    });
    messages.expect_append().never();
    let chat = chat(mocks.service(), messages);
    let id = cell.lock().unwrap().id;
    let other = chat
        .send(&sender(), ROOM, Entry::MembersOnly, file_send(id, "c-2"))
        .await
        .unwrap_err();
    assert_eq!(other.code(), "attachment_in_use");
    let retry = chat
        .send(&sender(), ROOM, Entry::MembersOnly, file_send(id, "c-1"))
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.message.id, earlier);
}

#[tokio::test]
async fn a_file_message_without_an_attachment_is_refused() {
    let chat = chat(Mocks::new().service(), MockMessageRepository::new());
    let error = chat
        .send(
            &sender(),
            ROOM,
            Entry::MembersOnly,
            SendMessage {
                attachment_id: None,
                ..file_send(Uuid::nil(), "c-1")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "missing_attachment");
}
