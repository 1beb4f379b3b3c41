//! Which web pages may use the API and open real-time connections: pages of
//! ieum's own origin always, and the origins listed in
//! `IEUM_ALLOWED_ORIGINS`. A request that names another origin is refused
//! with 403 `origin_not_allowed`, whatever its route: the HTTP API, and the
//! handshakes of the WebSocket, SockJS, Socket.IO and SSE transports alike.
//! Native clients send no `Origin` and are not affected.
//!
//! CORS grants (preflights, `Access-Control-Allow-Origin`) come from
//! actix-cors, asked the same question.

use actix_web::dev::RequestHead;
use actix_web::http::header;

/// `IEUM_ALLOWED_ORIGINS`, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    list: Vec<String>,
}

impl AllowedOrigins {
    /// A comma-separated list of `scheme://host[:port]`, or `*` for any
    /// origin. Empty: the same origin only.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                out.any = true;
                continue;
            }
            let item = item.trim_end_matches('/').to_ascii_lowercase();
            let valid = ["http://", "https://"].iter().any(|scheme| {
                item.strip_prefix(scheme).is_some_and(|authority| {
                    !authority.is_empty() && !authority.contains(['/', '?', '#', '@', ' ', '*'])
                })
            });
            if !valid {
                return Err(format!(
                    "IEUM_ALLOWED_ORIGINS: {item:?} is not an origin; expected scheme://host[:port], e.g. https://chat.example.com, or *"
                ));
            }
            out.list.push(item);
        }
        Ok(out)
    }

    pub fn is_any(&self) -> bool {
        self.any
    }

    /// Whether a request from `origin` may go on: its own origin (the
    /// authority it names is the request's `Host`), a listed one, or any
    /// when `*` is listed.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let authority = origin.split_once("://").map(|(_, a)| a);
        if let (Some(authority), Some(host)) = (authority, host)
            && authority.eq_ignore_ascii_case(host)
        {
            return true;
        }
        self.list.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// [`Self::allows`] for a request head (actix-cors asks with one).
    pub fn allows_head(&self, origin: &str, head: &RequestHead) -> bool {
        self.allows(origin, host(head))
    }
}

/// The authority the client addressed: `Host`, or the URI's (HTTP/2).
pub fn host(head: &RequestHead) -> Option<&str> {
    head.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| head.uri.authority().map(|a| a.as_str()))
}

/// The CORS middleware for the configured origins: Bearer tokens, not
/// cookies, so no credentials.
pub fn cors(origins: AllowedOrigins) -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, head| {
            origin
                .to_str()
                .is_ok_and(|origin| origins.allows_head(origin, head))
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::LOCATION,
            header::ETAG,
        ])
        .max_age(3600)
        // Refusals are the guard's: a problem+json 403 with a code.
        .block_on_origin_mismatch(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_origin_is_always_allowed() {
        let none = AllowedOrigins::default();
        assert!(none.allows("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(none.allows("https://Chat.Example.com", Some("chat.example.com")));
        assert!(!none.allows("http://evil.example", Some("chat.example.com")));
        assert!(!none.allows("http://127.0.0.1:8081", Some("127.0.0.1:8080")));
        assert!(!none.allows("null", Some("chat.example.com")));
        assert!(!none.allows("http://chat.example.com", None));
    }

    #[test]
    fn listed_origins_and_any() {
        let some =
            AllowedOrigins::parse(" https://app.example.com/, http://localhost:5173").unwrap();
        assert!(some.allows("https://app.example.com", Some("api.example.com")));
        assert!(some.allows("http://localhost:5173", Some("api.example.com")));
        assert!(!some.allows("https://app.example.com:444", Some("api.example.com")));
        assert!(!some.allows("http://app.example.com", Some("api.example.com")));
        let any = AllowedOrigins::parse("*").unwrap();
        assert!(any.is_any() && any.allows("http://anything", None));
        assert_eq!(
            AllowedOrigins::parse("").unwrap(),
            AllowedOrigins::default()
        );
    }

    #[test]
    fn what_is_not_an_origin_is_refused() {
        for bad in [
            "example.com",
            "ftp://x",
            "https://",
            "https://a.com/path",
            "https://*.a.com",
            "http://u@a.com",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
