//! Hex transformations: `t:hexEncode`, `t:hexDecode`, `t:sqlHexDecode`
//! (src/actions/transformations/hex_encode.cc, hex_decode.cc, sql_hex_decode.cc).

use std::borrow::Cow;

use memchr::memchr;

use super::{HEX_LOWER, is_hex, x2c};

/// Two lower-case hex digits per byte (the `std::hex` stream print in hex_encode.cc).
pub fn hex_encode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_empty() {
        return Cow::Borrowed(input);
    }
    let mut out = vec![0u8; input.len() * 2];
    for (pair, &b) in out.chunks_exact_mut(2).zip(input) {
        pair[0] = HEX_LOWER[usize::from(b >> 4)];
        pair[1] = HEX_LOWER[usize::from(b & 0xf)];
    }
    Cow::Owned(out)
}

/// `t:hexDecode`: every pair of bytes becomes `x2c(pair)`.
///
/// Quirks kept from hex_decode.cc: the digits are not validated (non-hex bytes go through
/// `x2c`'s wrapping arithmetic, so `zz` gives a byte rather than an error) and an odd last
/// byte is dropped.
pub fn hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_empty() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.chunks_exact(2).map(|p| x2c(p[0], p[1])).collect())
}

/// `t:sqlHexDecode`: decodes MySQL-style `0xHHHH...` literals in place.
///
/// Quirks kept from sql_hex_decode.cc (`SqlHexDecode::inplace`), whose loop counter runs one
/// step ahead of the read position:
/// - The last byte of the value is never looked at nor copied (`abc` gives `ab`), unless a hex
///   literal reaches the end (`0x41` gives `A`).
/// - `0x`/`0X` followed by fewer than two hex digits is copied as is; a literal with an odd
///   number of digits decodes the pairs and keeps the last digit as a plain byte.
/// - Processing stops at the first NUL byte, and the result is cut at its first NUL (the
///   function returns `strlen` of its buffer), so `0x00` truncates the value there.
pub fn sql_hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let len = input.len();
    if len == 0 {
        return Cow::Borrowed(input);
    }
    // The C code reads the NUL terminator that follows the std::string data.
    let at = |i: usize| input.get(i).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    let mut data = 0usize;
    // Invariant of the C loop: `count == data + 1` when the loop condition is tested, so
    // `++count < len` is `data + 1 < len`.
    while data + 1 < len && at(data) != 0 {
        if at(data) == b'0'
            && at(data + 1).eq_ignore_ascii_case(&b'x')
            && is_hex(at(data + 2))
            && is_hex(at(data + 3))
        {
            data += 2;
            while is_hex(at(data)) && is_hex(at(data + 1)) {
                out.push(x2c(at(data), at(data + 1)));
                data += 2;
            }
        }
        // The for-loop step copies the current byte (possibly the terminator).
        out.push(at(data));
        data += 1;
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
    fn hex_table() {
        assert_eq!(&*hex_encode(b""), b"");
        assert_eq!(&*hex_encode(b"A\x00\xff"), b"4100ff");
        assert_eq!(&*hex_decode(b"414243"), b"ABC");
        assert_eq!(&*hex_decode(b"41424"), b"AB");
        assert_eq!(&*hex_decode(b"4"), b"");
        assert_eq!(&*hex_decode(b"6a6B"), b"jk");
        assert_eq!(&*hex_decode(b"zz"), &[x2c(b'z', b'z')][..]);
    }

    #[test]
    fn sql_hex_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a", b""),
            (b"abc", b"ab"),
            (b"0x41", b"A"),
            (b"0X41", b"A"),
            (b"ab0x4142c", b"abABc"),
            (b"0x", b"0"),
            (b"0x4", b"0x"),
            (b"0x414", b"A4"),
            (b"0x41 ", b"A "),
            (b"0x41  ", b"A "),
            (b"x0x41y", b"xAy"),
            (b"00x41", b"0A"),
            (b"0x0041", b""),
            (b"a\x00bc", b"a"),
            (b"0xzz", b"0xz"),
        ];
        for (i, o) in cases {
            assert_eq!(&*sql_hex_decode(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }
}
