//! Request extractors: the caller's identity and address.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use ieum_domain::DomainError;
use ieum_domain::auth::Principal;

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

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(DomainError::Internal("state missing".into()).into()));
        };
        let result = match bearer_token(req) {
            Some(token) => state.auth.authenticate(token).map(Authenticated),
            None => Err(DomainError::unauthenticated(
                "missing_token",
                "send Authorization: Bearer <access token>",
            )),
        };
        ready(result.map_err(ApiError))
    }
}

/// The client's address for throttling: the peer, or the proxy's forwarded
/// address when `trust_proxy_headers` is on.
pub fn client_address(req: &HttpRequest, trust_proxy: bool) -> String {
    let info = req.connection_info();
    let addr = if trust_proxy {
        info.realip_remote_addr()
    } else {
        info.peer_addr()
    };
    addr.unwrap_or("unknown").to_owned()
}
