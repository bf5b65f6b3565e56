//! The ModSecurity peer against libmodsecurity3 itself: small inline rule sets whose decisions
//! are known, and the missing-library path. Needs libmodsecurity3 (installed by .ci/run).

use waf_engine::{Engine, Request};
use wafbench::modsec::{LIB_ENV, ModSecPeer, PeerError};

const RULES: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecDefaultAction "phase:1,log,auditlog,pass"
SecDefaultAction "phase:2,log,auditlog,pass"
SecAction "id:10,phase:1,nolog,pass,setvar:tx.anomaly_score=0"
SecRule ARGS:q "@contains evil" "id:100,phase:2,deny,status:403,log,msg:'evil arg',setvar:tx.anomaly_score=+5"
SecRule ARGS:w "@contains warn" "id:101,phase:2,pass,log,msg:'warn arg',setvar:tx.anomaly_score=+3"
SecRule ARGS:s "@contains silent" "id:102,phase:2,pass,nolog,setvar:tx.anomaly_score=+7"
SecRule ARGS:c "@contains one" "id:103,phase:2,pass,log,msg:'chain',chain"
  SecRule ARGS:d "@contains two" "id:104,setvar:tx.anomaly_score=+2"
SecRule REQUEST_HEADERS:X-Block "@streq yes" "id:105,phase:1,deny,status:418,log,msg:'header'"
SecRule ARGS:q "@contains evil" "id:106,phase:2,pass,log,msg:'after the deny'"
"#;

fn req(uri: &str) -> Request {
    Request {
        id: uri.into(),
        uri: uri.as_bytes().to_vec(),
        headers: vec![("Host".into(), "localhost".into())],
        ..Request::default()
    }
}

fn peer() -> ModSecPeer {
    ModSecPeer::from_seclang(RULES).expect("libmodsecurity3 loads the inline rules")
}

#[test]
fn deny_on_a_matching_arg_gives_403_and_its_id() {
    let mut p = peer();
    let d = p.decide(&req("/?q=very+evil&w=warn"));
    assert_eq!(d.status, 403);
    assert!(d.disruptive);
    // The deny stops phase 2 at rule 100: 101 and 106 never run. 100's message reaches the
    // connector through the intervention, not the log callback.
    assert_eq!(d.matched_ids, ["100"]);
    assert_eq!(d.anomaly_score, 5);
}

#[test]
fn pass_rules_log_in_order_and_nolog_is_not_listed() {
    let mut p = peer();
    let d = p.decide(&req("/?w=warn&s=silent"));
    assert_eq!(d.status, 200);
    assert!(!d.disruptive);
    assert_eq!(d.matched_ids, ["101"]);
    assert_eq!(d.anomaly_score, 10, "nolog rules still count");
}

#[test]
fn a_chain_is_counted_under_its_first_id() {
    let mut p = peer();
    let d = p.decide(&req("/?c=one&d=two"));
    assert_eq!(d.matched_ids, ["103"]);
    assert_eq!(d.anomaly_score, 2);
    let d = p.decide(&req("/?c=one&d=three"));
    assert!(d.matched_ids.is_empty(), "{:?}", d.matched_ids);
}

#[test]
fn phase_1_disruption_stops_before_the_body_phase() {
    let mut p = peer();
    let mut r = req("/?q=evil");
    r.headers.push(("X-Block".into(), "yes".into()));
    let d = p.decide(&r);
    assert_eq!((d.status, d.disruptive), (418, true));
    assert_eq!(d.matched_ids, ["105"]);
}

#[test]
fn post_bodies_are_inspected_and_requests_are_independent() {
    let mut p = peer();
    let mut r = req("/");
    r.method = "POST".into();
    r.headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
    r.headers.push(("Content-Length".into(), "6".into()));
    r.body = b"q=evil".to_vec();
    assert_eq!(p.decide(&r).status, 403);
    let clean = p.decide(&req("/?q=fine"));
    assert_eq!((clean.status, clean.matched_ids.len(), clean.anomaly_score), (200, 0, 0));
}

#[test]
fn run_reports_the_log_lines_a_connector_would_write() {
    let mut p = peer();
    let o = p.run(&req("/?q=evil")).unwrap();
    assert_eq!(o.log_lines.len(), 1, "{:?}", o.log_lines);
    assert!(o.log_lines[0].contains("Access denied with code 403"), "{}", o.log_lines[0]);
}

#[test]
fn a_peer_can_move_to_another_thread() {
    let mut p = peer();
    let d = std::thread::spawn(move || p.decide(&req("/?q=evil"))).join().unwrap();
    assert_eq!(d.status, 403);
}

#[test]
fn bad_rules_report_the_parser_error() {
    let e = ModSecPeer::from_seclang("SecNoSuchDirective On").err().unwrap();
    assert!(matches!(e, PeerError::Rules { .. }), "{e}");
    assert!(!e.to_string().is_empty());
}

