//! Push notifications for devices that did not get a message (issue 17).
//!
//! A message is planned at once ([`PushService::on_message`]): each
//! recipient's device gets a `pending` outbox row, unless the member muted
//! the room (a mention still counts when they said so) or blocked the
//! sender. A worker on any node claims due rows and decides again with what
//! is known by then: a device that was *proven* to receive the message (a
//! transport's ping answered after the message was written, see
//! [`crate::session::Session::proof_request`]) or a member who read it gets
//! nothing, and neither does a deleted or expired message. The outbox row is
//! one per device and room, so pushes coalesce: at most one per window,
//! carrying the latest message and how many came since the last push.
//!
//! The impl blocks: `devices.rs` (registration, mutes, preferences),
//! `plan.rs` (a message into the outbox), `worker.rs` (due rows into
//! notifications, and what a gateway's answer does), `content.rs` (title,
//! preview, data).

mod content;
mod devices;
mod plan;
#[cfg(test)]
mod tests;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ports::{
    Clock, DeviceRepository, MessageRepository, PushGateway, PushRepository,
    RefreshTokenRepository, RoomRepository, SocialRepository,
};

pub use content::PREVIEW_MAX_CHARS;
pub use plan::PLAN_QUEUE;

/// Where a device receives pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Android,
    Ios,
    Web,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Android => "android",
            Self::Ios => "ios",
            Self::Web => "web",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "android" => Self::Android,
            "ios" => Self::Ios,
            "web" => Self::Web,
            _ => return None,
        })
    }
}

/// A device's push registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: Uuid,
    pub user_id: Uuid,
    pub platform: Platform,
    /// The FCM registration token.
    pub token: String,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    /// The app draws its own notification: pushes carry data only.
    pub data_only: bool,
    /// The session family it was registered under: its logout removes it.
    pub family_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// What a client registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRegistration {
    pub platform: Platform,
    pub token: String,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    pub data_only: bool,
}

/// Longest token, app version and locale a registration may carry.
pub const TOKEN_MAX: usize = 4096;
pub const APP_VERSION_MAX: usize = 64;
pub const LOCALE_MAX: usize = 35;
/// Devices one user may register; the oldest goes when one more comes.
pub const DEVICES_PER_USER: usize = 20;

/// A user's push preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPrefs {
    /// Show the message in the notification; false: "New message" only.
    pub previews: bool,
    /// A mention pushes even in a muted room.
    pub mentions_when_muted: bool,
}

impl Default for PushPrefs {
    fn default() -> Self {
        Self {
            previews: true,
            mentions_when_muted: true,
        }
    }
}

/// A change of preferences; `None` keeps a field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefsUpdate {
    pub previews: Option<bool>,
    pub mentions_when_muted: Option<bool>,
}

/// A member's mute of one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mute {
    /// `None`: until unmuted.
    pub until: Option<DateTime<Utc>>,
}

impl Mute {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// One device's entry in the outbox, as a worker claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub device_id: Uuid,
    pub room_id: String,
    pub user_id: Uuid,
    /// The latest message since the last push.
    pub message_id: Uuid,
    pub seq: i64,
    /// The first seq this push stands for.
    pub first_seq: i64,
    /// Messages since the last push.
    pub count: i64,
    /// One of them mentions the member.
    pub mentioned: bool,
    /// When the latest message was planned (epoch ms).
    pub latest_ms: i64,
    pub attempts: u32,
    /// The latest seq a push went out for: never again for it.
    pub sent_seq: i64,
    /// This worker's claim; the adapter's writes check it.
    pub claim: Uuid,
}

/// A message planned for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub room_id: String,
    pub message_id: Uuid,
    /// The latest message's seq, and the first of those this plan counts.
    pub seq: i64,
    pub first_seq: i64,
    /// How many messages it stands for.
    pub count: i64,
    pub mentioned: bool,
    pub at_ms: i64,
    /// When it is due unless a push went out within the window (the
    /// adapter then takes the end of the window).
    pub due_ms: i64,
}

