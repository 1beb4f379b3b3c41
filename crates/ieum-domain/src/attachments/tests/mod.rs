//! Unit tests of the attachment use cases, against mocked ports.
//!
//! The repository mock holds one attachment ([`Mocks::holding`]): `find`
//! answers it and `set_state` is a compare-and-set on it, so a test can run
//! complete, scan and download in a row and see what each stored.

mod lifecycle;
mod messages;
mod scan;
mod upload;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::attachment::{ContentType, NewUpload, Purpose, ScanOutcome};
use crate::hub::Hub;
use crate::ports::{
    Fetched, LocalBus, MockAttachmentRepository, MockClock, MockCoupleRepository,
    MockImageProcessor, MockMessageRepository, MockObjectStore, MockPasswordHasher,
    MockRoomRepository, MockSocialRepository, MockUserRepository, MockVirusScanner,
};
use crate::room::{MemberState, Membership, Role, RoomKind};
use crate::rooms::{RoomPolicy, RoomPorts};

const ROOM: &str = "room-1";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
}

/// Owner of the uploads, a member of [`ROOM`].
fn alice() -> Principal {
    Principal {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
    }
}

/// Another member of [`ROOM`].
fn bob() -> Principal {
    Principal {
        user_id: Uuid::from_u128(2),
        username: "bob".into(),
    }
}

/// Not a member of any room.
fn mallory() -> Principal {
    Principal {
        user_id: Uuid::from_u128(3),
        username: "mallory".into(),
    }
}

/// `len` bytes starting with `magic`.
fn bytes_of(magic: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.resize(len, b'x');
    bytes
}

fn png(len: usize) -> Vec<u8> {
    bytes_of(b"\x89PNG\r\n\x1a\n", len)
}

fn pdf(len: usize) -> Vec<u8> {
    bytes_of(b"%PDF-1.7\n", len)
}

/// Alice's announced upload into [`ROOM`], as `begin_upload` stores it.
fn announced(file_name: &str, declared_type: &str, size: u64) -> Attachment {
    Attachment {
        id: Uuid::from_u128(100),
        ..Attachment::announced(
            NewUpload {
                owner: alice().user_id,
                room_id: ROOM.into(),
                purpose: Purpose::Message,
                file_name: file_name.into(),
                declared_type: declared_type.into(),
                size,
            },
            &AttachmentPolicy::default(),
            now(),
        )
    }
}

/// A verified PDF of `size` bytes waiting for the scanner.
fn scanning_pdf(size: u64) -> Attachment {
    Attachment {
        state: AttachmentState::Scanning,
        detected_type: Some(ContentType::Pdf),
        sha256: Some("00".into()),
        ..announced("notes.pdf", "application/pdf", size)
    }
}

/// A clean PNG, scanned.
fn clean_png() -> Attachment {
    Attachment {
        state: AttachmentState::Clean,
        scan: ScanOutcome::Clean,
        detected_type: Some(ContentType::Png),
        sha256: Some("00".into()),
        width: Some(4),
        height: Some(3),
        ..announced("us.png", "image/png", 10)
    }
}

struct Mocks {
    attachments: MockAttachmentRepository,
    store: MockObjectStore,
    scanner: Option<MockVirusScanner>,
    images: MockImageProcessor,
    /// Keys the store was asked to delete, in order.
    deleted: Arc<Mutex<Vec<String>>>,
}

impl Mocks {
    /// A store that records deletions; no scanner unless a test adds one.
    fn new() -> Self {
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let mut store = MockObjectStore::new();
        let recorder = deleted.clone();
        store.expect_delete().returning(move |key| {
            recorder.lock().unwrap().push(key.to_owned());
            Ok(())
        });
        Self {
            attachments: MockAttachmentRepository::new(),
            store,
            scanner: None,
            images: MockImageProcessor::new(),
            deleted,
        }
    }

