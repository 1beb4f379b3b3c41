//! The local-disk object store, the embedded default: [`LocalDiskStore`]
//! implements the domain's [`ObjectStore`](ieum_domain::ports::ObjectStore)
//! port with one file per object under a root directory.
//!
//! There is no storage server to presign for, so ieum serves the presigned
//! URLs itself: `{public_base}/files/{token}`, where the token
//! ([`token`]) is an expiring HMAC-SHA256 grant that binds the method, the
//! key and, for a PUT, the exact length and content type (for a GET, how to
//! serve it). The server hands the request to [`LocalDiskStore::accept_put`]
//! or [`LocalDiskStore::open_get`]; this crate knows no HTTP.
//!
//! **Keys never leave the root** ([`KeyError`]): a key is `/`-separated segments
//! of ASCII letters, digits, `.`, `_` and `-`, none empty and none starting
//! with a dot, so `..`, absolute paths, backslashes and NUL are refused before
//! any path is built. **A write is all or nothing**: bytes go to a file in
//! `.staging/` (a name no key can reach), are synced, then renamed over the
//! key's path, so a crash leaves at worst an orphan in `.staging/` (removed
//! when the store next opens), never a half-written object.
//!
//! The server buffers a PUT's body before [`LocalDiskStore::accept_put`],
//! reading at most one byte more than [`LocalDiskStore::authorize_put`]
//! allows; uploads are bounded by the attachment policy (25 MiB by default),
//! and the domain holds a whole object in memory at `complete` anyway.

mod keys;
mod local;
pub mod token;

pub use keys::KeyError;
pub use local::{Download, LocalDiskConfig, LocalDiskError, LocalDiskStore, TransferError};
pub use token::{Grant, ShortSecret, Terms, TokenError, TokenKey};
