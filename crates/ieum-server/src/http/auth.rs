//! Contract A's account endpoints (`/auth/*`), answered in its envelope:
//! `{"success":bool,"message":text,"data":...}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use ieum_domain::DomainError;
use ieum_domain::auth::TokenPair;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::http::errors::{log_if_server_error, retry_after, status_of};
use crate::http::extract::client_address;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/auth")
            .route("/signup", web::post().to(signup))
            .route("/login", web::post().to(login))
            .route("/refresh", web::post().to(refresh))
            .route("/logout", web::post().to(logout)),
    );
}

pub fn is_envelope_path(req: &HttpRequest) -> bool {
    req.path().starts_with("/auth/")
}

#[derive(Serialize)]
struct Envelope<T: Serialize> {
    success: bool,
    message: String,
    data: Option<T>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

fn ok(status: StatusCode, message: &str, pair: Option<TokenPair>) -> HttpResponse {
    HttpResponse::build(status).json(Envelope {
        success: true,
        message: message.to_owned(),
        data: pair.map(|p| Tokens {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
        }),
    })
}

/// A domain error in contract A's envelope.
#[derive(Debug)]
pub struct EnvelopeError(pub DomainError);

impl From<DomainError> for EnvelopeError {
    fn from(e: DomainError) -> Self {
        Self(e)
    }
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for EnvelopeError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        log_if_server_error(&self.0);
        let mut res = envelope_error(self.status_code(), self.0.public_message());
        if let Some(secs) = retry_after(&self.0) {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

fn envelope_error(status: StatusCode, message: String) -> HttpResponse {
    HttpResponse::build(status).json(Envelope::<Value> {
        success: false,
        message,
        data: None,
    })
}

/// Unreadable JSON on an envelope path.
pub fn envelope_input_error(detail: &str) -> actix_web::Error {
    actix_web::error::InternalError::from_response(
        detail.to_owned(),
        envelope_error(
            StatusCode::BAD_REQUEST,
            format!("invalid request body: {detail}"),
        ),
    )
    .into()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    username: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
    /// Sign-up only, when the server takes accounts by invite.
    #[serde(default)]
    invite_code: Option<String>,
}

async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, EnvelopeError> {
    let client = client_address(&req);
    let (_, pair) = state
        .auth
        .signup(
            &body.username,
            &body.password,
            body.display_name.as_deref(),
            body.invite_code.as_deref(),
            &client,
        )
        .await?;
    Ok(ok(StatusCode::CREATED, "signup successful", Some(pair)))
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, EnvelopeError> {
    let client = client_address(&req);
    let pair = state
        .auth
        .login(&body.username, &body.password, &client)
        .await?;
    Ok(ok(StatusCode::OK, "login successful", Some(pair)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, EnvelopeError> {
    let pair = state.auth.refresh(&body.refresh_token).await?;
    Ok(ok(StatusCode::OK, "token refreshed", Some(pair)))
}

async fn logout(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, EnvelopeError> {
    let family = state.auth.logout(&body.refresh_token).await?;
    // The logout stands; a device left registered is removed when FCM
    // refuses its token, or by the next login's registration of it.
    if let Err(error) = state.push.logged_out(family).await {
        tracing::warn!(error = %error, "removing the session's devices failed");
    }
    Ok(ok(StatusCode::OK, "logged out", None))
}
