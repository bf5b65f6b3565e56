//! Multipart conformance: each case ran through libmodsecurity3 3.0.9 (a rule over the
//! variables below, values read from its debug log at level 9); the expected lists are what
//! v3 showed, minus values "0" and "" (observed with libmodsecurity3 3.0.9). A name ending
//! in `~` means v3's log truncated the value: only the prefix is compared.

use std::borrow::Cow;
use waf_engine::Request;
use waf_engine::ir::Variable;
use waf_engine::txn::{RequestData, TxnConfig, VarValue};

const VARS: &[Variable] = &[
    Variable::ArgsPost,
    Variable::Files,
    Variable::FilesSizes,
    Variable::MultipartPartHeaders,
    Variable::ReqbodyError,
    Variable::ReqbodyErrorMsg,
    Variable::MultipartStrictError,
    Variable::MultipartUnmatchedBoundary,
    Variable::MultipartLfLine,
    Variable::MultipartCrlfLfLines,
    Variable::MultipartInvalidPart,
    Variable::MultipartDataAfter,
    Variable::MultipartDataBefore,
    Variable::MultipartInvalidQuoting,
    Variable::MultipartHeaderFolding,
    Variable::MultipartInvalidHeaderFolding,
    Variable::MultipartBoundaryQuoted,
    Variable::MultipartBoundaryWhitespace,
    Variable::MultipartMissingSemicolon,
];

fn render(ct: &str, body: &[u8]) -> Vec<String> {
    let req = Request {
        method: "POST".into(),
        headers: vec![("Content-Type".into(), ct.into())],
        body: body.to_vec(),
        ..Default::default()
    };
    let cfg = TxnConfig { request_body_access: true, ..Default::default() };
    let mut d = RequestData::new(&req, &cfg);
    d.process_body(&req, None);
    let mut out: Vec<VarValue<'_>> = Vec::new();
    for v in VARS {
        assert!(d.collect(*v, None, &mut out));
    }
    let mut lines: Vec<String> = out
        .iter()
        .filter(|v| v.value != Cow::Borrowed(&b"0"[..]) && !v.value.is_empty())
        .map(|v| format!("{}={}", v.name, String::from_utf8_lossy(&v.value)))
        .collect();
    lines.sort();
    lines
}

