//! The request view end to end: phase-1 variables, body processors, limits and lookups.
//! Expectations marked "observed" were read from libmodsecurity3 3.0.9's debug log for the
//! same request (a rule over the variables, SecDebugLogLevel 9).

use waf_engine::Request;
use waf_engine::ir::{ConfigDirective, LimitAction, Selector, Variable};
use waf_engine::txn::{BodyProcessor, CompiledSelector, RequestData, TxnConfig};

fn req(method: &str, uri: &[u8], headers: &[(&str, &str)], body: &[u8]) -> Request {
    Request {
        id: "req1".into(),
        method: method.into(),
        uri: uri.to_vec(),
        headers: headers.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        body: body.to_vec(),
        client_ip: "1.2.3.4".into(),
        client_port: 1234,
        server_ip: "5.6.7.8".into(),
        server_port: 80,
        ..Default::default()
    }
}

fn on() -> TxnConfig {
    TxnConfig { request_body_access: true, ..Default::default() }
}

/// All (name, value) pairs of a variable, lossy strings.
fn vals(d: &RequestData, v: Variable, sel: Option<Selector>) -> Vec<(String, String)> {
    let sel = sel.map(|s| CompiledSelector::new(&s).unwrap());
    let mut out = Vec::new();
    assert!(d.collect(v, sel.as_ref(), &mut out), "{v:?} is a request variable");
    out.into_iter()
        .map(|v| (v.name.into_owned(), String::from_utf8_lossy(&v.value).into_owned()))
        .collect()
}

fn one(d: &RequestData, v: Variable) -> String {
    let mut x = vals(d, v, None);
    assert_eq!(x.len(), 1, "{v:?}: {x:?}");
    x.remove(0).1
}