/// What a gateway sends to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub device_id: Uuid,
    pub token: String,
    pub platform: Platform,
    /// No title and body for the system to show; the app draws it from
    /// `data` (which then carries them).
    pub data_only: bool,
    /// Pushes of one room replace each other on the device.
    pub collapse_key: String,
    pub title: String,
    pub body: String,
    /// The member's unread messages over all rooms.
    pub badge: i64,
    pub data: PushData,
}

/// What the app syncs with. Every push carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushData {
    pub room_id: String,
    pub message_id: Uuid,
    pub seq: i64,
    /// The message's type (`TEXT`, `IMAGE`, ...).
    pub kind: &'static str,
    /// Messages this push stands for.
    pub count: i64,
    pub sender_id: Uuid,
}

/// What a gateway made of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Sent,
    /// Try again later (429, 5xx, the network); `after` is the service's
    /// `Retry-After` when it gave one.
    Retry {
        after: Option<Duration>,
    },
    /// The service says the token is no longer valid: the device goes.
    BadToken,
    /// Refused for good (a malformed request, a permission): logged, dropped.
    Rejected {
        reason: String,
    },
}

/// How pushes are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPolicy {
    /// How long a device has to receive a message before it is pushed.
    pub grace: Duration,
    /// At most one push per room and device within this window.
    pub coalesce: Duration,
    /// How long a claim holds before another worker may take the entry (a
    /// node that died while sending).
    pub lease: Duration,
    /// Sends before a push is given up.
    pub max_attempts: u32,
    /// The first retry's wait; it doubles up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often a worker looks for due entries, and how many it takes.
    pub poll: Duration,
    pub batch: u32,
}

impl Default for PushPolicy {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(3),
            coalesce: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            max_attempts: 8,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            poll: Duration::from_millis(500),
            batch: 100,
        }
    }
}

/// What a [`PushService`] works with, by name.
pub struct PushPorts {
    pub devices: Arc<dyn DeviceRepository>,
    pub outbox: Arc<dyn PushRepository>,
    pub rooms: Arc<dyn RoomRepository>,
    pub messages: Arc<dyn MessageRepository>,
    pub social: Arc<dyn SocialRepository>,
    pub gateway: Arc<dyn PushGateway>,
    /// Whether a device's session was revoked.
    pub tokens: Arc<dyn RefreshTokenRepository>,
    pub clock: Arc<dyn Clock>,
}

pub struct PushService {
    devices: Arc<dyn DeviceRepository>,
    outbox: Arc<dyn PushRepository>,
    rooms: Arc<dyn RoomRepository>,
    messages: Arc<dyn MessageRepository>,
    social: Arc<dyn SocialRepository>,
    gateway: Arc<dyn PushGateway>,
    tokens: Arc<dyn RefreshTokenRepository>,
    clock: Arc<dyn Clock>,
    policy: PushPolicy,
    /// Stored messages waiting for the planner, and its end of the queue
    /// (taken by the one planner task).
    plans: tokio::sync::mpsc::Sender<crate::message::Message>,
    queue: tokio::sync::Mutex<Option<tokio::sync::mpsc::Receiver<crate::message::Message>>>,
}

impl PushService {
    pub fn new(ports: PushPorts, policy: PushPolicy) -> Self {
        let PushPorts {
            devices,
            outbox,
            rooms,
            messages,
            social,
            gateway,
            tokens,
            clock,
        } = ports;
        let (plans, queue) = tokio::sync::mpsc::channel(plan::PLAN_QUEUE);
        Self {
            plans,
            queue: tokio::sync::Mutex::new(Some(queue)),
            devices,
            outbox,
            rooms,
            messages,
            social,
            gateway,
            tokens,
            clock,
            policy,
        }
    }

    pub fn policy(&self) -> PushPolicy {
        self.policy
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
