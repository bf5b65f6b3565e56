//! `t:removeNulls` and `t:replaceNulls` (src/actions/transformations/remove_nulls.cc,
//! replace_nulls.cc): drop every NUL byte, or turn each into a space. Both are memchr scans
//! that return the input borrowed when it has no NUL.

use std::borrow::Cow;

use memchr::memchr;

/// Drops every 0x00 byte.
pub fn remove_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr(0, input) else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len() - 1);
    out.extend_from_slice(&input[..first]);
    out.extend(input[first + 1..].iter().copied().filter(|&b| b != 0));
    Cow::Owned(out)
}

/// Replaces every 0x00 byte with a space (0x20).
pub fn replace_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr(0, input).is_none() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.iter().map(|&b| if b == 0 { b' ' } else { b }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"", b"", b""),
            (b"abc", b"abc", b"abc"),
            (b"\x00a\x00\x00b\x00", b"ab", b" a  b "),
            (b"\x00", b"", b" "),
        ];
        for (i, rm, rp) in cases {
            assert_eq!(&*remove_nulls(i), *rm);
            assert_eq!(&*replace_nulls(i), *rp);
        }
        assert!(matches!(remove_nulls(b"x"), Cow::Borrowed(_)));
        assert!(matches!(replace_nulls(b"x"), Cow::Borrowed(_)));
    }
}
