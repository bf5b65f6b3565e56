//! Hostile input: requests a parser must refuse or survive without panicking, hanging or
//! allocating without bound. Each request is one of [`CASES`], taken in turn (so a short
//! corpus holds them all) with sizes and bytes from the dice. Not a standard corpus: it
//! is for robustness tests. The largest body is capped at [`MAX_HOSTILE_BODY`]; the
//! evaluator's own 50 MB test builds its body itself.

use crate::GeneratedRequest;
use crate::dice::Dice;
use crate::http::set_content_length;
use waf_engine::request::Request;

/// The largest body this generator writes (5 MiB).
pub const MAX_HOSTILE_BODY: usize = 5 * 1024 * 1024;

/// Nesting depth of the deep JSON and XML bodies.
const DEEP: usize = 10_000;
/// Arguments in the many-arguments requests.
const MANY_ARGS: usize = 10_000;

/// The hostile cases, in the order they are generated.
pub const CASES: &[&str] = &[
    "bad-percent",
    "invalid-utf8-uri",
    "invalid-utf8-body",
    "broken-multipart",
    "deep-json",
    "deep-xml",
    "many-args-query",
    "many-args-body",
    "large-body",
    "control-header",
    "bad-version",
    "empty-method",
    "bad-method",
    "long-uri",
    "many-headers",
    "bad-content-length",
    "nul-bytes",
    "truncated-json",
];

fn req(method: &str, uri: Vec<u8>, headers: Vec<(String, String)>, body: Vec<u8>) -> Request {
    Request { method: method.into(), uri, headers, body, ..Request::default() }
}

fn host() -> (String, String) {
    ("Host".into(), "shop.example.com".into())
}

fn h(n: &str, v: &str) -> (String, String) {
    (n.into(), v.into())
}

