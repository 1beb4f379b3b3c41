//! The port traits the use cases depend on. Adapters implement them; with the
//! `mocks` feature (or in this crate's tests) mockall generates `Mock*` types.
//! The ports of files (scanning, storing, attachments' records, images) are
//! in `ports/files.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::DomainResult;
use crate::message::{Appended, HistoryQuery, Message, NewMessage};
use crate::room::{MemberState, MemberView, Membership, NewRoom, Role, Room, RoomSummary};
use crate::user::{NewUser, User, UserCredentials};

mod files;
pub use files::*;

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user. A taken username is `Conflict { code: "username_taken" }`.
    async fn create(&self, user: NewUser) -> DomainResult<User>;
    async fn find_credentials(&self, username: &str) -> DomainResult<Option<UserCredentials>>;
    async fn find_by_id(&self, id: Uuid) -> DomainResult<Option<User>>;
    /// The account with what decides whether a connection of it may go on:
    /// its suspension, if any, and whether session `family` was revoked. One
    /// round trip, asked on every real-time sign-in (a reconnect storm makes
    /// thousands at once).
    async fn standing(&self, id: Uuid, family: Option<Uuid>) -> DomainResult<Option<Standing>>;
}

/// An account as a sign-in sees it ([`UserRepository::standing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub user: User,
    pub suspension: Option<crate::moderation::Suspension>,
    pub family_revoked: bool,
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
    /// Whether the family was revoked (logout, reuse).
    async fn family_revoked(&self, family_id: Uuid) -> DomainResult<bool>;
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
    /// The session family the token was issued under (login starts one,
    /// refresh keeps it). Tokens issued before families were named carry none.
    pub family_id: Option<Uuid>,
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

