//! Server administration over HTTP (issue 20): suspensions, server roles
//! and the audit log, under `/api/admin`. Every rule (who may, what is
//! recorded) is the domain's `ModerationService`; these handlers translate.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ieum_domain::moderation::{Actor, AuditEntry, AuditQuery, ServerRole, Suspension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Admitted;
use crate::http::request_id::RequestId;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/me", web::get().to(me))
        .route(
            "/api/admin/users/{id}/suspension",
            web::get().to(suspension),
        )
        .route("/api/admin/users/{id}/suspension", web::put().to(suspend))
        .route("/api/admin/users/{id}/suspension", web::delete().to(lift))
        .route("/api/admin/users/{id}/role", web::put().to(set_role))
        .route("/api/admin/audit", web::get().to(audit));
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
                action: p.action,
                target_id: p.target,
                before: p.before,
                limit,
            },
        )
        .await?;
    let next = (entries.len() as u32 >= limit.clamp(1, ieum_domain::moderation::AUDIT_PAGE_MAX))
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: entries.into_iter().map(AuditJson::from).collect(),
        next,
    }))
}
