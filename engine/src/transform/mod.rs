//! ModSecurity v3 transformations (`t:NAME`), byte-exact with libmodsecurity3 3.0.9.
//!
//! Data flow: the evaluator (and the Lua runtime, and the benches) hand a target's value to
//! [`apply_chain`] with the rule's transformations; each step goes through [`apply`], which
//! dispatches to one function per transformation, grouped by family in the submodules
//! (`url`, `html`, `js`, `css`, `path`, `whitespace`, `comments`, `hash`, `base64`, `hex`,
//! `cmdline`, `utf8`, `escape`, `parity`, `case`, `nulls`).
//!
//! Every function returns `Cow::Borrowed(input)` when the value comes out unchanged: most values
//! in real traffic contain nothing to decode, so the fast path scans with `memchr` and never
//! allocates. When something changes, one output buffer is allocated and filled in one pass.
//! No transformation grows its input by more than a constant factor (hexEncode and urlEncode at
//! most 3x, utf8toUnicode at most 4x), so memory stays bounded by the input size.
//!
//! The reference is ModSecurity's `src/actions/transformations/*.cc` (tag v3.0.9) and its helpers
//! in `src/utils/`; each quirk we keep is documented where it is implemented, naming that file.
//! The C library runs with the "C" locale (nothing in libmodsecurity calls `setlocale`), so
//! `isspace`, `isalnum`, `tolower` and friends are plain ASCII here.

use std::borrow::Cow;

use crate::ir::Transformation;

mod base64;
mod case;
mod cmdline;
mod comments;
mod css;
mod escape;
pub(crate) mod hash;
mod hex;
mod html;
pub(crate) mod identity;
mod js;
mod nulls;
mod parity;
mod path;
mod url;
mod utf8;
mod whitespace;

pub use base64::{base64_decode, base64_decode_ext, base64_encode};
pub use case::{lowercase, uppercase};
pub use cmdline::cmd_line;
pub use comments::{remove_comments, remove_comments_char, replace_comments};
pub use css::css_decode;
pub use escape::escape_seq_decode;
pub use hash::{length, md5, sha1};
pub use hex::{hex_decode, hex_encode, sql_hex_decode};
pub use html::html_entity_decode;
pub use js::js_decode;
pub use nulls::{remove_nulls, replace_nulls};
pub use parity::{parity_even_7bit, parity_odd_7bit, parity_zero_7bit};
pub use path::{normalize_path, normalize_path_win};
pub use url::{url_decode, url_decode_uni, url_encode};
pub use utf8::utf8_to_unicode;
pub use whitespace::{compress_whitespace, remove_whitespace, trim, trim_left, trim_right};

/// Applies one transformation. Returns `Cow::Borrowed(input)` when the value is unchanged (cheap
/// fast path: most values contain nothing to decode), else the new bytes.
///
/// A borrowed result is always a sub-slice of `input`: the whole of it when unchanged, or a
/// part of it (`trim*`, and the empty slice when a strict decoder rejects the value).
pub fn apply(t: Transformation, input: &[u8]) -> Cow<'_, [u8]> {
    use Transformation as T;
    match t {
        T::None => Cow::Borrowed(input),
        T::Base64Decode => base64_decode(input),
        T::Base64DecodeExt => base64_decode_ext(input),
        T::Base64Encode => base64_encode(input),
        T::CmdLine => cmd_line(input),
        T::CompressWhitespace => compress_whitespace(input),
        T::CssDecode => css_decode(input),
        T::EscapeSeqDecode => escape_seq_decode(input),
        T::HexDecode => hex_decode(input),
        T::HexEncode => hex_encode(input),
        T::HtmlEntityDecode => html_entity_decode(input),
        T::JsDecode => js_decode(input),
        T::Length => length(input),
        T::Lowercase => lowercase(input),
        T::Md5 => md5(input),
        T::NormalizePath => normalize_path(input),
        T::NormalizePathWin => normalize_path_win(input),
        T::ParityEven7bit => parity_even_7bit(input),
        T::ParityOdd7bit => parity_odd_7bit(input),
        T::ParityZero7bit => parity_zero_7bit(input),
        T::RemoveComments => remove_comments(input),
        T::RemoveCommentsChar => remove_comments_char(input),
        T::RemoveNulls => remove_nulls(input),
        T::RemoveWhitespace => remove_whitespace(input),
        T::ReplaceComments => replace_comments(input),
        T::ReplaceNulls => replace_nulls(input),
        T::Sha1 => sha1(input),
        T::SqlHexDecode => sql_hex_decode(input),
        T::Trim => trim(input),
        T::TrimLeft => trim_left(input),
        T::TrimRight => trim_right(input),
        T::Uppercase => uppercase(input),
        T::UrlDecode => url_decode(input),
        T::UrlDecodeUni => url_decode_uni(input),
        T::UrlEncode => url_encode(input),
        T::Utf8ToUnicode => utf8_to_unicode(input),
    }
}

/// Applies a chain in order (the caller has already dropped everything before the last `t:none`;
/// `Transformation::None` in the chain is the identity).
pub fn apply_chain<'a>(ts: &[Transformation], input: &'a [u8]) -> Cow<'a, [u8]> {
    continue_chain(ts, Cow::Borrowed(input))
}

/// [`apply_chain`] from an intermediate value (borrowed or owned).
pub fn continue_chain<'a>(ts: &[Transformation], mut cur: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
    for &t in ts {
        cur = match cur {
            Cow::Borrowed(b) => apply(t, b),
            Cow::Owned(v) => Cow::Owned(apply_owned(t, v)),
        };
    }
    cur
}

