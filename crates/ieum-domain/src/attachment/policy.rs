//! What may be uploaded: allowed types, sizes per family, the per-user quota,
//! lifetimes, and the checks of what the client declares against what the
//! bytes are.

use chrono::Duration;

use crate::error::{DomainError, DomainResult, named};
use crate::throttle::RateLimit;

use super::sniff::{ContentType, Family, Sniffed};

const MIB: u64 = 1024 * 1024;

/// The largest file per family, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    pub image: u64,
    pub video: u64,
    pub document: u64,
    pub archive: u64,
    pub text: u64,
}

impl SizeLimits {
    pub fn of(&self, family: Family) -> u64 {
        match family {
            Family::Image => self.image,
            Family::Video => self.video,
            Family::Document => self.document,
            Family::Archive => self.archive,
            Family::Text => self.text,
        }
    }
}

/// The upload rules. Every field is a setting; the defaults suit the
/// embedded server and a couple's photos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentPolicy {
    /// Types accepted (detected from the bytes). Executables are never
    /// recognised as one of these. HEIC/HEIF are recognised but not allowed
    /// by default: the served copy must be stripped of its metadata, and an
    /// image processor that cannot read HEIC could not do that.
    pub allowed: Vec<ContentType>,
    /// Defaults stay at or under 25 MiB, Debian's clamd `StreamMaxLength`:
    /// a file the scanner refuses could never become clean. Raise both
    /// together.
    pub max_bytes: SizeLimits,
    /// Bytes a user may hold in uploads that are pending, scanning or clean.
    pub quota_bytes: u64,
    /// How long an attachment lives; `None` keeps it until it is deleted
    /// (a couple's photos are the point of the app).
    pub expires_after: Option<Duration>,
    /// An upload no message references is deleted after this.
    pub unattached_lifetime: Duration,
    /// How long a presigned upload stays usable.
    pub upload_url_lifetime: Duration,
    /// How long a presigned download stays usable (never past the expiry).
    pub download_url_lifetime: Duration,
    /// Uploads begun by one user.
    pub upload_rate: RateLimit,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        use ContentType::*;
        Self {
            allowed: vec![Jpeg, Png, Gif, WebP, Pdf, Mp4, QuickTime, Zip, Text],
            max_bytes: SizeLimits {
                image: 20 * MIB,
                video: 25 * MIB,
                document: 25 * MIB,
                archive: 25 * MIB,
                text: MIB,
            },
            quota_bytes: 1024 * MIB,
            expires_after: None,
            unattached_lifetime: Duration::days(1),
            upload_url_lifetime: Duration::minutes(15),
            download_url_lifetime: Duration::hours(1),
            upload_rate: RateLimit::new(
                "upload-u",
                "upload_rate_limited",
                60,
                Duration::minutes(10),
            ),
        }
    }
}

/// The content type a client declared, reduced to what ieum reads of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredType {
    /// Lower-case `type/subtype`, parameters dropped. The presigned upload
    /// binds this exact value.
    pub essence: String,
    /// `None` for `application/octet-stream`: the client does not know, the
    /// bytes decide (within what is allowed).
    pub family: Option<Family>,
}

impl DeclaredType {
    pub fn parse(declared: &str) -> DomainResult<Self> {
        let essence = declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some((kind, subtype)) = essence.split_once('/') else {
            return Err(named::unsupported_type(
                "the content type must be type/subtype",
            ));
        };
        let token = |part: &str| {
            !part.is_empty()
                && part.len() <= 100
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        if !token(kind) || !token(subtype) {
            return Err(named::unsupported_type("the content type is malformed"));
        }
        let family = match (kind, subtype) {
            ("application", "octet-stream") => None,
            ("image", _) => Some(Family::Image),
            ("video", _) => Some(Family::Video),
            ("text", _) => Some(Family::Text),
            ("application", "pdf") => Some(Family::Document),
            ("application", "zip" | "x-zip-compressed" | "epub+zip") => Some(Family::Archive),
            ("application", office)
                if office.starts_with("vnd.openxmlformats-officedocument.")
                    || office.starts_with("vnd.oasis.opendocument.") =>
            {
                Some(Family::Archive)
            }
            _ => {
                return Err(named::unsupported_type(format!(
                    "{essence} files are not accepted"
                )));
            }
        };
        Ok(Self { essence, family })
    }
}

/// Extensions that run when opened on some system. Text is recognised
/// from the bytes alone, so a script would pass as text; its name stops it.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "apk", "app", "bat", "cmd", "com", "cpl", "dll", "dmg", "exe", "hta", "jar", "js", "jse",
    "lnk", "msi", "msix", "pif", "ps1", "reg", "scr", "sh", "vbe", "vbs", "wsf",
];

pub const FILE_NAME_MAX_BYTES: usize = 255;