#[test]
fn missing_library_says_how_to_install() {
    // Only this test sets the variable; the binary is run in a child so the process
    // environment of the other tests is untouched.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wafbench"))
        .args(["eval", "--rules", "crs", "--engine", "modsec", "--corpus", "-"])
        .env(LIB_ENV, "/nonexistent/libmodsecurity.so.3")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("libmodsecurity3 not found: apt-get install libmodsecurity3"), "{err}");
}

/// multiMatch tests the raw value and each transformation's output that differs from its
/// input (v3 `executeTransformation` compares the strings), the next step running on it:
/// a step that only cuts the value down (`t:trim`, a failed `t:base64Decode`'s empty output)
/// counts as a change too. Pinned against libmodsecurity3; native missed both before.
#[test]
fn multimatch_variants_include_steps_that_cut_the_value() {
    let rules = r#"
SecRuleEngine On
SecDefaultAction "phase:1,log,auditlog,pass"
SecRule ARGS:a "@streq x" "id:1,phase:1,pass,log,t:none,t:trim,multiMatch"
SecRule ARGS:b "@streq x" "id:2,phase:1,pass,log,t:none,t:trim,t:lowercase,multiMatch"
SecRule ARGS:b "@streq  X" "id:3,phase:1,pass,log,t:none,t:trim,t:lowercase,multiMatch"
SecRule ARGS:c "@rx ^$" "id:4,phase:1,pass,log,t:none,t:base64Decode,multiMatch"
"#;
    native_logs_as_v3(
        rules,
        &[
            ("/?a=%20x", &["1"]),
            ("/?b=%20X", &["2", "3"]),
            ("/?c=%21%21", &["4"]),
            ("/?a=x", &["1"]),
        ],
    );
}

/// `rules` through libmodsecurity3 and the native engine: for each request, v3 logs the ids
/// given, and native the same.
fn native_logs_as_v3(rules: &str, cases: &[(&str, &[&str])]) {
    let mut p = ModSecPeer::from_seclang(rules).expect("libmodsecurity3 loads the rules");
    let set = waf_engine::seclang::parse_str(rules, "t.conf").expect("rules parse");
    let mut native = waf_engine::eval::NativeEngine::new(&set).expect("rules compile");
    for (uri, want) in cases {
        let v3 = p.decide(&req(uri));
        let ours = native.decide(&req(uri));
        assert_eq!(v3.matched_ids, *want, "libmodsecurity3 on {uri}");
        assert_eq!(ours.matched_ids, v3.matched_ids, "native on {uri}");
    }
}

/// The setvars after a `capture` read `%{tx.<digit>}` from the capture groups until one of
/// them writes (or deletes) such a key, literally or through a macro key; a digit past the
/// groups reads what an earlier capture or setvar left. Each `@streq` rule logs when TX
/// holds what libmodsecurity3 holds.
#[test]
fn setvars_after_a_capture_read_tx_digits_as_v3() {
    let rules = r#"
SecRuleEngine On
SecDefaultAction "phase:1,log,auditlog,pass"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.9=nine"
SecRule ARGS:p "@rx (x)(y)(z)" "id:2,phase:1,pass,nolog,capture"
SecRule ARGS:a "@rx ^(\d)(\d)" "id:3,phase:1,pass,nolog,capture,setvar:tx.first=%{tx.0},setvar:tx.0=over,setvar:tx.second=%{TX.0},setvar:'tx.%{tx.1}=keyed',setvar:tx.third=%{tx.1},setvar:!tx.2,setvar:tx.fourth=%{tx.2}-%{tx.9}-%{tx.3}"
SecRule TX:first "@streq 12" "id:11,phase:1,pass,log"
SecRule TX:second "@streq over" "id:12,phase:1,pass,log"
SecRule TX:third "@streq keyed" "id:13,phase:1,pass,log"
SecRule TX:fourth "@streq -nine-z" "id:14,phase:1,pass,log"
SecRule TX:fourth "@streq -nine-" "id:15,phase:1,pass,log"
SecRule ARGS:h "@rx ^(.*)$" "id:4,phase:1,pass,nolog,capture,t:lowercase,setvar:'tx.h_%{tx.0}=/%{tx.0}/'"
SecRule TX:/^h_/ "@streq /abc/" "id:16,phase:1,pass,log"
SecRule TX:h_def "@streq /def/" "id:17,phase:1,pass,log"
"#;
    native_logs_as_v3(
        rules,
        &[
            ("/?p=xyz&a=12", &["11", "12", "13", "14"]),
            ("/?a=12", &["11", "12", "13", "15"]),
            ("/?h=ABC&h=Def", &["16", "17"]),
        ],
    );
}
