//! `t:cssDecode` (src/actions/transformations/css_decode.cc).
//!
//! memchr finds the first backslash (or NUL, see below); input with neither is borrowed.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

use super::{is_c_space, is_hex, x2c, xdigit};

/// Decodes CSS escapes the way ModSecurity v3 does.
///
/// Quirks kept from css_decode.cc:
/// - `\` + 1..6 hex digits: one digit gives its value; two or more use only the last two
///   digits. For four digits (and five/six with leading `0`/`00`) a full-width `FFxx` with
///   `xx` in 0x01..=0x5e gets 0x20 added. One whitespace byte after the escape is swallowed.
/// - `\` + newline is a line continuation (both dropped); `\` + other byte keeps that byte;
///   a trailing lone `\` is dropped.
/// - The result is truncated at its first NUL byte: `CssDecode::evaluate` builds the returned
///   `std::string` from the `char*` buffer (a C string), so everything after a NUL - literal or
///   decoded from `\0` - is lost.
pub fn css_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr2(b'\\', 0, input) else {
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
        i += rel + 1; // past the backslash
        if i >= n {
            break; // lone trailing backslash: dropped
        }
        let j = input[i..].iter().take(6).take_while(|&&b| is_hex(b)).count();
        if j == 0 {
            if input[i] != b'\n' {
                out.push(input[i]);
            }
            i += 1;
            continue;
        }
        let d = &input[i..i + j];
        let mut c = if j == 1 { xdigit(d[0]) } else { x2c(d[j - 2], d[j - 1]) };
        let fullcheck = match j {
            4 => true,
            5 => d[0] == b'0',
            6 => d[0] == b'0' && d[1] == b'0',
            _ => false,
        };
        if fullcheck {
            let ff = |b: u8| b == b'f' || b == b'F';
            if c > 0x00 && c < 0x5f && ff(d[j - 3]) && ff(d[j - 4]) {
                c += 0x20;
            }
        }
        out.push(c);
        let mut skip = j;
        if i + j < n && is_c_space(input[i + j]) {
            skip += 1;
        }
        i += skip;
    }
    if let Some(nul) = memchr(0, &out) {
        out.truncate(nul);
    }
    if out == input { Cow::Borrowed(input) } else { Cow::Owned(out) }
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
            (b"\\", b""),
            (b"a\\", b"a"),
            (b"\\41", b"A"),
            (b"\\4", b"\x04"),
            (b"\\a", b"\x0a"),
            (b"\\041", b"A"),
            (b"\\0041", b"A"),
            (b"\\00041", b"A"),
            (b"\\000041", b"A"),
            (b"\\0000041", b"\x041"),
            (b"\\ff01", b"!"),
            (b"\\FF3C", b"\\"),
            (b"\\0ff01", b"!"),
            (b"\\00ff01", b"!"),
            (b"\\1ff01", b"\x01"),
            (b"\\41 b", b"Ab"),
            (b"\\41  b", b"A b"),
            (b"\\41\tb", b"Ab"),
            (b"\\\nx", b"x"),
            (b"\\g", b"g"),
            (b"\\\\", b"\\"),
            (b"a\x00b", b"a"),
            (b"\\0ab", b"\xab"),
            (b"x\\00y", b"x"),
        ];
        for (i, o) in cases {
            assert_eq!(&*css_decode(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(css_decode(b"color: red"), Cow::Borrowed(_)));
    }
}
