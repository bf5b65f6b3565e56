//! `t:jsDecode` (src/actions/transformations/js_decode.cc).
//!
//! memchr finds the first backslash; input without one is returned borrowed.

use std::borrow::Cow;

use memchr::memchr;

use super::{is_hex, is_odigit, x2c};

/// Decodes JavaScript escapes the way ModSecurity v3 does.
///
/// Quirks kept from js_decode.cc:
/// - `\uHHHH` (lower-case `u` only) keeps the low byte; high byte `FF` with a low byte in
///   0x01..=0x5e gets 0x20 added (full-width ASCII), as urlDecodeUni does.
/// - `\xHH` (lower-case `x` only).
/// - `\OOO`: one to three octal digits; a three-digit run starting above `3` only uses two
///   digits, so the value always fits in a byte (`\477` is `\47` then `7`).
/// - `\a \b \f \n \r \t \v` map to their control bytes; any other escaped byte stands for
///   itself (the backslash is dropped), including `\u`/`\x` with bad digits.
/// - A backslash as the very last byte is kept.
pub fn js_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr(b'\\', input) else {
        return Cow::Borrowed(input);
    };
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < n {
        let Some(rel) = memchr(b'\\', &input[i..]) else {
            out.extend_from_slice(&input[i..]);
            break;
        };
        out.extend_from_slice(&input[i..i + rel]);
        i += rel;
        if i + 1 >= n {
            // Lone trailing backslash: copied.
            out.push(b'\\');
            break;
        }
        let e = input[i + 1];
        if e == b'u' && i + 5 < n && input[i + 2..i + 6].iter().all(|&b| is_hex(b)) {
            let mut c = x2c(input[i + 4], input[i + 5]);
            let ff = |b: u8| b == b'f' || b == b'F';
            if c > 0x00 && c < 0x5f && ff(input[i + 2]) && ff(input[i + 3]) {
                c += 0x20;
            }
            out.push(c);
            i += 6;
        } else if e == b'x' && i + 3 < n && is_hex(input[i + 2]) && is_hex(input[i + 3]) {
            out.push(x2c(input[i + 2], input[i + 3]));
            i += 4;
        } else if is_odigit(e) {
            let run = input[i + 1..].iter().take(3).take_while(|&&b| is_odigit(b)).count();
            let digits = if run == 3 && e > b'3' { 2 } else { run };
            let v = input[i + 1..i + 1 + digits]
                .iter()
                .fold(0u32, |acc, &d| acc * 8 + u32::from(d - b'0'));
            // At most 0o377 by construction.
            out.push((v & 0xff) as u8);
            i += 1 + digits;
        } else {
            out.push(match e {
                b'a' => 0x07,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 0x0b,
                other => other,
            });
            i += 2;
        }
    }
    // A backslash always changes the output except when it is the lone last byte.
    if out.len() == n { Cow::Borrowed(input) } else { Cow::Owned(out) }
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
            (b"\\", b"\\"),
            (b"a\\", b"a\\"),
            (b"\\u0041", b"A"),
            (b"\\U0041", b"U0041"),
            (b"\\uff01", b"!"),
            (b"\\uFF5E", b"~"),
            (b"\\u004", b"u004"),
            (b"\\x41", b"A"),
            (b"\\X41", b"X41"),
            (b"\\x4", b"x4"),
            (b"\\xzz", b"xzz"),
            (b"\\101", b"A"),
            (b"\\1011", b"A1"),
            (b"\\477", b"'7"),
            (b"\\377", b"\xff"),
            (b"\\0", b"\x00"),
            (b"\\08", b"\x008"),
            (b"\\7", b"\x07"),
            (b"\\a\\b\\f\\n\\r\\t\\v", b"\x07\x08\x0c\n\r\t\x0b"),
            (b"\\'\\\"\\\\\\?", b"'\"\\?"),
            (b"\\z", b"z"),
        ];
        for (i, o) in cases {
            assert_eq!(&*js_decode(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(js_decode(b"alert(1)"), Cow::Borrowed(_)));
        assert!(matches!(js_decode(b"x\\"), Cow::Borrowed(_)));
    }
}
