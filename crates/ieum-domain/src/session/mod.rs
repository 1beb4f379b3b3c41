//! One connected client, whatever transport carries it (STOMP over WebSocket
//! today; Socket.IO, SockJS, SSE and plain JSON tomorrow).
//!
//! A transport adapter turns its frames into the calls below and the
//! deliveries the core hands back into its frames; everything else is here,
//! once: authentication, subscriptions and their authorization, sends with the
//! connection's rate limit, the bounded mailbox (a consumer that falls behind
//! is dropped, [`crate::hub::Mailbox`]), resume by seq, delivery receipts,
//! typing and presence, and the token's lifetime: a session whose family is
//! revoked or whose user is suspended says so ([`Session::ended`]) and one whose access token expires
//! says until when it holds ([`Session::expires_at`]); the transport ends
//! the connection then. No wire shape is known here: a subscription carries
//! its transport's `shape` as an opaque number.

mod meters;
mod proofs;
mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use uuid::Uuid;

use meters::Meters;
use rules::Bucket;
pub use rules::{DeliveryTracker, ProofTracker, TypingThrottle};

use crate::auth::{AuthService, Grant, Principal};
use crate::chat::{ChatService, ReadReceipt, Sender, SubscribeRequest, Subscribed};
use crate::error::{DomainError, DomainResult};
use crate::hub::{
    Delivery, EventPayload, LOBBY_FEED, Mailbox, MailboxReceiver, mailbox, user_feed,
};
use crate::message::{Appended, Message, SendMessage};
use crate::push::PushService;
use crate::room::RoomSummary;
use crate::rooms::{Entry, RoomService};
use crate::social::SocialService;

/// The use cases a session drives.
#[derive(Clone)]
pub struct SessionServices {
    pub auth: Arc<AuthService>,
    pub rooms: Arc<RoomService>,
    pub chat: Arc<ChatService>,
    pub social: Arc<SocialService>,
    /// Proofs of receipt go here; `None`: no pushes, nothing to prove.
    pub push: Option<Arc<PushService>>,
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Sends per second on this connection (burst twice that).
    pub send_rate: u32,
    /// At most one typing notice per room per interval.
    pub typing_interval: Duration,
    /// Deliveries queued for the client before it counts as a slow consumer.
    pub outbound_queue: usize,
    /// How the client is connected (`stomp`, `socket.io`, `sse`, ...), for logs.
    pub transport: &'static str,
}

/// How long a connection trusts its answer to "does my user have a device
/// to push?".
const PROOF_RECHECK: Duration = Duration::from_secs(60);

/// Rooms whose last typing notice one connection remembers.
const TYPING_ROOMS: usize = 256;

/// The session's own subscription to its user's feed, for revocations. A
/// client's subscription id may hold no NUL ([`Session::check_new_subscription`]),
/// so none collides with it (an UNSUBSCRIBE of it would silence revocations).
const SESSION_FEED: &str = "\0session";

/// What a client asks for with one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Message {
        room_id: String,
        entry: Entry,
        msg: SendMessage,
    },
    Read {
        room_id: String,
        message_ids: Vec<Uuid>,
        upto: Option<i64>,
    },
    Typing {
        room_id: String,
    },
}

/// What a command did.
#[derive(Debug)]
pub enum Outcome {
    Sent(Box<Appended>),
    Read(ReadReceipt),
    /// The typing notice went out.
    Typed,
    /// The typing notice came too soon after the last one and was dropped.
    TypingDropped,
}

/// What a subscription listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listening {
    /// One room's messages and events.
    Room(String),
    /// The user's events: their rooms, their own feed and the lobby (contract C).
    Events(Vec<String>),
}

#[derive(Debug)]
struct Subscription {
    listening: Listening,
    shape: u8,
    /// A 1:1 room: what reaches this device counts as delivered.
    direct: bool,
}

impl Subscription {
    fn feeds(&self) -> Vec<String> {
        match &self.listening {
            Listening::Room(room) => vec![room.clone()],
            Listening::Events(feeds) => feeds.clone(),
        }
    }
}