    /// The repository holds `attachment`; answers the cell it lives in.
    fn holding(&mut self, attachment: Attachment) -> Arc<Mutex<Attachment>> {
        let cell = Arc::new(Mutex::new(attachment));
        let found = cell.clone();
        self.attachments.expect_find().returning(move |id| {
            let stored = found.lock().unwrap().clone();
            Ok((stored.id == id).then_some(stored))
        });
        let written = cell.clone();
        self.attachments
            .expect_set_state()
            .returning(move |next, from| {
                let mut stored = written.lock().unwrap();
                if stored.state != from {
                    return Ok(false);
                }
                *stored = next.clone();
                Ok(true)
            });
        let unused = cell.clone();
        self.attachments
            .expect_delete_unused()
            .returning(move |id, from| {
                let mut stored = unused.lock().unwrap();
                if stored.id != id || stored.state != from || stored.message_id.is_some() {
                    return Ok(false);
                }
                stored.state = AttachmentState::Deleted;
                Ok(true)
            });
        let waiting = cell.clone();
        self.attachments.expect_awaiting_scan().returning(move |_| {
            let stored = waiting.lock().unwrap().clone();
            Ok(if stored.state == AttachmentState::Scanning {
                vec![stored]
            } else {
                Vec::new()
            })
        });
        cell
    }

    /// The store holds `bytes` under `key` (read with the caller's limit).
    fn object(&mut self, key: String, bytes: Vec<u8>) {
        self.store
            .expect_get()
            .withf(move |asked, _| asked == key)
            .returning(move |_, max_bytes| {
                Ok(if bytes.len() as u64 > max_bytes {
                    Fetched::TooLarge {
                        size: bytes.len() as u64,
                    }
                } else {
                    Fetched::Bytes(bytes.clone())
                })
            });
    }

    fn scanner(&mut self) -> &mut MockVirusScanner {
        self.scanner.get_or_insert_with(MockVirusScanner::new)
    }

    fn deleted(&self) -> Arc<Mutex<Vec<String>>> {
        self.deleted.clone()
    }

    fn service(self) -> AttachmentService {
        self.service_with(AttachmentPolicy::default())
    }

    fn service_with(self, policy: AttachmentPolicy) -> AttachmentService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let scanner = self
            .scanner
            .map(|scanner| Arc::new(scanner) as Arc<dyn VirusScanner>);
        AttachmentService::new(
            AttachmentPorts {
                attachments: Arc::new(self.attachments),
                store: Arc::new(self.store),
                rooms: room_service(),
                scanner,
                images: Arc::new(self.images),
                clock: Arc::new(clock),
            },
            policy,
        )
    }
}

/// Alice and Bob are active members of [`ROOM`]; nobody is in any other room.
fn room_service() -> Arc<RoomService> {
    let mut rooms = MockRoomRepository::new();
    rooms.expect_membership().returning(|room_id, user_id| {
        let member = room_id == ROOM && [alice().user_id, bob().user_id].contains(&user_id);
        Ok(member.then(|| Membership {
            room_id: room_id.into(),
            room_kind: RoomKind::Direct,
            user_id,
            role: Role::Member,
            state: MemberState::Active,
            joined_at: now(),
            last_read_seq: 0,
            favorite: false,
            left_seq: None,
            muted_until: None,
        }))
    });
    let mut messages = MockMessageRepository::new();
    messages.expect_last_seq().returning(|_| Ok(0));
    let messages: Arc<dyn crate::ports::MessageRepository> = Arc::new(messages);
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    Arc::new(RoomService::new(
        RoomPorts {
            messages: messages.clone(),
            rooms: Arc::new(rooms),
            users: Arc::new(MockUserRepository::new()),
            social: Arc::new(MockSocialRepository::new()),
            couples: Arc::new(MockCoupleRepository::new()),
            hasher: Arc::new(MockPasswordHasher::new()),
            hub: Hub::new(messages, Arc::new(LocalBus)),
            clock: Arc::new(clock),
        },
        RoomPolicy::default(),
    ))
}