/// The wall clock, to the microsecond: what PostgreSQL stores, so a time
/// reads back the same from either backend and after `ieum export`/`ieum
/// import` moves a server between them.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        Utc::now().trunc_subsecs(6)
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
    /// Staff closed the room: it takes no members.
    Closed,
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
    /// Bans someone who is not an active member: their row becomes (or is
    /// created as) `Banned` without ever being active or taking a seat. `false`
    /// when they are an active member after all (a join won the race).
    async fn ban_outsider(
        &self,
        room_id: &str,
        user_id: Uuid,
        at: DateTime<Utc>,
    ) -> DomainResult<bool>;
    /// Marks the room closed (no seat is taken in it again); false when it
    /// already was.
    async fn close(
        &self,
        room_id: &str,
        by: Option<Uuid>,
        at: DateTime<Utc>,
        reason: &str,
    ) -> DomainResult<bool>;
    /// Moves an active member to `Left` or `Banned`, freeing the seat.
    async fn remove_member(
        &self,
        room_id: &str,
        user_id: Uuid,
        state: MemberState,
    ) -> DomainResult<bool>;
    async fn set_role(&self, room_id: &str, user_id: Uuid, role: Role) -> DomainResult<bool>;
    /// Mutes an active member until then (`None`: unmutes); false when
    /// they are not an active member.
    async fn set_muted(
        &self,
        room_id: &str,
        user_id: Uuid,
        until: Option<DateTime<Utc>>,
    ) -> DomainResult<bool>;
    /// Moves a banned user to `Left` (they may join again); false when they
    /// were not banned.
    async fn unban(&self, room_id: &str, user_id: Uuid) -> DomainResult<bool>;
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
    async fn update_settings(
        &self,
        room_id: &str,
        settings: crate::room::RoomSettings,
    ) -> DomainResult<()>;
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
    async fn find(&self, id: Uuid) -> DomainResult<Option<Message>>;
    /// Replaces the content, keeping the old one in the edit history.
    async fn edit(
        &self,
        id: Uuid,
        content: String,
        at: DateTime<Utc>,
    ) -> DomainResult<Option<Message>>;
    /// Earlier contents, oldest first: (content, replaced at).
    async fn edits(&self, id: Uuid) -> DomainResult<Vec<(String, DateTime<Utc>)>>;
    /// Makes a tombstone: content, edits, reactions, pins and mentions are gone.
    async fn tombstone(&self, id: Uuid, at: DateTime<Utc>) -> DomainResult<Option<Message>>;
    /// Self-destructing messages whose time has come (not yet tombstoned).
    async fn due_expired(&self, now: DateTime<Utc>, limit: u32) -> DomainResult<Vec<Message>>;
    /// The earliest pending expiry, if any.
    async fn next_expiry(&self) -> DomainResult<Option<DateTime<Utc>>>;
    /// Replies to `parent`, oldest first, after a seq.
    async fn thread(
        &self,
        parent: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> DomainResult<Vec<Message>>;
    /// Adds or removes a reaction; true when something changed.
    async fn set_reaction(
        &self,
        message: Uuid,
        user: Uuid,
        emoji: &str,
        on: bool,
        at: DateTime<Utc>,
    ) -> DomainResult<bool>;
    /// Reactions of these messages.
    async fn reactions(
        &self,
        messages: Vec<Uuid>,
    ) -> DomainResult<Vec<(Uuid, crate::message::ReactionCount)>>;
    async fn set_pin(
        &self,
        room_id: &str,
        message: Uuid,
        by: Uuid,
        on: bool,
        at: DateTime<Utc>,
    ) -> DomainResult<bool>;
    /// Pinned messages, most recent pin first: (message, pinned by, pinned at).
    async fn pins(&self, room_id: &str) -> DomainResult<Vec<(Message, Uuid, DateTime<Utc>)>>;
    /// Substring search over what the user may read, newest first.
    async fn search(&self, query: crate::message::SearchQuery) -> DomainResult<Vec<Message>>;
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
    /// `Some(n)` while this node receives every event of every room; `n`
    /// changes whenever events may have been missed (a reconnect). `None`
    /// while it may be missing events. Caches built from events trust this.
    fn epoch(&self) -> Option<u64> {
        Some(0)
    }
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

/// Per-message and per-member receipt state.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReceiptRepository: Send + Sync {
    /// Marks others' messages of the room read: the listed ones, or every one up
    /// to `upto_seq`. Returns the (id, seq) of the messages marked now.
    async fn mark_messages_read(
        &self,
        room_id: &str,
        reader: Uuid,
        ids: Vec<Uuid>,
        upto_seq: Option<i64>,
        at: DateTime<Utc>,
    ) -> DomainResult<Vec<(Uuid, i64)>>;
    /// Moves the member's delivered cursor forward; true when it moved.
    async fn mark_delivered(&self, room_id: &str, user_id: Uuid, seq: i64) -> DomainResult<bool>;
    /// Whether two users share an active room.
    async fn share_room(&self, a: Uuid, b: Uuid) -> DomainResult<bool>;
    /// Ids of the user's active rooms.
    async fn room_ids_of(&self, user_id: Uuid) -> DomainResult<Vec<String>>;
}

/// Which users are online, counted by connection. The in-process registry
/// suffices on one node; the Redis adapter shares it across nodes.
#[async_trait]
pub trait PresenceRegistry: Send + Sync {
    /// Counts a connection; true when the user was offline before.
    async fn connected(&self, user_id: Uuid, connection: u64) -> DomainResult<bool>;
    /// Forgets a connection; true when it was the user's last.
    async fn disconnected(&self, user_id: Uuid, connection: u64) -> DomainResult<bool>;
    async fn is_online(&self, user_id: Uuid) -> DomainResult<bool>;
    /// Proves this node is alive (shared registries expire a silent node).
    async fn heartbeat(&self) -> DomainResult<()> {
        Ok(())
    }
    /// Users whose node died and who are connected nowhere else now; each is
    /// returned to exactly one node, which announces them offline.
    async fn take_orphaned_users(&self) -> DomainResult<Vec<Uuid>> {
        Ok(Vec::new())
    }
    /// False while a shared registry cannot be reached (answers are local then).
    fn healthy(&self) -> bool {
        true
    }
}

/// The single-node presence registry.
#[derive(Debug, Default)]
pub struct LocalPresence {
    online: std::sync::Mutex<std::collections::HashMap<Uuid, std::collections::HashSet<u64>>>,
}

impl LocalPresence {
    /// Users with at least one connection here.
    pub fn users(&self) -> Vec<Uuid> {
        let online = self.online.lock().unwrap_or_else(|p| p.into_inner());
        online.keys().copied().collect()
    }
}

