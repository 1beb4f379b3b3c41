//! Object stores: [`S3Store`] for S3-compatible storage, and the local-disk
//! store, the embedded default: [`LocalDiskStore`]
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
//! The server streams a PUT's body to disk through a [`PutWriter`]
//! ([`LocalDiskStore::begin_put`]): memory holds one chunk, and a body that
//! grows past the bound length is refused at that chunk. (The domain still
//! reads a whole object at `complete`, bounded by the attachment policy.)

mod keys;
mod local;
mod s3;
pub mod token;

use ieum_domain::attachment::Disposition;

pub use keys::KeyError;
pub use local::{
    Download, LocalDiskConfig, LocalDiskError, LocalDiskStore, PutWriter, TransferError,
};
pub use s3::{AccessKey, S3Config, S3SetupError, S3Store};
pub use token::{Grant, ShortSecret, Terms, TokenError, TokenKey};

/// `inline` or `attachment` with the file name: an ASCII fallback in
/// `filename` and the exact name in `filename*` (RFC 6266).
pub fn content_disposition(disposition: Disposition, file_name: &str) -> String {
    let kind = match disposition {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    };
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_is_quoted_safely() {
        assert_eq!(
            content_disposition(Disposition::Inline, "a\"b 사진.png"),
            "inline; filename=\"a_b __.png\"; filename*=UTF-8''a%22b%20%EC%82%AC%EC%A7%84.png"
        );
    }
}
