//! Whitespace transformations: `compressWhitespace`, `removeWhitespace`, `trim`, `trimLeft`,
//! `trimRight`.
//!
//! "Whitespace" is C-locale `isspace` (space, `\t`, `\n`, `\v`, `\f`, `\r`); removeWhitespace
//! adds two more bytes (see there). Each function finds the first byte it would touch and
//! returns the input borrowed when there is none.

use std::borrow::Cow;

use super::is_c_space;

/// `t:compressWhitespace` (src/actions/transformations/compress_whitespace.cc): every run of
/// whitespace becomes one space. Bytes >= 0x80 are never whitespace (glibc's `isspace` on a
/// negative `char` in the C locale), so NBSP is left alone.
pub fn compress_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    // The first byte that changes: a whitespace byte other than ' ', or a second
    // whitespace byte in a row.
    let mut first = None;
    let mut prev_space = false;
    for (i, &b) in input.iter().enumerate() {
        if is_c_space(b) {
            if prev_space || b != b' ' {
                first = Some(i);
                break;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
    }
    let Some(first) = first else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len());
    // Re-start at the beginning of the run that contains `first`.
    let run_start = input[..first].iter().rposition(|&b| !is_c_space(b)).map_or(0, |p| p + 1);
    out.extend_from_slice(&input[..run_start]);
    let mut in_space = false;
    for &b in &input[run_start..] {
        if is_c_space(b) {
            if !in_space {
                out.push(b' ');
                in_space = true;
            }
        } else {
            out.push(b);
            in_space = false;
        }
    }
    Cow::Owned(out)
}

/// `t:removeWhitespace` (src/actions/transformations/remove_whitespace.cc): drops every
/// whitespace byte and also every 0xa0 and 0xc2 byte. The C code means to remove the UTF-8
/// NBSP `c2 a0`, but tests each byte on its own, so the lead byte 0xc2 of every character
/// U+0080..U+00BF (`©` is `c2 a9`) vanishes too, leaving its continuation byte.
pub fn remove_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    let drop = |b: u8| is_c_space(b) || b == 0xa0 || b == 0xc2;
    if !input.iter().any(|&b| drop(b)) {
        return Cow::Borrowed(input);
    }
    let mut out = input.to_vec();
    out.retain(|&b| !drop(b));
    Cow::Owned(out)
}

/// `t:trim` (src/actions/transformations/trim.cc): both ends.
pub fn trim(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(trim_slice(trim_right_slice(input)))
}

/// `t:trimLeft` (src/actions/transformations/trim_left.cc).
pub fn trim_left(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(trim_slice(input))
}

/// `t:trimRight` (src/actions/transformations/trim_right.cc).
pub fn trim_right(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(trim_right_slice(input))
}

fn trim_slice(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_c_space(b)).unwrap_or(s.len());
    &s[start..]
}

fn trim_right_slice(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| !is_c_space(b)).map_or(0, |p| p + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn compress_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a b", b"a b"),
            (b"a  b", b"a b"),
            (b"a\t\n\x0b\x0c\r b", b"a b"),
            (b"\ta", b" a"),
            (b"a \t", b"a "),
            (b"  ", b" "),
            (b"a\xa0\xa0b", b"a\xa0\xa0b"),
            (b"x y  z", b"x y z"),
        ];
        for (i, o) in cases {
            assert_eq!(&*compress_whitespace(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn remove_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b" a \tb\r\n", b"ab"),
            (b"a\xc2\xa0b", b"ab"),
            (b"\xc3\xa9\xc2", b"\xc3\xa9"),
            (b"a\x00b", b"a\x00b"),
        ];
        for (i, o) in cases {
            assert_eq!(&*remove_whitespace(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn trim_table() {
        type Row = (&'static [u8], &'static [u8], &'static [u8], &'static [u8]);
        let cases: &[Row] = &[
            // input, trim, trimLeft, trimRight
            (b"", b"", b"", b""),
            (b"  a b \t", b"a b", b"a b \t", b"  a b"),
            (b"\x0b\x0cx\r\n", b"x", b"x\r\n", b"\x0b\x0cx"),
            (b"   ", b"", b"", b""),
            (b"\xa0a\xa0", b"\xa0a\xa0", b"\xa0a\xa0", b"\xa0a\xa0"),
        ];
        for (i, t, l, r) in cases {
            assert_eq!(&*trim(i), *t);
            assert_eq!(&*trim_left(i), *l);
            assert_eq!(&*trim_right(i), *r);
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(compress_whitespace(b"a b c"), Cow::Borrowed(_)));
        assert!(matches!(remove_whitespace(b"abc"), Cow::Borrowed(_)));
    }
}
