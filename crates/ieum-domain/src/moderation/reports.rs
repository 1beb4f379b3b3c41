//! Reports and what staff read to act on them (issue 20): people report a
//! message or a user with a reason; reports wait in a queue, oldest first,
//! until staff resolve them. Staff also search users and read any room.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Actor, ModerationService, ServerRole, Suspension, check_reason};
use crate::error::{DomainError, DomainResult, named};
use crate::message::{HistoryQuery, Message};
use crate::room::Room;
use crate::user::User;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget {
    Message { id: Uuid, room_id: String },
    User(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: Uuid,
    pub reporter_id: Uuid,
    pub target: ReportTarget,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// `None` while open.
    pub resolved: Option<Resolution>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub by: Uuid,
    pub at: DateTime<Utc>,
    /// `dismissed` or `actioned`.
    pub outcome: String,
    pub note: Option<String>,
}

/// A report as staff see it: with what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportView {
    pub report: Report,
    pub reporter: Option<User>,
    pub message: Option<Message>,
    pub user: Option<User>,
}

/// A user as staff see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUserView {
    pub user: User,
    pub role: ServerRole,
    pub suspension: Option<Suspension>,
}

pub const PAGE_MAX: u32 = 100;

impl ModerationService {
    /// Reports a message (one the reporter can see: a room they are or were
    /// in) or a user. One open report per reporter and target.
    pub async fn report(
        &self,
        reporter: Uuid,
        target: ReportTarget,
        reason: &str,
    ) -> DomainResult<Report> {
        let reason = check_reason(reason)?;
        let target = match target {
            ReportTarget::Message { id, .. } => {
                let (messages, rooms) = self.content()?;
                let m = messages
                    .find(id)
                    .await?
                    .filter(|m| !m.deleted)
                    .ok_or_else(named::message_not_found)?;
                if rooms.membership(&m.room_id, reporter).await?.is_none() {
                    return Err(named::message_not_found());
                }
                if m.sender_id == reporter {
                    return Err(DomainError::invalid(
                        "own_message",
                        "you cannot report your own message",
                    ));
                }
                ReportTarget::Message {
                    id,
                    room_id: m.room_id,
                }
            }
            ReportTarget::User(id) => {
                if id == reporter {
                    return Err(DomainError::invalid(
                        "own_account",
                        "you cannot report yourself",
                    ));
                }
                self.users
                    .find_by_id(id)
                    .await?
                    .ok_or_else(named::user_not_found)?;
                ReportTarget::User(id)
            }
        };
        let report = Report {
            id: Uuid::now_v7(),
            reporter_id: reporter,
            target,
            reason,
            created_at: self.clock.now(),
            resolved: None,
        };
        if !self.repo.insert_report(&report).await? {
            return Err(DomainError::conflict(
                "already_reported",
                "you already reported this; staff will look at it",
            ));
        }
        tracing::info!(report = %report.id, "report filed");
        Ok(report)
    }

    /// The queue (staff): open reports oldest first, or resolved ones
    /// newest first; `after` pages on.
    pub async fn reports(
        &self,
        actor: &Actor,
        open: bool,
        after: Option<Uuid>,
        limit: u32,
    ) -> DomainResult<Vec<ReportView>> {
        self.require_staff(actor).await?;
        let reports = self
            .repo
            .reports(open, after, limit.clamp(1, PAGE_MAX))
            .await?;
        let mut views = Vec::with_capacity(reports.len());
        for report in reports {
            let reporter = self.users.find_by_id(report.reporter_id).await?;
            let (message, user) = match &report.target {
                ReportTarget::Message { id, .. } => match &self.content {
                    Some((messages, _)) => (messages.find(*id).await?, None),
                    None => (None, None),
                },
                ReportTarget::User(id) => (None, self.users.find_by_id(*id).await?),
            };
            views.push(ReportView {
                report,
                reporter,
                message,
                user,
            });
        }
        Ok(views)
    }

    /// Closes a report (staff) as `dismissed` or `actioned`.
    pub async fn resolve_report(
        &self,
        actor: &Actor,
        id: Uuid,
        outcome: &str,
        note: Option<&str>,
    ) -> DomainResult<Report> {
        self.require_staff(actor).await?;
        if !matches!(outcome, "dismissed" | "actioned") {
            return Err(DomainError::invalid(
                "invalid_resolution",
                "resolution is dismissed or actioned",
            ));
        }
        let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => Some(check_reason(n)?),
            None => None,
        };
        let resolution = Resolution {
            by: actor.user_id.unwrap_or_default(),
            at: self.clock.now(),
            outcome: outcome.to_owned(),
            note: note.clone(),
        };
        let report = self
            .repo
            .resolve_report(id, &resolution)
            .await?
            .ok_or_else(|| {
                DomainError::not_found("report_not_found", "no open report with this id")
            })?;
        self.record(
            actor,
            &format!("report.{outcome}"),
            ("report", id.to_string()),
            note,
        )
        .await?;
        Ok(report)
    }

    /// Users by username prefix (staff), with their role and suspension.
    pub async fn find_users(
        &self,
        actor: &Actor,
        prefix: &str,
        limit: u32,
    ) -> DomainResult<Vec<StaffUserView>> {
        self.require_staff(actor).await?;
        let prefix = prefix.trim().to_ascii_lowercase();
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let mut found = self
            .repo
            .find_users(&prefix, limit.clamp(1, PAGE_MAX))
            .await?;
        for view in &mut found {
            view.suspension = view.suspension.take().filter(|s| s.active_at(now));
        }
        Ok(found)
    }

    /// Every room (staff), newest first, by name fragment; `before` is the
    /// last id of the previous page.
    pub async fn rooms(
        &self,
        actor: &Actor,
        query: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> DomainResult<Vec<Room>> {
        self.require_staff(actor).await?;
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        self.repo
            .list_rooms(query, before, limit.clamp(1, PAGE_MAX))
            .await
    }

    /// A room's messages (staff), newest first, before a seq. Reading a
    /// room one is not in is recorded.
    pub async fn room_messages(
        &self,
        actor: &Actor,
        room_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> DomainResult<Vec<Message>> {
        self.require_staff(actor).await?;
        let (messages, rooms) = self.content()?;
        rooms
            .find(room_id)
            .await?
            .ok_or_else(named::room_not_found)?;
        let mut page = messages
            .page(
                room_id,
                HistoryQuery {
                    before,
                    after: None,
                    limit: limit.clamp(1, PAGE_MAX),
                    skip_system: false,
                },
            )
            .await?;
        page.sort_by_key(|m| std::cmp::Reverse(m.seq));
        if before.is_none() {
            self.record(actor, "room.read", ("room", room_id.to_owned()), None)
                .await?;
        }
        Ok(page)
    }
}
