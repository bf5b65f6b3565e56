//! The two front-ends meet in the IR: the DataStore rule (the issue's example) goes
//! Cloudflare-style -> IR -> SecLang -> IR and IR -> Cloudflare-style -> IR unchanged, and
//! the SecLang it prints is what a ModSecurity user would write.

use waf_engine::{cfrule, seclang};

const DATASTORE: &str = r"rule 100000 DataStore Attack
   REQUEST_HEADERS:User-Agent has-prefix DataStore/ and
   REQUEST_METHOD is GET and
   REQUEST_URI matches \/\?-?\d+=-?\d+
     deny
";

#[test]
fn datastore_rule_converts_to_both_languages_and_back() {
    let mut ir = cfrule::parse(DATASTORE, "datastore.rules").expect("parses");
    ir.strip_locations();

    let sec = seclang::print(&ir).expect("SecLang can express it");
    assert!(sec.contains("SecRule REQUEST_HEADERS:User-Agent \"@beginsWith DataStore/\""), "{sec}");
    assert!(sec.contains("\"@streq GET\""), "{sec}");
    assert!(sec.contains(r#""@rx \/\?-?\d+=-?\d+""#), "{sec}");
    assert!(sec.contains("id:100000") && sec.contains("deny") && sec.contains("chain"), "{sec}");
    let mut from_sec = seclang::parse_str(&sec, "datastore.conf").expect("printed SecLang parses");
    from_sec.strip_locations();
    assert_eq!(from_sec, ir, "SecLang round trip\n{sec}");

    let cf = cfrule::print(&ir).expect("Cloudflare-style can express it");
    let mut from_cf = cfrule::parse(&cf, "again.rules").expect("printed rule parses");
    from_cf.strip_locations();
    assert_eq!(from_cf, ir, "Cloudflare-style round trip\n{cf}");

    let json = serde_json::to_string(&ir).unwrap();
    let from_json: waf_engine::RuleSet = serde_json::from_str(&json).unwrap();
    assert_eq!(from_json, ir);
}

#[test]
fn the_datastore_rule_decides_the_same_through_both_languages() {
    let config = seclang::parse_str("SecRuleEngine On\n", "c.conf").unwrap();
    let ir = cfrule::parse(DATASTORE, "d.rules").unwrap();
    let sec = seclang::parse_str(&seclang::print(&ir).unwrap(), "d.conf").unwrap();
    let req = |ua: &str, uri: &str| waf_engine::Request {
        uri: uri.as_bytes().to_vec(),
        headers: vec![("Host".into(), "h".into()), ("User-Agent".into(), ua.into())],
        ..Default::default()
    };
    for set in [ir, sec] {
        let set = waf_engine::default_rules::merge(config.clone(), set);
        let e = waf_engine::eval::NativeEngine::new(&set).unwrap();
        assert_eq!(e.evaluate(&req("DataStore/1.0", "/?1=-2")).status, 403);
        assert_eq!(e.evaluate(&req("DataStore/1.0", "/?a=b")).status, 200);
        assert_eq!(e.evaluate(&req("curl/8", "/?1=2")).status, 200);
    }
}

/// An `expirevar` before other actions prints with a space after its comma, so that the
/// text reads back as the same actions (libmodsecurity3's lexer, which ours follows, would
/// otherwise read the rest into the `expirevar`).
#[test]
fn expirevar_before_other_actions_prints_and_reads_back() {
    let src = "SecRule ARGS \"@rx a\" \"id:1,phase:1,pass,expirevar:tx.a=10, setvar:tx.a=1\"\n";
    let set = waf_engine::seclang::parse_str(src, "t.conf").expect("parses");
    let printed = waf_engine::seclang::print(&set).expect("prints");
    let back = waf_engine::seclang::parse_str(&printed, "u.conf").expect("reads back");
    let mut a = set.clone();
    let mut b = back.clone();
    a.strip_locations();
    b.strip_locations();
    assert_eq!(a, b, "{printed}");
    assert!(printed.contains("setvar"), "{printed}");
}