#[rustfmt::skip]
const CASES: &[(&str, &[u8], &[&str])] = &[
    ("multipart/form-data; boundary=b", b"pre\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--b--\r\nafter", &[r#"ARGS_POST:a=v"#, r#"MULTIPART_DATA_AFTER=1"#, r#"MULTIPART_DATA_BEFORE=1"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name=a\r\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#]),
    ("multipart/form-data; boundary=b", b"--b\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b--\n", &[r#"ARGS_POST:a=v"#, r#"MULTIPART_LF_LINE=1"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name=\"a\"\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#]),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n--b\r\n", &[r#"MULTIPART_HEADER_FOLDING=1"#, r#"MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name="a""#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: Final boundary missing."#]),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name='a'\r\n\r\nv\r\n--b\r\n--b--", &[r#"ARGS_POST:a=v"#, r#"MULTIPART_INVALID_PART=1"#, r#"MULTIPART_INVALID_QUOTING=1"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name='a'\r\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#]),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv --b x\r\n--b--", &[r#"ARGS_POST:a=v --b x"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name=\"a\"\r\n", r#"MULTIPART_UNMATCHED_BOUNDARY=1"#]),
    ("multipart/form-data; boundary=b", b"--b\r\nX: y\r\n\r\nv\r\n--b\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nw\r\n--b--\r\n", &[r#"ARGS_POST:c=w"#, r#"MULTIPART_INVALID_PART=1"#, "MULTIPART_PART_HEADERS:c=Content-Disposition: form-data; name=\"c\"\r\n", "MULTIPART_PART_HEADERS:c=X: y\r\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG~=Multipart parsing error: Multipart: Invalid part header"#]),
    ("multipart/form-data; boundary=b", b"--bb\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n", &[r#"MULTIPART_STRICT_ERROR=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    (r#"multipart/form-data; boundary="b""#, b"pre\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--b--\r\nafter", &[r#"ARGS_POST:a=v"#, r#"MULTIPART_BOUNDARY_QUOTED=1"#, r#"MULTIPART_DATA_AFTER=1"#, r#"MULTIPART_DATA_BEFORE=1"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name=a\r\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#]),
    (r#"multipart/form-data; boundary="b""#, b"--b\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b--\n", &[r#"ARGS_POST:a=v"#, r#"MULTIPART_BOUNDARY_QUOTED=1"#, r#"MULTIPART_LF_LINE=1"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name=\"a\"\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#]),
    (r#"multipart/form-data; boundary="b""#, b"--b\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n--b\r\n", &[r#"MULTIPART_BOUNDARY_QUOTED=1"#, r#"MULTIPART_HEADER_FOLDING=1"#, r#"MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name="a""#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: Final boundary missing."#]),
    (r#"multipart/form-data; boundary="b""#, b"--b\r\nContent-Disposition: form-data; name='a'\r\n\r\nv\r\n--b\r\n--b--", &[r#"ARGS_POST:a=v"#, r#"MULTIPART_BOUNDARY_QUOTED=1"#, r#"MULTIPART_INVALID_PART=1"#, r#"MULTIPART_INVALID_QUOTING=1"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name='a'\r\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#]),
    (r#"multipart/form-data; boundary="b""#, b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv --b x\r\n--b--", &[r#"ARGS_POST:a=v --b x"#, r#"MULTIPART_BOUNDARY_QUOTED=1"#, "MULTIPART_PART_HEADERS:a=Content-Disposition: form-data; name=\"a\"\r\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#]),
    (r#"multipart/form-data; boundary="b""#, b"--b\r\nX: y\r\n\r\nv\r\n--b\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nw\r\n--b--\r\n", &[r#"ARGS_POST:c=w"#, r#"MULTIPART_BOUNDARY_QUOTED=1"#, r#"MULTIPART_INVALID_PART=1"#, "MULTIPART_PART_HEADERS:c=Content-Disposition: form-data; name=\"c\"\r\n", "MULTIPART_PART_HEADERS:c=X: y\r\n", r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=2"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG~=Multipart parsing error: Multipart: Invalid part header"#]),
    (r#"multipart/form-data; boundary="b""#, b"--bb\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n", &[r#"MULTIPART_BOUNDARY_QUOTED=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    ("multipart/form-data boundary = b", b"pre\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--b--\r\nafter", &[r#"MULTIPART_BOUNDARY_WHITESPACE=1"#, r#"MULTIPART_DATA_BEFORE=1"#, r#"MULTIPART_MISSING_SEMICOLON=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    ("multipart/form-data boundary = b", b"--b\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b--\n", &[r#"MULTIPART_BOUNDARY_WHITESPACE=1"#, r#"MULTIPART_DATA_BEFORE=1"#, r#"MULTIPART_MISSING_SEMICOLON=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    ("multipart/form-data boundary = b", b"--b\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n--b\r\n", &[r#"MULTIPART_BOUNDARY_WHITESPACE=1"#, r#"MULTIPART_DATA_BEFORE=1"#, r#"MULTIPART_MISSING_SEMICOLON=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    ("multipart/form-data boundary = b", b"--b\r\nContent-Disposition: form-data; name='a'\r\n\r\nv\r\n--b\r\n--b--", &[r#"MULTIPART_BOUNDARY_WHITESPACE=1"#, r#"MULTIPART_DATA_BEFORE=1"#, r#"MULTIPART_MISSING_SEMICOLON=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    ("multipart/form-data boundary = b", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv --b x\r\n--b--", &[r#"MULTIPART_BOUNDARY_WHITESPACE=1"#, r#"MULTIPART_DATA_BEFORE=1"#, r#"MULTIPART_MISSING_SEMICOLON=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    ("multipart/form-data boundary = b", b"--b\r\nX: y\r\n\r\nv\r\n--b\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nw\r\n--b--\r\n", &[r#"MULTIPART_BOUNDARY_WHITESPACE=1"#, r#"MULTIPART_DATA_BEFORE=1"#, r#"MULTIPART_MISSING_SEMICOLON=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
    ("multipart/form-data boundary = b", b"--bb\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n", &[r#"MULTIPART_BOUNDARY_WHITESPACE=1"#, r#"MULTIPART_DATA_BEFORE=1"#, r#"MULTIPART_MISSING_SEMICOLON=1"#, r#"MULTIPART_STRICT_ERROR=1"#, r#"MULTIPART_UNMATCHED_BOUNDARY=1"#, r#"REQBODY_ERROR=1"#, r#"REQBODY_ERROR_MSG=Multipart parsing error: Multipart: No boundaries found in payload."#]),
];

#[test]
fn multipart_matches_libmodsecurity3() {
    for (ct, body, want) in CASES {
        let got = render(ct, body);
        let ok = got.len() == want.len()
            && got.iter().zip(want.iter()).all(|(g, w)| match w.split_once('=') {
                Some((n, v)) if n.ends_with('~') => {
                    g.starts_with(&format!("{}={}", n.trim_end_matches('~'), v))
                }
                _ => g == w,
            });
        assert!(
            ok,
            "ct {ct:?} body {:?}\n got {got:#?}\nwant {want:#?}",
            String::from_utf8_lossy(body)
        );
    }
}

/// An unterminated quoted `filename` (header injection attempt, corpus request
/// attack-000651): v3 reads past the header's end and refuses it; the part is dropped and the
/// body ends with a parsing error (observed with libmodsecurity3 3.0.9).
#[test]
fn unterminated_quoted_filename_is_a_body_error() {
    let body = b"--XX\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"/\r\nX: y\"\r\n\r\ndata\r\n--XX--\r\n";
    let lines = render("multipart/form-data; boundary=XX", body);
    for want in [
        "REQBODY_ERROR=1",
        "REQBODY_ERROR_MSG=Multipart parsing error: Multipart: Final boundary missing.",
        "MULTIPART_STRICT_ERROR=1",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} not in {lines:?}");
    }
}
