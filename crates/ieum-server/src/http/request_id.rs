//! A request id per request: taken from `X-Request-Id` when the client (or a
//! proxy) sends a sane one, made otherwise; echoed in the response and carried
//! by every log line of the request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The request's id, in its extensions: the audit log records it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn of(req: &actix_web::HttpRequest) -> Option<String> {
        use actix_web::HttpMessage;
        req.extensions().get::<RequestId>().map(|r| r.0.clone())
    }
}

fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get(HEADER)?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| v.to_owned())
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = incoming_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span =
        tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let probe = matches!(req.path(), "/health" | "/ready" | "/metrics");
    {
        use actix_web::HttpMessage;
        req.extensions_mut().insert(RequestId(id.clone()));
    }
    // The domain's audit entries read the id from the task.
    let mut res = ieum_domain::moderation::REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    let status = res.status().as_u16();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    span.in_scope(|| {
        // Probes come every few seconds from every kubelet and load
        // balancer: at info they would bury everything else.
        if probe && res.status().is_success() {
            tracing::debug!(status, elapsed_ms, "request");
        } else {
            tracing::info!(status, elapsed_ms, "request");
        }
    });
    Ok(res)
}
