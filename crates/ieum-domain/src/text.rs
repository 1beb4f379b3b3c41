//! Rules for text that people and clients write.
//!
//! PostgreSQL cannot store U+0000 in text (SQLite can), so a NUL is refused
//! everywhere with one code instead of failing on one backend. Names also
//! refuse the invisible formatting characters used to spoof them: bidi
//! overrides and isolates (which reverse how a name reads) and zero-width
//! spaces (which make two names look the same). Zero-width joiners stay: emoji
//! sequences and several scripts need them.

use crate::error::{DomainError, DomainResult};

pub const NUL_CHARACTER: &str = "nul_character";

/// `Invalid` with code `nul_character` when `text` holds U+0000.
pub fn refuse_nul(text: &str) -> DomainResult<()> {
    if text.contains('\0') {
        return Err(DomainError::invalid(
            NUL_CHARACTER,
            "text must not contain the NUL character (U+0000)",
        ));
    }
    Ok(())
}

/// Characters that change how a name reads without being seen.
pub fn is_spoofing_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// True when a name is fit to show: no control or spoofing characters.
pub fn is_clean_name(name: &str) -> bool {
    !name
        .chars()
        .any(|c| c.is_control() || is_spoofing_format(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_refused_with_its_own_code() {
        assert_eq!(refuse_nul("a\0b").unwrap_err().code(), NUL_CHARACTER);
        assert!(refuse_nul("안녕 👋").is_ok());
    }

    #[test]
    fn names_refuse_bidi_overrides_and_zero_width_spaces_but_keep_joiners() {
        assert!(!is_clean_name("admin\u{202E}nimda"));
        assert!(!is_clean_name("ad\u{200B}min"));
        assert!(!is_clean_name("\u{2067}x\u{2069}"));
        assert!(is_clean_name("👨\u{200D}👩\u{200D}👧 가족"));
    }
}
