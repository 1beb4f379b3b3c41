//! Push adapters for the [`PushGateway`](ieum_domain::ports::PushGateway) port.
//!
//! [`FcmGateway`] speaks Firebase Cloud Messaging's HTTP v1 API: it trades a
//! service account's key for an access token with the OAuth2 JWT-bearer
//! grant (RFC 7523; the assertion signed RS256), keeps the token until just
//! before it expires, and maps FCM's answers onto what the outbox does next
//! (`Retry-After` on 429 and 5xx, a dead token removed). [`LogGateway`] is
//! the embedded default: it logs what it would send.
//!
//! Both endpoints are configurable so tests can point them at a fake.

mod account;
mod gateway;
mod message;
mod oauth;

pub use account::{AccountError, ServiceAccount};
pub use gateway::{FcmConfig, FcmGateway, LogGateway};
pub use message::v1_message;
pub use oauth::{SCOPE, TOKEN_GRANT};