fn p(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn json_uri_cookies_as_observed() {
    let r = req(
        "POST",
        b"/a%20b/c%3Fd.php?x=%41&&y&z=%zz#fr",
        &[
            ("Content-Type", "application/json"),
            ("Host", "h.example:8080"),
            ("Cookie", " a=1 ; $Version=\"1\"; b"),
            ("Cookie", "c=3"),
        ],
        br#"{"a":{"b":[1,{"":null}]},"c":true}"#,
    );
    let mut d = RequestData::new(&r, &on());
    d.process_body(&r, Some(BodyProcessor::Json));
    assert_eq!(
        vals(&d, Variable::ArgsGet, None),
        [p("ARGS_GET:x", "A"), p("ARGS_GET:", ""), p("ARGS_GET:y", ""), p("ARGS_GET:z", "%zz")]
    );
    assert_eq!(
        vals(&d, Variable::Args, None)[4..],
        [
            p("ARGS:json.a.b.array_0", "1"),
            p("ARGS:json.a.b.array_1.empty-key", ""),
            p("ARGS:json.c", "true")
        ]
    );
    // JSON arguments are not in ARGS_POST in v3.0.9 (observed).
    assert!(vals(&d, Variable::ArgsPost, None).is_empty());
    assert_eq!(one(&d, Variable::ArgsCombinedSize), "60.000000");
    assert_eq!(one(&d, Variable::RequestUri), "/a b/c?d.php?x=A&&y&z=%zz");
    assert_eq!(one(&d, Variable::RequestFilename), "/a b/c");
    assert_eq!(one(&d, Variable::RequestBasename), "c");
    assert_eq!(one(&d, Variable::QueryString), "x=%41&&y&z=%zz");
    assert_eq!(one(&d, Variable::RequestLine), "POST /a%20b/c%3Fd.php?x=%41&&y&z=%zz#fr HTTP/1.1");
    assert_eq!(one(&d, Variable::RequestProtocol), "HTTP/1.1");
    assert_eq!(
        vals(&d, Variable::RequestCookies, None),
        [
            p("REQUEST_COOKIES:a", "1 "),
            p("REQUEST_COOKIES:$Version", "\"1\""),
            p("REQUEST_COOKIES:b", ""),
            p("REQUEST_COOKIES:c", "3")
        ]
    );
    assert_eq!(vals(&d, Variable::RequestHeaders, Some(Selector::Key("cookie".into()))).len(), 2);
    assert_eq!(one(&d, Variable::ServerName), "h.example");
    assert_eq!(one(&d, Variable::UniqueId), "req1");
    assert_eq!(one(&d, Variable::UrlencodedError), "1");
    assert_eq!(one(&d, Variable::ReqbodyError), "0");
    assert_eq!(one(&d, Variable::ReqbodyProcessor), "JSON");
    assert!(
        one(&d, Variable::FullRequest)
            .starts_with("Content-Type: application/json\nHost: h.example:8080\nCookie:  a=1 ;")
    );
    // Plain XML: a placeholder under an empty name (observed); no document -> no XPath values.
    assert_eq!(vals(&d, Variable::Xml, None), [p("", "[XML document tree]")]);
    assert!(vals(&d, Variable::Xml, Some(Selector::Key("/*".into()))).is_empty());
    assert_eq!(one(&d, Variable::RemoteAddr), "1.2.3.4");
    assert_eq!(one(&d, Variable::RemotePort), "1234");
    assert_eq!(one(&d, Variable::ServerPort), "80");
    // Not request variables.
    assert!(!d.collect(Variable::Tx, None, &mut Vec::new()));
    assert!(!d.collect(Variable::MatchedVar, None, &mut Vec::new()));
}

#[test]
fn multipart_file_as_observed() {
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nline1\r\nline2\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\nab\r\ncd\r\n--b--\r\n";
    let r = req(
        "POST",
        b"/p",
        &[("Content-Type", "multipart/form-data; boundary=b"), ("Host", "h")],
        body,
    );
    let mut d = RequestData::new(&r, &on());
    d.process_body(&r, None);
    // The line break inside a field is lost in v3.0.9; the file size counts it.
    assert_eq!(vals(&d, Variable::Args, None), [p("ARGS:a", "line1line2")]);
    assert_eq!(vals(&d, Variable::ArgsNames, None), [p("ARGS_NAMES:a", "a")]);
    assert_eq!(vals(&d, Variable::Files, None), [p("FILES:f", "x.txt")]);
    assert_eq!(vals(&d, Variable::FilesNames, None), [p("FILES_NAMES:f", "f")]);
    assert_eq!(vals(&d, Variable::FilesSizes, None), [p("FILES_SIZES:f", "6")]);
    assert_eq!(vals(&d, Variable::FilesTmpContent, None), [p("FILES_TMP_CONTENT:f", "")]);
    assert_eq!(one(&d, Variable::FilesCombinedSize), "6");
    assert_eq!(
        vals(&d, Variable::MultipartName, None),
        [p("MULTIPART_NAME:a", "a"), p("MULTIPART_NAME:f", "f")]
    );
    assert_eq!(
        vals(&d, Variable::MultipartFilename, None),
        [p("MULTIPART_FILENAME:x.txt", "x.txt")]
    );
    // A literal key reads its values newest first, as v3's multimap hands them out
    // (observed: `%{MULTIPART_PART_HEADERS:f}` is the Content-Type line).
    assert_eq!(
        vals(&d, Variable::MultipartPartHeaders, Some(Selector::Key("F".into()))),
        [
            p("MULTIPART_PART_HEADERS:f", "Content-Type: text/plain\r\n"),
            p(
                "MULTIPART_PART_HEADERS:f",
                "Content-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n"
            ),
        ]
    );
    assert_eq!(one(&d, Variable::MultipartUnmatchedBoundary), "2");
    assert_eq!(one(&d, Variable::MultipartStrictError), "0");
    assert_eq!(one(&d, Variable::MultipartFileLimitExceeded), "");
    // Multipart fields bypass addArgument: no ARGS_COMBINED_SIZE.
    assert_eq!(one(&d, Variable::ArgsCombinedSize), "");
    assert_eq!(one(&d, Variable::ReqbodyProcessor), "MULTIPART");
    assert_eq!(one(&d, Variable::RequestBodyLength), body.len().to_string());
}

#[test]
fn body_access_off_still_parses_but_skips_phase_2() {
    let r = req("POST", b"/", &[("Content-Type", "application/x-www-form-urlencoded")], b"q=1&r=2");
    // `SecRequestBodyAccess Off` (unset counts as On, see `TxnConfig::request_body_access`).
    let off = TxnConfig { request_body_access: false, ..TxnConfig::default() };
    let mut d = RequestData::new(&r, &off);
    d.process_body(&r, None);
    assert!(!d.request_body_phase_runs());
    assert_eq!(vals(&d, Variable::ArgsPost, None), [p("ARGS_POST:q", "1"), p("ARGS_POST:r", "2")]);
    assert_eq!(one(&d, Variable::RequestBody), "");
    assert_eq!(one(&d, Variable::FullRequest), "");
    // ctl:requestBodyAccess=on for this transaction.
    let mut d = RequestData::new(&r, &off);
    d.set_request_body_access(true);
    d.process_body(&r, None);
    assert!(d.request_body_phase_runs());
    assert_eq!(one(&d, Variable::RequestBody), "q=1&r=2");
}

#[test]
fn body_limits() {
    let r = req("POST", b"/", &[("Content-Type", "application/x-www-form-urlencoded")], b"q=1&r=2");
    let cfg = TxnConfig::from_directives(&[
        ConfigDirective::RequestBodyAccess(true),
        ConfigDirective::RequestBodyLimit(3),
        ConfigDirective::RequestBodyLimitAction(LimitAction::Reject),
    ]);
    let mut d = RequestData::new(&r, &cfg);
    d.process_body(&r, None);
    // Observed: intervention status 403, body dropped, INBOUND_DATA_ERROR=1, REQBODY_ERROR unset.
    assert_eq!(d.body_limit_intervention(), Some(403));
    assert!(vals(&d, Variable::ArgsPost, None).is_empty());
    assert_eq!(one(&d, Variable::InboundDataError), "1");
    assert_eq!(one(&d, Variable::ReqbodyError), "");
    assert_eq!(one(&d, Variable::RequestBodyLength), "");

    let mut cfg = cfg;
    cfg.apply(&ConfigDirective::RequestBodyLimitAction(LimitAction::ProcessPartial));
    let mut d = RequestData::new(&r, &cfg);
    d.process_body(&r, None);
    assert_eq!(d.body_limit_intervention(), None);
    assert_eq!(vals(&d, Variable::ArgsPost, None), [p("ARGS_POST:q", "1")]);
    assert_eq!(one(&d, Variable::RequestBody), "q=1");

    // No-files limit: the urlencoded processor is skipped with REQBODY_ERROR=1.
    let cfg = TxnConfig { request_body_no_files_limit: Some(4), ..on() };
    let mut d = RequestData::new(&r, &cfg);
    d.process_body(&r, None);
    assert!(vals(&d, Variable::ArgsPost, None).is_empty());
    assert_eq!(one(&d, Variable::ReqbodyError), "1");
    assert_eq!(
        one(&d, Variable::ReqbodyErrorMsg),
        "Request body excluding files is bigger than the maximum expected."
    );
}

#[test]
fn arguments_limit() {
    let r = req("POST", b"/?a=1&b=2&c=3", &[], br#"{"x":1,"y":2}"#);
    let cfg = TxnConfig { arguments_limit: Some(4), ..on() };
    let mut d = RequestData::new(&r, &cfg);
    assert_eq!(vals(&d, Variable::ArgsGet, None).len(), 3);
    d.process_body(&r, Some(BodyProcessor::Json));
    // The 5th argument is refused, which cancels the JSON parse.
    assert_eq!(vals(&d, Variable::Args, None).len(), 4);
    assert_eq!(one(&d, Variable::ReqbodyError), "1");
    assert_eq!(
        one(&d, Variable::ReqbodyErrorMsg),
        "JSON parsing error: parse error: client cancelled parse via callback return value\n"
    );
    // Query arguments over the limit are skipped silently.
    let d = RequestData::new(&r, &TxnConfig { arguments_limit: Some(2), ..on() });
    assert_eq!(
        vals(&d, Variable::ArgsGetNames, None),
        [p("ARGS_GET_NAMES:a", "a"), p("ARGS_GET_NAMES:b", "b")]
    );
}

#[test]
fn selectors() {
    let r = req("GET", b"/?Foo=1&foo=2&bar=3&xfoo=4", &[("User-Agent", "ua"), ("X-A", "1")], b"");
    let d = RequestData::new(&r, &on());
    // Newest first for a literal key (v3's `equal_range`), arrival order for a regex.
    assert_eq!(
        vals(&d, Variable::Args, Some(Selector::Key("FOO".into()))),
        [p("ARGS:foo", "2"), p("ARGS:Foo", "1")]
    );
    // Regex: case-insensitive search anywhere in the key.
    assert_eq!(
        vals(&d, Variable::Args, Some(Selector::Regex("^FOO".into()))),
        [p("ARGS:Foo", "1"), p("ARGS:foo", "2")]
    );
    assert_eq!(vals(&d, Variable::Args, Some(Selector::Regex("foo".into()))).len(), 3);
    assert_eq!(
        vals(&d, Variable::ArgsNames, Some(Selector::Regex("^b".into()))),
        [p("ARGS_NAMES:bar", "bar")]
    );
    assert_eq!(
        vals(&d, Variable::RequestHeaders, Some(Selector::Key("user-agent".into()))),
        [p("REQUEST_HEADERS:User-Agent", "ua")]
    );
    assert_eq!(
        vals(&d, Variable::RequestHeadersNames, None),
        [
            p("REQUEST_HEADERS_NAMES:User-Agent", "User-Agent"),
            p("REQUEST_HEADERS_NAMES:X-A", "X-A")
        ]
    );
    // A pattern only the backtracking engine supports.
    assert_eq!(vals(&d, Variable::Args, Some(Selector::Regex("^(?!x)f".into()))).len(), 2);
    assert!(CompiledSelector::new(&Selector::Regex("(".into())).is_err());
    assert_eq!(d.count(Variable::Args, None), Some(4));
    assert_eq!(d.count(Variable::Tx, None), None);
}

#[test]
fn xml_body() {
    let body = br#"<a x="1"><b y="2">hello</b> <c>world</c></a>"#;
    let r = req("POST", b"/", &[("Content-Type", "text/xml")], body);
    let mut d = RequestData::new(&r, &on());
    d.process_body(&r, Some(BodyProcessor::Xml));
    assert_eq!(
        vals(&d, Variable::Xml, Some(Selector::Key("/*".into()))),
        [p("XML:/*", "hello world")]
    );
    assert_eq!(
        vals(&d, Variable::Xml, Some(Selector::Key("//@*".into()))),
        [p("XML://@*", "1"), p("XML://@*", "2")]
    );
    assert_eq!(one(&d, Variable::ReqbodyError), "0");
    // v3 also fills REQUEST_BODY for XML (FACTS.md).
    assert_eq!(one(&d, Variable::RequestBody).as_bytes(), body);

    let r = req("POST", b"/", &[], b"<a><b></a>");
    let mut d = RequestData::new(&r, &on());
    d.process_body(&r, Some(BodyProcessor::Xml));
    assert_eq!(one(&d, Variable::ReqbodyError), "1");
    assert_eq!(one(&d, Variable::ReqbodyProcessorError), "1");
    assert_eq!(
        one(&d, Variable::ReqbodyErrorMsg),
        "XML parsing error: XML: Failed parsing document."
    );
}

// ---- hostile input: each gives values and error flags, bounded, without panicking ----

#[test]
fn hostile_json_depth() {
    for (depth, err) in [(10_000, false), (10_001, true), (200_000, true)] {
        let body = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let r = req("POST", b"/", &[], body.as_bytes());
        let mut d = RequestData::new(&r, &on());
        d.process_body(&r, Some(BodyProcessor::Json));
        assert_eq!(one(&d, Variable::ReqbodyError), if err { "1" } else { "0" }, "depth {depth}");
        if err {
            assert!(one(&d, Variable::ReqbodyErrorMsg).ends_with("Parsing depth limit exceeded"));
        }
    }
}

#[test]
fn hostile_json_name_blowup_is_bounded() {
    // 5,000 nested arrays holding 20,000 values: v3 would build ~800 MB of names.
    let body = format!("{}{}{}", "[".repeat(5_000), "1,".repeat(20_000) + "1", "]".repeat(5_000));
    let r = req("POST", b"/", &[], body.as_bytes());
    let mut d = RequestData::new(&r, &on());
    d.process_body(&r, Some(BodyProcessor::Json));
    let mut out = Vec::new();
    d.collect(Variable::Args, None, &mut out);
    let total: usize = out.iter().map(|v| v.name.len() + v.value.len()).sum();
    assert!(total <= body.len() * 70 + (1 << 20), "{total}");
    assert_eq!(one(&d, Variable::ReqbodyError), "1");
}

#[test]
fn hostile_many_arguments_and_big_body() {
    let body = "a=1&".repeat(10_000);
    let r = req(
        "POST",
        b"/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    let mut d = RequestData::new(&r, &on());
    d.process_body(&r, None);
    assert_eq!(d.count(Variable::ArgsPost, None), Some(10_000));

    // 50 MB with a 128 KB limit: only the prefix is looked at.
    let big = vec![b'x'; 50 << 20];
    let r = req("POST", b"/", &[("Content-Type", "application/x-www-form-urlencoded")], &big);
    let cfg = TxnConfig {
        request_body_limit: Some(128 << 10),
        request_body_limit_action: Some(LimitAction::ProcessPartial),
        ..on()
    };
    let mut d = RequestData::new(&r, &cfg);
    d.process_body(&r, None);
    assert_eq!(one(&d, Variable::RequestBodyLength), (128 << 10).to_string());
    assert_eq!(vals(&d, Variable::ArgsPost, None)[0].0.len(), "ARGS_POST:".len() + (128 << 10));
    assert_eq!(one(&d, Variable::InboundDataError), "1");
}

#[test]
fn hostile_multipart() {
    let cases: &[(&str, &[u8], &str)] = &[
        // Broken boundaries; messages as observed with libmodsecurity3 3.0.9.
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--bX\r\n",
            "Final boundary missing",
        ),
        // The "Invalid boundary" error is overwritten by the final check (observed).
        ("multipart/form-data; boundary=b", b"--b junk\r\n", "No boundaries found in payload"),
        ("multipart/form-data; boundary=\"b", b"--b\r\n", "Invalid boundary in C-T (quote)"),
        ("multipart/form-data", b"--b\r\n", "Boundary not found in C-T"),
        ("multipart/form-data; boundary=a; boundary=b", b"", "Multiple boundary parameters"),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nA\x00B: c\r\n\r\n--b--\r\n",
            "Final boundary missing",
        ),
        ("multipart/form-data; boundary=b", &[b'-'; 10_000], "No boundaries found"),
    ];
    for (ct, body, want) in cases {
        let r = req("POST", b"/", &[("Content-Type", ct)], body);
        let mut d = RequestData::new(&r, &on());
        d.process_body(&r, None);
        assert_eq!(one(&d, Variable::ReqbodyError), "1", "{ct} {body:?}");
        assert!(
            one(&d, Variable::ReqbodyErrorMsg).contains(want),
            "{ct}: {}",
            one(&d, Variable::ReqbodyErrorMsg)
        );
        assert_eq!(one(&d, Variable::MultipartStrictError), "1", "{ct}");
    }
    // A part header line longer than the 4 KiB buffer.
    let mut body = b"--b\r\nX: ".to_vec();
    body.extend(std::iter::repeat_n(b'y', 5000));
    body.extend_from_slice(b"\r\n\r\n--b--\r\n");
    let r = req("POST", b"/", &[("Content-Type", "multipart/form-data; boundary=b")], &body);
    let mut d = RequestData::new(&r, &on());
    d.process_body(&r, None);
    // Parsing stops there; the final check then reports the missing boundary (observed).
    assert!(one(&d, Variable::ReqbodyErrorMsg).contains("Final boundary missing"));
    assert_eq!(one(&d, Variable::MultipartStrictError), "1");
}

#[test]
fn hostile_request_line_and_headers() {
    // HTTP/0.9: no version.
    let mut r = req("GET", b"/x", &[], b"");
    r.version = String::new();
    let d = RequestData::new(&r, &on());
    assert_eq!(one(&d, Variable::RequestLine), "GET /x HTTP/");
    assert_eq!(one(&d, Variable::RequestProtocol), "HTTP/");
    // Control bytes in header names, invalid UTF-8 in the URI.
    let r = req("GET", b"/\xff\xfe?a=\xff%ff", &[("X\x01\x7fY", "v\x00w"), ("", "")], b"");
    let d = RequestData::new(&r, &on());
    assert_eq!(d.count(Variable::RequestHeaders, None), Some(2));
    let mut out = Vec::new();
    d.collect(Variable::ArgsGet, None, &mut out);
    assert_eq!(out[0].value.as_ref(), b"\xff\xff");
    assert_eq!(out[0].name, "ARGS_GET:a");
    let mut out = Vec::new();
    d.collect(Variable::RequestFilename, None, &mut out);
    assert_eq!(out[0].value.as_ref(), b"/\xff\xfe");
}
