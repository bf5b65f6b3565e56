//! Property tests: hostile bytes into every request parser never panic, and what comes out
//! is bounded by what went in (plus a constant).

use proptest::prelude::*;
use waf_engine::Request;
use waf_engine::ir::Variable;
use waf_engine::txn::{
    BodyProcessor, RequestData, TxnConfig, cookies, json, multipart, uri, urlencoded, xml,
};

/// Bytes biased towards the separators the parsers care about.
fn tokens(frags: &'static [&'static [u8]], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(frags).prop_map(|f| f.to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..4),
        ],
        0..max,
    )
    .prop_map(|v| v.concat())
}

const MP: &[&[u8]] = &[
    b"--b",
    b"--b--",
    b"\r\n",
    b"\n",
    b"\r",
    b"Content-Disposition: form-data",
    b"; name=",
    b"; filename=",
    b"\"",
    b"'",
    b"a",
    b"x.txt",
    b"\\",
    b" ",
    b"\t",
    b"Content-Type: text/plain",
    b":",
    b"filename*=utf-8''x",
];
const JS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b",", b":", b"\"k\"", b"\"", b"1", b"-2.5e3", b"true", b"null",
    b"\\u00e9", b" ",
];
const UE: &[&[u8]] = &[b"&", b"=", b"%", b"%41", b"+", b"a", b";", b"%zz"];
const XM: &[&[u8]] = &[
    b"<a>",
    b"</a>",
    b"<b x='1'>",
    b"</b>",
    b"text",
    b"<!DOCTYPE a [<!ENTITY e 'v'>]>",
    b"&e;",
    b"<![CDATA[x]]>",
];

fn total(vs: &[(Vec<u8>, Vec<u8>)]) -> usize {
    vs.iter().map(|(a, b)| a.len() + b.len()).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn request_line_bounded(method in prop::collection::vec(any::<u8>(), 0..16), u in tokens(UE, 40), ver in "[ -~]{0,12}") {
        let mut out = Vec::new();
        let p = uri::parse_request_line(&method, &u, &ver, &mut out);
        let n = method.len() + u.len() + ver.len() + 8;
        prop_assert!(p.request_line.len() <= n);
        prop_assert!(p.uri.len() <= u.len() && p.filename.len() <= u.len() && p.uri_raw.len() <= u.len());
        prop_assert!(p.query.map_or(0, |q| q.len()) <= u.len());
        // Every span lies in the buffer, which holds the request line and one decoded URI.
        for s in [p.request_line, p.protocol, p.uri, p.uri_raw, p.filename].into_iter().chain(p.basename) {
            prop_assert!(s.start <= s.end && s.end <= out.len());
        }
        prop_assert!(out.len() <= n + u.len());
    }

    #[test]
    fn urlencoded_bounded(b in tokens(UE, 60), sep in prop::sample::select(vec![b'&', b';'])) {
        let mut buf = Vec::new();
        let mut pairs = 0;
        for f in urlencoded::split_fields(&b, sep) {
            let (k, v, _) = urlencoded::decode_field(f, &mut buf);
            prop_assert!(k.end <= v.start && v.end == buf.len());
            pairs += 1;
        }
        prop_assert!(buf.len() <= b.len());
        prop_assert!(pairs <= b.len() + 1);
    }

    #[test]
    fn cookies_bounded(b in tokens(&[b";", b"=", b" ", b"a", b"\"", b"$Version"], 40)) {
        let mut c = Vec::new();
        cookies::parse_cookies(&b, |k, v| c.push((k.to_vec(), v.to_vec())));
        prop_assert!(total(&c) <= b.len());
    }

    #[test]
    fn json_bounded(b in tokens(JS, 80), depth in 1u64..20) {
        let mut out = 0usize;
        let mut n = 0usize;
        let _ = json::parse_json(&b, depth, &mut |k, v| { out += k.len() + v.len(); n += 1; true });
        prop_assert!(out <= b.len() * json::OUTPUT_BUDGET_PER_BYTE + json::OUTPUT_BUDGET_BASE);
        prop_assert!(n <= b.len());
    }

    #[test]
    fn multipart_bounded(body in tokens(MP, 80), ct in prop_oneof![
        Just(b"multipart/form-data; boundary=b".to_vec()),
        Just(b"multipart/form-data; boundary=\"b\"".to_vec()),
        tokens(&[b"multipart/form-data", b";", b" boundary", b"=", b"\"", b"b"], 8),
    ]) {
        let o = multipart::process_multipart(&ct, &body);
        let parts: usize = o.parts.iter().map(|p| p.name.len() + match &p.kind {
            multipart::PartKind::Field { value } => value.len(),
            multipart::PartKind::File { filename, .. } => filename.len(),
        }).sum();
        prop_assert!(parts <= 2 * body.len());
        prop_assert!(total(&o.part_headers) <= 3 * body.len());
        prop_assert!(o.names.iter().chain(&o.filenames).map(Vec::len).sum::<usize>() <= body.len());
        prop_assert!(o.no_files_length <= body.len() as u64);
    }

    #[test]
    fn xml_never_panics(b in tokens(XM, 30), expr in prop::sample::select(vec!["/*", "//@*", "/a/b", "//b/@x", "//text()", "/a/*/text()", "bad["])) {
        let named = [expr.to_string()];
        if let (Ok(d), Ok(n)) = (xml::parse_xml(&b, &[]), xml::parse_xml(&b, &named)) {
            let out: usize = d.xpath(expr).iter().map(|v| v.len()).sum();
            prop_assert_eq!(d.xpath(expr), n.xpath(expr));
            // Entities can expand; roxmltree bounds that, and these inputs stay small.
            prop_assert!(out <= 64 * b.len() + 64);
        }
    }

    #[test]
    fn whole_request_never_panics(
        u in tokens(UE, 30),
        hn in "[ -~\\x00-\\x1f]{0,8}",
        hv in "[ -~]{0,20}",
        body in prop_oneof![tokens(MP, 40), tokens(JS, 40), tokens(UE, 40), tokens(XM, 20)],
        proc_ in prop::sample::select(vec![None, Some(BodyProcessor::Json), Some(BodyProcessor::Xml), Some(BodyProcessor::Urlencoded)]),
        ct in prop::sample::select(vec!["multipart/form-data; boundary=b", "application/x-www-form-urlencoded", "text/plain"]),
    ) {
        let r = Request {
            uri: u,
            headers: vec![("Content-Type".into(), ct.into()), (hn, hv.clone()), ("Cookie".into(), hv)],
            body,
            method: "POST".into(),
            ..Default::default()
        };
        let mut d = RequestData::new(&r, &TxnConfig { request_body_access: true, ..Default::default() });
        d.process_body(&r, proc_);
        for v in Variable::ALL {
            let mut out = Vec::new();
            d.collect(*v, None, &mut out);
        }
        let err = d.scalar(Variable::ReqbodyError).unwrap_or(b"");
        prop_assert!(err == b"" || err == b"0" || err == b"1");
    }
}
