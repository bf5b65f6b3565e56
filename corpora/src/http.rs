//! Wire-level helpers shared by the generators: percent-encoding, form, multipart, XML
//! escaping and the Content-Length bookkeeping. Generators decide *what* to send; these
//! functions decide how it looks on the wire, so every profile encodes the same way.

use std::fmt::Write as _;

/// Percent-encodes every byte outside RFC 3986's unreserved set (and outside `keep`).
/// `space_plus` writes a space as `+`, as HTML forms do.
pub(crate) fn pct_encode(s: &[u8], keep: &[u8], space_plus: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else if b == b' ' && space_plus {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Percent-encodes every byte, letters included: the "fully encoded" attack variant.
pub(crate) fn pct_encode_all(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
        let _ = write!(out, "%{b:02X}");
    }
    out
}

/// `a=1&b=2` with form encoding of names and values.
pub(crate) fn form_encode(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&pct_encode(k.as_bytes(), b"[]", true));
        out.push('=');
        out.push_str(&pct_encode(v.as_bytes(), b"", true));
    }
    out
}

/// A JSON value whose object keys keep the order they were written in. Bodies are built
/// with this instead of `serde_json::Value`, whose key order (sorted, or insertion order
/// when any crate in the build enables serde_json's `preserve_order`) would make the
/// committed corpora depend on feature unification.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Str(String),
    Int(u64),
    Bool(bool),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            // serde_json's string escaping is the JSON standard's; it cannot fail on a str.
            Json::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Str((*k).to_string()).write(out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_string())
    }
}
impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}
impl From<usize> for Json {
    fn from(n: usize) -> Json {
        Json::Int(n as u64)
    }
}
impl From<u64> for Json {
    fn from(n: u64) -> Json {
        Json::Int(n)
    }
}
impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}
impl From<Vec<Json>> for Json {
    fn from(v: Vec<Json>) -> Json {
        Json::Arr(v)
    }
}

/// `obj!{"key" => value, ...}`: a [`Json::Obj`] with its keys in this order. Values are
/// evaluated in order too, so the dice are rolled in the order the fields are read.
macro_rules! obj {
    ($($k:literal => $v:expr),* $(,)?) => {
        $crate::http::Json::Obj(vec![$(($k, $crate::http::Json::from($v))),*])
    };
}
pub(crate) use obj;

/// Escapes text for an XML element or a double-quoted attribute.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// One part of a multipart/form-data body.
pub(crate) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// Extra part headers written verbatim (`Name: value`), for the 922 attacks.
    pub extra_headers: Vec<String>,
    pub data: Vec<u8>,
}

impl Part {
    pub(crate) fn field(name: &str, value: &str) -> Part {
        Part {
            name: name.into(),
            filename: None,
            content_type: None,
            extra_headers: Vec::new(),
            data: value.as_bytes().to_vec(),
        }
    }
    pub(crate) fn file(name: &str, filename: &str, content_type: &str, data: Vec<u8>) -> Part {
        Part {
            name: name.into(),
            filename: Some(filename.into()),
            content_type: Some(content_type.into()),
            extra_headers: Vec::new(),
            data,
        }
    }
}

/// A well-formed multipart/form-data body (CRLF line ends, closing delimiter), the shape
/// ModSecurity's strict multipart checks (MULTIPART_STRICT_ERROR) accept.
pub(crate) fn multipart_body(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
        out.extend_from_slice(p.name.as_bytes());
        out.push(b'"');
        if let Some(f) = &p.filename {
            out.extend_from_slice(b"; filename=\"");
            // A quote inside a quoted filename is escaped with a backslash, which
            // ModSecurity's multipart parser (msc_multipart.cc) unescapes.
            for &b in f.as_bytes() {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'"');
        }
        out.extend_from_slice(b"\r\n");
        if let Some(ct) = &p.content_type {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ct.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for h in &p.extra_headers {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&p.data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
}

/// Replaces any `Content-Length` with the body's length, written last. A bodiless GET,
/// HEAD, DELETE or OPTIONS gets none (CRS 920170 flags a non-zero one on GET/HEAD); POST,
/// PUT and PATCH always get one, because CRS 920180 flags a POST without it.
pub(crate) fn set_content_length(
    headers: &mut Vec<(String, String)>,
    method: &str,
    body_len: usize,
) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
    if body_len == 0 && !matches!(method, "POST" | "PUT" | "PATCH") {
        return;
    }
    headers.push(("Content-Length".into(), body_len.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_table() {
        let cases: &[(&[u8], &[u8], bool, &str)] = &[
            (b"abc XYZ-._~", b"", false, "abc%20XYZ-._~"),
            (b"a b", b"", true, "a+b"),
            (b"a/b?c", b"/", false, "a/b%3Fc"),
            (b"\xff\x00", b"", false, "%FF%00"),
            (b"", b"", true, ""),
        ];
        for (input, keep, plus, want) in cases {
            assert_eq!(pct_encode(input, keep, *plus), *want, "{input:?}");
        }
        assert_eq!(pct_encode_all(b"a<"), "%61%3C");
    }

    #[test]
    fn multipart_is_delimited_and_escapes_filenames() {
        let body = multipart_body(
            "XyZ",
            &[Part::field("a", "1"), Part::file("f", "x\"y.txt", "text/plain", b"hi".to_vec())],
        );
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.starts_with("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n")
        );
        assert!(text.contains("filename=\"x\\\"y.txt\""));
        assert!(text.ends_with("--XyZ--\r\n"));
    }

    #[test]
    fn content_length_rules() {
        let mut h = vec![("Content-Length".to_string(), "99".to_string())];
        set_content_length(&mut h, "GET", 0);
        assert!(h.is_empty());
        set_content_length(&mut h, "POST", 0);
        assert_eq!(h, vec![("Content-Length".to_string(), "0".to_string())]);
        set_content_length(&mut h, "DELETE", 12);
        assert_eq!(h, vec![("Content-Length".to_string(), "12".to_string())]);
    }

    #[test]
    fn json_keeps_key_order_and_escapes() {
        let j = obj! {"z" => 1usize, "a" => "q\"\n<", "n" => obj!{"t" => true}, "l" => vec![Json::Int(2)]};
        assert_eq!(j.to_text(), r#"{"z":1,"a":"q\"\n<","n":{"t":true},"l":[2]}"#);
        let v: serde_json::Value = serde_json::from_str(&j.to_text()).unwrap();
        assert_eq!(v["a"], "q\"\n<");
    }

    #[test]
    fn form_and_xml_escape() {
        let pairs =
            vec![("q".to_string(), "a b&c".to_string()), ("p[1]".to_string(), "2".to_string())];
        assert_eq!(form_encode(&pairs), "q=a+b%26c&p[1]=2");
        assert_eq!(
            xml_escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
