//! The request line: REQUEST_LINE, REQUEST_URI(_RAW), REQUEST_FILENAME, REQUEST_BASENAME,
//! PATH_INFO, QUERY_STRING, and the two URL decoders ModSecurity v3 uses on them.
//!
//! Data flow: `Request::uri` (raw bytes) -> [`parse_request_line`] -> [`UriParts`], whose
//! query string then goes through [`crate::txn::urlencoded`] to become ARGS_GET.
//! Semantics follow `Transaction::processURI` in ModSecurity v3.0.9 (src/transaction.cc) and
//! `utils::uri_decode` / `urldecode_nonstrict_inplace` (src/utils/decode.cc).

/// The variables derived from the request line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UriParts {
    pub request_line: Vec<u8>,
    pub protocol: Vec<u8>,
    /// Percent-decoded, fragment removed, `scheme://host` stripped (REQUEST_URI).
    pub uri: Vec<u8>,
    /// As given, fragment included (REQUEST_URI_RAW).
    pub uri_raw: Vec<u8>,
    /// Decoded path (REQUEST_FILENAME and PATH_INFO).
    pub filename: Vec<u8>,
    /// After the last `/` or `\` of the decoded path; `None` when nothing follows it.
    pub basename: Option<Vec<u8>>,
    /// Raw query string, `None` without `?`.
    pub query: Option<Vec<u8>>,
}

