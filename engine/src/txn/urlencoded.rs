//! `application/x-www-form-urlencoded` parsing, for the query string (ARGS_GET) and for
//! URLENCODED request bodies (ARGS_POST).
//!
//! Data flow: bytes -> [`split_fields`] (v3's `ssplit` on the argument separator) ->
//! [`decode_field`]: `name=value` split on the first `=`, both halves through
//! [`crate::txn::uri::urldecode_nonstrict_into`] into the caller's buffer. Semantics follow
//! `Transaction::extractArguments` (src/transaction.cc) and `utils::string::ssplit` /
//! `ssplit_pair` (src/utils/string.cc) of ModSecurity v3.0.9.

use super::Span;
use super::uri::urldecode_nonstrict_into;

/// Splits like `std::getline` in a loop (v3's `ssplit`): an empty input gives no field, a
/// trailing separator gives no empty last field, but `a&&b` gives an empty middle field.
pub fn split_fields(buf: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let trimmed = if buf.last() == Some(&sep) { &buf[..buf.len() - 1] } else { buf };
    let empty = buf.is_empty();
    trimmed.split(move |&c| c == sep).filter(move |_| !empty)
}

/// Decodes one field of a urlencoded buffer into `out`: its name and value, and whether
/// either held an invalid `%` escape (URLENCODED_ERROR).
///
/// Every field becomes an argument, even an empty one (`a=1&&b=2` yields an argument with
/// empty name and value), and a field without `=` is a name with an empty value.
pub fn decode_field(field: &[u8], out: &mut Vec<u8>) -> (Span, Span, bool) {
    let (k, v) = match memchr::memchr(b'=', field) {
        Some(i) => (&field[..i], &field[i + 1..]),
        None => (field, &field[field.len()..]),
    };
    let (name, i1) = urldecode_nonstrict_into(k, out);
    let (value, i2) = urldecode_nonstrict_into(v, out);
    (name, value, i1 | i2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(buf: &[u8], sep: u8) -> (Vec<(String, String)>, bool) {
        let mut out = Vec::new();
        let mut inv = false;
        let spans: Vec<(Span, Span)> = split_fields(buf, sep)
            .map(|f| {
                let (k, v, bad) = decode_field(f, &mut out);
                inv |= bad;
                (k, v)
            })
            .collect();
        let text = |s: Span| String::from_utf8_lossy(s.of(&out)).into_owned();
        (spans.into_iter().map(|(k, v)| (text(k), text(v))).collect(), inv)
    }

    #[test]
    fn table() {
        let s = |v: &[(&str, &str)]| {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>()
        };
        type Case = (&'static [u8], u8, Vec<(String, String)>, bool);
        let cases: &[Case] = &[
            (b"a=1&b=2", b'&', s(&[("a", "1"), ("b", "2")]), false),
            (b"", b'&', s(&[]), false),
            (b"a", b'&', s(&[("a", "")]), false),
            (b"a=", b'&', s(&[("a", "")]), false),
            (b"=v", b'&', s(&[("", "v")]), false),
            (b"a=1&", b'&', s(&[("a", "1")]), false),
            (b"a=1&&b", b'&', s(&[("a", "1"), ("", ""), ("b", "")]), false),
            (b"&", b'&', s(&[("", "")]), false),
            (b"a=1=2", b'&', s(&[("a", "1=2")]), false),
            (b"a+b=c+d%20e", b'&', s(&[("a b", "c d e")]), false),
            (b"a=%zz", b'&', s(&[("a", "%zz")]), true),
            (b"a%=1", b'&', s(&[("a%", "1")]), true),
            (b"a=1;b=2", b';', s(&[("a", "1"), ("b", "2")]), false),
            (b"a=1;b=2", b'&', s(&[("a", "1;b=2")]), false),
        ];
        for (input, sep, want, inv) in cases {
            assert_eq!(
                pairs(input, *sep),
                (want.clone(), *inv),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
