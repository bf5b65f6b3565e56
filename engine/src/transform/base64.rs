//! Base64: `t:base64Decode`, `t:base64DecodeExt`, `t:base64Encode`
//! (src/actions/transformations/base64_*.cc -> src/utils/base64.cc).
//!
//! The strict decoder follows the mbedtls 2.x `mbedtls_base64_decode` bundled with
//! libmodsecurity 3.0.9 (others/mbedtls/base64.c): one validation pass, then one decoding pass.
//! The forgiving decoder follows `Base64::decode_forgiven_engine` in src/utils/base64.cc.

use std::borrow::Cow;

use base64::Engine as _;
use memchr::memchr;

/// Value of a base64 alphabet byte, or `None`.
#[inline]
fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// `t:base64Decode`: strict RFC 4648 decoding as mbedtls does it.
///
/// Quirks kept:
/// - The input is cut at its first NUL (`Base64::decode` passes `strlen(data.c_str())`).
/// - Any invalid byte makes the whole result empty: a byte outside the alphabet, a space
///   inside a line, a lone `\r`, more than two `=`, or data after `=`. Spaces at the end,
///   `\n` and `\r\n` are skipped (with any spaces just before them).
/// - Only complete 4-character groups produce output: unpadded input loses its tail
///   (`QUI` gives nothing, `QUJDRA` gives `ABC`).
pub fn base64_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let s = match memchr(0, input) {
        Some(p) => &input[..p],
        None => input,
    };
    // Validation pass (mbedtls_base64_decode, first loop).
    let mut i = 0;
    let mut pads = 0u32;
    let mut symbols = 0usize;
    while i < s.len() {
        let mut spaces = 0;
        while i < s.len() && s[i] == b' ' {
            i += 1;
            spaces += 1;
        }
        if i == s.len() {
            break;
        }
        let c = s[i];
        i += 1;
        if c == b'\n' || (c == b'\r' && s.get(i) == Some(&b'\n')) {
            continue;
        }
        if spaces != 0 {
            return Cow::Borrowed(&input[..0]);
        }
        if c == b'=' {
            pads += 1;
            if pads > 2 {
                return Cow::Borrowed(&input[..0]);
            }
        } else if b64_value(c).is_none() || pads != 0 {
            return Cow::Borrowed(&input[..0]);
        }
        symbols += 1;
    }
    if symbols == 0 {
        return Cow::Borrowed(&input[..0]);
    }
    // Decoding pass (second loop): whole groups only; each `=` shortens its group by one.
    let mut out = Vec::with_capacity(symbols / 4 * 3);
    let mut keep = 3u32;
    let mut acc = 0u32;
    let mut n = 0;
    for &c in s {
        if c == b'\r' || c == b'\n' || c == b' ' {
            continue;
        }
        let v = match b64_value(c) {
            Some(v) => u32::from(v),
            None => {
                // Validation let through only '=' here.
                keep = keep.saturating_sub(1);
                0
            }
        };
        acc = (acc << 6) | v;
        n += 1;
        if n == 4 {
            n = 0;
            let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
            out.extend_from_slice(&bytes[..keep as usize]);
        }
    }
    Cow::Owned(out)
}

/// `t:base64DecodeExt`: forgiving decoding (`decode_forgiven_engine`, src/utils/base64.cc).
///
/// Quirks kept:
/// - Bytes outside the alphabet are skipped (NULs too: the whole value is used).
/// - A `=` not followed by another `=` when one symbol of a group has been read (`Q=`) makes the
///   result empty.
/// - The end-of-input check looks at the *last value seen*, and the table value of `9` is 61,
///   the code of `=`: input whose last alphabet byte is `9` and that ends with one symbol of
///   a group (`QUJD9`) is also treated as a bad pad and gives an empty result.
/// - A trailing partial group contributes its complete bytes only.
pub fn base64_decode_ext(input: &[u8]) -> Cow<'_, [u8]> {
    const PAD: i32 = b'=' as i32;
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut sym = 0usize;
    let mut acc = 0u8;
    // The C variable `ch`: the raw '=' or else the table value (-1/-2 for skipped bytes).
    let mut last: i32 = 0;
    for (idx, &c) in input.iter().enumerate() {
        if c == b'=' {
            // `*encoded` after the '=': the next byte, or the string's NUL terminator.
            let next = input.get(idx + 1).copied().unwrap_or(0);
            if next != b'=' && sym % 4 == 1 {
                return Cow::Borrowed(&input[..0]);
            }
            last = PAD;
            continue;
        }
        let Some(v) = b64_value(c) else {
            last = -1;
            continue;
        };
        last = i32::from(v);
        match sym % 4 {
            0 => acc = v << 2,
            1 => {
                out.push(acc | (v >> 4));
                acc = (v & 0x0f) << 4;
            }
            2 => {
                out.push(acc | (v >> 2));
                acc = (v & 0x03) << 6;
            }
            _ => out.push(acc | v),
        }
        sym += 1;
    }
    if last == PAD && sym % 4 == 1 {
        return Cow::Borrowed(&input[..0]);
    }
    if out.is_empty() && input.is_empty() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(out)
}

/// `t:base64Encode`: standard alphabet with `=` padding, no line breaks
/// (`mbedtls_base64_encode`).
pub fn base64_encode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_empty() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(base64::engine::general_purpose::STANDARD.encode(input).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn decode_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"QUJD", b"ABC"),
            (b"QUI=", b"AB"),
            (b"QQ==", b"A"),
            (b"QUI", b""),
            (b"QUJDRA", b"ABC"),
            (b"QQ==QQ==", b""),
            (b"QU JD", b""),
            (b"QUJD  ", b"ABC"),
            (b"QU\nJD", b"ABC"),
            (b"QU\r\nJD", b"ABC"),
            (b"QU  \nJD", b"ABC"),
            (b"QU\rJD", b""),
            (b"QU\tJD", b""),
            (b"QUJD\x00QUJD", b"ABC"),
            (b"Q===", b""),
            (b"Q!JD", b""),
            (b"////", b"\xff\xff\xff"),
        ];
        for (i, o) in cases {
            assert_eq!(&*base64_decode(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn decode_ext_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"QUJD", b"ABC"),
            (b"QUI", b"AB"),
            (b"QUI9", b"AB="),
            (b"QUJDRA9", b"ABCD\x0f"),
            (b"Q=", b""),
            (b"Q", b""),
            (b"QUJD9", b""),
            (b"Q!U@J#D", b"ABC"),
            (b"QU JD\t", b"ABC"),
            (b"QQ==QUJD", b"A\x04\x14\x24"),
            (b"QUJD\x00QUJD", b"ABCABC"),
        ];
        for (i, o) in cases {
            assert_eq!(&*base64_decode_ext(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn encode_table() {
        assert_eq!(&*base64_encode(b""), b"");
        assert_eq!(&*base64_encode(b"A"), b"QQ==");
        assert_eq!(&*base64_encode(b"AB"), b"QUI=");
        assert_eq!(&*base64_encode(b"ABC"), b"QUJD");
        assert_eq!(&*base64_encode(b"\xff\x00"), b"/wA=");
    }
}
