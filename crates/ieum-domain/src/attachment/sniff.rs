//! What a file is, from its first bytes (magic numbers), never from the
//! client's word: the declared type and the file name are checked against
//! this, not the other way round.
//!
//! [`sniff`] is pure and looks at no more than [`SNIFF_BYTES`]. Executables
//! are recognised on purpose (Windows PE, ELF, Mach-O, Java and Android
//! packages) so that they are refused by name, whatever they were declared as.

/// How many leading bytes [`sniff`] reads; the caller may pass more.
pub const SNIFF_BYTES: usize = 1024;

/// The broad kind of a file: what a client does with it (show it, play it,
/// offer it for download), and what limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Image,
    Video,
    /// PDF.
    Document,
    /// ZIP, and the Office and OpenDocument formats built on it.
    Archive,
    Text,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Document => "document",
            Self::Archive => "archive",
            Self::Text => "text",
        }
    }
}

/// A type ieum can recognise from the bytes. Whether it is accepted is the
/// policy's business ([`super::AttachmentPolicy::allowed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    Jpeg,
    Png,
    Gif,
    WebP,
    /// HEIF holding HEVC images (iPhone photos).
    Heic,
    /// HEIF with another or an unnamed codec.
    Heif,
    Pdf,
    Mp4,
    QuickTime,
    Zip,
    /// UTF-8 text (the fallback when no magic number matched).
    Text,
}

impl ContentType {
    pub const ALL: [Self; 11] = [
        Self::Jpeg,
        Self::Png,
        Self::Gif,
        Self::WebP,
        Self::Heic,
        Self::Heif,
        Self::Pdf,
        Self::Mp4,
        Self::QuickTime,
        Self::Zip,
        Self::Text,
    ];

    /// The MIME type served with it (text is always served as plain text).
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
            Self::Heic => "image/heic",
            Self::Heif => "image/heif",
            Self::Pdf => "application/pdf",
            Self::Mp4 => "video/mp4",
            Self::QuickTime => "video/quicktime",
            Self::Zip => "application/zip",
            Self::Text => "text/plain",
        }
    }

    /// The inverse of [`Self::mime`] (for adapters reading a stored type).
    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.mime() == mime)
    }

    pub fn family(self) -> Family {
        match self {
            Self::Jpeg | Self::Png | Self::Gif | Self::WebP | Self::Heic | Self::Heif => {
                Family::Image
            }
            Self::Mp4 | Self::QuickTime => Family::Video,
            Self::Pdf => Family::Document,
            Self::Zip => Family::Archive,
            Self::Text => Family::Text,
        }
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Known(ContentType),
    /// A program; `format` names it for the error message. Never allowed.
    Executable {
        format: &'static str,
    },
    /// Nothing recognised (and not text).
    Unknown,
}

/// Recognises the file from its first bytes (at most [`SNIFF_BYTES`] are read).
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if let Some(format) = executable(head) {
        return Sniffed::Executable { format };
    }
    if let Some(known) = magic(head) {
        return known;
    }
    if is_text(head) {
        return Sniffed::Known(ContentType::Text);
    }
    Sniffed::Unknown
}

fn executable(head: &[u8]) -> Option<&'static str> {
    const MACH_O: [[u8; 4]; 5] = [
        [0xFE, 0xED, 0xFA, 0xCE],
        [0xFE, 0xED, 0xFA, 0xCF],
        [0xCE, 0xFA, 0xED, 0xFE],
        [0xCF, 0xFA, 0xED, 0xFE],
        // Mach-O universal binaries and Java classes share this one.
        [0xCA, 0xFE, 0xBA, 0xBE],
    ];
    // "MZ" alone: DOS and Windows (PE) programs and DLLs all start so; a
    // text file starting with "MZ" is refused too, a price worth paying.
    if head.starts_with(b"MZ") {
        return Some("a Windows or DOS program");
    }
    if head.starts_with(b"\x7fELF") {
        return Some("an ELF program");
    }
    if MACH_O.iter().any(|magic| head.starts_with(magic)) {
        return Some("a Mach-O program or Java class");
    }
    if head.starts_with(b"dex\n") {
        return Some("Android bytecode");
    }
    if is_java_or_android_package(head) {
        return Some("a Java or Android package");
    }
    None
}

/// A ZIP whose first entry is a JAR manifest or an Android package's.
fn is_java_or_android_package(head: &[u8]) -> bool {
    let Some(name) = first_zip_entry_name(head) else {
        return false;
    };
    name.starts_with(b"META-INF/") || name == b"AndroidManifest.xml" || name == b"classes.dex"
}