/// A delivery for the transport to write: the subscription it belongs to and
/// the shape that subscription speaks.
#[derive(Debug)]
pub struct Outgoing {
    pub delivery: Delivery,
    pub shape: u8,
}

pub struct Session {
    services: SessionServices,
    user: Option<Sender>,
    /// Until when the access token holds, and its session family.
    grant: Option<(DateTime<Utc>, Option<Uuid>)>,
    /// Why the session must end now: its family was revoked, or its user
    /// suspended.
    ended: Option<(&'static str, &'static str)>,
    mailbox: Mailbox,
    subscriptions: HashMap<Arc<str>, Subscription>,
    bucket: Bucket,
    typing: TypingThrottle,
    delivery: DeliveryTracker,
    proofs: ProofTracker,
    /// The registered device this connection runs on, when it said.
    device: Option<Uuid>,
    /// Whether the user has a device to push (so proofs matter), and when
    /// that was asked.
    proofs_wanted: Option<(bool, Instant)>,
    transport: &'static str,
    /// When the user signed in on it (the connection's duration in the log).
    since: Option<Instant>,
    meters: Meters,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.meters.closed(self.since.is_some());
    }
}

impl Session {
    /// A session and the receiving half of its mailbox, which the transport
    /// drains into its socket.
    pub fn new(services: SessionServices, policy: SessionPolicy) -> (Self, MailboxReceiver) {
        let (mailbox, inbox) = mailbox(policy.outbound_queue);
        let session = Self {
            services,
            user: None,
            grant: None,
            ended: None,
            mailbox,
            subscriptions: HashMap::new(),
            bucket: Bucket::new(policy.send_rate),
            typing: TypingThrottle::new(policy.typing_interval, TYPING_ROOMS),
            delivery: DeliveryTracker::default(),
            proofs: ProofTracker::default(),
            device: None,
            proofs_wanted: None,
            transport: policy.transport,
            since: None,
            meters: Meters::opened(policy.transport),
        };
        (session, inbox)
    }

    /// This connection's id (logs, presence).
    pub fn id(&self) -> u64 {
        self.mailbox.id()
    }

    pub fn user(&self) -> Option<&Sender> {
        self.user.as_ref()
    }

