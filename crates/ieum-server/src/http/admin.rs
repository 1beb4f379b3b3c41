//! Server administration over HTTP (issue 20): suspensions, server roles
//! and the audit log, under `/api/admin`. Every rule (who may, what is
//! recorded) is the domain's `ModerationService`; these handlers translate.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ieum_domain::moderation::{
    Actor, AuditEntry, AuditQuery, ReportTarget, ReportView, ServerRole, StaffUserView, Suspension,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::{Admitted, OptionalJson};
use crate::http::request_id::RequestId;
use crate::views::{MessageJson, UserJson};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/me", web::get().to(me))
        .route(
            "/api/admin/users/{id}/suspension",
            web::get().to(suspension),
        )
        .route("/api/admin/users/{id}/suspension", web::put().to(suspend))
        .route("/api/admin/users/{id}/suspension", web::delete().to(lift))
        .route("/api/admin/users/{id}/role", web::put().to(set_role))
        .route("/api/admin/audit", web::get().to(audit))
        .route("/api/reports", web::post().to(report))
        .route("/api/admin/reports", web::get().to(reports))
        .route("/api/admin/reports/{id}/resolve", web::post().to(resolve))
        .route("/api/admin/messages/{id}", web::delete().to(delete_message))
        .route("/api/admin/users", web::get().to(users))
        .route("/api/admin/rooms", web::get().to(rooms))
        .route(
            "/api/admin/rooms/{id}/messages",
            web::get().to(room_messages),
        )
        .route("/api/admin/rooms/{id}/close", web::post().to(close_room))
        .route("/api/admin/invites", web::post().to(create_invite))
        .route("/api/admin/invites", web::get().to(invites))
        .route("/api/admin/invites/{code}", web::delete().to(revoke_invite));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InviteBody {
    max_uses: Option<u32>,
    expires_in_hours: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InviteJson {
    code: String,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    max_uses: u32,
    uses_left: u32,
}

impl From<ieum_domain::registration::Invite> for InviteJson {
    fn from(i: ieum_domain::registration::Invite) -> Self {
        Self {
            code: i.code,
            created_by: i.created_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
            max_uses: i.max_uses,
            uses_left: i.uses_left,
        }
    }
}

/// An invite code (admins), on the domain's default terms unless the body
/// says otherwise.
async fn create_invite(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    body: OptionalJson<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let (uses, hours) = body
        .0
        .map_or((None, None), |b| (b.max_uses, b.expires_in_hours));
    let invite = state
        .moderation
        .create_invite(&actor(&who, &req), uses, hours)
        .await?;
    Ok(HttpResponse::Created().json(InviteJson::from(invite)))
}

async fn invites(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let list: Vec<InviteJson> = state
        .moderation
        .invites_usable(&actor(&who, &req))
        .await?
        .into_iter()
        .map(InviteJson::from)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "invites": list })))
}

