//! The libinjection backend is chosen, and libmodsecurity3 loaded, when a rule set with
//! `@detectSQLi` or `@detectXSS` compiles, not on the first request that reaches one of those
//! rules. The load takes tens of milliseconds; charged to a request, it showed up in per-rule
//! profiles as 942100 costing 195 µs per evaluation over 200 GETs (7 µs once loaded first).
//!
//! Its own test binary, one test: the backend is a process-wide `OnceLock`, which any other
//! test in the same process could fill first.

use waf_engine::eval::NativeEngine;
use waf_engine::operator::libinjection;

#[test]
fn compiling_a_detector_rule_loads_the_backend() {
    let set = waf_engine::seclang::parse_str(
        "SecRuleEngine On\n\
         SecRule ARGS \"@detectSQLi\" \"id:1,phase:2,deny,t:none\"\n",
        "t.conf",
    )
    .expect("rules parse");
    assert!(!libinjection::backend_loaded(), "nothing has asked for the backend yet");
    let engine = NativeEngine::new(&set).expect("rules compile");
    assert!(libinjection::backend_loaded(), "the rule set's compile loads the backend");
    // And the engine still detects with it.
    let req = waf_engine::Request {
        id: "r".into(),
        method: "GET".into(),
        uri: b"/?q=1'%20or%20'1'='1".to_vec(),
        headers: vec![("Host".into(), "localhost".into())],
        ..waf_engine::Request::default()
    };
    let d = engine.evaluate(&req);
    assert_eq!((d.status, d.matched_ids), (403, vec!["1".to_string()]));
}
