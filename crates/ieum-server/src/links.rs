//! Stable file links: `{public}/media/{attachmentId}/{rendition}?sig=...`.
//!
//! What IMAGE and FILE messages carry (`file.url`, `file.thumbnailUrl`,
//! contract B's `imageUrl`). A link never changes for an attachment, so a
//! mobile client may cache the image under it for good; each GET of it
//! checks the attachment now and answers a `302` to a fresh presigned GET of
//! the object store (S3 or the embedded store), or `410` once the file
//! expired, or `409` while it is scanned or after it was found infected.
//!
//! The signature is an HMAC-SHA256 of the attachment id and the rendition
//! under a key derived from the JWT secret: only the server makes links, and
//! it makes them only in views of messages for the members of the room. A
//! link is a capability (like a presigned URL without an expiry, bounded by
//! the attachment's own expiry): whoever holds it can fetch the file, so a
//! client should not share it outside the room. No bearer token is needed,
//! so `<img src>`, Glide and Coil load it as it is.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ieum_domain::attachment::{Rendition, ThumbnailSize};
use ieum_domain::message::{MessageFile, MessageKind};
use ieum_domain::session::Command;
use sha2::Sha256;
use uuid::Uuid;

/// The label the link key is derived under; changing it voids every link.
const LINK_LABEL: &[u8] = b"ieum media link v1";
/// Bytes of the MAC a link carries (128 bits).
const SIG_BYTES: usize = 16;
/// The path prefix of every link.
pub const MEDIA_PATH: &str = "/media/";

/// Makes and checks stable file links.
#[derive(Clone)]
pub struct FileLinks {
    base: String,
    key: Hmac<Sha256>,
}

impl FileLinks {
    /// Links under `public_base` (no trailing slash), keyed from `secret`.
    pub fn new(public_base: &str, secret: &[u8]) -> Self {
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        derive.update(LINK_LABEL);
        let key = <Hmac<Sha256> as Mac>::new_from_slice(&derive.finalize().into_bytes())
            .expect("HMAC takes keys of any length");
        Self {
            base: public_base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// The file's link.
    pub fn file(&self, id: Uuid) -> String {
        self.link(id, Rendition::File)
    }

    /// The link of one of an image's thumbnails.
    pub fn thumbnail(&self, id: Uuid, size: ThumbnailSize) -> String {
        self.link(id, Rendition::Thumbnail(size))
    }

    /// The links a message's file shows: none until it may be served.
    pub fn for_file(&self, file: &MessageFile) -> Links {
        if !file.is_downloadable() {
            return Links::default();
        }
        Links {
            file: Some(self.file(file.id)),
            thumbnail: file
                .is_image
                .then(|| self.thumbnail(file.id, ThumbnailSize::Small)),
            thumbnail_large: file
                .is_image
                .then(|| self.thumbnail(file.id, ThumbnailSize::Large)),
        }
    }

    fn link(&self, id: Uuid, rendition: Rendition) -> String {
        let name = rendition_name(rendition);
        format!(
            "{}{MEDIA_PATH}{id}/{name}?sig={}",
            self.base,
            self.sign(id, name)
        )
    }

    fn sign(&self, id: Uuid, rendition: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(id.as_bytes());
        mac.update(rendition.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..SIG_BYTES])
    }

    /// The rendition a link names, when its signature is this server's.
    pub fn verify(&self, id: Uuid, rendition: &str, sig: &str) -> Option<Rendition> {
        let parsed = parse_rendition(rendition)?;
        let Ok(given) = URL_SAFE_NO_PAD.decode(sig) else {
            return None;
        };
        let mut mac = self.key.clone();
        mac.update(id.as_bytes());
        mac.update(rendition.as_bytes());
        mac.verify_truncated_left(&given)
            .ok()
            .filter(|()| given.len() == SIG_BYTES)
            .map(|()| parsed)
    }
}

/// The links of a message's file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Links {
    pub file: Option<String>,
    pub thumbnail: Option<String>,
    pub thumbnail_large: Option<String>,
}