async fn revoke_invite(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .moderation
        .revoke_invite(&actor(&who, &req), &code)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The cursor of the next page: the last item's, when the page was full
/// (`limit` as the domain clamps it to `max`).
fn next_cursor<T, C>(page: &[T], limit: u32, max: u32, cursor: impl Fn(&T) -> C) -> Option<C> {
    let full = page.len() as u32 >= limit.clamp(1, max);
    full.then(|| page.last().map(cursor)).flatten()
}

/// An empty query parameter (`?action=`) filters nothing.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The caller (a live, unsuspended session) and the request's id.
fn actor(who: &Admitted, req: &HttpRequest) -> Actor {
    Actor::user(who.0.principal.user_id, RequestId::of(req))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleJson {
    user_id: Uuid,
    role: &'static str,
}

/// The caller's server role (the web client shows admin pages by it).
async fn me(state: web::Data<AppState>, who: Admitted) -> Result<HttpResponse, ApiError> {
    let user_id = who.0.principal.user_id;
    let role = state.moderation.role_of(user_id).await?;
    Ok(HttpResponse::Ok().json(RoleJson {
        user_id,
        role: role.as_str(),
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SuspensionJson {
    user_id: Uuid,
    /// `null`: until lifted.
    until: Option<DateTime<Utc>>,
    reason: String,
    by: Option<Uuid>,
    at: DateTime<Utc>,
}

impl SuspensionJson {
    fn new(user_id: Uuid, s: Suspension) -> Self {
        Self {
            user_id,
            until: s.until,
            reason: s.reason,
            by: s.by,
            at: s.at,
        }
    }
}

async fn suspension(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.moderation.require_staff(&actor(&who, &req)).await?;
    let id = id.into_inner();
    Ok(match state.moderation.suspension_of(id).await? {
        Some(s) => HttpResponse::Ok().json(SuspensionJson::new(id, s)),
        None => HttpResponse::NoContent().finish(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuspendBody {
    /// RFC 3339; omitted or `null`: until lifted.
    until: Option<DateTime<Utc>>,
    reason: String,
}

/// Suspends a user: their connections close with `suspended`, their
/// sessions end, their logins are refused.
async fn suspend(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<SuspendBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = body.into_inner();
    let s = state
        .moderation
        .suspend(&actor(&who, &req), id, body.until, &body.reason)
        .await?;
    Ok(HttpResponse::Ok().json(SuspensionJson::new(id, s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn lift(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let lifted = state
        .moderation
        .lift(&actor(&who, &req), id.into_inner(), &body.reason)
        .await?;
    Ok(if lifted {
        HttpResponse::NoContent().finish()
    } else {
        crate::http::errors::problem_response(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_suspended",
            "this user is not suspended".into(),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

/// Gives a user a server role (admins only), by id.
async fn set_role(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let role = ServerRole::parse(&body.role)?;
    let user = state
        .moderation
        .grant_by_id(&actor(&who, &req), id.into_inner(), role)
        .await?;
    Ok(HttpResponse::Ok().json(RoleJson {
        user_id: user.id,
        role: role.as_str(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    actor: Option<Uuid>,
    action: Option<String>,
    target: Option<String>,
    before: Option<Uuid>,
    limit: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditJson {
    id: Uuid,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    action: String,
    target_kind: String,
    target_id: String,
    reason: Option<String>,
    request_id: Option<String>,
}

impl From<AuditEntry> for AuditJson {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            reason: e.reason,
            request_id: e.request_id,
        }
    }
}

#[derive(Serialize)]
struct AuditPage {
    entries: Vec<AuditJson>,
    /// The `before` of the next (older) page; `null` on the last.
    next: Option<Uuid>,
}

/// The audit log, newest first (admins only): `?actor=&action=&target=`
/// filter (`action` ending in `.` is a prefix), `?before=` pages.
async fn audit(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(50);
    let entries = state
        .moderation
        .audit(
            &actor(&who, &req),
            AuditQuery {
                actor_id: p.actor,
                action: given(p.action),
                target_id: given(p.target),
                before: p.before,
                limit,
            },
        )
        .await?;
    let next = next_cursor(
        &entries,
        limit,
        ieum_domain::moderation::AUDIT_PAGE_MAX,
        |e| e.id,
    );
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: entries.into_iter().map(AuditJson::from).collect(),
        next,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReportBody {
    message_id: Option<Uuid>,
    user_id: Option<Uuid>,
    reason: String,
}

/// Reports a message or a user to staff (anyone).
async fn report(
    state: web::Data<AppState>,
    who: Admitted,
    body: web::Json<ReportBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let target = match (body.message_id, body.user_id) {
        (Some(id), None) => ReportTarget::Message {
            id,
            room_id: String::new(),
        },
        (None, Some(id)) => ReportTarget::User(id),
        _ => {
            return Err(ieum_domain::DomainError::invalid(
                "invalid_target",
                "name exactly one of messageId and userId",
            )
            .into());
        }
    };
    let r = state
        .moderation
        .report(who.0.principal.user_id, target, &body.reason)
        .await?;
    let view = ReportView {
        report: r,
        reporter: None,
        message: None,
        user: None,
    };
    Ok(HttpResponse::Created().json(ReportJson::new(&view, &state)))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportJson<'a> {
    id: Uuid,
    reporter_id: Uuid,
    reporter_name: Option<&'a str>,
    target_kind: &'static str,
    target_id: Uuid,
    room_id: Option<&'a str>,
    reason: &'a str,
    state: &'a str,
    created_at: DateTime<Utc>,
    resolved_by: Option<Uuid>,
    resolved_at: Option<DateTime<Utc>>,
    resolution: Option<&'a str>,
    note: Option<&'a str>,
    message: Option<MessageJson<'a>>,
    user: Option<UserJson<'a>>,
}

impl<'a> ReportJson<'a> {
    fn new(v: &'a ReportView, state: &AppState) -> Self {
        let r = &v.report;
        let (target_kind, target_id, room_id) = match &r.target {
            ReportTarget::Message { id, room_id } => ("message", *id, Some(room_id.as_str())),
            ReportTarget::User(id) => ("user", *id, None),
        };
        let resolved = r.resolved.as_ref();
        Self {
            id: r.id,
            reporter_id: r.reporter_id,
            reporter_name: v.reporter.as_ref().map(|u| u.display_name.as_str()),
            target_kind,
            target_id,
            room_id,
            reason: &r.reason,
            state: resolved.map_or("open", |x| x.outcome.as_str()),
            created_at: r.created_at,
            resolved_by: resolved.map(|x| x.by),
            resolved_at: resolved.map(|x| x.at),
            resolution: resolved.map(|x| x.outcome.as_str()),
            note: resolved.and_then(|x| x.note.as_deref()),
            message: v
                .message
                .as_ref()
                .map(|m| MessageJson::new(m, &state.links)),
            user: v.user.as_ref().map(UserJson::from),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    state: Option<String>,
    after: Option<Uuid>,
    limit: Option<u32>,
}

/// The report queue (staff): `?state=open` (default, oldest first) or
/// `resolved` (newest first); `?after=` the `next` of the previous page.
async fn reports(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    params: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let open = match p.state.as_deref() {
        None | Some("open") => true,
        Some("resolved") => false,
        Some(_) => {
            return Err(ieum_domain::DomainError::invalid(
                "invalid_state",
                "state is open or resolved",
            )
            .into());
        }
    };
    let limit = p.limit.unwrap_or(50);
    let views = state
        .moderation
        .reports(&actor(&who, &req), open, p.after, limit)
        .await?;
    let next = next_cursor(&views, limit, ieum_domain::moderation::PAGE_MAX, |v| {
        v.report.id
    });
    let reports: Vec<ReportJson<'_>> = views.iter().map(|v| ReportJson::new(v, &state)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"reports": reports, "next": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    resolution: String,
    note: Option<String>,
}

async fn resolve(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    let r = state
        .moderation
        .resolve_report(
            &actor(&who, &req),
            id.into_inner(),
            &body.resolution,
            body.note.as_deref(),
        )
        .await?;
    let view = ReportView {
        report: r,
        reporter: None,
        message: None,
        user: None,
    };
    Ok(HttpResponse::Ok().json(ReportJson::new(&view, &state)))
}

/// Staff remove a message anywhere: a tombstone and a SYSTEM notice.
async fn delete_message(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat
        .moderate_delete(
            &state.moderation,
            &actor(&who, &req),
            id.into_inner(),
            &body.reason,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn close_room(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    state
        .rooms
        .close_by_staff(&state.moderation, &actor(&who, &req), &id, &body.reason)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersParams {
    q: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaffUserJson<'a> {
    id: Uuid,
    username: &'a str,
    display_name: &'a str,
    role: &'static str,
    suspension: Option<SuspensionJson>,
    created_at: DateTime<Utc>,
}

impl<'a> From<&'a StaffUserView> for StaffUserJson<'a> {
    fn from(v: &'a StaffUserView) -> Self {
        Self {
            id: v.user.id,
            username: &v.user.username,
            display_name: &v.user.display_name,
            role: v.role.as_str(),
            suspension: v
                .suspension
                .clone()
                .map(|s| SuspensionJson::new(v.user.id, s)),
            created_at: v.user.created_at,
        }
    }
}

/// Users by username prefix (staff), with role and suspension.
async fn users(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    params: web::Query<UsersParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let found = state
        .moderation
        .find_users(
            &actor(&who, &req),
            p.q.as_deref().unwrap_or(""),
            p.limit.unwrap_or(20),
        )
        .await?;
    let users: Vec<StaffUserJson<'_>> = found.iter().map(StaffUserJson::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsParams {
    q: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

/// Every room (staff), by id descending (native ids are time-ordered).
async fn rooms(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    params: web::Query<RoomsParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(50);
    let rooms = state
        .moderation
        .rooms(
            &actor(&who, &req),
            p.q.as_deref(),
            given(p.before).as_deref(),
            limit,
        )
        .await?;
    let next = next_cursor(&rooms, limit, ieum_domain::moderation::PAGE_MAX, |r| {
        r.id.clone()
    });
    let list: Vec<serde_json::Value> = rooms
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "name": r.name, "kind": r.kind.as_str(), "memberCount": r.member_count,
                "lastMessageAt": r.last_message_at, "createdAt": r.created_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"rooms": list, "next": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesParams {
    before: Option<i64>,
    limit: Option<u32>,
}

/// A room's messages (staff), newest first; the first page is audited.
async fn room_messages(
    state: web::Data<AppState>,
    who: Admitted,
    req: HttpRequest,
    id: web::Path<String>,
    params: web::Query<MessagesParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let messages = state
        .moderation
        .room_messages(&actor(&who, &req), &id, p.before, p.limit.unwrap_or(50))
        .await?;
    let list: Vec<MessageJson<'_>> = messages
        .iter()
        .map(|m| MessageJson::new(m, &state.links))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "messages": list })))
}
