//! `Cookie` header parsing into REQUEST_COOKIES / REQUEST_COOKIES_NAMES.
//!
//! Data flow: each `Cookie` header value -> split on `;` -> `name=value` on the first `=`.
//! ModSecurity v3.0.9 (`Transaction::addRequestHeader`, src/transaction.cc) has a single
//! cookie parser: `SecCookieFormat` is accepted but ignored, and there is no v2-style
//! `$Version` handling or unquoting: `$Version=1` is an ordinary cookie and quotes stay in
//! the value.

use super::urlencoded::split_fields;
// v3 uses C `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
use crate::transform::is_c_space;

/// Parses one `Cookie` header value, handing each (name, value) pair to `each` in order.
pub fn parse_cookies<'v>(value: &'v [u8], mut each: impl FnMut(&'v [u8], &'v [u8])) {
    let mut fields = split_fields(value, b';').peekable();
    while let Some(mut f) = fields.next() {
        if fields.peek().is_none() {
            // Optional white space after the last cookie-pair is dropped; nothing else is
            // trimmed on the right, so `a=1 ; b=2` keeps the space in `1 `.
            while let Some((&c, rest)) = f.split_last() {
                if !is_c_space(c) {
                    break;
                }
                f = rest;
            }
        }
        if f.is_empty() {
            continue;
        }
        let (mut k, v) = match memchr::memchr(b'=', f) {
            Some(i) => (&f[..i], &f[i + 1..]),
            None => (f, &f[f.len()..]),
        };
        // Left-trim the name only (the v2 way, kept by v3).
        while let Some((&c, rest)) = k.split_first() {
            if !is_c_space(c) {
                break;
            }
            k = rest;
        }
        if k.is_empty() {
            continue;
        }
        each(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        type Want = &'static [(&'static str, &'static str)];
        let cases: &[(&str, Want)] = &[
            ("a=1; b=2", &[("a", "1"), ("b", "2")]),
            ("a=1;b=2  ", &[("a", "1"), ("b", "2")]),
            ("a=1 ; b=2", &[("a", "1 "), ("b", "2")]),
            (";;foo=bar", &[("foo", "bar")]),
            ("  =bar; x", &[("x", "")]),
            ("foo=bar=baz", &[("foo", "bar=baz")]),
            ("$Version=1; a=\"q\"", &[("$Version", "1"), ("a", "\"q\"")]),
            ("a =1", &[("a ", "1")]),
            ("", &[]),
            ("   ", &[]),
        ];
        for (input, want) in cases {
            let mut got = Vec::new();
            parse_cookies(input.as_bytes(), |k, v| got.push((k.to_vec(), v.to_vec())));
            let want: Vec<(Vec<u8>, Vec<u8>)> =
                want.iter().map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec())).collect();
            assert_eq!(got, want, "{input:?}");
        }
    }
}