#[async_trait]
impl PresenceRegistry for LocalPresence {
    async fn connected(&self, user_id: Uuid, connection: u64) -> DomainResult<bool> {
        let mut online = self.online.lock().unwrap_or_else(|p| p.into_inner());
        let conns = online.entry(user_id).or_default();
        let first = conns.is_empty();
        conns.insert(connection);
        Ok(first)
    }

    async fn disconnected(&self, user_id: Uuid, connection: u64) -> DomainResult<bool> {
        let mut online = self.online.lock().unwrap_or_else(|p| p.into_inner());
        let Some(conns) = online.get_mut(&user_id) else {
            return Ok(false);
        };
        let removed = conns.remove(&connection);
        let last = conns.is_empty();
        if last {
            online.remove(&user_id);
        }
        Ok(removed && last)
    }

    async fn is_online(&self, user_id: Uuid) -> DomainResult<bool> {
        let online = self.online.lock().unwrap_or_else(|p| p.into_inner());
        Ok(online.get(&user_id).is_some_and(|c| !c.is_empty()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoupleInvite {
    pub code: String,
    pub inviter_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Couple {
    pub id: Uuid,
    pub user_a: Uuid,
    pub user_b: Uuid,
    pub created_at: DateTime<Utc>,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CoupleRepository: Send + Sync {
    async fn save_invite(&self, invite: CoupleInvite) -> DomainResult<()>;
    async fn take_invite(&self, code: &str) -> DomainResult<Option<CoupleInvite>>;
    async fn couple_of(&self, user_id: Uuid) -> DomainResult<Option<Couple>>;
    /// Creates the couple and its 1:1 room (id = the couple id) with both users
    /// as members, atomically. Either user already paired is
    /// `Conflict { code: "already_paired" }`.
    async fn create(&self, couple: Couple, room: NewRoom) -> DomainResult<Couple>;
    /// Ends the couple: neither partner is paired afterwards (the couple's
    /// record and room stay). False when it was already ended.
    async fn dissolve(&self, couple_id: Uuid) -> DomainResult<bool>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendState {
    /// A request from this user to the other.
    Requested,
    Friends,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SocialRepository: Send + Sync {
    /// The state of the edge from `user` to `other`.
    async fn friend_state(&self, user: Uuid, other: Uuid) -> DomainResult<Option<FriendState>>;
    async fn set_friend_state(
        &self,
        user: Uuid,
        other: Uuid,
        state: Option<FriendState>,
        at: DateTime<Utc>,
    ) -> DomainResult<()>;
    /// Users whose username starts with `prefix` (lower-case, of username
    /// characters only) that `viewer` may find: those who are discoverable,
    /// share an active room with the viewer, or are their friends or friends
    /// of friends; never the viewer, nor anyone either side blocked. By
    /// username, at most `limit`.
    async fn find_users(&self, viewer: Uuid, prefix: &str, limit: u32) -> DomainResult<Vec<User>>;
    /// Users with an edge from `user` in this state (friends, or requests sent).
    async fn friends_of(&self, user: Uuid, state: FriendState) -> DomainResult<Vec<User>>;
    /// Users who sent `user` a request.
    async fn requests_to(&self, user: Uuid) -> DomainResult<Vec<User>>;
    async fn set_block(
        &self,
        blocker: Uuid,
        blocked: Uuid,
        on: bool,
        at: DateTime<Utc>,
    ) -> DomainResult<()>;
    /// True when either blocked the other.
    async fn blocked_between(&self, a: Uuid, b: Uuid) -> DomainResult<bool>;
    async fn blocks_of(&self, blocker: Uuid) -> DomainResult<Vec<User>>;
    async fn update_profile(&self, user: Uuid, profile: ProfileUpdate) -> DomainResult<User>;
    async fn set_last_seen(&self, user: Uuid, at: DateTime<Utc>) -> DomainResult<()>;
    async fn last_seen(&self, user: Uuid) -> DomainResult<Option<DateTime<Utc>>>;
}

/// `Some(None)` clears a field; `None` leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub profile_image_url: Option<Option<String>>,
    pub status_message: Option<Option<String>>,
    /// Whether anyone may find the user by username (`SocialService::find_users`).
    pub discoverable: Option<bool>,
}

/// Devices' push registrations.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceRepository: Send + Sync {
    /// Stores the registration, keyed by its token: a token already stored
    /// (under this user or another: a phone that changed accounts) keeps its
    /// id and takes the new owner and fields, and what was queued for its
    /// old owner goes. Answers the stored device.
    async fn register(&self, device: &crate::push::Device) -> DomainResult<crate::push::Device>;
    async fn find(&self, id: Uuid) -> DomainResult<Option<crate::push::Device>>;
    /// The devices of these users.
    async fn of_users(&self, users: &[Uuid]) -> DomainResult<Vec<crate::push::Device>>;
    /// Removes the user's device and its queued pushes; false when there was none.
    async fn remove(&self, user_id: Uuid, id: Uuid) -> DomainResult<bool>;
    /// Removes the device holding this token (the push service refused it).
    async fn remove_token(&self, token: &str) -> DomainResult<bool>;
    /// Removes the devices registered under a session family (its logout).
    async fn remove_family(&self, family_id: Uuid) -> DomainResult<u64>;
}

/// Mutes, preferences, proofs of delivery and the push outbox.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PushRepository: Send + Sync {
    /// The user's preferences (the defaults when never set).
    async fn prefs(&self, user_id: Uuid) -> DomainResult<crate::push::PushPrefs>;
    async fn set_prefs(&self, user_id: Uuid, prefs: crate::push::PushPrefs) -> DomainResult<()>;
    async fn mute(&self, user_id: Uuid, room_id: &str, mute: crate::push::Mute)
    -> DomainResult<()>;
    /// False when the room was not muted.
    async fn unmute(&self, user_id: Uuid, room_id: &str) -> DomainResult<bool>;
    async fn mute_of(
        &self,
        user_id: Uuid,
        room_id: &str,
    ) -> DomainResult<Option<crate::push::Mute>>;
    /// Every mute of the room, by user.
    async fn mutes_in(&self, room_id: &str) -> DomainResult<Vec<(Uuid, crate::push::Mute)>>;
    /// A connection (of this device; `None`: one that named none) was proven
    /// to hold the room's messages up to `seq`. Keeps the highest; writes
    /// nothing for a user without devices.
    async fn record_delivered(
        &self,
        user_id: Uuid,
        device: Option<Uuid>,
        room_id: &str,
        seq: i64,
    ) -> DomainResult<()>;
    /// The highest seq proven delivered to this device or to a connection
    /// of its user that named no device; 0 when none.
    async fn delivered(&self, user_id: Uuid, device: Uuid, room_id: &str) -> DomainResult<i64>;
    /// Queues a message for a device (unless the device is gone or no longer
    /// the user's: a plan that raced a move writes nothing): an idle entry becomes pending (due at
    /// `due_ms`, or at the end of its coalescing window if later); a pending
    /// one counts it and takes it as its latest, keeping its due time.
    async fn enqueue(&self, planned: &crate::push::Planned) -> DomainResult<()>;
    /// Claims up to `limit` pending entries due by `now_ms` that no live
    /// claim holds (each by one caller, even across nodes), until
    /// `lease_until_ms`.
    async fn claim_due(
        &self,
        now_ms: i64,
        claim: Uuid,
        lease_until_ms: i64,
        limit: u32,
    ) -> DomainResult<Vec<crate::push::OutboxEntry>>;
    /// A push went out for the entry: it idles until `quiet_until_ms`, or
    /// stays pending (due then) when messages came meanwhile.
    async fn sent(&self, entry: &crate::push::OutboxEntry, quiet_until_ms: i64)
    -> DomainResult<()>;
    /// Nothing was to be sent (received, read, muted, gone): the entry idles,
    /// or stays pending (due at `next_due_ms`) when messages came meanwhile.
    async fn skipped(&self, entry: &crate::push::OutboxEntry, next_due_ms: i64)
    -> DomainResult<()>;
    /// Try again at `due_ms`, counting from `first_seq`, after `attempts`.
    async fn retry(
        &self,
        entry: &crate::push::OutboxEntry,
        due_ms: i64,
        first_seq: i64,
        attempts: u32,
    ) -> DomainResult<()>;
}

/// Sends notifications (FCM, or the log of the embedded default). Never
/// fails: what went wrong is in the outcome.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PushGateway: Send + Sync {
    async fn send(&self, notification: &crate::push::Notification) -> crate::push::PushOutcome;
}
