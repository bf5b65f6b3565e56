//! Validation operators: `@validateByteRange`, `@validateUrlEncoding`,
//! `@validateUtf8Encoding`. Each "matches" when the input is invalid, as in libmodsecurity3
//! 3.0.9 (src/operators/validate_*.cc).

/// `@validateByteRange`: a 256-bit table of allowed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteRanges {
    allowed: [bool; 256],
    /// The refused bytes when there are one to three of them (CRS's 920270 at paranoia 1,
    /// `1-255`, refuses NUL alone): looked for with `memchr`, many bytes per step, instead
    /// of one table lookup per byte. Empty otherwise.
    few: Vec<u8>,
}

impl ByteRanges {
    /// From inclusive ranges (the IR has already parsed `1-255,9`).
    pub fn new(ranges: &[(u8, u8)]) -> ByteRanges {
        let mut allowed = [false; 256];
        for &(lo, hi) in ranges {
            // v3 refuses a reversed range and keeps going (init ignores the error); so do we.
            for b in lo..=hi {
                allowed[usize::from(b)] = true;
            }
        }
        let refused: Vec<u8> = (0..=255u8).filter(|&b| !allowed[usize::from(b)]).collect();
        let few = if refused.len() <= 3 { refused } else { Vec::new() };
        ByteRanges { allowed, few }
    }

    /// True when some byte lies outside every range (the empty input is valid).
    pub fn matches(&self, input: &[u8]) -> bool {
        match *self.few.as_slice() {
            [a] => memchr::memchr(a, input).is_some(),
            [a, b] => memchr::memchr2(a, b, input).is_some(),
            [a, b, c] => memchr::memchr3(a, b, c, input).is_some(),
            // No byte refused, or more than three.
            _ => input.iter().any(|&b| !self.allowed[usize::from(b)]),
        }
    }
}

/// `@validateUrlEncoding`: true when a `%` is not followed by two hex digits (too few bytes
/// left, or non-hex ones). An empty input is not checked (false). Only `%` sequences are
/// looked at: any other byte, NUL and 0xFF included, is fine.
pub fn invalid_url_encoding(input: &[u8]) -> bool {
    if input.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            if i + 2 >= input.len() {
                return true;
            }
            if !(input[i + 1].is_ascii_hexdigit() && input[i + 2].is_ascii_hexdigit()) {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

/// `@validateUtf8Encoding`: true on the first byte sequence that is not UTF-8 by v3's
/// rules (RFC 3629): missing continuation bytes, bad continuation, lead bytes 0x80-0xBF and
/// 0xF8-0xFF, leads 0xF5-0xF7, surrogates U+D800-DFFF, overlong forms. Note what v3 does not
/// check: code points above U+10FFFF from lead 0xF4 (e.g. F4 90 80 80) pass.
pub fn invalid_utf8(input: &[u8]) -> bool {
    let mut i = 0;
    while i < input.len() {
        match utf8_char_len(&input[i..]) {
            Some(n) => i += n,
            None => return true,
        }
    }
    false
}

fn utf8_char_len(s: &[u8]) -> Option<usize> {
    let c = *s.first()?;
    let cont = |k: usize| s.get(k).is_some_and(|b| b & 0xC0 == 0x80);
    let (len, d) = if c & 0x80 == 0 {
        return Some(1);
    } else if c & 0xE0 == 0xC0 {
        if s.len() < 2 || !cont(1) {
            return None;
        }
        (2, (u32::from(c & 0x1F) << 6) | u32::from(s[1] & 0x3F))
    } else if c & 0xF0 == 0xE0 {
        if s.len() < 3 || !cont(1) || !cont(2) {
            return None;
        }
        (3, (u32::from(c & 0x0F) << 12) | (u32::from(s[1] & 0x3F) << 6) | u32::from(s[2] & 0x3F))
    } else if c & 0xF8 == 0xF0 {
        if c >= 0xF5 || s.len() < 4 || !cont(1) || !cont(2) || !cont(3) {
            return None;
        }
        (
            4,
            (u32::from(c & 0x07) << 18)
                | (u32::from(s[1] & 0x3F) << 12)
                | (u32::from(s[2] & 0x3F) << 6)
                | u32::from(s[3] & 0x3F),
        )
    } else {
        return None;
    };
    let overlong = match len {
        2 => d < 0x80,
        3 => d < 0x800,
        _ => d < 0x10000,
    };
    if (0xD800..=0xDFFF).contains(&d) || overlong { None } else { Some(len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_range_table() {
        let r = ByteRanges::new(&[(32, 126), (9, 10)]);
        let cases: &[(&[u8], bool)] = &[
            (b"", false),
            (b"hello world", false),
            (b"tab\there", false),
            (b"nul\0", true),
            (b"\x7f", true),
            (b"\xff", true),
            (b"\r", true),
        ];
        for (input, want) in cases {
            assert_eq!(r.matches(input), *want, "{input:?}");
        }
        assert!(!ByteRanges::new(&[(0, 255)]).matches(b"\0\xff"));
        assert!(ByteRanges::new(&[]).matches(b"a"));
        let nul = ByteRanges::new(&[(1, 255)]);
        assert_eq!(nul.few, [0]);
        assert!(nul.matches(b"abc\0def") && !nul.matches(b"abc\xffdef"));
    }

    proptest::proptest! {
        /// Whatever the ranges (so none, one, two, three or many refused bytes), the answer
        /// is the table's, byte by byte.
        #[test]
        fn byte_ranges_answer_as_the_table(
            ranges in proptest::collection::vec((proptest::num::u8::ANY, proptest::num::u8::ANY), 0..4),
            cover in proptest::option::of(proptest::sample::select(vec![0u8, 1, 2, 3, 254, 255])),
            input in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            // With `cover`, one range leaves out at most three bytes at an end of 0..=255
            // (the memchr paths); without, a few random ranges usually refuse many (the table).
            let mut ranges = ranges;
            match cover {
                Some(c) if c < 4 => ranges.push((c, 255)),
                Some(c) => ranges.push((0, c)),
                None => {}
            }
            let r = ByteRanges::new(&ranges);
            let want = input.iter().any(|&b| !r.allowed[usize::from(b)]);
            proptest::prop_assert_eq!(r.matches(&input), want);
        }
    }

    #[test]
    fn url_encoding() {
        let cases: &[(&[u8], bool)] = &[
            (b"", false),
            (b"plain", false),
            (b"a%20b", false),
            (b"%41x", false),
            (b"%41", false),
            (b"%4", true),
            (b"a%2", true),
            (b"%", true),
            (b"%zz1", true),
            (b"%4g1", true),
            (b"\xff%41\x00", false),
        ];
        for (input, want) in cases {
            assert_eq!(invalid_url_encoding(input), *want, "{input:?}");
        }
    }

    #[test]
    fn utf8_rules() {
        let cases: &[(&[u8], bool)] = &[
            (b"", false),
            (b"ascii\0", false),
            ("é€😀".as_bytes(), false),
            (b"\xc3", true),
            (b"\xc3\x28", true),
            (b"\x80", true),
            (b"\xc0\xaf", true),
            (b"\xe0\x80\xaf", true),
            (b"\xf0\x80\x80\xaf", true),
            (b"\xed\xa0\x80", true),
            (b"\xf5\x80\x80\x80", true),
            (b"\xf8\x88\x80\x80\x80", true),
            (b"\xff", true),
            // Above U+10FFFF but accepted by v3.
            (b"\xf4\x90\x80\x80", false),
        ];
        for (input, want) in cases {
            assert_eq!(invalid_utf8(input), *want, "{input:?}");
        }
    }
}