pub(crate) fn generate(d: &mut Dice, index: usize) -> GeneratedRequest {
    let case = CASES[index % CASES.len()];
    let ua = h("User-Agent", "hostile-corpus/1.0");
    let mut keep_length = false;
    let mut r = match case {
        "bad-percent" => {
            let bad =
                d.pick(&["%", "%%", "%4", "%zz", "%%41", "%u12", "%uZZZZ", "%e0%80", "%c0%af%"]);
            let uri = format!("/search?q={bad}&p{bad}=1{bad}").into_bytes();
            req("GET", uri, vec![host(), ua], Vec::new())
        }
        "invalid-utf8-uri" => {
            let mut uri = b"/products/".to_vec();
            uri.extend(d.pick(&[
                &b"\xff\xfe"[..],
                b"\xc3\x28",
                b"\xe2\x82",
                b"\xf0\x28\x8c\xbc",
                b"\xc0\xaf",
            ]));
            uri.extend(b"?q=");
            uri.extend(d.bytes(8).iter().map(|b| b | 0x80));
            req("GET", uri, vec![host(), ua], Vec::new())
        }
        "invalid-utf8-body" => {
            let mut body = b"name=".to_vec();
            body.extend(d.bytes(64).iter().map(|b| b | 0x80));
            body.extend(b"&x=\xff\xfe\xfd");
            let ct = h("Content-Type", "application/x-www-form-urlencoded");
            req("POST", b"/contact".to_vec(), vec![host(), ua, ct], body)
        }
        "broken-multipart" => {
            let (ct, body): (&str, &[u8]) = d.pick(&[
                // Declared boundary never used.
                (
                    "multipart/form-data; boundary=AAA",
                    &b"--BBB\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--BBB--\r\n"
                        [..],
                ),
                // No closing delimiter.
                (
                    "multipart/form-data; boundary=AAA",
                    b"--AAA\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n",
                ),
                // No boundary parameter at all.
                (
                    "multipart/form-data",
                    b"--AAA\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--AAA--\r\n",
                ),
                // Empty and quoted-unbalanced boundaries.
                ("multipart/form-data; boundary=", b"--\r\n\r\n--\r\n"),
                (
                    "multipart/form-data; boundary=\"AAA",
                    b"--AAA\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--AAA--\r\n",
                ),
                // Part headers without a blank line, LF-only lines, an unterminated header.
                (
                    "multipart/form-data; boundary=AAA",
                    b"--AAA\nContent-Disposition: form-data; name=\"a\"\n1\n--AAA--",
                ),
                (
                    "multipart/form-data; boundary=AAA",
                    b"--AAA\r\nContent-Disposition: form-data; name=\"a",
                ),
            ]);
            let ct = h("Content-Type", ct);
            req("POST", b"/upload".to_vec(), vec![host(), ua, ct], body.to_vec())
        }
        "deep-json" => {
            let body = if d.chance(50) {
                format!("{}1{}", "[".repeat(DEEP), "]".repeat(DEEP))
            } else {
                format!("{}1{}", "{\"a\":".repeat(DEEP), "}".repeat(DEEP))
            };
            let ct = h("Content-Type", "application/json");
            req("POST", b"/api/v2/events".to_vec(), vec![host(), ua, ct], body.into_bytes())
        }
        "deep-xml" => {
            let body =
                format!("<?xml version=\"1.0\"?>{}x{}", "<a>".repeat(DEEP), "</a>".repeat(DEEP));
            let ct = h("Content-Type", "application/xml");
            req("POST", b"/api/v1/import".to_vec(), vec![host(), ua, ct], body.into_bytes())
        }
        "many-args-query" => {
            let q: Vec<String> = (0..MANY_ARGS).map(|i| format!("a{i}={i}")).collect();
            req(
                "GET",
                format!("/search?{}", q.join("&")).into_bytes(),
                vec![host(), ua],
                Vec::new(),
            )
        }
        "many-args-body" => {
            let name = d.pick(&["x", "x[]"]);
            let q: Vec<String> = (0..MANY_ARGS).map(|i| format!("{name}={i}")).collect();
            let ct = h("Content-Type", "application/x-www-form-urlencoded");
            req("POST", b"/contact".to_vec(), vec![host(), ua, ct], q.join("&").into_bytes())
        }
        "large-body" => {
            let size = d.between(MAX_HOSTILE_BODY / 2, MAX_HOSTILE_BODY);
            let body = if d.chance(50) {
                let mut b = b"data=".to_vec();
                b.resize(size, b'A');
                b
            } else {
                d.bytes(size)
            };
            let ct = h("Content-Type", "application/x-www-form-urlencoded");
            req("POST", b"/upload".to_vec(), vec![host(), ua, ct], body)
        }
        "control-header" => {
            let name = d.pick(&[
                "X-Foo\u{1}Bar",
                "X\u{0}Nul",
                "Bad Name",
                "",
                ":authority",
                "X-Tab\tName",
                "X-Del\u{7f}",
            ]);
            let value = d.pick(&["a\u{0}b", "line1\r\nline2", "\u{1b}[31mred", "ok"]);
            req("GET", b"/".to_vec(), vec![host(), ua, h(name, value)], Vec::new())
        }
        "bad-version" => {
            let mut r = req("GET", b"/".to_vec(), vec![host(), ua], Vec::new());
            r.version = d
                .pick(&[
                    "HTTP/0.9",
                    "HTTP/9.9",
                    "JUNK",
                    "",
                    "HTTP/1.1\r\nX: y",
                    "http/1.1",
                    "HTTP/1",
                ])
                .to_string();
            r
        }
        "empty-method" => req("", b"/".to_vec(), vec![host(), ua], Vec::new()),
        "bad-method" => {
            let m = d
                .pick(&[
                    "G ET",
                    "get",
                    "GET\r\n",
                    "\u{0}",
                    "X-METHOD-WITH-A-VERY-LONG-NAME-THAT-GOES-ON-AND-ON",
                ])
                .to_string();
            req(&m, b"/".to_vec(), vec![host(), ua], Vec::new())
        }
        "long-uri" => {
            let n = d.between(16 * 1024, 64 * 1024);
            let uri = format!("/{}?q={}", "a/".repeat(n / 4), "b".repeat(n / 2)).into_bytes();
            req("GET", uri, vec![host(), ua], Vec::new())
        }
        "many-headers" => {
            let mut hs = vec![host(), ua];
            for i in 0..d.between(500, 2000) {
                hs.push((format!("X-H{i}"), "v".repeat(i % 64)));
            }
            hs.push(h("X-Huge", &"z".repeat(256 * 1024)));
            req("GET", b"/".to_vec(), hs, Vec::new())
        }
        "bad-content-length" => {
            keep_length = true;
            let cl = d.pick(&["-1", "abc", "99999999999999999999", "10, 20", "", "4"]);
            let ct = h("Content-Type", "application/x-www-form-urlencoded");
            req(
                "POST",
                b"/contact".to_vec(),
                vec![host(), ua, ct, h("Content-Length", cl)],
                b"a=1&b=2&c=3".to_vec(),
            )
        }
        "nul-bytes" => {
            let ct = h("Content-Type", "application/json");
            req(
                "POST",
                b"/api/v2/events\0.json?q=a\0b".to_vec(),
                vec![host(), ua, ct],
                b"{\"a\":\"x\0y\",\"b\0\":1}".to_vec(),
            )
        }
        _ => {
            let body = d.pick(&[
                "{\"a\":",
                "[1,2,",
                "{\"a\":\"unterminated",
                "{\"a\":1}}",
                "\u{feff}{}",
                "nul",
            ]);
            let ct = h("Content-Type", "application/json");
            req("POST", b"/api/v2/events".to_vec(), vec![host(), ua, ct], body.as_bytes().to_vec())
        }
    };
    if !keep_length {
        set_content_length(&mut r.headers, &r.method, r.body.len());
    }
    let (ip, port) = crate::client_addr(d);
    r.client_ip = ip;
    r.client_port = port;
    r.server_ip = crate::SERVER_IP.into();
    GeneratedRequest { kind: format!("hostile/{case}"), encoding: None, request: r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_has_every_case_within_caps() {
        let mut d = Dice::new(3);
        for (i, case) in CASES.iter().enumerate() {
            let g = generate(&mut d, i);
            assert_eq!(g.kind, format!("hostile/{case}"));
            assert!(g.request.body.len() <= MAX_HOSTILE_BODY);
            let line = g.to_json_line();
            let back = Request::from_json_line(&line).unwrap();
            assert_eq!(back, g.request, "{case}");
        }
    }

    #[test]
    fn deep_json_is_really_deep() {
        let mut d = Dice::new(0);
        let i = CASES.iter().position(|c| *c == "deep-json").unwrap();
        let g = generate(&mut d, i);
        let depth = g.request.body.iter().filter(|&&b| b == b'[' || b == b'{').count();
        assert_eq!(depth, DEEP);
    }
}