/// The bytes before the first NUL: v3 receives method and URI as C strings.
pub fn c_str(b: &[u8]) -> &[u8] {
    match memchr::memchr(0, b) {
        Some(i) => &b[..i],
        None => b,
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `utils::uri_decode`: `%XX` with two hex digits becomes one byte, everything else (including
/// `+` and broken escapes) is copied.
pub fn uri_decode(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'%' && i + 2 < src.len() {
            if let (Some(a), Some(b)) = (hex_val(src[i + 1]), hex_val(src[i + 2])) {
                out.push((a << 4) | b);
                i += 3;
                continue;
            }
        }
        out.push(src[i]);
        i += 1;
    }
    out
}

/// `urldecode_nonstrict_inplace`: like [`uri_decode`] but `+` becomes a space; returns whether
/// an invalid escape (a `%` not followed by two hex digits) was seen, which sets
/// URLENCODED_ERROR.
pub fn urldecode_nonstrict(src: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(src.len());
    let mut invalid = false;
    let mut i = 0;
    while i < src.len() {
        match src[i] {
            b'%' => {
                let pair = src
                    .get(i + 1)
                    .copied()
                    .and_then(hex_val)
                    .zip(src.get(i + 2).copied().and_then(hex_val));
                match pair {
                    Some((a, b)) => {
                        out.push((a << 4) | b);
                        i += 3;
                    }
                    None => {
                        invalid = true;
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, invalid)
}

/// Splits the request line the way `processURI` does.
///
/// `version` is the corpus spelling (`HTTP/1.1`); v3 is handed `1.1` and prefixes `HTTP/`
/// itself, so an HTTP/0.9 request without version shows as `HTTP/`.
pub fn parse_request_line(method: &[u8], raw_uri: &[u8], version: &str) -> UriParts {
    let method = c_str(method);
    let uri = c_str(raw_uri);
    let ver = version.strip_prefix("HTTP/").unwrap_or(version);
    let mut protocol = b"HTTP/".to_vec();
    protocol.extend_from_slice(ver.as_bytes());

    let mut request_line = Vec::with_capacity(method.len() + uri.len() + protocol.len() + 2);
    request_line.extend_from_slice(method);
    request_line.push(b' ');
    request_line.extend_from_slice(uri);
    request_line.push(b' ');
    request_line.extend_from_slice(&protocol);

    // The fragment only stays in REQUEST_URI_RAW and REQUEST_LINE.
    let no_frag = match memchr::memchr(b'#', uri) {
        Some(i) => &uri[..i],
        None => uri,
    };
    let query = memchr::memchr(b'?', no_frag).map(|i| no_frag[i + 1..].to_vec());
    let decoded = uri_decode(no_frag);
    // v3 looks for `?` again in the *decoded* URI, so `%3F` in the path cuts
    // REQUEST_FILENAME short while QUERY_STRING (split on the raw `?`) is unaffected.
    let filename = match memchr::memchr(b'?', &decoded) {
        Some(i) => decoded[..i].to_vec(),
        None => decoded.clone(),
    };
    let basename = match filename.iter().rposition(|&c| c == b'/' || c == b'\\') {
        Some(i) if filename.len() > i + 1 => Some(filename[i + 1..].to_vec()),
        _ => None,
    };
    // An absolute URI (`http://host/path`) keeps only its path in REQUEST_URI; v3 checks for
    // a `:` followed directly by `//` and a later `/`.
    let mut parsed = decoded.clone();
    if decoded.first().is_some_and(|&c| c != b'/') {
        if let Some(colon) = memchr::memchr(b':', &decoded) {
            if decoded[colon + 1..].starts_with(b"//") {
                let netloc = colon + 3;
                if let Some(p) = memchr::memchr(b'/', &decoded[netloc..]) {
                    parsed = decoded[netloc + p..].to_vec();
                }
            }
        }
    }
    UriParts {
        request_line,
        protocol,
        uri: parsed,
        uri_raw: uri.to_vec(),
        filename,
        basename,
        query,
    }
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
            assert_eq!(uri_decode(input), *ud, "uri_decode {input:?}");
            assert_eq!(urldecode_nonstrict(input), (nd.to_vec(), *inv), "nonstrict {input:?}");
        }
    }

    #[test]
    fn request_line_table() {
        let p = parse_request_line(b"GET", b"/a%20b/c.php?x=%41#frag", "HTTP/1.1");
        assert_eq!(p.request_line, b"GET /a%20b/c.php?x=%41#frag HTTP/1.1");
        assert_eq!(p.protocol, b"HTTP/1.1");
        assert_eq!(p.uri, b"/a b/c.php?x=A");
        assert_eq!(p.uri_raw, b"/a%20b/c.php?x=%41#frag");
        assert_eq!(p.filename, b"/a b/c.php");
        assert_eq!(p.basename.as_deref(), Some(&b"c.php"[..]));
        assert_eq!(p.query.as_deref(), Some(&b"x=%41"[..]));

        // %3F in the path ends REQUEST_FILENAME (decoded `?`), not QUERY_STRING.
        let p = parse_request_line(b"GET", b"/a%3Fb", "HTTP/1.0");
        assert_eq!(p.filename, b"/a");
        assert_eq!(p.query, None);
        assert_eq!(p.basename.as_deref(), Some(&b"a"[..]));

        // Absolute URI: REQUEST_URI keeps the path only.
        let p = parse_request_line(b"GET", b"http://h.example:80/p?q=1", "HTTP/1.1");
        assert_eq!(p.uri, b"/p?q=1");
        assert_eq!(p.filename, b"http://h.example:80/p");

        // Trailing slash: no basename; backslash separates too.
        assert_eq!(parse_request_line(b"GET", b"/dir/", "HTTP/1.1").basename, None);
        assert_eq!(
            parse_request_line(b"GET", b"/a\\b.asp", "HTTP/1.1").basename.as_deref(),
            Some(&b"b.asp"[..])
        );
        // HTTP/0.9: no version.
        let p = parse_request_line(b"GET", b"/", "");
        assert_eq!(p.request_line, b"GET / HTTP/");
        // NUL truncates, as v3 takes a C string.
        let p = parse_request_line(b"GET", b"/a\0b?x=1", "HTTP/1.1");
        assert_eq!(p.uri_raw, b"/a");
        assert_eq!(p.query, None);
    }
}
