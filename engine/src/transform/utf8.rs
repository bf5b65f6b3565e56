//! `t:utf8toUnicode` (src/actions/transformations/utf8_to_unicode.cc): rewrites each UTF-8
//! multi-byte sequence as `%uHHHH` (at least four lower-case hex digits).
//!
//! Pure ASCII without NUL is returned borrowed after one scan. Output is at most
//! 3.5x the input (a 2-byte overlong sequence becomes 7 bytes).

use std::borrow::Cow;

use memchr::memchr;

use super::HEX_LOWER;

/// Converts UTF-8 to `%u` escapes the way ModSecurity v3 does.
///
/// Quirks kept from utf8_to_unicode.cc:
/// - NUL bytes disappear: for a NUL the C code writes a scratch byte without advancing its
///   output pointer, so the next write overwrites it.
/// - An invalid or truncated 2-, 3- or 4-byte sequence drops its lead byte (nothing is
///   written for it) and continues with the next byte. Other invalid lead bytes (0x80..0xbf,
///   0xf8..0xff) are copied.
/// - 4-byte leads 0xf5..0xf7 are copied *and* decoded (so code points up to 0x1fffff appear).
/// - Surrogates (U+D800..U+DFFF) and overlong forms are converted and then the lead byte is
///   appended as well (`c0 80` gives `%u0000` followed by 0xc0).
pub fn utf8_to_unicode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_ascii() && memchr(0, input).is_none() {
        return Cow::Borrowed(input);
    }
    let n = input.len();
    // Bytes past the end read as the C string's NUL terminator, which is never a
    // continuation byte, so truncated sequences fail the same way they do in C.
    let at = |i: usize| input.get(i).copied().unwrap_or(0);
    let cont = |i: usize| at(i) & 0xc0 == 0x80;
    let mut out = Vec::with_capacity(n + n / 2);
    let mut i = 0;
    while i < n {
        let c = input[i];
        // (sequence length, code point) for a valid multi-byte sequence.
        let mut seq: Option<(usize, u32)> = None;
        if c & 0x80 == 0 {
            if c != 0 {
                out.push(c);
            }
        } else if c & 0xe0 == 0xc0 {
            if cont(i + 1) {
                seq = Some((2, (u32::from(c & 0x1f) << 6) | u32::from(at(i + 1) & 0x3f)));
            }
        } else if c & 0xf0 == 0xe0 {
            if cont(i + 1) && cont(i + 2) {
                let d = (u32::from(c & 0x0f) << 12)
                    | (u32::from(at(i + 1) & 0x3f) << 6)
                    | u32::from(at(i + 2) & 0x3f);
                seq = Some((3, d));
            }
        } else if c & 0xf8 == 0xf0 {
            if c >= 0xf5 {
                out.push(c);
            }
            if cont(i + 1) && cont(i + 2) && cont(i + 3) {
                let d = (u32::from(c & 0x07) << 18)
                    | (u32::from(at(i + 1) & 0x3f) << 12)
                    | (u32::from(at(i + 2) & 0x3f) << 6)
                    | u32::from(at(i + 3) & 0x3f);
                seq = Some((4, d));
            }
        } else {
            out.push(c);
        }
        match seq {
            Some((len, d)) => {
                push_percent_u(&mut out, d);
                let overlong = match len {
                    2 => d < 0x80,
                    3 => d < 0x800,
                    _ => d < 0x1_0000,
                };
                if (0xd800..=0xdfff).contains(&d) {
                    out.push(c);
                }
                if overlong {
                    out.push(c);
                }
                i += len;
            }
            None => i += 1,
        }
    }
    if out == input { Cow::Borrowed(input) } else { Cow::Owned(out) }
}

/// `%u` then `printf("%x")` of `d`, left-padded with zeros to four digits.
fn push_percent_u(out: &mut Vec<u8>, d: u32) {
    out.extend_from_slice(b"%u");
    let digits = ((32 - d.leading_zeros()).div_ceil(4)).max(4);
    for k in (0..digits).rev() {
        out.push(HEX_LOWER[((d >> (4 * k)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"abc", b"abc"),
            (b"\xc3\xa9", b"%u00e9"),
            (b"a\xc3\xa9b", b"a%u00e9b"),
            (b"\xe2\x82\xac", b"%u20ac"),
            (b"\xf0\x9f\x98\x80", b"%u1f600"),
            (b"\xef\xbc\x9c", b"%uff1c"),
            (b"a\x00b\xc3\xa9", b"ab%u00e9"),
            (b"\xc3", b""),
            (b"\xc3x", b"x"),
            (b"\xe2\x82", b"\x82"),
            (b"\x80", b"\x80"),
            (b"\xff", b"\xff"),
            (b"\xc0\x80", b"%u0000\xc0"),
            (b"\xed\xa0\x80", b"%ud800\xed"),
            (b"\xf5\x80\x80\x80", b"\xf5%u140000"),
            (b"\xf8\x80", b"\xf8\x80"),
        ];
        for (i, o) in cases {
            assert_eq!(&*utf8_to_unicode(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(utf8_to_unicode(b"plain ascii"), Cow::Borrowed(_)));
    }
}
