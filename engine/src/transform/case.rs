//! `t:lowercase` and `t:uppercase` (src/actions/transformations/lower_case.cc,
//! upper_case.cc). Both use `std::tolower`/`std::toupper` with the global C++ locale, which is
//! "C" in libmodsecurity, so only ASCII letters change; bytes >= 0x80 pass through.

use std::borrow::Cow;

/// ASCII lower-casing; borrowed when there is no upper-case ASCII letter.
pub fn lowercase(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(u8::is_ascii_uppercase) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.to_ascii_lowercase())
}

/// ASCII upper-casing; borrowed when there is no lower-case ASCII letter.
pub fn uppercase(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(u8::is_ascii_lowercase) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(&*lowercase(b"SeLeCT \xc3\x89"), b"select \xc3\x89");
        assert_eq!(&*uppercase(b"SeLeCT \xc3\xa9"), b"SELECT \xc3\xa9");
        assert!(matches!(lowercase(b"abc 1"), Cow::Borrowed(_)));
        assert!(matches!(uppercase(b"ABC 1"), Cow::Borrowed(_)));
        assert_eq!(&*lowercase(b""), b"");
    }
}
