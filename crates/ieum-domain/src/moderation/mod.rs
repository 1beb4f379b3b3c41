//! Server-wide moderation (issue 20): who is staff (`admin`, `moderator`),
//! suspensions, and the audit log that every moderation and security action
//! writes. Handlers never write the log: the use cases here do, and the
//! other services call [`ModerationService::record`] for their own events.
//!
//! Rules:
//! - Only an admin grants or takes a server role; the CLI (`ieum admin
//!   grant`), acting as nobody, always may.
//! - Staff suspend and lift; nobody suspends themselves or an admin, and a
//!   moderator does not suspend another moderator.
//! - A suspension needs a reason and, when it ends, an end in the future.
//!   It ends the user's sessions on every node (their connections close
//!   with `suspended`) and refuses their logins and handshakes until lifted
//!   or over.
//! - Only admins read the audit log.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult, named};
use crate::hub::{EventPayload, Hub, RoomEvent, user_feed};
use crate::ports::{Clock, MessageRepository, RoomRepository, UserRepository};
use crate::user::{User, normalize_username};

mod reports;
#[cfg(test)]
mod tests;

pub use reports::{PAGE_MAX, Report, ReportTarget, ReportView, Resolution, StaffUserView};

/// A server-wide role (room roles are `room::Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerRole {
    Member,
    Moderator,
    Admin,
}

impl ServerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> DomainResult<Self> {
        match text {
            "member" => Ok(Self::Member),
            "moderator" => Ok(Self::Moderator),
            "admin" => Ok(Self::Admin),
            _ => Err(DomainError::invalid(
                "invalid_role",
                "role must be member, moderator or admin",
            )),
        }
    }

    pub fn is_staff(self) -> bool {
        self >= Self::Moderator
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    /// `None`: until lifted.
    pub until: Option<DateTime<Utc>>,
    pub reason: String,
    pub by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

impl Suspension {
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

tokio::task_local! {
    /// The id of the request being served: the HTTP layer sets it around
    /// each request, so an audit entry written anywhere below (a room
    /// admin's kick, a security event of the login) carries it.
    pub static REQUEST_ID: String;
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Who acts, as the audit log records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// `None`: the server itself (its CLI, configuration, a security rule).
    pub user_id: Option<Uuid>,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn user(user_id: Uuid, request_id: Option<String>) -> Self {
        Self {
            user_id: Some(user_id),
            request_id,
        }
    }

    /// The server acting on its own (CLI, configuration).
    pub fn server() -> Self {
        Self::default()
    }
}

/// One line of the audit log: who, what, on what, when, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Time-ordered (UUIDv7): the log's cursor.
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    /// `user.suspend`, `room.ban`, `security.refresh_reuse`, ...
    pub action: String,
    /// `user`, `room`, `message`, `session`.
    pub target_kind: String,
    pub target_id: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

/// What to read of the log: newest first, before the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    /// An exact action, or a prefix ending in `.` (`user.`).
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub before: Option<Uuid>,
    pub limit: u32,
}

pub const AUDIT_PAGE_MAX: u32 = 200;
pub const REASON_MAX: usize = 500;

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ModerationRepository: Send + Sync {
    async fn role_of(&self, user_id: Uuid) -> DomainResult<ServerRole>;
    async fn set_role(&self, user_id: Uuid, role: ServerRole) -> DomainResult<()>;
    async fn suspension_of(&self, user_id: Uuid) -> DomainResult<Option<Suspension>>;
    /// Sets (`Some`) or clears (`None`) the user's suspension; answers
    /// whether one was there before.
    async fn set_suspension(
        &self,
        user_id: Uuid,
        suspension: Option<Suspension>,
    ) -> DomainResult<bool>;
    /// Revokes every refresh-token family of the user (they log in again).
    async fn revoke_sessions(&self, user_id: Uuid, at: DateTime<Utc>) -> DomainResult<u64>;
    /// Files a report; false when the reporter has an open one on the target.
    async fn insert_report(&self, report: &Report) -> DomainResult<bool>;
    /// Open reports oldest first (after `after`), or resolved newest first.
    async fn reports(
        &self,
        open: bool,
        after: Option<Uuid>,
        limit: u32,
    ) -> DomainResult<Vec<Report>>;
    /// Resolves an open report; `None` when there is no open one.
    async fn resolve_report(
        &self,
        id: Uuid,
        resolution: &Resolution,
    ) -> DomainResult<Option<Report>>;
    /// Users whose username starts with `prefix`, with role and suspension.
    async fn find_users(&self, prefix: &str, limit: u32) -> DomainResult<Vec<StaffUserView>>;
    /// Rooms newest first, whose name contains `query`, before the room id.
    async fn list_rooms<'a>(
        &self,
        query: Option<&'a str>,
        before: Option<&'a str>,
        limit: u32,
    ) -> DomainResult<Vec<crate::room::Room>>;
}

