//! `t:parityEven7bit`, `t:parityOdd7bit`, `t:parityZero7bit`
//! (src/actions/transformations/parity_*_7bit.cc).
//!
//! Quirk kept: the even/odd variants compute the parity of the whole byte, bit 7 included
//! (`x ^= x >> 4; x &= 0xf; 0x6996 >> x`), then set or clear bit 7 from it. So a byte that
//! already has bit 7 set is judged with it: 0x81 has two bits set and comes out as 0x01 under
//! even parity.

use std::borrow::Cow;

/// Sets bit 7 when the byte has an odd number of set bits, clears it otherwise.
pub fn parity_even_7bit(input: &[u8]) -> Cow<'_, [u8]> {
    map_bytes(input, |b| if b.count_ones() % 2 == 1 { b | 0x80 } else { b & 0x7f })
}

/// Clears bit 7 when the byte has an odd number of set bits, sets it otherwise.
pub fn parity_odd_7bit(input: &[u8]) -> Cow<'_, [u8]> {
    map_bytes(input, |b| if b.count_ones() % 2 == 1 { b & 0x7f } else { b | 0x80 })
}

/// Clears bit 7.
pub fn parity_zero_7bit(input: &[u8]) -> Cow<'_, [u8]> {
    map_bytes(input, |b| b & 0x7f)
}

fn map_bytes(input: &[u8], f: impl Fn(u8) -> u8) -> Cow<'_, [u8]> {
    let Some(first) = input.iter().position(|&b| f(b) != b) else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    out.extend(input[first..].iter().map(|&b| f(b)));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn table() {
        // 'A' 0x41 (2 bits), 'C' 0x43 (3 bits), 0x81 (2 bits), 0xff (8 bits), 0x80 (1 bit)
        let i = b"AC\x81\xff\x80";
        assert_eq!(&*parity_even_7bit(i), b"A\xc3\x01\x7f\x80");
        assert_eq!(&*parity_odd_7bit(i), b"\xc1C\x81\xff\x00");
        assert_eq!(&*parity_zero_7bit(i), b"AC\x01\x7f\x00");
        assert!(matches!(parity_zero_7bit(b"abc"), Cow::Borrowed(_)));
    }
}
