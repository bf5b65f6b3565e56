//! The request line: REQUEST_LINE, REQUEST_URI(_RAW), REQUEST_FILENAME, REQUEST_BASENAME,
//! PATH_INFO, QUERY_STRING, and the two URL decoders ModSecurity v3 uses on them.
//!
//! Data flow: `Request::uri` (raw bytes) -> [`parse_request_line`] -> [`UriParts`], whose
//! query string then goes through [`crate::txn::urlencoded`] to become ARGS_GET.
//! Semantics follow `Transaction::processURI` in ModSecurity v3.0.9 (src/transaction.cc) and
//! `utils::uri_decode` / `urldecode_nonstrict_inplace` (src/utils/decode.cc).

use super::Span;
use crate::transform::{is_hex, x2c};

/// The variables derived from the request line: spans of the buffer
/// [`parse_request_line`] wrote them to, and the raw query string as a slice of the URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriParts<'u> {
    pub request_line: Span,
    pub protocol: Span,
    /// Percent-decoded, fragment removed, `scheme://host` stripped (REQUEST_URI).
    pub uri: Span,
    /// As given, fragment included (REQUEST_URI_RAW).
    pub uri_raw: Span,
    /// Decoded path (REQUEST_FILENAME and PATH_INFO).
    pub filename: Span,
    /// After the last `/` or `\` of the decoded path; `None` when nothing follows it.
    pub basename: Option<Span>,
    /// Raw query string, `None` without `?`.
    pub query: Option<&'u [u8]>,
}

