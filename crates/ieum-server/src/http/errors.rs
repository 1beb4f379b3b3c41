//! Errors over HTTP. Native endpoints answer `application/problem+json`
//! (RFC 9457) with a stable `code`; contract A's endpoints use its envelope
//! (see [`crate::http::auth`]).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use ieum_domain::DomainError;
use ieum_domain::error::ErrorKind;
use serde::Serialize;

/// The status of a domain error: by kind, except the attachment codes whose
/// kind is too coarse (`too_large` and `unsupported_type` are `Invalid`,
/// `expired` is `NotFound` but gone for good).
pub fn status_of(e: &DomainError) -> StatusCode {
    match (e.kind(), e.code()) {
        (ErrorKind::Invalid, "too_large") => return StatusCode::PAYLOAD_TOO_LARGE,
        (ErrorKind::Invalid, "unsupported_type") => return StatusCode::UNSUPPORTED_MEDIA_TYPE,
        (ErrorKind::NotFound, "expired") => return StatusCode::GONE,
        _ => {}
    }
    match e.kind() {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs server-side failures; client mistakes are not worth a log line each.
pub fn log_if_server_error(e: &DomainError) {
    if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Internal) {
        tracing::error!(code = e.code(), error = %e, "request failed");
    }
}

pub fn retry_after(e: &DomainError) -> Option<u64> {
    e.retry_after_secs()
}

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
}

/// A domain error answered as problem+json.
#[derive(Debug)]
pub struct ApiError(pub DomainError);

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub fn problem_response(status: StatusCode, code: &'static str, detail: String) -> HttpResponse {
    ieum_domain::error::count_refusal("http", code);
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(Problem {
            kind: format!("urn:ieum:error:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code,
        })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        log_if_server_error(&self.0);
        let mut res = problem_response(self.status_code(), self.0.code(), self.0.public_message());
        if let Some(secs) = retry_after(&self.0) {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.0.kind() == ErrorKind::Unauthenticated {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// A body, path or query that could not be read.
fn bad_input(code: &'static str, detail: String) -> actix_web::Error {
    actix_web::error::InternalError::from_response(
        detail.clone(),
        problem_response(StatusCode::BAD_REQUEST, code, detail),
    )
    .into()
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, req| {
            if crate::http::auth::is_envelope_path(req) {
                return crate::http::auth::envelope_input_error(&err.to_string());
            }
            match &err {
                actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                | actix_web::error::JsonPayloadError::Overflow { .. } => {
                    actix_web::error::InternalError::from_response(
                        err.to_string(),
                        problem_response(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "body_too_large",
                            err.to_string(),
                        ),
                    )
                    .into()
                }
                _ => bad_input("invalid_body", err.to_string()),
            }
        })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _| bad_input("invalid_path", err.to_string()))
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| bad_input("invalid_query", err.to_string()))
}

pub async fn not_found(req: HttpRequest) -> HttpResponse {
    problem_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
    )
}
