//! The whole CRS 3.3.4 regression corpus through the request view, with the body settings
//! of `engine/conf/base.conf` (and its two `ctl:requestBodyProcessor` rules, 200000/200001).
//!
//! `corpus_request_view` checks every request yields sane values without panicking.
//! `dump_for_oracle` (ignored; `TXN_DUMP=path`) writes each request's values the way
//! libmodsecurity3's debug log prints them (`toHexIfNeeded`, cut at 80 characters by
//! `limitTo`), for comparison with the real engine.

use std::io::Write;
use waf_engine::Request;
use waf_engine::ir::{LimitAction, Selector, Variable};
use waf_engine::request::read_corpus;
use waf_engine::txn::{BodyProcessor, CompiledSelector, RequestData, TxnConfig, VarValue};

fn corpus_path() -> Option<std::path::PathBuf> {
    waf_engine::crs::regression_suite_for_test().map(|d| d.join("crs-3.3.4-regression.jsonl"))
}

/// Variables compared with the oracle.
pub const VARS: &[Variable] = &[
    Variable::Args,
    Variable::ArgsNames,
    Variable::ArgsGet,
    Variable::ArgsPost,
    Variable::ArgsCombinedSize,
    Variable::RequestHeaders,
    Variable::RequestHeadersNames,
    Variable::RequestCookies,
    Variable::RequestCookiesNames,
    Variable::RequestUri,
    Variable::RequestUriRaw,
    Variable::RequestFilename,
    Variable::RequestBasename,
    Variable::RequestLine,
    Variable::RequestMethod,
    Variable::RequestProtocol,
    Variable::QueryString,
    Variable::PathInfo,
    Variable::Files,
    Variable::FilesNames,
    Variable::FilesSizes,
    Variable::FilesCombinedSize,
    Variable::MultipartStrictError,
    Variable::MultipartUnmatchedBoundary,
    Variable::MultipartDataBefore,
    Variable::MultipartDataAfter,
    Variable::MultipartLfLine,
    Variable::MultipartCrlfLfLines,
    Variable::MultipartInvalidPart,
    Variable::MultipartInvalidQuoting,
    Variable::MultipartHeaderFolding,
    Variable::MultipartPartHeaders,
    Variable::MultipartName,
    Variable::MultipartFilename,
    Variable::ReqbodyError,
    Variable::ReqbodyErrorMsg,
    Variable::ReqbodyProcessor,
    Variable::ReqbodyProcessorError,
    Variable::UrlencodedError,
    Variable::InboundDataError,
    Variable::RequestBody,
    Variable::RequestBodyLength,
    Variable::FullRequestLength,
    Variable::ServerName,
    Variable::AuthType,
];

fn base_config() -> TxnConfig {
    TxnConfig {
        request_body_access: true,
        request_body_limit: Some(13_107_200),
        request_body_no_files_limit: Some(131_072),
        request_body_limit_action: Some(LimitAction::Reject),
        json_depth_limit: 512,
        arguments_limit: Some(1000),
        ..Default::default()
    }
}

/// base.conf rules 200000/200001 (`t:lowercase`, any Content-Type header).
fn ctl_processor(r: &Request) -> Option<BodyProcessor> {
    let mut p = None;
    for (k, v) in &r.headers {
        if !k.eq_ignore_ascii_case("content-type") {
            continue;
        }
        let v = v.to_ascii_lowercase();
        if v.starts_with("application/xml")
            || v.starts_with("application/soap+xml")
            || v.starts_with("text/xml")
        {
            p = Some(BodyProcessor::Xml);
        } else if v.starts_with("application/json") {
            p = Some(BodyProcessor::Json);
        }
    }
    p
}

fn load(path: &std::path::Path) -> Vec<Request> {
    let f = std::fs::File::open(path).expect("CRS regression corpus");
    let (reqs, errs) = read_corpus(std::io::BufReader::new(f), &path.display().to_string());
    assert!(errs.is_empty(), "{errs:?}");
    reqs
}

fn view(r: &Request) -> RequestData {
    let mut d = RequestData::new(r, &base_config());
    d.process_body(r, ctl_processor(r));
    d
}

#[test]
fn corpus_request_view() {
    let Some(path) = corpus_path() else { return };
    let reqs = load(&path);
    assert!(reqs.len() > 2000);
    // Building alone (what every request pays), then building plus reading every variable.
    let t = std::time::Instant::now();
    for r in &reqs {
        std::hint::black_box(view(r));
    }
    let build = t.elapsed() / reqs.len() as u32;
    let t = std::time::Instant::now();
    let mut values = 0usize;
    let mut body_errors = 0usize;
    for r in &reqs {
        let d = view(r);
        let mut out: Vec<VarValue<'_>> = Vec::new();
        for v in Variable::ALL {
            d.collect(*v, None, &mut out);
        }
        values += out.len();
        let e = d.scalar(Variable::ReqbodyError).unwrap_or(b"");
        assert!(matches!(e, b"" | b"0" | b"1"), "{}", r.id);
        body_errors += (e == b"1") as usize;
        assert!(d.scalar(Variable::RequestLine).is_some(), "{}", r.id);
    }
    eprintln!(
        "{} requests, {values} values, {body_errors} body errors, build {build:?} per request, build+collect all {:?}",
        reqs.len(),
        t.elapsed() / reqs.len() as u32
    );
}

/// v3's debug-log rendering of a value.
fn v3_render(v: &[u8]) -> String {
    let mut s = String::new();
    for &c in v {
        if !(32..=126).contains(&c) {
            s.push_str(&format!("\\x{c:02x}"));
        } else {
            s.push(c as char);
        }
    }
    if s.len() > 80 {
        let n = s.len() - 80;
        s.truncate(80);
        s.push_str(&format!(" ({n} characters omitted)"));
    }
    s
}

#[test]
#[ignore = "writes a dump for the libmodsecurity3 comparison; set TXN_DUMP"]
fn dump_for_oracle() {
    let Ok(path) = std::env::var("TXN_DUMP") else { return };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let Some(corpus) = corpus_path() else { return };
    for r in load(&corpus) {
        let d = view(&r);
        let mut out = Vec::new();
        for v in VARS {
            d.collect(*v, None, &mut out);
        }
        for xp in ["/*", "//@*"] {
            let sel = CompiledSelector::new(&Selector::Key(xp.into())).unwrap();
            d.collect(Variable::Xml, Some(&sel), &mut out);
        }
        for v in out {
            writeln!(f, "{}\t{}\t{}", r.id, v.name, v3_render(&v.value)).unwrap();
        }
    }
}
