//! `t:escapeSeqDecode` (src/actions/transformations/escape_seq_decode.cc): ANSI C escapes.
//!
//! memchr finds the first backslash; input without one is returned borrowed.

use std::borrow::Cow;

use memchr::memchr;

use super::{is_hex, is_odigit, x2c};

/// Decodes `\a \b \f \n \r \t \v \\ \? \' \"`, `\xHH` (`x` or `X`) and `\OOO`.
///
/// Quirks kept from escape_seq_decode.cc (`ansi_c_sequences_decode_inplace`):
/// - Octal takes up to three digits with no range check, and the value is stored in a byte:
///   `\777` (511) gives 0xff, `\400` gives 0x00.
/// - An unknown escape, or `\x` without two hex digits, drops the backslash and keeps the next
///   byte (`\q` gives `q`, `\xZ1` gives `xZ1`).
/// - A backslash as the last byte is kept.
pub fn escape_seq_decode(input: &[u8]) -> Cow<'_, [u8]> {
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
            out.push(b'\\');
            break;
        }
        let e = input[i + 1];
        let simple = match e {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'?' | b'\'' | b'"' => Some(e),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
        } else if (e == b'x' || e == b'X')
            && i + 3 < n
            && is_hex(input[i + 2])
            && is_hex(input[i + 3])
        {
            out.push(x2c(input[i + 2], input[i + 3]));
            i += 4;
        } else if is_odigit(e) {
            let digits = input[i + 1..].iter().take(3).take_while(|&&b| is_odigit(b)).count();
            let v = input[i + 1..i + 1 + digits]
                .iter()
                .fold(0u32, |acc, &d| acc * 8 + u32::from(d - b'0'));
            out.push((v & 0xff) as u8);
            i += 1 + digits;
        } else {
            out.push(e);
            i += 2;
        }
    }
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
            (b"\\n\\t\\\\\\?\\'\\\"", b"\n\t\\?'\""),
            (b"\\a\\b\\f\\r\\v", b"\x07\x08\x0c\r\x0b"),
            (b"\\x41\\X42", b"AB"),
            (b"\\x4", b"x4"),
            (b"\\xZ1", b"xZ1"),
            (b"\\101", b"A"),
            (b"\\1012", b"A2"),
            (b"\\777", b"\xff"),
            (b"\\400", b"\x00"),
            (b"\\08", b"\x008"),
            (b"\\q", b"q"),
            (b"\\u0041", b"u0041"),
        ];
        for (i, o) in cases {
            assert_eq!(&*escape_seq_decode(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }
}
