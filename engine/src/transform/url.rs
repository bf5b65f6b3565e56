//! URL transformations: `urlDecode`, `urlDecodeUni`, `urlEncode`.
//!
//! The decoders scan for `%` and `+` with memchr; input without either is returned borrowed.
//! Otherwise the untouched prefix is copied once and decoding runs from the first hit.

use std::borrow::Cow;

use memchr::memchr2;

use super::{HEX_LOWER, is_hex, x2c};

/// `t:urlDecode` (src/actions/transformations/url_decode.cc -> `urldecode_nonstrict_inplace` in
/// src/utils/decode.cc): `%HH` decodes, `+` becomes a space, an invalid or truncated escape is
/// left as is (the `%` is copied and decoding resumes at the next byte).
pub fn url_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, false)
}

/// `t:urlDecodeUni` (src/actions/transformations/url_decode_uni.cc): `urlDecode` plus IIS-style
/// `%uHHHH`.
///
/// Quirks kept from url_decode_uni.cc:
/// - Without `SecUnicodeMapFile` (our base config sets none, so the map table is unset) a
///   `%uHHHH` keeps only its low byte `HH`; when the high byte is `FF` and the low byte is in
///   0x01..=0x5e (full-width ASCII U+FF01..U+FF5E) 0x20 is added to it.
/// - `%u` with fewer than four following bytes, or with non-hex digits, copies `%u` through and
///   continues with the byte after the `u` (so `%u%41` gives `%uA`).
/// - `u` and `U` are both accepted.
pub fn url_decode_uni(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, true)
}

fn decode(input: &[u8], uni: bool) -> Cow<'_, [u8]> {
    let Some(first) = memchr2(b'%', b'+', input) else {
        return Cow::Borrowed(input);
    };
    let n = input.len();
    // Output never outgrows the input: copy it whole once and compact in place behind the
    // read index. A byte loop beats a memchr per escape on the short, escape-dense values
    // that reach this point.
    let mut out = input.to_vec();
    let mut w = first;
    let mut i = first;
    let mut changed = false;
    while i < n {
        let b = input[i];
        if b == b'+' {
            out[w] = b' ';
            changed = true;
            i += 1;
        } else if b != b'%' {
            out[w] = b;
            i += 1;
        } else if uni && i + 1 < n && (input[i + 1] == b'u' || input[i + 1] == b'U') {
            if i + 5 < n && input[i + 2..i + 6].iter().all(|&h| is_hex(h)) {
                let mut c = x2c(input[i + 4], input[i + 5]);
                let ff = |h: u8| h == b'f' || h == b'F';
                if c > 0x00 && c < 0x5f && ff(input[i + 2]) && ff(input[i + 3]) {
                    c += 0x20;
                }
                out[w] = c;
                changed = true;
                i += 6;
            } else {
                // `%u` copied through; the byte after the `u` is looked at afresh.
                out[w] = b'%';
                out[w + 1] = input[i + 1];
                w += 1;
                i += 2;
            }
        } else if i + 2 < n && is_hex(input[i + 1]) && is_hex(input[i + 2]) {
            out[w] = x2c(input[i + 1], input[i + 2]);
            changed = true;
            i += 3;
        } else {
            out[w] = b'%';
            i += 1;
        }
        w += 1;
    }
    if !changed {
        return Cow::Borrowed(input);
    }
    out.truncate(w);
    Cow::Owned(out)
}

/// `t:urlEncode` (src/actions/transformations/url_encode.cc): only `*`, digits and ASCII letters
/// pass through; space becomes `+`; everything else (including `-`, `.`, `_`, `~`) becomes
/// `%hh` with lower-case hex digits (`c2x` in src/utils/string.cc).
pub fn url_encode(input: &[u8]) -> Cow<'_, [u8]> {
    let keep = |c: u8| c == b'*' || c.is_ascii_alphanumeric();
    let Some(first) = input.iter().position(|&c| !keep(c)) else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len() + 2 * (input.len() - first));
    out.extend_from_slice(&input[..first]);
    for &c in &input[first..] {
        if c == b' ' {
            out.push(b'+');
        } else if keep(c) {
            out.push(c);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX_LOWER[usize::from(c >> 4)],
                HEX_LOWER[usize::from(c & 0xf)],
            ]);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn url_decode_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"abc", b"abc"),
            (b"%41%42", b"AB"),
            (b"a+b", b"a b"),
            (b"%2b", b"+"),
            (b"%", b"%"),
            (b"%4", b"%4"),
            (b"%41%4", b"A%4"),
            (b"%zz%41", b"%zzA"),
            (b"%%41", b"%A"),
            (b"%00x", b"\x00x"),
            (b"%u0041", b"%u0041"),
            (b"100%", b"100%"),
        ];
        for (i, o) in cases {
            assert_eq!(&*url_decode(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn url_decode_uni_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"%u0041", b"A"),
            (b"%U0041", b"A"),
            (b"%u4141", b"A"),
            (b"%uff01", b"!"),
            (b"%uFF3c", b"\\"),
            (b"%uff5e", b"~"),
            (b"%uff5f", b"\x5f"),
            (b"%uff00", b"\x00"),
            (b"%ufe01", b"\x01"),
            (b"%u004", b"%u004"),
            (b"%u00zz", b"%u00zz"),
            (b"%u%41", b"%uA"),
            (b"%u", b"%u"),
            (b"%", b"%"),
            (b"+%2f", b" /"),
            (b"a%u002fb", b"a/b"),
        ];
        for (i, o) in cases {
            assert_eq!(&*url_decode_uni(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn url_encode_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"abcXYZ019*", b"abcXYZ019*"),
            (b"a b", b"a+b"),
            (b"a-b.c_d~", b"a%2db%2ec%5fd%7e"),
            (b"\x00\xff", b"%00%ff"),
        ];
        for (i, o) in cases {
            assert_eq!(&*url_encode(i), *o);
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(url_decode(b"plain text"), Cow::Borrowed(_)));
        assert!(matches!(url_decode(b"%zz"), Cow::Borrowed(_)));
        assert!(matches!(url_decode_uni(b"%u12"), Cow::Borrowed(_)));
        assert!(matches!(url_encode(b"abc"), Cow::Borrowed(_)));
    }
}