fn rendition_name(rendition: Rendition) -> &'static str {
    match rendition {
        Rendition::File => "file",
        Rendition::Thumbnail(ThumbnailSize::Small) => "thumb-320",
        Rendition::Thumbnail(ThumbnailSize::Large) => "thumb-1280",
    }
}

fn parse_rendition(name: &str) -> Option<Rendition> {
    Some(match name {
        "file" => Rendition::File,
        "thumb-320" => Rendition::Thumbnail(ThumbnailSize::Small),
        "thumb-1280" => Rendition::Thumbnail(ThumbnailSize::Large),
        _ => return None,
    })
}

/// The attachment a link names, whatever server made it (no signature
/// check): for finding the image a profile or room shows, which the
/// attachment's holder then confirms.
pub fn attachment_in(url: &str) -> Option<Uuid> {
    let (_, rest) = url.split_once(MEDIA_PATH)?;
    let (id, _) = rest.split_once('/')?;
    id.parse().ok()
}

impl FileLinks {
    /// The attachment of one of this server's file links, signature checked;
    /// any other URL (another host's `/media/` path included) is none.
    pub fn attachment_of(&self, url: &str) -> Option<Uuid> {
        let rest = url.strip_prefix(&self.base)?.strip_prefix(MEDIA_PATH)?;
        let (id, rest) = rest.split_once('/')?;
        let (rendition, sig) = rest.split_once("?sig=")?;
        let id = id.parse().ok()?;
        (self.verify(id, rendition, sig)? == Rendition::File).then_some(id)
    }

    /// An IMAGE send whose `imageUrl` is one of this server's file links
    /// (contract B sends the `imageUrl` its upload answered) takes that
    /// upload, as if it named `attachmentId`; the send then checks that the
    /// upload is the sender's, in this room. Anything else is left as sent.
    pub fn take_linked_image(&self, command: Command) -> Command {
        match command {
            Command::Message {
                room_id,
                entry,
                mut msg,
            } => {
                if msg.kind == Some(MessageKind::Image)
                    && msg.attachment_id.is_none()
                    && let Some(id) = msg.image_url.as_deref().and_then(|u| self.attachment_of(u))
                {
                    msg.attachment_id = Some(id);
                    msg.image_url = None;
                }
                Command::Message {
                    room_id,
                    entry,
                    msg,
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> FileLinks {
        FileLinks::new("https://chat.example/", b"a test secret of enough length!!")
    }

    #[test]
    fn a_link_verifies_for_its_own_rendition_only() {
        let id = Uuid::now_v7();
        let url = links().file(id);
        assert!(url.starts_with(&format!("https://chat.example/media/{id}/file?sig=")));
        let sig = url.split_once("sig=").unwrap().1;
        assert_eq!(links().verify(id, "file", sig), Some(Rendition::File));
        assert_eq!(links().verify(id, "thumb-320", sig), None);
        assert_eq!(links().verify(Uuid::now_v7(), "file", sig), None);
        assert_eq!(links().verify(id, "file", &sig[..sig.len() - 2]), None);
        assert_eq!(links().verify(id, "file", ""), None);
        let other = FileLinks::new("https://chat.example", b"another secret of enough length!");
        assert_eq!(other.verify(id, "file", sig), None);
    }

    #[test]
    fn only_this_servers_signed_file_link_names_an_attachment() {
        let id = Uuid::now_v7();
        let links = links();
        assert_eq!(links.attachment_of(&links.file(id)), Some(id));
        assert_eq!(
            links.attachment_of(&links.thumbnail(id, ThumbnailSize::Small)),
            None
        );
        assert_eq!(
            links.attachment_of(&format!("https://cdn.example/media/{id}/file?sig=x")),
            None
        );
        let forged = links
            .file(id)
            .replace(&id.to_string(), &Uuid::now_v7().to_string());
        assert_eq!(links.attachment_of(&forged), None);
    }

    #[test]
    fn the_attachment_is_read_back_from_a_link() {
        let id = Uuid::now_v7();
        assert_eq!(attachment_in(&links().file(id)), Some(id));
        assert_eq!(attachment_in("https://img.example/cat.png"), None);
        assert_eq!(attachment_in("https://x/media/not-a-uuid/file"), None);
    }
}
