//! The bundled web client: its page at `/`, its modules, styles and vendored
//! libraries at `/web/...` (crates/ieum-server/web, compiled into the binary,
//! or read from `IEUM_WEB_DIR` while working on the client), the OpenAPI
//! document of the HTTP API at `/openapi.json`, and its interactive reference
//! at `/docs` (Swagger UI, vendored under `web/vendor/swagger-ui`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use include_dir::{Dir, include_dir};

use crate::app::AppState;
use crate::config::Config;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// docs/openapi.json: edited by hand beside the routes; tests/api/openapi.rs checks
/// that every operation it lists is served.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/web/{path:.*}", web::get().to(asset))
        .route("/openapi.json", web::get().to(openapi))
        .route("/docs", web::get().to(docs));
}

/// Swagger UI styles its own elements inline; everything else is as tight
/// as the client's policy.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; font-src 'self' data:; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// The page's policy: scripts, styles and connections of this origin only
/// (no inline code), images and media also from `blob:` and `data:` (local
/// previews), and from the S3 endpoint when files live there; no framing.
fn content_security_policy(config: &Config) -> String {
    let files = match &config.s3 {
        Some(s3) => match s3.public_endpoint.as_ref().or(s3.endpoint.as_ref()) {
            Some(endpoint) => format!(" {}", origin_of(endpoint)),
            None => " https:".to_owned(),
        },
        None => String::new(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'{files}; \
         img-src 'self' data: blob:{files}; media-src 'self' blob:{files}; font-src 'self'; \
         manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    url[start..].find('/').map_or(url, |i| &url[..start + i])
}

async fn index(state: web::Data<AppState>) -> HttpResponse {
    page(
        &state.config,
        "index.html",
        &content_security_policy(&state.config),
    )
    .await
}

async fn docs(state: web::Data<AppState>) -> HttpResponse {
    page(&state.config, "docs/index.html", DOCS_POLICY).await
}

async fn page(config: &Config, path: &str, policy: &str) -> HttpResponse {
    match file(config, path).await {
        Some(body) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::CONTENT_SECURITY_POLICY, policy))
            .body(body.into_owned()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// A path under the web directory: relative, segment by segment, no `..`.
fn safe(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['\\', '\0']))
}

async fn file(config: &Config, path: &str) -> Option<Cow<'static, [u8]>> {
    if !safe(path) {
        return None;
    }
    match &config.web_dir {
        Some(dir) => tokio::fs::read(dir.join(path)).await.ok().map(Cow::Owned),
        None => WEB.get_file(path).map(|f| Cow::Borrowed(f.contents())),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ if path
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("LICENSE")) =>
        {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// The strong validator of a built-in file, computed once per file.
fn etag(path: &str, contents: &[u8]) -> String {
    static TAGS: OnceLock<std::sync::Mutex<HashMap<String, String>>> = OnceLock::new();
    let tags = TAGS.get_or_init(Default::default);
    let mut tags = tags.lock().unwrap_or_else(|e| e.into_inner());
    tags.entry(path.to_owned())
        .or_insert_with(|| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(contents);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .clone()
}

/// A file of the web client. Revalidated on every load (`no-cache` with an
/// ETag): a new binary's client is never mixed with an old one's.
async fn asset(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let path = path.into_inner();
    let Some(body) = file(&state.config, &path).await else {
        return crate::http::errors::problem_response(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no web client file {path:?}"),
        );
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type(&path))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if let Cow::Borrowed(contents) = body {
        let tag = etag(&path, contents);
        let matches = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
        response.insert_header((header::ETAG, tag));
        if matches {
            return response
                .status(actix_web::http::StatusCode::NOT_MODIFIED)
                .finish();
        }
    }
    response.body(body.into_owned())
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_served() {
        for good in ["app.js", "vendor/stomp/LICENSE", "a.b/c.css"] {
            assert!(safe(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a\0b",
            "a/",
        ] {
            assert!(!safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_origin_of_an_endpoint_drops_its_path() {
        assert_eq!(origin_of("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(
            origin_of("https://s3.example.com/base"),
            "https://s3.example.com"
        );
    }
}