/// The append-only audit log.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, entry: AuditEntry) -> DomainResult<()>;
    async fn page(&self, query: AuditQuery) -> DomainResult<Vec<AuditEntry>>;
    /// Drops entries older than `before` (retention); answers how many.
    async fn prune(&self, before: DateTime<Utc>) -> DomainResult<u64>;
}

/// The message and room stores reports and staff reads use.
type Content = (Arc<dyn MessageRepository>, Arc<dyn RoomRepository>);

pub struct ModerationService {
    repo: Arc<dyn ModerationRepository>,
    audit: Arc<dyn AuditLog>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    /// Where suspensions are announced to open connections (every node).
    hub: Option<Arc<Hub>>,
    /// Messages and rooms, for reports and staff reading rooms.
    content: Option<Content>,
    /// Invite codes (`IEUM_REGISTRATION=invite`).
    invites: Option<Arc<dyn crate::registration::InviteRepository>>,
}

pub(crate) fn suspended_error(s: &Suspension) -> DomainError {
    let until = match s.until {
        Some(until) => format!("until {}", until.to_rfc3339()),
        None => "until lifted".to_owned(),
    };
    DomainError::forbidden("suspended", format!("this account is suspended {until}"))
}

/// A reason (or note) of 1 to [`REASON_MAX`] characters.
pub(crate) fn check_reason(reason: &str) -> DomainResult<String> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_MAX {
        return Err(DomainError::invalid(
            "invalid_reason",
            format!("a reason of 1 to {REASON_MAX} characters is required"),
        ));
    }
    crate::text::refuse_nul(reason)?;
    Ok(reason.to_owned())
}