    /// When the access token the session signed in with expires: the
    /// transport ends the connection then (`token_expired`); the client
    /// reconnects with a fresh token and resumes by seq.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.grant.map(|(at, _)| at)
    }

    /// The session's family was revoked (logout, refresh-token reuse), or
    /// its user suspended: the transport ends the connection with this code
    /// and message (`session_revoked`, `suspended`).
    pub fn ended(&self) -> Option<(&'static str, &'static str)> {
        self.ended
    }

    fn principal(&self) -> DomainResult<Principal> {
        self.user
            .as_ref()
            .map(Sender::principal)
            .ok_or_else(|| DomainError::unauthenticated("not_connected", "authenticate first"))
    }

    /// Signs the session in with an access token (or what the transport's
    /// handshake already proved), and marks the user online. Counted in
    /// `ieum_handshakes_total` by transport and result.
    pub async fn authenticate(
        &mut self,
        token: Option<&str>,
        handshake: Option<Grant>,
    ) -> DomainResult<Sender> {
        let result = self.sign_in(token, handshake).await;
        self.meters.handshake(result.as_ref().err());
        result
    }

    async fn sign_in(
        &mut self,
        token: Option<&str>,
        handshake: Option<Grant>,
    ) -> DomainResult<Sender> {
        if self.user.is_some() {
            return Err(DomainError::invalid(
                "already_connected",
                "the session is already authenticated",
            ));
        }
        let grant = match (token, handshake) {
            (Some(token), _) => self.services.auth.grant(token.trim()).await?,
            (None, Some(grant)) => grant,
            (None, None) => {
                return Err(DomainError::unauthenticated(
                    "missing_token",
                    "send Authorization: Bearer <access token>",
                ));
            }
        };
        let feed = user_feed(grant.principal.user_id);
        self.services
            .chat
            .subscribe_feed(
                &grant.principal,
                &feed,
                SESSION_FEED.into(),
                0,
                self.mailbox.clone(),
            )
            .await?;
        // Listening now: a revocation from here on is heard. One that came
        // before (since the upgrade's check, or this one's) is in the store,
        // which the sign-in's one lookup reads with the account.
        let user = match self.services.auth.sign_in(&grant).await {
            Ok(user) => user,
            Err(e) => {
                self.services
                    .chat
                    .unsubscribe(&feed, &self.mailbox, SESSION_FEED.into());
                return Err(e);
            }
        };
        let sender = Sender::from(&user);
        tracing::info!(
            user = %sender.username,
            transport = self.transport,
            connection = self.id(),
            "connected"
        );
        self.since = Some(Instant::now());
        self.user = Some(sender.clone());
        self.grant = Some((grant.expires_at, grant.family_id));
        if let Err(e) = self.services.social.connected(user.id, self.id()).await {
            tracing::warn!(error = %e, "presence update failed");
        }
        Ok(sender)
    }

    /// This connection's subscriptions to one room, with their shapes.
    pub fn room_subscriptions(&self, room_id: &str) -> Vec<(Arc<str>, u8)> {
        self.subscriptions
            .iter()
            .filter(|(_, s)| matches!(&s.listening, Listening::Room(room) if room == room_id))
            .map(|(id, s)| (id.clone(), s.shape))
            .collect()
    }

    pub fn has_subscription(&self, id: &str) -> bool {
        self.subscriptions.contains_key(id)
    }

    /// Subscribes to a room; the caller replays `(resume_after, live_after]`
    /// with [`Self::replay_page`] when the answer says so.
    pub async fn subscribe_room(
        &mut self,
        id: &str,
        room_id: &str,
        entry: Entry,
        shape: u8,
        resume_after: Option<i64>,
    ) -> DomainResult<Subscribed> {
        self.check_new_subscription(id)?;
        let request = SubscribeRequest {
            room_id: room_id.to_owned(),
            entry,
            subscription: id.into(),
            shape,
            mailbox: self.mailbox.clone(),
            resume_after,
        };
        let subscribed = self
            .services
            .chat
            .subscribe(&self.principal()?, request)
            .await?;
        self.subscriptions.insert(
            id.into(),
            Subscription {
                listening: Listening::Room(room_id.to_owned()),
                shape,
                direct: subscribed.direct,
            },
        );
        Ok(subscribed)
    }

    /// The next page of a resume (see [`ChatService::replay_page`]).
    pub async fn replay_page(
        &mut self,
        room_id: &str,
        after: i64,
        upto: i64,
    ) -> DomainResult<Vec<Message>> {
        let page = self.services.chat.replay_page(room_id, after, upto).await?;
        self.replayed(room_id, &page).await;
        Ok(page)
    }

    /// What a resume replays reaches this device as live messages do: in a
    /// 1:1 room the recipient's delivered cursor moves to the newest one
    /// (one write per page), so the sender sees "delivered".
    async fn replayed(&mut self, room_id: &str, page: &[Message]) {
        let direct = self
            .subscriptions
            .values()
            .any(|s| s.direct && matches!(&s.listening, Listening::Room(room) if room == room_id));
        let Some(me) = self.user.as_ref().map(|u| u.id) else {
            return;
        };
        let Some(newest) = page.iter().rev().find(|m| m.sender_id != me) else {
            return;
        };
        for m in page {
            self.note_written(m, Some(me)).await;
        }
        if let Some(seq) = self.delivery.on_delivered(direct, newest, me)
            && let Err(e) = self.services.chat.delivered(me, room_id, seq).await
        {
            tracing::warn!(error = %e, "delivery receipt failed");
        }
    }

    /// Subscribes to the user's events (contract C): their rooms, their own
    /// feed and the lobby. Answers the rooms, for the `rooms` event.
    pub async fn subscribe_events(
        &mut self,
        id: &str,
        shape: u8,
    ) -> DomainResult<Vec<RoomSummary>> {
        self.check_new_subscription(id)?;
        let who = self.principal()?;
        let rooms = self.services.rooms.my_rooms(&who).await?;
        let mut feeds = vec![user_feed(who.user_id), LOBBY_FEED.to_owned()];
        feeds.extend(rooms.iter().map(|r| r.room.id.clone()));
        let subscription: Arc<str> = id.into();
        for feed in &feeds {
            self.services
                .chat
                .subscribe_feed(
                    &who,
                    feed,
                    subscription.clone(),
                    shape,
                    self.mailbox.clone(),
                )
                .await?;
        }
        self.subscriptions.insert(
            subscription,
            Subscription {
                listening: Listening::Events(feeds),
                shape,
                direct: false,
            },
        );
        Ok(rooms)
    }

    fn check_new_subscription(&self, id: &str) -> DomainResult<()> {
        if id.is_empty() || id.contains('\0') {
            return Err(DomainError::invalid(
                "invalid_subscription_id",
                "a subscription id must be non-empty and hold no NUL",
            ));
        }
        if self.subscriptions.contains_key(id) {
            return Err(DomainError::invalid(
                "duplicate_subscription",
                format!("subscription id {id:?} is in use"),
            ));
        }
        Ok(())
    }

    /// Ends a subscription; false when there was none.
    pub fn unsubscribe(&mut self, id: &str) -> bool {
        let Some(subscription) = self.subscriptions.remove(id) else {
            return false;
        };
        for feed in subscription.feeds() {
            self.services
                .chat
                .unsubscribe(&feed, &self.mailbox, id.into());
        }
        true
    }

    /// Runs one command of the signed-in user. A refusal is counted in
    /// `ieum_errors_total` by its code.
    pub async fn execute(&mut self, command: Command) -> DomainResult<Outcome> {
        let result = self.run(command).await;
        if let Err(e) = &result {
            crate::error::count_refusal("socket", e.code());
        }
        result
    }

    async fn run(&mut self, command: Command) -> DomainResult<Outcome> {
        let sender = self
            .user
            .clone()
            .ok_or_else(|| DomainError::unauthenticated("not_connected", "authenticate first"))?;
        match command {
            Command::Message {
                room_id,
                entry,
                msg,
            } => {
                if !self.bucket.take() {
                    return Err(DomainError::RateLimited {
                        code: "send_rate_limited",
                        retry_after_secs: 1,
                    });
                }
                let appended = self
                    .services
                    .chat
                    .send(&sender, &room_id, entry, msg)
                    .await?;
                Ok(Outcome::Sent(Box::new(appended)))
            }
            Command::Read {
                room_id,
                message_ids,
                upto,
            } => {
                let receipt = self
                    .services
                    .chat
                    .mark_read(
                        &sender.principal(),
                        &room_id,
                        Entry::MembersOnly,
                        message_ids,
                        upto,
                    )
                    .await?;
                Ok(Outcome::Read(receipt))
            }
            Command::Typing { room_id } => {
                let now = Instant::now();
                if !self.typing.allows(&room_id, now) {
                    return Ok(Outcome::TypingDropped);
                }
                self.services
                    .chat
                    .typing(&sender.principal(), &room_id, Entry::MembersOnly)
                    .await?;
                self.typing.sent(&room_id, now);
                Ok(Outcome::Typed)
            }
        }
    }

    /// Takes one delivery from the mailbox: `None` when its subscription has
    /// ended meanwhile. Keeps the session's books: an events subscription
    /// follows the user into rooms they join or create and out of rooms they
    /// leave, a room subscription a leave ended is forgotten (its id is free
    /// again), and a message reaching this device of a 1:1 room's recipient is
    /// acknowledged as delivered.
    pub async fn on_delivery(&mut self, delivery: Delivery) -> Option<Outgoing> {
        let out = self.take_delivery(delivery).await;
        if out.is_some() {
            self.meters.delivered();
        }
        out
    }

    async fn take_delivery(&mut self, delivery: Delivery) -> Option<Outgoing> {
        if let EventPayload::SessionRevoked { family_id } = &delivery.event.payload {
            // Reaches the session feed and any events subscription alike.
            if self.grant.is_some_and(|(_, mine)| mine == Some(*family_id)) {
                self.ended = Some((
                    "session_revoked",
                    "this session was logged out; log in again",
                ));
            }
            return None;
        }
        if let EventPayload::UserSuspended { user_id } = &delivery.event.payload {
            if self.user.as_ref().is_some_and(|u| u.id == *user_id) {
                self.ended = Some(("suspended", "this account was suspended"));
            }
            return None;
        }
        let me = self.user.as_ref().map(|u| u.id);
        let subscription = self.subscriptions.get(&*delivery.subscription)?;
        let (shape, direct) = (subscription.shape, subscription.direct);
        let follows_user = matches!(subscription.listening, Listening::Events(_));
        match &delivery.event.payload {
            EventPayload::MemberJoined { room, user_id, .. }
                if follows_user && Some(*user_id) == me =>
            {
                self.follow(&delivery.subscription, &room.id, shape).await;
            }
            EventPayload::RoomCreated(room) if follows_user && Some(room.created_by) == me => {
                self.follow(&delivery.subscription, &room.id, shape).await;
            }
            EventPayload::MemberLeft {
                room_id, user_id, ..
            } if Some(*user_id) == me => {
                // The feed ends this user's subscriptions after this event.
                self.left(&delivery.subscription, room_id);
            }
            EventPayload::Message(message) if direct => {
                self.note_written(message, me).await;
                if let Some(me) = me
                    && let Some(seq) = self.delivery.on_delivered(direct, message, me)
                    && let Err(e) = self
                        .services
                        .chat
                        .delivered(me, &message.room_id, seq)
                        .await
                {
                    tracing::warn!(error = %e, "delivery receipt failed");
                }
            }
            EventPayload::Message(message) => self.note_written(message, me).await,
            _ => {}
        }
        Some(Outgoing { delivery, shape })
    }

    async fn follow(&mut self, subscription: &Arc<str>, room_id: &str, shape: u8) {
        let Ok(who) = self.principal() else { return };
        let already = self
            .subscriptions
            .get(subscription)
            .is_some_and(|s| matches!(&s.listening, Listening::Events(feeds) if feeds.iter().any(|f| f == room_id)));
        if already {
            return;
        }
        let followed = self
            .services
            .chat
            .subscribe_feed(
                &who,
                room_id,
                subscription.clone(),
                shape,
                self.mailbox.clone(),
            )
            .await;
        if followed.is_ok()
            && let Some(Subscription {
                listening: Listening::Events(feeds),
                ..
            }) = self.subscriptions.get_mut(subscription)
        {
            feeds.push(room_id.to_owned());
        }
    }

    fn left(&mut self, subscription: &Arc<str>, room_id: &str) {
        self.typing.forget(room_id);
        match self
            .subscriptions
            .get_mut(subscription)
            .map(|s| &mut s.listening)
        {
            Some(Listening::Events(feeds)) => feeds.retain(|feed| feed != room_id),
            Some(Listening::Room(room)) if room == room_id => {
                self.subscriptions.remove(subscription);
            }
            _ => {}
        }
    }

    /// Ends every subscription and marks the user offline (when this was
    /// their last connection).
    pub async fn close(&mut self) {
        let ids: Vec<Arc<str>> = self.subscriptions.keys().cloned().collect();
        for id in ids {
            self.unsubscribe(&id);
        }
        if let Some(user) = &self.user {
            self.services
                .chat
                .unsubscribe(&user_feed(user.id), &self.mailbox, SESSION_FEED.into());
            tracing::info!(
                user = %user.username,
                transport = self.transport,
                connection = self.id(),
                seconds = self.since.map_or(0, |t| t.elapsed().as_secs()),
                reason = self.ended.map_or("closed", |(code, _)| code),
                "disconnected"
            );
        }
        if let Some(user) = &self.user
            && let Err(e) = self.services.social.disconnected(user.id, self.id()).await
        {
            tracing::warn!(error = %e, "presence update failed");
        }
    }
}