/// One step on an owned intermediate value. A borrowed result is a sub-slice of `v` (the value
/// unchanged, trimmed, or emptied by a failed decode), so `v` is cut down in place instead of
/// copied.
fn apply_owned(t: Transformation, mut v: Vec<u8>) -> Vec<u8> {
    let range = match apply(t, &v) {
        Cow::Owned(n) => return n,
        Cow::Borrowed(b) => {
            let base = v.as_ptr() as usize;
            let start = (b.as_ptr() as usize).wrapping_sub(base);
            if start <= v.len() && b.len() <= v.len() - start {
                start..start + b.len()
            } else {
                // Not a sub-slice (no transformation does this today): copy it.
                return b.to_vec();
            }
        }
    };
    v.truncate(range.end);
    v.drain(..range.start);
    v
}

// ---- helpers shared by the families, mirroring src/utils/string.{h,cc} ----

/// `VALID_HEX` from src/utils/string.h.
#[inline]
pub(crate) fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// `ISODIGIT` from src/utils/string.h.
#[inline]
pub(crate) fn is_odigit(b: u8) -> bool {
    (b'0'..=b'7').contains(&b)
}

/// One hex digit as `xsingle2c` in src/utils/string.cc computes it: no validation, and the
/// arithmetic wraps in `unsigned char`. Callers that validated the digit get the usual value;
/// hexDecode feeds it arbitrary bytes and relies on the wrapping.
#[inline]
pub(crate) fn xdigit(b: u8) -> u8 {
    if b >= b'A' { (b & 0xdf).wrapping_sub(b'A').wrapping_add(10) } else { b.wrapping_sub(b'0') }
}

/// `x2c` from src/utils/string.cc: two hex digits to a byte, wrapping like the C code.
#[inline]
pub(crate) fn x2c(hi: u8, lo: u8) -> u8 {
    xdigit(hi).wrapping_mul(16).wrapping_add(xdigit(lo))
}

/// C-locale `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
#[inline]
pub(crate) fn is_c_space(b: u8) -> bool {
    b == b' ' || (0x09..=0x0d).contains(&b)
}

/// Position of the first two-byte sequence `a b` in `hay`.
///
/// `memmem::find` builds a searcher on every call, which costs more than the whole scan on the
/// short values a WAF sees (~150 ns vs ~20 ns for 64 bytes); a memchr on the first byte is
/// enough for a two-byte needle.
#[inline]
pub(crate) fn find_pair(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    memchr::memchr_iter(a, hay).find(|&i| hay.get(i + 1) == Some(&b))
}

/// Lower-case hex digits, as `c2x` in src/utils/string.cc and hexEncode's `std::hex` print.
pub(crate) const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// `strtol` on a run of valid digits, reduced to the `unsigned char` the callers store: a value
/// above `LONG_MAX` saturates to `LONG_MAX`, whose low byte is 0xff (htmlEntityDecode relies on
/// this for `&#99999999999999999999;`).
pub(crate) fn strtol_low_byte(digits: &[u8], radix: u32) -> u8 {
    let mut v: u64 = 0;
    for &d in digits {
        let dv = match (d as char).to_digit(radix) {
            Some(x) => u64::from(x),
            None => break,
        };
        v = match v.checked_mul(u64::from(radix)).and_then(|x| x.checked_add(dv)) {
            Some(n) if n <= i64::MAX as u64 => n,
            _ => return 0xff,
        };
    }
    (v & 0xff) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(x2c(b'4', b'1'), 0x41);
        assert_eq!(x2c(b'f', b'F'), 0xff);
        assert_eq!(x2c(b'a', b'0'), 0xa0);
        // Wrapping on non-hex input, as the C helper does ('z' & 0xdf = 'Z' -> 35).
        assert_eq!(x2c(b'z', b'z'), (35u8.wrapping_mul(16)).wrapping_add(35));
        assert_eq!(strtol_low_byte(b"65", 10), 65);
        assert_eq!(strtol_low_byte(b"321", 10), 65);
        assert_eq!(strtol_low_byte(b"99999999999999999999", 10), 0xff);
        assert_eq!(strtol_low_byte(b"7fffffffffffffff", 16), 0xff);
        assert_eq!(strtol_low_byte(b"8000000000000041", 16), 0xff);
        assert_eq!(strtol_low_byte(b"0000000000000000000041", 16), 0x41);
    }

    #[test]
    fn chain_applies_in_order_and_borrows_when_unchanged() {
        use Transformation as T;
        let out = apply_chain(&[T::UrlDecodeUni, T::Lowercase], b"%41B");
        assert_eq!(&*out, b"ab");
        let out = apply_chain(&[T::Lowercase, T::UrlDecodeUni], b"%41B");
        assert_eq!(&*out, b"Ab");
        let out = apply_chain(&[T::None, T::Lowercase, T::UrlDecode], b"plain");
        assert!(matches!(out, Cow::Borrowed(_)));
        let out = apply_chain(&[], b"x");
        assert_eq!(&*out, b"x");
        // Borrowed sub-slices of an owned intermediate (trim, failed base64) are honoured.
        let out = apply_chain(&[T::UrlDecode, T::Trim], b"+%41+");
        assert_eq!(&*out, b"A");
        let out = apply_chain(&[T::CmdLine, T::Base64Decode], b".A");
        assert_eq!(&*out, b"");
    }

    #[test]
    fn every_transformation_dispatches() {
        for &t in Transformation::ALL {
            // Must not panic, and `none` is the identity.
            let out = apply(t, b"A%41 &amp; \\x41/./b/../c \x00");
            if t == Transformation::None {
                assert_eq!(&*out, b"A%41 &amp; \\x41/./b/../c \x00");
            }
        }
    }
}
