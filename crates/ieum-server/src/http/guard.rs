//! Checks every request gets before routing: a NUL character in the path or
//! query is refused with 400 `nul_character` on every route and backend alike
//! (PostgreSQL cannot store it; SQLite would), a request from a web page of
//! an origin that may not use ieum is refused with 403 `origin_not_allowed`
//! (`origin.rs`), and every response says how a browser may embed and run it.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;

use crate::http::errors::problem_response;

fn has_encoded_nul(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
        || text.contains('\0')
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let uri = req.uri();
    if has_encoded_nul(uri.path()) || uri.query().is_some_and(has_encoded_nul) {
        let res = problem_response(
            StatusCode::BAD_REQUEST,
            ieum_domain::text::NUL_CHARACTER,
            "the path or query contains the NUL character (%00)".into(),
        );
        return Ok(req.into_response(res).map_into_right_body());
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed = req
            .app_data::<actix_web::web::Data<crate::app::AppState>>()
            .is_none_or(|state| {
                origin.to_str().is_ok_and(|origin| {
                    state.config.allowed_origins.allows_head(origin, req.head())
                })
            });
        if !allowed {
            let res = problem_response(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "pages of this origin may not use this server (IEUM_ALLOWED_ORIGINS lists the ones that may)".into(),
            );
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_percent_encoded_or_raw_nul() {
        assert!(has_encoded_nul("/rooms/a%00b"));
        assert!(has_encoded_nul("q=x%00"));
        assert!(!has_encoded_nul("/rooms/a%20b%100"));
    }
}