/// The name in a ZIP's first local file header, when it is within `head`.
fn first_zip_entry_name(head: &[u8]) -> Option<&[u8]> {
    if !head.starts_with(b"PK\x03\x04") || head.len() < 30 {
        return None;
    }
    let length = usize::from(u16::from_le_bytes([head[26], head[27]]));
    head.get(30..30 + length)
}

fn magic(head: &[u8]) -> Option<Sniffed> {
    let known = |t| Some(Sniffed::Known(t));
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return known(ContentType::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return known(ContentType::Png);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return known(ContentType::Gif);
    }
    if head.starts_with(b"RIFF") && matches!(head.get(8..12), Some(b"WEBP")) {
        return known(ContentType::WebP);
    }
    if head.starts_with(b"%PDF-") {
        return known(ContentType::Pdf);
    }
    if head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08")
    {
        return known(ContentType::Zip);
    }
    if matches!(head.get(4..8), Some(b"ftyp")) {
        // An ISO media file whose brands we do not take (audio, AVIF, 3GPP)
        // is unknown: it must not pass as a video or an image.
        return Some(iso_media(head).map_or(Sniffed::Unknown, Sniffed::Known));
    }
    // QuickTime files from before `ftyp` start with one of these atoms.
    if matches!(head.get(4..8), Some(b"moov" | b"mdat" | b"wide" | b"pnot")) {
        return known(ContentType::QuickTime);
    }
    None
}

/// An ISO base media file (`ftyp` box): the major brand decides, else the
/// first compatible brand we know (HEIC files often say `mif1` first, some
/// cameras' MP4s a brand of their own). Audio and AVIF majors stop there:
/// their compatible brands (`mp42`, `mif1`) would make them pass as video
/// or image.
fn iso_media(head: &[u8]) -> Option<ContentType> {
    let box_size = u32::from_be_bytes(head.get(0..4)?.try_into().ok()?) as usize;
    let major = head.get(8..12)?;
    if matches!(
        major,
        b"M4A " | b"M4B " | b"M4P " | b"F4A " | b"F4B " | b"avif" | b"avis"
    ) {
        return None;
    }
    match brand(major) {
        Some(ContentType::Heif) | None => {}
        Some(found) => return Some(found),
    }
    let end = box_size.min(head.len());
    let compatible = head.get(16..end)?;
    let mut generic_heif = brand(major) == Some(ContentType::Heif);
    for candidate in compatible.chunks_exact(4) {
        match brand(candidate) {
            Some(ContentType::Heif) => generic_heif = true,
            Some(found) => return Some(found),
            None => {}
        }
    }
    generic_heif.then_some(ContentType::Heif)
}

fn brand(brand: &[u8]) -> Option<ContentType> {
    match brand {
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"hevm" | b"hevs" => {
            Some(ContentType::Heic)
        }
        b"mif1" | b"msf1" => Some(ContentType::Heif),
        b"qt  " => Some(ContentType::QuickTime),
        b"isom" | b"iso2" | b"iso3" | b"iso4" | b"iso5" | b"iso6" | b"mp41" | b"mp42" | b"avc1"
        | b"dash" | b"M4V " | b"mmp4" => Some(ContentType::Mp4),
        _ => None,
    }
}

