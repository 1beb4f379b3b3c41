//! Request extractors: the caller's identity and address.

use futures_util::future::LocalBoxFuture;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use ieum_domain::DomainError;
use ieum_domain::auth::{Grant, Principal};

use crate::app::AppState;
use crate::http::errors::ApiError;

/// The caller, proven by `Authorization: Bearer <access token>`.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// The bearer token of a request, if any.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The app state and the request's bearer token, or why the request has none.
fn state_and_token(req: &HttpRequest) -> Result<(web::Data<AppState>, String), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| DomainError::Internal("state missing".into()))?;
    let token = bearer_token(req).map(str::to_owned).ok_or_else(|| {
        DomainError::unauthenticated("missing_token", "send Authorization: Bearer <access token>")
    })?;
    Ok((state, token))
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_and_token(req);
        Box::pin(async move {
            let (state, token) = found?;
            Ok(Authenticated(state.auth.authenticate_user(&token).await?))
        })
    }
}

/// The caller and the session it signed in under (its family), for what
/// the session's logout must undo (a device's registration). A logged-out
/// session is refused.
#[derive(Debug, Clone)]
pub struct Admitted(pub Grant);

impl FromRequest for Admitted {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_and_token(req);
        Box::pin(async move {
            let (state, token) = found?;
            Ok(Admitted(state.auth.admit(&token).await?))
        })
    }
}

/// The caller's address for per-address limits (see [`crate::http::client`]).
pub fn client_address(req: &HttpRequest) -> String {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => crate::http::client::client_address(
            req,
            state.config.trust_proxy_headers,
            &state.config.trusted_proxies,
        ),
        None => crate::http::client::client_address(req, false, &[]),
    }
}

/// A request body read up to `limit` bytes: a longer one is refused with
/// 413 (problem+json) as soon as it passes the limit, before it is held.
pub async fn read_limited(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, actix_web::HttpResponse> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            crate::http::errors::problem_response(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(crate::http::errors::problem_response(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a body here is at most {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A JSON body that may be left out: no body at all is `None`, and a body
/// that is there must parse (a bad one is 400 `invalid_body`, as with
/// `web::Json`). actix's `Option<web::Json<T>>` would take a bad body for
/// none and act on defaults the client never asked for.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
        let headers = req.headers();
        let length = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let absent =
            length == Some("0") || (length.is_none() && !headers.contains_key(TRANSFER_ENCODING));
        if absent {
            return Box::pin(async { Ok(Self(None)) });
        }
        let json = web::Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(Self(Some(json.await?.into_inner()))) })
    }
}
