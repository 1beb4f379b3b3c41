//! The bundled web client, served at `/`, and the OpenAPI document of the HTTP
//! API at `/openapi.json`, both compiled into the binary.

use actix_web::{HttpResponse, web};

const INDEX_HTML: &str = include_str!("../../web/index.html");
/// docs/openapi.json: edited by hand beside the routes; tests/api/openapi.rs checks
/// that every operation it lists is served.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/openapi.json", web::get().to(openapi));
}

/// The page's policy: its own inline script and style (by hash) and this
/// origin, nothing else; no framing by other sites.
fn content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        let script = inline_hashes(INDEX_HTML, "<script>", "</script>");
        let style = inline_hashes(INDEX_HTML, "<style>", "</style>");
        format!(
            "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; \
             img-src 'self' data: https:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
    })
}

/// `'sha256-...'` of each inline block between `open` and `close`.
fn inline_hashes(html: &str, open: &str, close: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let mut sources = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(close) else { break };
        let digest = sha2::Sha256::digest(&body.as_bytes()[..end]);
        sources.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body[end..];
    }
    if sources.is_empty() {
        "'none'".to_owned()
    } else {
        sources.join(" ")
    }
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("content-security-policy", content_security_policy()))
        .body(INDEX_HTML)
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("cache-control", "no-cache"))
        .body(OPENAPI_JSON)
}