impl ModerationService {
    pub fn new(
        repo: Arc<dyn ModerationRepository>,
        audit: Arc<dyn AuditLog>,
        users: Arc<dyn UserRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            repo,
            audit,
            users,
            clock,
            hub: None,
            content: None,
            invites: None,
        }
    }

    /// Lets admins make invite codes.
    pub fn with_invites(mut self, invites: Arc<dyn crate::registration::InviteRepository>) -> Self {
        self.invites = Some(invites);
        self
    }

    pub(crate) fn invites(&self) -> DomainResult<&Arc<dyn crate::registration::InviteRepository>> {
        self.invites
            .as_ref()
            .ok_or_else(|| DomainError::Internal("moderation has no invite store".into()))
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Admins only (the CLI always).
    pub(crate) async fn require_admin(&self, actor: &Actor) -> DomainResult<ServerRole> {
        self.require(actor, ServerRole::Admin).await
    }

    /// Lets reports name messages and staff read rooms.
    pub fn with_content(
        mut self,
        messages: Arc<dyn MessageRepository>,
        rooms: Arc<dyn RoomRepository>,
    ) -> Self {
        self.content = Some((messages, rooms));
        self
    }

    fn content(&self) -> DomainResult<&Content> {
        self.content
            .as_ref()
            .ok_or_else(|| DomainError::Internal("moderation has no message store".into()))
    }

    pub fn with_hub(mut self, hub: Arc<Hub>) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Appends one entry, stamped now. For the domain's own services.
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: (&str, String),
        reason: Option<String>,
    ) -> DomainResult<()> {
        self.audit
            .append(AuditEntry {
                id: Uuid::now_v7(),
                at: self.clock.now(),
                actor_id: actor.user_id,
                action: action.to_owned(),
                target_kind: target.0.to_owned(),
                target_id: target.1,
                reason,
                request_id: actor.request_id.clone().or_else(current_request_id),
            })
            .await
    }

    pub async fn role_of(&self, user_id: Uuid) -> DomainResult<ServerRole> {
        self.repo.role_of(user_id).await
    }

    /// The actor's role, which must be at least `needed`.
    async fn require(&self, actor: &Actor, needed: ServerRole) -> DomainResult<ServerRole> {
        let role = match actor.user_id {
            Some(id) => self.repo.role_of(id).await?,
            None => return Ok(ServerRole::Admin),
        };
        if role < needed {
            return Err(DomainError::forbidden(
                "not_staff",
                format!("this needs the server role {}", needed.as_str()),
            ));
        }
        Ok(role)
    }

    /// Staff only: the caller's role, or `not_staff`.
    pub async fn require_staff(&self, actor: &Actor) -> DomainResult<ServerRole> {
        self.require(actor, ServerRole::Moderator).await
    }

    /// Gives `username` a server role (admins only; the CLI always).
    pub async fn grant(
        &self,
        actor: &Actor,
        username: &str,
        role: ServerRole,
    ) -> DomainResult<User> {
        self.require(actor, ServerRole::Admin).await?;
        let name = normalize_username(username).map_err(|_| named::user_not_found())?;
        let user = self
            .users
            .find_credentials(&name)
            .await?
            .ok_or_else(named::user_not_found)?
            .user;
        self.grant_to(actor, user, role).await
    }

    /// [`Self::grant`] by the user's id.
    pub async fn grant_by_id(
        &self,
        actor: &Actor,
        user_id: Uuid,
        role: ServerRole,
    ) -> DomainResult<User> {
        self.require(actor, ServerRole::Admin).await?;
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or_else(named::user_not_found)?;
        self.grant_to(actor, user, role).await
    }

    async fn grant_to(&self, actor: &Actor, user: User, role: ServerRole) -> DomainResult<User> {
        if actor.user_id == Some(user.id) && role < ServerRole::Admin {
            return Err(DomainError::invalid(
                "own_role",
                "an admin cannot lower their own role; another admin can",
            ));
        }
        self.repo.set_role(user.id, role).await?;
        self.record(
            actor,
            &format!("role.{}", role.as_str()),
            ("user", user.id.to_string()),
            None,
        )
        .await?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "server role granted");
        Ok(user)
    }

    /// Suspends `target` (staff only), ends their sessions everywhere.
    pub async fn suspend(
        &self,
        actor: &Actor,
        target: Uuid,
        until: Option<DateTime<Utc>>,
        reason: &str,
    ) -> DomainResult<Suspension> {
        let role = self.require_staff(actor).await?;
        let reason = check_reason(reason)?;
        let now = self.clock.now();
        if until.is_some_and(|until| until <= now) {
            return Err(DomainError::invalid(
                "invalid_until",
                "a suspension ends in the future (or omit `until`: until lifted)",
            ));
        }
        if actor.user_id == Some(target) {
            return Err(DomainError::invalid(
                "own_account",
                "staff cannot suspend themselves",
            ));
        }
        self.users
            .find_by_id(target)
            .await?
            .ok_or_else(named::user_not_found)?;
        let theirs = self.repo.role_of(target).await?;
        if theirs == ServerRole::Admin || (theirs.is_staff() && role < ServerRole::Admin) {
            return Err(DomainError::forbidden(
                "not_staff",
                "admins cannot be suspended, and only an admin suspends a moderator",
            ));
        }
        let suspension = Suspension {
            until,
            reason: reason.clone(),
            by: actor.user_id,
            at: now,
        };
        self.repo
            .set_suspension(target, Some(suspension.clone()))
            .await?;
        self.repo.revoke_sessions(target, now).await?;
        if let Some(hub) = &self.hub {
            let event = EventPayload::UserSuspended { user_id: target };
            hub.publish(RoomEvent::ephemeral(user_feed(target), event, None))
                .await;
        }
        self.record(
            actor,
            "user.suspend",
            ("user", target.to_string()),
            Some(reason),
        )
        .await?;
        tracing::info!(user_id = %target, until = ?until, "user suspended");
        Ok(suspension)
    }

    /// Lifts `target`'s suspension (staff only); `false` if there was none.
    pub async fn lift(&self, actor: &Actor, target: Uuid, reason: &str) -> DomainResult<bool> {
        self.require_staff(actor).await?;
        let reason = check_reason(reason)?;
        let lifted = self.repo.set_suspension(target, None).await?;
        if lifted {
            self.record(
                actor,
                "user.lift",
                ("user", target.to_string()),
                Some(reason),
            )
            .await?;
        }
        Ok(lifted)
    }

    /// `Err(suspended)` while the user is suspended.
    pub async fn check_active(&self, user_id: Uuid) -> DomainResult<()> {
        match self.repo.suspension_of(user_id).await? {
            Some(s) if s.active_at(self.clock.now()) => Err(suspended_error(&s)),
            _ => Ok(()),
        }
    }

    pub async fn suspension_of(&self, user_id: Uuid) -> DomainResult<Option<Suspension>> {
        let now = self.clock.now();
        Ok(self
            .repo
            .suspension_of(user_id)
            .await?
            .filter(|s| s.active_at(now)))
    }

    /// A page of the audit log (admins only), newest first.
    pub async fn audit(
        &self,
        actor: &Actor,
        mut query: AuditQuery,
    ) -> DomainResult<Vec<AuditEntry>> {
        self.require(actor, ServerRole::Admin).await?;
        query.limit = query.limit.clamp(1, AUDIT_PAGE_MAX);
        self.audit.page(query).await
    }

    /// Drops entries older than `days` (retention).
    pub async fn prune_audit(&self, days: u32) -> DomainResult<u64> {
        let before = self.clock.now() - chrono::Duration::days(i64::from(days));
        self.audit.prune(before).await
    }
}