/// The bytes before the first NUL: v3 receives method and URI as C strings.
pub fn c_str(b: &[u8]) -> &[u8] {
    match memchr::memchr(0, b) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// The byte a `%XX` escape at `src[i]` stands for, when two hex digits follow the `%`.
fn escape_at(src: &[u8], i: usize) -> Option<u8> {
    match src.get(i + 1..i + 3) {
        Some(&[hi, lo]) if is_hex(hi) && is_hex(lo) => Some(x2c(hi, lo)),
        _ => None,
    }
}

/// v3's two URL decoders in one loop, appending to `out`: `%XX` with two hex digits becomes
/// one byte, a broken escape keeps its `%` (and is flagged), `+` becomes a space when
/// `plus_is_space`; runs without either are copied whole.
fn decode_into(src: &[u8], plus_is_space: bool, out: &mut Vec<u8>) -> (Span, bool) {
    let start = out.len();
    out.reserve(src.len());
    let mut invalid = false;
    let mut i = 0;
    loop {
        let rest = &src[i..];
        let next = if plus_is_space {
            memchr::memchr2(b'%', b'+', rest)
        } else {
            memchr::memchr(b'%', rest)
        };
        let run = next.map_or(src.len(), |p| i + p);
        out.extend_from_slice(&src[i..run]);
        i = run;
        match src.get(i) {
            None => break,
            Some(b'+') => {
                out.push(b' ');
                i += 1;
            }
            Some(_) => match escape_at(src, i) {
                Some(c) => {
                    out.push(c);
                    i += 3;
                }
                None => {
                    invalid = true;
                    out.push(b'%');
                    i += 1;
                }
            },
        }
    }
    (Span::new(start, out.len()), invalid)
}

/// `utils::uri_decode`, appended to `out`: `%XX` with two hex digits becomes one byte,
/// everything else (including `+` and broken escapes) is copied.
pub fn uri_decode_into(src: &[u8], out: &mut Vec<u8>) -> Span {
    decode_into(src, false, out).0
}

/// `urldecode_nonstrict_inplace`, appended to `out`: like [`uri_decode_into`] but `+` becomes
/// a space; the flag says whether an invalid escape (a `%` not followed by two hex digits)
/// was seen, which sets URLENCODED_ERROR.
pub fn urldecode_nonstrict_into(src: &[u8], out: &mut Vec<u8>) -> (Span, bool) {
    decode_into(src, true, out)
}

/// Splits the request line the way `processURI` does, appending the variables it derives to
/// `out`.
///
/// `version` is the corpus spelling (`HTTP/1.1`); v3 is handed `1.1` and prefixes `HTTP/`
/// itself, so an HTTP/0.9 request without version shows as `HTTP/`.
pub fn parse_request_line<'u>(
    method: &[u8],
    raw_uri: &'u [u8],
    version: &str,
    out: &mut Vec<u8>,
) -> UriParts<'u> {
    let method = c_str(method);
    let uri = c_str(raw_uri);
    let ver = version.strip_prefix("HTTP/").unwrap_or(version);
    out.reserve(method.len() + 3 * uri.len() + 2 * ver.len() + 16);

    // REQUEST_LINE ends with the protocol, which is its own span.
    let line_start = out.len();
    out.extend_from_slice(method);
    out.push(b' ');
    let uri_raw = Span::new(out.len(), out.len() + uri.len());
    out.extend_from_slice(uri);
    out.push(b' ');
    let protocol_start = out.len();
    out.extend_from_slice(b"HTTP/");
    out.extend_from_slice(ver.as_bytes());
    let request_line = Span::new(line_start, out.len());
    let protocol = Span::new(protocol_start, out.len());

    // The fragment only stays in REQUEST_URI_RAW and REQUEST_LINE.
    let no_frag = match memchr::memchr(b'#', uri) {
        Some(i) => &uri[..i],
        None => uri,
    };
    let query = memchr::memchr(b'?', no_frag).map(|i| &no_frag[i + 1..]);
    let decoded = uri_decode_into(no_frag, out);
    let d = decoded.of(out);
    // v3 looks for `?` again in the *decoded* URI, so `%3F` in the path cuts
    // REQUEST_FILENAME short while QUERY_STRING (split on the raw `?`) is unaffected.
    let filename = match memchr::memchr(b'?', d) {
        Some(i) => Span::new(decoded.start, decoded.start + i),
        None => decoded,
    };
    let f = filename.of(out);
    let basename = match f.iter().rposition(|&c| c == b'/' || c == b'\\') {
        Some(i) if f.len() > i + 1 => Some(Span::new(filename.start + i + 1, filename.end)),
        _ => None,
    };
    // An absolute URI (`http://host/path`) keeps only its path in REQUEST_URI; v3 checks for
    // a `:` followed directly by `//` and a later `/`.
    let mut parsed = decoded;
    if d.first().is_some_and(|&c| c != b'/') {
        if let Some(colon) = memchr::memchr(b':', d) {
            if d[colon + 1..].starts_with(b"//") {
                let netloc = colon + 3;
                if let Some(p) = memchr::memchr(b'/', &d[netloc..]) {
                    parsed = Span::new(decoded.start + netloc + p, decoded.end);
                }
            }
        }
    }
    UriParts { request_line, protocol, uri: parsed, uri_raw, filename, basename, query }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_table() {
        // (input, uri_decode, urldecode_nonstrict, invalid)
        type Case = (&'static [u8], &'static [u8], &'static [u8], bool);
        let cases: &[Case] = &[
            (b"a%20b", b"a b", b"a b", false),
            (b"a+b", b"a+b", b"a b", false),
            (b"%", b"%", b"%", true),
            (b"%4", b"%4", b"%4", true),
            (b"%41", b"A", b"A", false),
            (b"%zz%41", b"%zzA", b"%zzA", true),
            (b"%%41", b"%A", b"%A", true),
            (b"", b"", b"", false),
            (b"%00x", b"\0x", b"\0x", false),
        ];
        for (input, ud, nd, inv) in cases {
            // Appended after what the buffer already holds.
            let mut out = b"pre".to_vec();
            let s = uri_decode_into(input, &mut out);
            assert_eq!(s.of(&out), *ud, "uri_decode {input:?}");
            assert_eq!(&out[..3], b"pre");
            let (s, bad) = urldecode_nonstrict_into(input, &mut out);
            assert_eq!((s.of(&out), bad), (*nd, *inv), "nonstrict {input:?}");
        }
    }

    /// The parts as byte strings, parsed after something already in the buffer.
    struct Parts {
        request_line: Vec<u8>,
        protocol: Vec<u8>,
        uri: Vec<u8>,
        uri_raw: Vec<u8>,
        filename: Vec<u8>,
        basename: Option<Vec<u8>>,
        query: Option<Vec<u8>>,
    }

    fn parse(method: &[u8], uri: &[u8], version: &str) -> Parts {
        let mut out = b"earlier".to_vec();
        let p = parse_request_line(method, uri, version, &mut out);
        assert_eq!(&out[..7], b"earlier");
        let b = |s: Span| s.of(&out).to_vec();
        Parts {
            request_line: b(p.request_line),
            protocol: b(p.protocol),
            uri: b(p.uri),
            uri_raw: b(p.uri_raw),
            filename: b(p.filename),
            basename: p.basename.map(b),
            query: p.query.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn request_line_table() {
        let p = parse(b"GET", b"/a%20b/c.php?x=%41#frag", "HTTP/1.1");
        assert_eq!(p.request_line, b"GET /a%20b/c.php?x=%41#frag HTTP/1.1");
        assert_eq!(p.protocol, b"HTTP/1.1");
        assert_eq!(p.uri, b"/a b/c.php?x=A");
        assert_eq!(p.uri_raw, b"/a%20b/c.php?x=%41#frag");
        assert_eq!(p.filename, b"/a b/c.php");
        assert_eq!(p.basename.as_deref(), Some(&b"c.php"[..]));
        assert_eq!(p.query.as_deref(), Some(&b"x=%41"[..]));

        // %3F in the path ends REQUEST_FILENAME (decoded `?`), not QUERY_STRING.
        let p = parse(b"GET", b"/a%3Fb", "HTTP/1.0");
        assert_eq!(p.filename, b"/a");
        assert_eq!(p.query, None);
        assert_eq!(p.basename.as_deref(), Some(&b"a"[..]));

        // Absolute URI: REQUEST_URI keeps the path only.
        let p = parse(b"GET", b"http://h.example:80/p?q=1", "HTTP/1.1");
        assert_eq!(p.uri, b"/p?q=1");
        assert_eq!(p.filename, b"http://h.example:80/p");

        // Trailing slash: no basename; backslash separates too.
        assert_eq!(parse(b"GET", b"/dir/", "HTTP/1.1").basename, None);
        assert_eq!(
            parse(b"GET", b"/a\\b.asp", "HTTP/1.1").basename.as_deref(),
            Some(&b"b.asp"[..])
        );
        // HTTP/0.9: no version.
        let p = parse(b"GET", b"/", "");
        assert_eq!(p.request_line, b"GET / HTTP/");
        assert_eq!(p.protocol, b"HTTP/");
        // NUL truncates, as v3 takes a C string.
        let p = parse(b"GET", b"/a\0b?x=1", "HTTP/1.1");
        assert_eq!(p.uri_raw, b"/a");
        assert_eq!(p.query, None);
    }
}