impl AttachmentPolicy {
    /// The name as it will be offered for download: the last path component
    /// (browsers send `C:\fakepath\photo.jpg`), control characters removed,
    /// trimmed. Refused when empty, too long, or an executable's.
    pub fn check_file_name(&self, file_name: &str) -> DomainResult<String> {
        let last = file_name.rsplit(['/', '\\']).next().unwrap_or_default();
        // Invisible direction and zero-width characters would let
        // "x\u{202E}fdp.exe" read as a PDF; trailing dots and spaces are
        // dropped by Windows and browsers, so "evil.exe. ." is an .exe.
        let cleaned: String = last
            .chars()
            .filter(|c| !c.is_control() && !crate::text::is_spoofing_format(*c))
            .collect();
        let cleaned = cleaned
            .trim()
            .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
            .to_owned();
        if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
            return Err(DomainError::invalid(
                "invalid_file_name",
                "the file needs a name",
            ));
        }
        if cleaned.len() > FILE_NAME_MAX_BYTES {
            return Err(DomainError::invalid(
                "invalid_file_name",
                format!("a file name has at most {FILE_NAME_MAX_BYTES} bytes"),
            ));
        }
        if let Some((_, extension)) = cleaned.rsplit_once('.')
            && EXECUTABLE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
        {
            return Err(named::unsupported_type(
                "programs and scripts are not accepted",
            ));
        }
        Ok(cleaned)
    }

    /// What the client says it will upload, before any byte is sent: a type
    /// of an allowed family, and a size within that family's limit.
    pub fn check_declared(&self, declared: &str, size: u64) -> DomainResult<DeclaredType> {
        let declared = DeclaredType::parse(declared)?;
        let limit = match declared.family {
            Some(family) if self.allows_family(family) => self.max_bytes.of(family),
            Some(family) => {
                return Err(named::unsupported_type(format!(
                    "{} files are not accepted",
                    family.as_str()
                )));
            }
            // Unknown until the bytes are read: the largest allowed limit now,
            // the detected family's in `check_detected`.
            None => self.largest_limit(),
        };
        if size == 0 {
            return Err(DomainError::invalid("empty_file", "the file is empty"));
        }
        if size > limit {
            return Err(too_large(limit));
        }
        Ok(declared)
    }

    /// What the bytes are, against what was declared: an allowed type (never
    /// a program), of the declared family, within its family's limit.
    pub fn check_detected(
        &self,
        declared: &DeclaredType,
        sniffed: Sniffed,
        size: u64,
    ) -> DomainResult<ContentType> {
        let detected = match sniffed {
            Sniffed::Known(detected) => detected,
            Sniffed::Executable { format } => {
                return Err(named::unsupported_type(format!(
                    "the file is {format}; programs are not accepted"
                )));
            }
            Sniffed::Unknown => {
                return Err(named::unsupported_type("the file's type is not recognised"));
            }
        };
        if !self.allowed.contains(&detected) {
            return Err(named::unsupported_type(format!(
                "{} files are not accepted",
                detected.mime()
            )));
        }
        if declared
            .family
            .is_some_and(|family| family != detected.family())
        {
            return Err(named::unsupported_type(format!(
                "declared {} but the file is {}",
                declared.essence,
                detected.mime()
            )));
        }
        let limit = self.max_bytes.of(detected.family());
        if size > limit {
            return Err(too_large(limit));
        }
        Ok(detected)
    }

    fn allows_family(&self, family: Family) -> bool {
        self.allowed.iter().any(|t| t.family() == family)
    }

    fn largest_limit(&self) -> u64 {
        self.allowed
            .iter()
            .map(|t| self.max_bytes.of(t.family()))
            .max()
            .unwrap_or(0)
    }
}

