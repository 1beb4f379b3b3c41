//! Who may sign up (issue 21): anyone (`open`), whoever holds an invite
//! code an admin made (`invite`), or nobody (`closed`; accounts are made
//! elsewhere, or the server is full).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};
use crate::moderation::{Actor, ModerationService};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Registration {
    #[default]
    Open,
    Invite,
    Closed,
}

impl Registration {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "open" => Some(Self::Open),
            "invite" => Some(Self::Invite),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }
}

/// An invite code: good for `uses_left` more sign-ups until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub code: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: u32,
    pub uses_left: u32,
}

/// Most sign-ups one code allows.
pub const MAX_USES: u32 = 1000;
/// Longest an invite lasts, in hours (90 days).
pub const MAX_HOURS: u32 = 90 * 24;
/// A code's terms when its maker names none: one sign-up, within a week.
pub const DEFAULT_USES: u32 = 1;
pub const DEFAULT_HOURS: u32 = 7 * 24;

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait InviteRepository: Send + Sync {
    async fn insert(&self, invite: &Invite) -> DomainResult<()>;
    /// Codes with uses left that have not expired, newest first.
    async fn usable(&self, now: DateTime<Utc>) -> DomainResult<Vec<Invite>>;
    /// Removes a code; false when there was none.
    async fn revoke(&self, code: &str) -> DomainResult<bool>;
    /// Takes one use of a usable code, atomically; false when it has none.
    async fn take(&self, code: &str, now: DateTime<Utc>) -> DomainResult<bool>;
    /// Gives back a use taken for a sign-up that then failed.
    async fn give_back(&self, code: &str) -> DomainResult<()>;
}

/// The rule a sign-up passes; answers the code whose use it took (to give
/// back if the sign-up fails after all).
pub(crate) async fn admit(
    mode: Registration,
    invites: Option<&Arc<dyn InviteRepository>>,
    code: Option<&str>,
    now: DateTime<Utc>,
) -> DomainResult<Option<String>> {
    match mode {
        Registration::Open => Ok(None),
        Registration::Closed => Err(DomainError::forbidden(
            "registration_closed",
            "this server does not take new accounts",
        )),
        Registration::Invite => {
            let code = code
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    DomainError::forbidden(
                        "invite_required",
                        "this server takes new accounts by invite: send inviteCode",
                    )
                })?;
            crate::text::refuse_nul(code)?;
            let invites = invites
                .ok_or_else(|| DomainError::Internal("invite mode without invites".into()))?;
            if code.len() > 64 || !invites.take(code, now).await? {
                return Err(DomainError::forbidden(
                    "invalid_invite",
                    "the invite code is unknown, used up or expired",
                ));
            }
            Ok(Some(code.to_owned()))
        }
    }
}

impl ModerationService {
    /// Makes an invite code (admins): `max_uses` sign-ups within `hours`
    /// ([`DEFAULT_USES`] and [`DEFAULT_HOURS`] when not given).
    pub async fn create_invite(
        &self,
        actor: &Actor,
        max_uses: Option<u32>,
        hours: Option<u32>,
    ) -> DomainResult<Invite> {
        self.require_admin(actor).await?;
        let max_uses = max_uses.unwrap_or(DEFAULT_USES);
        let hours = hours.unwrap_or(DEFAULT_HOURS);
        if !(1..=MAX_USES).contains(&max_uses) || !(1..=MAX_HOURS).contains(&hours) {
            return Err(DomainError::invalid(
                "invalid_invite_terms",
                format!("maxUses must be 1 to {MAX_USES} and expiresInHours 1 to {MAX_HOURS}"),
            ));
        }
        let now = self.now();
        let invite = Invite {
            code: crate::rooms::invites::invite_code(),
            created_by: actor.user_id,
            created_at: now,
            expires_at: Some(now + Duration::hours(i64::from(hours))),
            max_uses,
            uses_left: max_uses,
        };
        self.invites()?.insert(&invite).await?;
        self.record(
            actor,
            "invite.create",
            ("invite", invite.code.clone()),
            Some(format!("{max_uses} use(s), {hours} h")),
        )
        .await?;
        Ok(invite)
    }

    /// Codes still usable (admins).
    pub async fn invites_usable(&self, actor: &Actor) -> DomainResult<Vec<Invite>> {
        self.require_admin(actor).await?;
        self.invites()?.usable(self.now()).await
    }

    /// Ends a code (admins).
    pub async fn revoke_invite(&self, actor: &Actor, code: &str) -> DomainResult<()> {
        self.require_admin(actor).await?;
        if !self.invites()?.revoke(code).await? {
            return Err(DomainError::not_found(
                "invite_not_found",
                "no such invite code",
            ));
        }
        self.record(actor, "invite.revoke", ("invite", code.to_owned()), None)
            .await
    }
}