/// UTF-8 (an optional BOM, a character cut at the end of `head` is fine)
/// with no control characters but tab, line feed, form feed and carriage
/// return. NUL or other controls mean binary.
fn is_text(head: &[u8]) -> bool {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if body.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(body) {
        Ok(text) => text,
        // `error_len() == None`: the input ended inside a character, which
        // is where `head` was cut; the part before it must be text.
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&body[..error.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && !valid
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(t: ContentType) -> Sniffed {
        Sniffed::Known(t)
    }

    /// An `ftyp` box with a major brand and compatible brands, then padding.
    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut bytes = size.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"ftyp");
        bytes.extend_from_slice(major);
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        for brand in compatible {
            bytes.extend_from_slice(*brand);
        }
        bytes.extend_from_slice(&[0; 16]);
        bytes
    }

    fn zip_with_first_entry(name: &str) -> Vec<u8> {
        let mut bytes = b"PK\x03\x04".to_vec();
        bytes.extend_from_slice(&[0; 22]);
        bytes.extend_from_slice(&(name.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(name.as_bytes());
        bytes
    }

    #[test]
    fn images_are_recognised_by_their_magic_numbers() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"),
            known(ContentType::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            known(ContentType::Png)
        );
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), known(ContentType::Gif));
        assert_eq!(sniff(b"GIF87a\x01\0\x01\0"), known(ContentType::Gif));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), known(ContentType::WebP));
    }

    #[test]
    fn riff_files_other_than_webp_are_unknown() {
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), Sniffed::Unknown);
    }

    #[test]
    fn heic_is_found_by_its_major_or_a_compatible_brand() {
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1"])), known(ContentType::Heic));
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])),
            known(ContentType::Heic)
        );
        assert_eq!(sniff(&ftyp(b"mif1", &[b"mif1"])), known(ContentType::Heif));
    }

    #[test]
    fn mp4_and_quicktime_are_videos() {
        assert_eq!(
            sniff(&ftyp(b"isom", &[b"isom", b"avc1"])),
            known(ContentType::Mp4)
        );
        assert_eq!(sniff(&ftyp(b"mp42", &[])), known(ContentType::Mp4));
        assert_eq!(
            sniff(&ftyp(b"XAVC", &[b"XAVC", b"mp42"])),
            known(ContentType::Mp4)
        );
        assert_eq!(
            sniff(&ftyp(b"qt  ", &[b"qt  "])),
            known(ContentType::QuickTime)
        );
        assert_eq!(
            sniff(b"\0\0\0\x08wide\0\0\0\0mdat"),
            known(ContentType::QuickTime)
        );
    }

    #[test]
    fn iso_media_with_brands_we_do_not_take_is_unknown() {
        assert_eq!(sniff(&ftyp(b"M4A ", &[b"M4A ", b"mp42"])), Sniffed::Unknown);
        assert_eq!(sniff(&ftyp(b"avif", &[b"avif", b"mif1"])), Sniffed::Unknown);
        assert_eq!(sniff(&ftyp(b"abcd", &[b"efgh"])), Sniffed::Unknown);
    }

    #[test]
    fn compatible_brands_past_the_box_are_not_read() {
        // The box says 16 bytes: no compatible brands, whatever follows.
        let mut bytes = ftyp(b"abcd", &[]);
        bytes[16..20].copy_from_slice(b"heic");
        assert_eq!(sniff(&bytes), Sniffed::Unknown);
    }

    #[test]
    fn pdf_and_zip_are_recognised() {
        assert_eq!(sniff(b"%PDF-1.7\n%\xE2\xE3"), known(ContentType::Pdf));
        assert_eq!(
            sniff(&zip_with_first_entry("[Content_Types].xml")),
            known(ContentType::Zip)
        );
        assert_eq!(sniff(b"PK\x05\x06\0\0\0\0"), known(ContentType::Zip));
    }

    #[test]
    fn programs_are_executables_whatever_follows() {
        for bytes in [
            &b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF"[..],
            b"\x7fELF\x02\x01\x01\0",
            b"\xCF\xFA\xED\xFE\x07\0\0\x01",
            b"\xCA\xFE\xBA\xBE\0\0\0\x02",
            b"dex\n035\0",
        ] {
            assert!(
                matches!(sniff(bytes), Sniffed::Executable { .. }),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn java_and_android_packages_are_executables_not_zips() {
        for first in ["META-INF/MANIFEST.MF", "AndroidManifest.xml", "classes.dex"] {
            let bytes = zip_with_first_entry(first);
            assert!(
                matches!(sniff(&bytes), Sniffed::Executable { .. }),
                "{first}"
            );
        }
    }

    #[test]
    fn utf8_without_control_characters_is_text() {
        assert_eq!(
            sniff("안녕, 여보\r\n\tok".as_bytes()),
            known(ContentType::Text)
        );
        assert_eq!(sniff(b"\xEF\xBB\xBFwith a BOM"), known(ContentType::Text));
    }

    #[test]
    fn text_cut_inside_a_character_at_the_sniff_limit_is_still_text() {
        let mut bytes = "a".repeat(SNIFF_BYTES - 1).into_bytes();
        bytes.extend_from_slice("가".as_bytes());
        assert_eq!(sniff(&bytes), known(ContentType::Text));
    }

    #[test]
    fn binary_or_broken_utf8_is_unknown() {
        assert_eq!(sniff(b"hello\0world"), Sniffed::Unknown);
        assert_eq!(sniff(b"bell\x07"), Sniffed::Unknown);
        assert_eq!(sniff(b"bad \xC3\x28 utf8"), Sniffed::Unknown);
        assert_eq!(sniff(b"\xFF\xFEu\0t\0f\x001\x006\0"), Sniffed::Unknown);
        assert_eq!(sniff(b""), Sniffed::Unknown);
        assert_eq!(sniff(b"\xEF\xBB\xBF"), Sniffed::Unknown);
    }

    #[test]
    fn only_the_first_bytes_are_read() {
        let mut bytes = "a".repeat(SNIFF_BYTES).into_bytes();
        bytes.push(0);
        assert_eq!(sniff(&bytes), known(ContentType::Text));
    }

    #[test]
    fn every_type_round_trips_through_its_mime_name() {
        for content_type in ContentType::ALL {
            assert_eq!(
                ContentType::from_mime(content_type.mime()),
                Some(content_type)
            );
        }
        assert_eq!(ContentType::from_mime("application/x-msdownload"), None);
    }
}