fn too_large(limit: u64) -> DomainError {
    named::too_large(format!("files of this kind may have at most {limit} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AttachmentPolicy {
        AttachmentPolicy::default()
    }

    fn declared(text: &str) -> DeclaredType {
        DeclaredType::parse(text).unwrap()
    }

    #[test]
    fn declared_types_lose_parameters_and_case() {
        let parsed = declared(" Text/Plain; charset=UTF-8");
        assert_eq!(parsed.essence, "text/plain");
        assert_eq!(parsed.family, Some(Family::Text));
        assert_eq!(declared("application/octet-stream").family, None);
        assert_eq!(
            declared("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
                .family,
            Some(Family::Archive)
        );
    }

    #[test]
    fn unknown_or_malformed_declared_types_are_unsupported() {
        for text in [
            "application/x-msdownload",
            "audio/mpeg",
            "image",
            "",
            "image/",
            "image/jp eg",
            "image/jpeg\r\nX-Evil: 1",
        ] {
            let err = DeclaredType::parse(text).unwrap_err();
            assert_eq!(err.code(), "unsupported_type", "{text:?}");
        }
    }

    #[test]
    fn a_declared_family_with_no_allowed_type_is_refused_before_upload() {
        let only_images = AttachmentPolicy {
            allowed: vec![ContentType::Jpeg],
            ..policy()
        };
        let err = only_images.check_declared("video/mp4", 10).unwrap_err();
        assert_eq!(err.code(), "unsupported_type");
        assert!(only_images.check_declared("image/png", 10).is_ok());
    }

    #[test]
    fn the_declared_size_is_held_to_the_family_limit() {
        let policy = policy();
        assert!(policy.check_declared("image/jpeg", 20 * MIB).is_ok());
        let err = policy
            .check_declared("image/jpeg", 20 * MIB + 1)
            .unwrap_err();
        assert_eq!(err.code(), "too_large");
        let err = policy.check_declared("text/plain", MIB + 1).unwrap_err();
        assert_eq!(err.code(), "too_large");
        // Unknown family: the largest limit until the bytes say more.
        assert!(
            policy
                .check_declared("application/octet-stream", 25 * MIB)
                .is_ok()
        );
    }

    #[test]
    fn an_empty_file_is_refused() {
        let err = policy().check_declared("image/png", 0).unwrap_err();
        assert_eq!(err.code(), "empty_file");
    }

    #[test]
    fn an_executable_renamed_jpg_is_unsupported() {
        let err = policy()
            .check_detected(
                &declared("image/jpeg"),
                crate::attachment::sniff(b"MZ\x90\0\x03\0\0\0"),
                100,
            )
            .unwrap_err();
        assert_eq!(err.code(), "unsupported_type");
        assert!(err.to_string().contains("program"), "{err}");
    }

    #[test]
    fn executables_are_refused_even_when_declared_as_unknown_bytes() {
        let err = policy()
            .check_detected(
                &declared("application/octet-stream"),
                Sniffed::Executable {
                    format: "an ELF program",
                },
                100,
            )
            .unwrap_err();
        assert_eq!(err.code(), "unsupported_type");
    }

    #[test]
    fn the_bytes_must_be_of_the_declared_family() {
        let err = policy()
            .check_detected(
                &declared("image/jpeg"),
                Sniffed::Known(ContentType::Pdf),
                100,
            )
            .unwrap_err();
        assert_eq!(err.code(), "unsupported_type");
        // Within a family the bytes win: a PNG declared as JPEG is a PNG.
        let detected = policy()
            .check_detected(
                &declared("image/jpeg"),
                Sniffed::Known(ContentType::Png),
                100,
            )
            .unwrap();
        assert_eq!(detected, ContentType::Png);
    }

    #[test]
    fn unknown_bytes_or_types_not_allowed_are_unsupported() {
        for sniffed in [Sniffed::Unknown, Sniffed::Known(ContentType::Heic)] {
            let err = policy()
                .check_detected(&declared("application/octet-stream"), sniffed, 100)
                .unwrap_err();
            assert_eq!(err.code(), "unsupported_type", "{sniffed:?}");
        }
    }

    #[test]
    fn undeclared_bytes_take_the_limit_of_what_they_turn_out_to_be() {
        let err = policy()
            .check_detected(
                &declared("application/octet-stream"),
                Sniffed::Known(ContentType::Text),
                MIB + 1,
            )
            .unwrap_err();
        assert_eq!(err.code(), "too_large");
    }

    #[test]
    fn file_names_keep_their_last_component_without_controls() {
        let policy = policy();
        assert_eq!(
            policy
                .check_file_name("C:\\fakepath\\우리 사진.jpg")
                .unwrap(),
            "우리 사진.jpg"
        );
        assert_eq!(
            policy.check_file_name("../../etc/passwd").unwrap(),
            "passwd"
        );
        assert_eq!(policy.check_file_name(" a\u{0}b\n.txt ").unwrap(), "ab.txt");
    }

    #[test]
    fn empty_long_or_dot_names_are_invalid() {
        let policy = policy();
        let long = "a".repeat(FILE_NAME_MAX_BYTES + 1);
        for name in ["", "   ", "dir/", "..", "...", long.as_str()] {
            let err = policy.check_file_name(name).unwrap_err();
            assert_eq!(err.code(), "invalid_file_name", "{name:?}");
        }
    }

    #[test]
    fn names_of_programs_and_scripts_are_unsupported() {
        let policy = policy();
        for name in [
            "setup.exe",
            "run.BAT",
            "photo.jpg.scr",
            "x.ps1",
            "app.apk",
            "evil.exe.",
            "evil.exe. .",
            "a\u{202E}gpj.exe",
            "a.exe\u{200B}",
        ] {
            let err = policy.check_file_name(name).unwrap_err();
            assert_eq!(err.code(), "unsupported_type", "{name}");
        }
        assert!(policy.check_file_name("exe").is_ok());
    }

    #[test]
    fn the_defaults_stay_within_debians_clamd_stream_limit() {
        let limits = policy().max_bytes;
        for family in [
            Family::Image,
            Family::Video,
            Family::Document,
            Family::Archive,
            Family::Text,
        ] {
            assert!(limits.of(family) <= 25 * MIB, "{family:?}");
        }
        assert_eq!(policy().unattached_lifetime, Duration::days(1));
    }
}
