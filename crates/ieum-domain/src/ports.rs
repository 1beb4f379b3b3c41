//! The port traits the use cases depend on. Adapters implement them; with the
//! `mocks` feature (or in this crate's tests) mockall generates `Mock*` types.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::DomainResult;
use crate::message::{Appended, HistoryQuery, Message, NewMessage};
use crate::room::{MemberState, MemberView, Membership, NewRoom, Role, Room, RoomSummary};
use crate::user::{NewUser, User, UserCredentials};

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user. A taken username is `Conflict { code: "username_taken" }`.
    async fn create(&self, user: NewUser) -> DomainResult<User>;
    async fn find_credentials(&self, username: &str) -> DomainResult<Option<UserCredentials>>;
    async fn find_by_id(&self, id: Uuid) -> DomainResult<Option<User>>;
}

/// A stored refresh token. The token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RefreshTokenRepository: Send + Sync {
    async fn insert(&self, record: RefreshTokenRecord) -> DomainResult<()>;
    async fn find(&self, id: Uuid) -> DomainResult<Option<RefreshTokenRecord>>;
    /// Marks the token used if it is neither used nor revoked, atomically.
    /// Returns whether this call was the one that marked it.
    async fn mark_used(&self, id: Uuid, at: DateTime<Utc>) -> DomainResult<bool>;
    /// Revokes every token of the family. Returns how many were revoked now.
    async fn revoke_family(&self, family_id: Uuid, at: DateTime<Utc>) -> DomainResult<u64>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: String) -> DomainResult<String>;
    /// `Ok(false)` for a wrong password; `Err` only when the hash cannot be read.
    async fn verify(&self, password: String, hash: String) -> DomainResult<bool>;
}

/// What an access token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: Uuid,
    pub username: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshClaims {
    pub token_id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Signs and checks tokens. Verification errors are `Unauthenticated` with the
/// codes `token_expired` or `token_invalid`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenCodec: Send + Sync {
    fn encode_access(
        &self,
        claims: &AccessClaims,
        issued_at: DateTime<Utc>,
    ) -> DomainResult<String>;
    fn encode_refresh(
        &self,
        claims: &RefreshClaims,
        issued_at: DateTime<Utc>,
    ) -> DomainResult<String>;
    fn decode_access(&self, token: &str, now: DateTime<Utc>) -> DomainResult<AccessClaims>;
    fn decode_refresh(&self, token: &str, now: DateTime<Utc>) -> DomainResult<RefreshClaims>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How an attempt to take a seat in a room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined,
    AlreadyMember,
    Full,
    /// The user is banned from the room.
    Banned,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RoomRepository: Send + Sync {
    /// Creates the room with `owner` as its first active member. An existing id
    /// is `Conflict { code: "room_exists" }`.
    async fn create(&self, room: NewRoom) -> DomainResult<Room>;
    async fn find(&self, id: &str) -> DomainResult<Option<Room>>;
    async fn find_by_invite_code(&self, code: &str) -> DomainResult<Option<Room>>;
    async fn membership(&self, room_id: &str, user_id: Uuid) -> DomainResult<Option<Membership>>;
    /// Makes the user an active member if a seat is free (checked atomically
    /// against the member limit). A banned user is never re-admitted here.
    async fn add_member(
        &self,
        room_id: &str,
        user_id: Uuid,
        role: Role,
        at: DateTime<Utc>,
    ) -> DomainResult<JoinOutcome>;
    /// Moves an active member to `Left` or `Banned`, freeing the seat.
    async fn remove_member(
        &self,
        room_id: &str,
        user_id: Uuid,
        state: MemberState,
    ) -> DomainResult<bool>;
    async fn set_role(&self, room_id: &str, user_id: Uuid, role: Role) -> DomainResult<bool>;
    async fn set_favorite(
        &self,
        room_id: &str,
        user_id: Uuid,
        favorite: bool,
    ) -> DomainResult<bool>;
    async fn set_invite_code(&self, room_id: &str, code: Option<String>) -> DomainResult<()>;
    /// Active members, oldest first.
    async fn members(&self, room_id: &str) -> DomainResult<Vec<MemberView>>;
    /// The user's active rooms, favorites first, then by latest message.
    async fn rooms_of(&self, user_id: Uuid) -> DomainResult<Vec<RoomSummary>>;
    /// Moves the read cursor forward (never back). Returns the cursor now.
    async fn mark_read(&self, room_id: &str, user_id: Uuid, seq: i64) -> DomainResult<i64>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Stores the message with the room's next seq, inside one transaction with
    /// the seq allocation; returns once it is durable. A client message id
    /// already stored for the same room and sender returns that message with
    /// `duplicate: true`.
    async fn append(&self, message: NewMessage) -> DomainResult<Appended>;
    /// A page of the room's messages, oldest first (see [`HistoryQuery`]); with
    /// only `limit`, the newest page.
    async fn page(&self, room_id: &str, query: HistoryQuery) -> DomainResult<Vec<Message>>;
    /// The highest seq stored for the room (0 when empty).
    async fn last_seq(&self, room_id: &str) -> DomainResult<i64>;
}

/// Carries room events between nodes. The in-process adapter does nothing (one
/// node); the Redis adapter publishes to other nodes, which hand what they
/// receive to their own [`crate::hub::Hub::deliver`].
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, event: &crate::hub::RoomEvent) -> DomainResult<()>;
    /// This node has local subscribers for the room now (or no longer).
    async fn watch(&self, _room_id: &str) {}
    async fn unwatch(&self, _room_id: &str) {}
}

/// The single-node bus.
#[derive(Debug, Default)]
pub struct LocalBus;

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, _event: &crate::hub::RoomEvent) -> DomainResult<()> {
        Ok(())
    }
}
