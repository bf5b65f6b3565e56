//! Table-driven tests of the evaluator's flow and action semantics. Each case pins a
//! behaviour observed with libmodsecurity3 3.0.9 (a probe program fed the same rules and
//! request through the C API), so a change that drifts from v3 fails here first.

use super::NativeEngine;
use crate::request::Request;

fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut h: Vec<(String, String)> = vec![("Host".into(), "localhost".into())];
    h.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Request {
        id: "t".into(),
        method: method.into(),
        uri: uri.as_bytes().to_vec(),
        headers: h,
        body: body.as_bytes().to_vec(),
        ..Request::default()
    }
}

fn run(rules: &str, r: &Request) -> (u16, Vec<String>) {
    let set = crate::seclang::parse_str(rules, "t.conf").expect("rules parse");
    let d = NativeEngine::new(&set).expect("rules compile").evaluate(r);
    (d.status, d.matched_ids)
}

/// `rules` decide `r` with `status` and log `ids`, in that order.
fn assert_decides(rules: &str, r: &Request, status: u16, ids: &[&str], what: &str) {
    let (s, m) = run(rules, r);
    assert_eq!(
        (s, m.iter().map(String::as_str).collect::<Vec<_>>()),
        (status, ids.to_vec()),
        "{what}"
    );
}

/// `set` compiled with `opts`, as an engine.
fn engine_with(set: &crate::ir::RuleSet, opts: super::compile::CompileOptions) -> NativeEngine {
    let rs = super::compile::CompiledRuleSet::compile_with(set, opts).expect("rules compile");
    NativeEngine::from_compiled(std::sync::Arc::new(rs))
}

/// Each case through an engine with an optimisation (`on`) and one without (`off`): the
/// same status and logged ids, the expected ids, and the same ids again when the transaction
/// scratch is reused for the next request.
fn assert_same_decisions(
    what: &str,
    on: &NativeEngine,
    off: &NativeEngine,
    cases: &[(Request, &[&str])],
) {
    for (r, want) in cases {
        let a = on.evaluate(r);
        let b = off.evaluate(r);
        assert_eq!(a.matched_ids, b.matched_ids, "{what} on/off differ on {:?}", r.uri);
        assert_eq!(a.status, b.status, "{what} on/off differ on {:?}", r.uri);
        assert_eq!(a.matched_ids, *want, "{:?} headers {:?} body {:?}", r.uri, r.headers, r.body);
        assert_eq!(on.evaluate(r).matched_ids, a.matched_ids, "second run of {:?}", r.uri);
    }
}

/// The configuration the flow tests (here and in `lua::tests`) run their rules under.
pub(crate) const HEAD: &str = "SecRuleEngine On\nSecRequestBodyAccess On\n\
    SecDefaultAction \"phase:1,log,auditlog,pass\"\nSecDefaultAction \"phase:2,log,auditlog,pass\"\n";

/// [`HEAD`], less its phase 1 default when `rules` brings its own: libmodsecurity3 refuses a
/// second `SecDefaultAction` for a phase.
pub(crate) fn head_for(rules: &str) -> String {
    if rules.contains("SecDefaultAction \"phase:1") {
        HEAD.replace("SecDefaultAction \"phase:1,log,auditlog,pass\"\n", "")
    } else {
        HEAD.to_string()
    }
}

#[test]
fn v3_flow_and_logging_quirks() {
    let get = req("GET", "/?x=a&y=a", &[], "");
    let cases: &[(&str, &str, u16, &[&str])] = &[
        (
            "setvar on a chain's first link runs even when the chain fails",
            "SecRule REQUEST_METHOD \"@streq GET\" \"id:1,phase:1,pass,setvar:tx.s=+5,chain\"\n\
             SecRule ARGS:x \"@streq nomatch\" \"t:none\"\n\
             SecRule TX:s \"@eq 5\" \"id:2,phase:1,pass,msg:'ran'\"",
            200,
            &["2"],
        ),
        (
            "setvar runs once per matching value",
            "SecRule ARGS \"@rx a\" \"id:3,phase:1,pass,nolog,setvar:tx.cnt=+1\"\n\
             SecRule TX:cnt \"@eq 2\" \"id:4,phase:1,pass\"",
            200,
            &["4"],
        ),
        (
            "nolog,auditlog logs; log,noauditlog does not",
            "SecRule ARGS \"@rx a\" \"id:5,phase:1,pass,nolog,auditlog\"\n\
             SecRule ARGS \"@rx a\" \"id:6,phase:1,pass,log,noauditlog\"",
            200,
            &["5"],
        ),
        (
            "deny stops the phase, later request phases are skipped, logging runs",
            "SecRule ARGS \"@rx a\" \"id:10,phase:1,deny,status:406\"\n\
             SecRule ARGS \"@rx a\" \"id:11,phase:1,pass\"\n\
             SecRule ARGS \"@rx a\" \"id:12,phase:2,pass\"\n\
             SecRule ARGS \"@rx a\" \"id:14,phase:5,pass,log\"",
            406,
            &["10", "14"],
        ),
        (
            "deny without status answers 403; a nolog deny is still in the error log",
            "SecRule ARGS:x \"@rx a\" \"id:20,phase:1,deny,nolog\"",
            403,
            &["20"],
        ),
        (
            "a SecAction logs only with a msg",
            "SecAction \"id:30,phase:1,pass\"\nSecAction \"id:31,phase:1,pass,msg:'m'\"",
            200,
            &["31"],
        ),
        (
            "skipAfter jumps to the marker",
            "SecAction \"id:40,phase:1,pass,nolog,skipAfter:END\"\n\
             SecRule ARGS \"@rx a\" \"id:41,phase:1,deny\"\nSecMarker END\n\
             SecRule ARGS:y \"@rx a\" \"id:42,phase:1,pass\"",
            200,
            &["42"],
        ),
        (
            "ctl:ruleRemoveById removes a later rule for this transaction",
            "SecAction \"id:50,phase:1,pass,nolog,ctl:ruleRemoveById=51\"\n\
             SecRule ARGS \"@rx a\" \"id:51,phase:1,deny\"",
            200,
            &[],
        ),
        (
            "SecRuleRemoveById applies wherever it stands",
            "SecRule ARGS \"@rx a\" \"id:60,phase:1,deny\"\nSecRuleRemoveById 60",
            200,
            &[],
        ),
        (
            "allow skips the remaining request phases",
            "SecRule ARGS:x \"@rx a\" \"id:70,phase:1,allow,nolog\"\n\
             SecRule ARGS \"@rx a\" \"id:71,phase:2,deny\"",
            200,
            &[],
        ),
        (
            "a regex exclusion drops matching keys of every collection",
            "SecRule ARGS|!REQUEST_COOKIES:/^x$/ \"@rx a\" \"id:80,phase:1,pass,nolog,setvar:tx.n=+1\"\n\
             SecRule TX:n \"@eq 1\" \"id:81,phase:1,pass\"",
            200,
            &["81"],
        ),
        (
            "&ARGS counts, macros expand",
            "SecRule &ARGS \"@eq 2\" \"id:90,phase:1,pass,nolog,setvar:'tx.k=%{MATCHED_VAR}'\"\n\
             SecRule TX:k \"@streq 2\" \"id:91,phase:1,pass\"",
            200,
            &["91"],
        ),
        (
            "t:none drops the default transformations",
            "SecDefaultAction \"phase:1,log,pass,t:lowercase\"\n\
             SecRule REQUEST_METHOD \"@streq get\" \"id:100,phase:1,pass\"\n\
             SecRule REQUEST_METHOD \"@streq get\" \"id:101,phase:1,pass,t:none\"",
            200,
            &["100"],
        ),
        (
            "block runs the phase default's disruptive action",
            "SecDefaultAction \"phase:1,log,deny,status:418\"\n\
             SecRule ARGS:x \"@rx a\" \"id:110,phase:1,block\"",
            418,
            &["110"],
        ),
        (
            "capture fills TX.0 and TX.1",
            "SecRule ARGS:x \"@rx (a)\" \"id:120,phase:1,pass,nolog,capture,chain\"\n\
             SecRule TX:1 \"@streq a\" \"t:none\"\n\
             SecRule TX:0 \"@streq a\" \"id:121,phase:1,pass\"",
            200,
            &["121"],
        ),
    ];
    for (what, rules, status, ids) in cases {
        assert_decides(&format!("{}{rules}\n", head_for(rules)), &get, *status, ids, what);
    }
}

#[test]
fn request_body_phase_is_skipped_when_body_access_is_off() {
    let rules = "SecRuleEngine On\nSecRequestBodyAccess Off\n\
        SecRule REQUEST_METHOD \"@streq POST\" \"id:1,phase:2,deny\"\n";
    let r = req("POST", "/", &[("Content-Type", "application/x-www-form-urlencoded")], "a=b");
    assert_eq!(run(rules, &r).0, 200);
    let on = rules.replace("SecRequestBodyAccess Off", "SecRequestBodyAccess On");
    assert_eq!(run(&on, &r).0, 403);
}

/// Observed with libmodsecurity3 (`wafbench eval --engine modsec`): without any
/// `SecRequestBodyAccess`, phase 2 rules run, on a GET as on a POST (transaction.cc skips the
/// phase only when the directive says Off); a `ctl:requestBodyAccess=off` still skips it.
#[test]
fn request_body_phase_runs_when_body_access_is_unset() {
    let rules = "SecRuleEngine On\n\
        SecRule ARGS \"@detectSQLi\" \"id:1,phase:2,deny,t:none\"\n";
    let get = req("GET", "/?q=1+union+select+1,2,3--", &[], "");
    assert_eq!(run(rules, &get), (403, vec!["1".to_string()]));
    let post = req("POST", "/", &[("Content-Type", "application/x-www-form-urlencoded")], "a=b");
    let streq = "SecRuleEngine On\nSecRule REQUEST_METHOD \"@streq POST\" \"id:2,phase:2,deny\"\n";
    assert_eq!(run(streq, &post).0, 403);
    let ctl_off = format!(
        "{streq}SecRule REQUEST_METHOD \"@streq POST\" \"id:3,phase:1,pass,nolog,ctl:requestBodyAccess=off\"\n"
    );
    assert_eq!(run(&ctl_off, &post).0, 200);
}

/// Observed with libmodsecurity3: a rule or `SecAction` without `phase:` runs in phase 1 (v3
/// starts rules at `RequestHeadersPhase`), and so does a `SecDefaultAction` without one.
#[test]
fn rules_and_defaults_without_a_phase_are_phase_1() {
    let form = req("POST", "/", &[("Content-Type", "application/x-www-form-urlencoded")], "a=1");
    let rules = "SecRuleEngine On\nSecRequestBodyAccess On\n\
        SecRule ARGS_POST \"@rx .\" \"id:1,deny\"\n";
    assert_eq!(run(rules, &form), (200, vec![]), "ARGS_POST is empty before the body phase");
    let first = "SecRuleEngine On\n\
        SecAction \"id:2,phase:2,deny,status:402\"\n\
        SecAction \"id:3,deny,status:401\"\n";
    assert_eq!(run(first, &form), (401, vec!["3".to_string()]));
    let defaults = "SecRuleEngine On\n\
        SecDefaultAction \"log,deny,status:406\"\n\
        SecRule REQUEST_METHOD \"@streq POST\" \"id:4,phase:1,block\"\n";
    assert_eq!(run(defaults, &form), (406, vec!["4".to_string()]));
}

/// `SecRuleUpdateActionById` as libmodsecurity3 runs it (each case observed through the
/// peer): the update's actions run after the match, and once one has run the rule's own
/// disruptive action does not; the rule's own `status` and `log` run after the update's.
#[test]
fn update_action_by_id_as_v3_runs_it() {
    let get = req("GET", "/?x=a", &[], "");
    let rule = "SecRuleEngine On\nSecRule ARGS \"@rx a\" \"id:1,phase:1,deny,status:401,log\"\n";
    let cases: &[(&str, &str, u16, &[&str])] = &[
        ("a status alone: the deny is done", "status:405", 200, &["1"]),
        ("a setvar alone: the deny is done", "setvar:tx.a=1", 409, &["1", "2"]),
        ("the rule's own status wins", "deny,status:402", 401, &["1"]),
        ("the rule's own log wins", "nolog", 200, &["1"]),
        ("an action it cannot take is dropped", "phase:2", 401, &["1"]),
        ("a transformation does not stop the deny", "t:lowercase", 401, &["1"]),
    ];
    for (what, update, status, ids) in cases {
        let rules = format!(
            "{rule}SecRuleUpdateActionById 1 \"{update}\"\n\
             SecRule TX:a \"@eq 1\" \"id:2,phase:1,deny,status:409\"\n"
        );
        assert_decides(&rules, &get, *status, ids, what);
    }
}

/// libmodsecurity3's lexer reads `expirevar:X=Y` on to the last `=` before white space, and
/// on to the next comma: the `setvar` after it is swallowed, and rule 2 does not match.
/// With a space after the comma it is not (each case observed through the peer).
#[test]
fn expirevar_swallows_what_v3_swallows() {
    let get = req("GET", "/?x=a", &[], "");
    let rules = |sep: &str| {
        format!(
            "SecRuleEngine On\n\
             SecRule ARGS \"@rx a\" \"id:1,phase:1,pass,expirevar:tx.a=10,{sep}setvar:tx.a=1\"\n\
             SecRule TX:a \"@eq 1\" \"id:2,phase:1,deny,status:401\"\n"
        )
    };
    assert_eq!(run(&rules(""), &get), (200, vec!["1".to_string()]));
    assert_eq!(run(&rules(" "), &get), (401, vec!["1".to_string(), "2".to_string()]));
}

/// A literal key reads equal keys newest first (v3's `equal_range` on its multimap), a
/// regex selector and the whole collection in arrival order; a macro takes the first value
/// read. Observed with libmodsecurity3 on `?x=1&x=2&X=5`.
#[test]
fn repeated_keys_read_as_v3_reads_them() {
    let get = req("GET", "/?x=1&x=2&X=5", &[], "");
    let rules = "SecRuleEngine On\n\
        SecRule ARGS:x \"@rx .\" \"id:1,phase:1,pass,nolog,setvar:tx.last=%{MATCHED_VAR},\
        setvar:tx.first=%{ARGS:x},setvar:tx.re=%{ARGS:/^x$/},setvar:tx.all=%{ARGS}\"\n\
        SecRule TX:last \"@streq 1\" \"id:2,phase:1,pass,log\"\n\
        SecRule TX:first \"@streq 5\" \"id:3,phase:1,pass,log\"\n\
        SecRule TX:re \"@streq 1\" \"id:4,phase:1,pass,log\"\n\
        SecRule TX:all \"@streq 1\" \"id:5,phase:1,pass,log\"\n";
    let (_, ids) = run(rules, &get);
    assert_eq!(ids, ["2", "3", "4", "5"]);
}

/// `%{TX:/re/}` expands to the first TX value whose key matches the regex (case-insensitive,
/// in the order the keys were set), in either spelling (`tx.`, `TX:`), and to nothing when no
/// key matches. Observed with libmodsecurity3: with `zzz` set before `abc`, `/^[az]/` gives
/// `zzz`'s value; the other way round, `abc`'s.
#[test]
fn tx_regex_macros_expand_to_the_first_matching_value() {
    let get = req("GET", "/x", &[], "");
    let rules = |first: &str, second: &str, mac: &str| {
        format!(
            "SecRuleEngine On\n\
             SecAction \"id:1,phase:1,pass,nolog,setvar:{first},setvar:{second}\"\n\
             SecRule REQUEST_URI \"@rx x\" \"id:2,phase:1,pass,nolog,setvar:tx.out={mac},\
             setvar:tx.none=%{{TX:/^nomatch/}}\"\n\
             SecRule TX:out \"@streq hello\" \"id:3,phase:1,deny,status:418\"\n\
             SecRule TX:none \"@rx ^$\" \"id:4,phase:1,pass,log\"\n"
        )
    };
    let (zzz, abc) = ("tx.zzz=world", "tx.abc=hello");
    for (first, second, mac, status, ids) in [
        (zzz, abc, "%{TX:/^ab/}", 418, &["3"][..]),
        (zzz, abc, "%{tx./^AB/}", 418, &["3"][..]),
        (zzz, abc, "%{TX:/b/}", 418, &["3"][..]),
        (zzz, abc, "%{TX:/^[az]/}", 200, &["4"][..]),
        (abc, zzz, "%{TX:/^[az]/}", 418, &["3"][..]),
    ] {
        let r = rules(first, second, mac);
        assert_decides(&r, &get, status, ids, &format!("{first}, {second}: {mac}"));
    }
}

/// `%{ARGS:/re/}` and `%{REQUEST_HEADERS:/re/}` expand to the first value whose key the regex
/// selects, ASCII case-insensitively. Observed with libmodsecurity3 on the same four requests:
/// 418 for `user_id=42` before `b_id=7` and for `USER_ID=42`, not for `b_id=7` first; rule
/// 3 logs when `X-KEY: v` is the first header under `/^x-k/`, not when `x-k2: w` is. The
/// selector is compiled once per rule set, however many times the macro expands.
#[test]
fn regex_macros_select_by_key_and_compile_once() {
    let rules = "SecRuleEngine On\n\
         SecRule ARGS \"@rx .\" \"id:1,phase:1,pass,nolog,\
         setvar:tx.out=%{ARGS:/^[a-z]+_?id$/},setvar:tx.hdr=%{REQUEST_HEADERS:/^x-k/}\"\n\
         SecRule TX:out \"@streq 42\" \"id:2,phase:1,deny,status:418,log\"\n\
         SecRule TX:hdr \"@streq v\" \"id:3,phase:1,pass,log\"\n";
    let set = crate::seclang::parse_str(rules, "t.conf").expect("rules parse");
    let engine = NativeEngine::new(&set).expect("rules compile");
    let cases = [
        (req("GET", "/x?a=1&user_id=42&b_id=7", &[("X-Key", "v")], ""), 418, &["2"][..]),
        (req("GET", "/x?a=1&b_id=7&user_id=42", &[("x-k2", "w"), ("X-Key", "v")], ""), 200, &[]),
        (req("GET", "/x?a=1&USER_ID=42", &[], ""), 418, &["2"]),
        (req("GET", "/x?a=1", &[("X-KEY", "v")], ""), 200, &["3"]),
    ];
    for round in 0..2 {
        for (r, status, ids) in &cases {
            let d = engine.evaluate(r);
            let got: Vec<&str> = d.matched_ids.iter().map(String::as_str).collect();
            let uri = String::from_utf8_lossy(&r.uri);
            assert_eq!((d.status, got), (*status, ids.to_vec()), "round {round}: {uri}");
        }
    }
    assert_eq!(engine.compiled().macro_targets.len(), 2, "one compiled target per macro");
}

#[test]
fn without_secruleengine_rules_run_but_never_disrupt() {
    let rules = "SecRule ARGS \"@rx a\" \"id:1,phase:1,deny,log\"\n";
    assert_eq!(run(rules, &req("GET", "/?x=a", &[], "")), (200, vec!["1".to_string()]));
}

#[test]
fn detection_only_never_interrupts_but_logs() {
    let rules = "SecRuleEngine DetectionOnly\nSecRule ARGS \"@rx a\" \"id:1,phase:1,deny,log\"\n";
    assert_eq!(run(rules, &req("GET", "/?x=a", &[], "")), (200, vec!["1".to_string()]));
}

#[test]
fn cloudflare_style_conditions_evaluate() {
    let config = crate::seclang::parse_str("SecRuleEngine On\nSecRequestBodyAccess On\n", "c.conf")
        .expect("config parses");
    let rules = crate::cfrule::parse(
        "rule 100 either\n  REQUEST_METHOD is PUT or ARGS:x is a\n  deny\n\
         rule 101 neither\n  not (REQUEST_METHOD is GET or ARGS:x is a)\n  deny 401\n",
        "t.rules",
    )
    .expect("rules parse");
    let set = crate::default_rules::merge(config, rules);
    let e = NativeEngine::new(&set).expect("rules compile");
    let d = e.evaluate(&req("GET", "/?x=a", &[], ""));
    assert_eq!((d.status, d.matched_ids), (403, vec!["100".to_string()]));
    let d = e.evaluate(&req("POST", "/?x=b", &[], ""));
    assert_eq!((d.status, d.matched_ids), (401, vec!["101".to_string()]));
    let d = e.evaluate(&req("GET", "/?x=b", &[], ""));
    assert_eq!((d.status, d.disruptive), (200, false));
}

#[test]
fn hostile_requests_get_a_decision() {
    let set = crate::default_rules::default_rule_set().expect("default rules parse");
    let e = NativeEngine::new(&set).expect("default rules compile");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let many: String = (0..10_000).map(|i| format!("a{i}=1&")).collect();
    let cases = vec![
        req("GET", "/%zz%u12%", &[], ""),
        req("POST", "/", &[("Content-Type", "application/json")], &deep),
        req("POST", "/", &[("Content-Type", "application/x-www-form-urlencoded")], &many),
        req("POST", "/", &[("Content-Type", "multipart/form-data; boundary=x")], "--y\r\n\r\n"),
        req("GET", "/", &[("X\u{1}Bad", "v")], ""),
        Request { version: "HTTP/0.9".into(), ..req("GET", "/", &[], "") },
        Request { uri: vec![0xff, 0xfe, b'/'], ..req("GET", "/", &[], "") },
    ];
    for r in &cases {
        let d = e.evaluate(r);
        assert!(d.status >= 200, "{d:?}");
    }
}

/// Every backend-neutral optimisation off: the per-rule reads the others are checked against.
const SOURCES_OFF: super::compile::CompileOptions = super::compile::CompileOptions {
    no_value_sources: true,
    no_rx_prefilter: true,
    no_init_snapshot: true,
};

/// Shared value sources (`eval::sources`) against per-rule reads: the same decisions with
/// the sources on and off, lists rebuilt once the body added arguments (phase 2 sees
/// ARGS_POST although phase 1 built the list of the same source), a `ctl` that switches the
/// body processor, exclusions that differ between rules sharing a target (and a list with an
/// exclusion read again through another chain, replayed from its raw records), and a
/// prefilter that must not hide a match after a transformation.
#[test]
fn value_sources_match_per_rule_reads() {
    use super::compile::CompileOptions;
    let rules = format!(
        "{HEAD}SecRule ARGS \"@rx secret\" \"id:1,phase:1,pass,t:none,t:lowercase\"\n\
         SecRule ARGS \"@rx secret\" \"id:2,phase:2,pass,t:none,t:lowercase\"\n\
         SecRule ARGS|!ARGS:a \"@rx secret\" \"id:3,phase:2,pass,t:none,t:lowercase\"\n\
         SecRule ARGS \"@rx <script\" \"id:4,phase:2,pass,t:none,t:urlDecodeUni,t:lowercase\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^text/plain\" \"id:5,phase:1,pass,nolog,ctl:requestBodyProcessor=URLENCODED\"\n\
         SecRule ARGS_POST \"@rx secret\" \"id:6,phase:2,pass,t:none,t:lowercase\"\n\
         SecRule ARGS|!ARGS:a \"@rx secret\" \"id:7,phase:2,pass,t:none,t:urlDecode,t:lowercase\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = engine_with(&set, CompileOptions::default());
    let off = engine_with(&set, SOURCES_OFF);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let plain = [("Content-Type", "text/plain")];
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/?q=SECRET", &[], ""), &["1", "2", "3", "7"]),
        (req("POST", "/?q=x", &form, "a=Secret"), &["2", "6"]),
        (req("POST", "/?q=x", &form, "b=Secret"), &["2", "3", "6", "7"]),
        (req("POST", "/", &form, "b=%3CSCRIPT%3E"), &["4"]),
        (req("POST", "/", &plain, "c=secret"), &["2", "3", "6", "7"]),
        (req("GET", "/?x=%3cScRiPt", &[], ""), &["4"]),
    ];
    assert_same_decisions("sources", &on, &off, cases);
}

/// The persistent collections and ENV, as the evaluator models them (per transaction, see
/// the module docs of `eval`), exist only once a rule writes one: before that they read as
/// empty (no value, a count of 0, an empty macro); after, writes and reads go to the same
/// collection, for targets, counts and macros, in the transaction that wrote them and not
/// in the next.
#[test]
fn persistent_collections_are_made_on_first_write() {
    use super::compile::CompileOptions;
    let rules = format!(
        "{HEAD}SecRule &IP:hits \"@eq 0\" \"id:9,phase:1,pass\"\n\
         SecRule ARGS:go \"@streq 1\" \"id:1,phase:1,pass,nolog,setvar:ip.hits=+2,setvar:session.s=%{{ip.hits}},setenv:mode=on\"\n\
         SecRule IP:hits \"@eq 2\" \"id:10,phase:1,pass\"\n\
         SecRule &IP:hits \"@eq 0\" \"id:11,phase:1,pass\"\n\
         SecRule ENV:mode \"@streq on\" \"id:12,phase:1,pass\"\n\
         SecAction \"id:2,phase:1,pass,nolog,setvar:tx.copy=%{{ip.hits}}-%{{session.s}}\"\n\
         SecRule TX:copy \"@streq 2-2\" \"id:13,phase:1,pass\"\n\
         SecRule TX:copy \"@streq -\" \"id:14,phase:1,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = engine_with(&set, CompileOptions::default());
    let off = engine_with(&set, SOURCES_OFF);
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/?go=1", &[], ""), &["9", "10", "12", "13"]),
        (req("GET", "/", &[], ""), &["9", "11", "14"]),
        (req("GET", "/?go=1", &[], ""), &["9", "10", "12", "13"]),
    ];
    assert_same_decisions("persistent collections", &on, &off, cases);
}

/// A source's list takes the names of collection elements from the request view's own
/// names (not copied) and copies the others: MATCHED_VAR_NAME read through the sources, on
/// the plain and the `multiMatch` paths, is the name the per-rule path gives, for a header,
/// an argument name and a scalar.
#[test]
fn source_names_are_the_ones_rules_read_themselves() {
    use super::compile::CompileOptions;
    let rules = format!(
        "{HEAD}SecRule REQUEST_HEADERS \"@rx ^ua$\" \"id:1,phase:1,pass,nolog,t:none,t:lowercase,setvar:tx.h=%{{matched_var_name}}\"\n\
         SecRule ARGS_NAMES \"@rx ^Foo$\" \"id:2,phase:1,pass,nolog,setvar:tx.a=%{{matched_var_name}}\"\n\
         SecRule REQUEST_FILENAME \"@rx ^/p$\" \"id:3,phase:1,pass,nolog,setvar:tx.f=%{{matched_var_name}}\"\n\
         SecRule ARGS \"@rx ^v$\" \"id:4,phase:1,pass,nolog,multiMatch,t:none,t:lowercase,setvar:tx.m=%{{matched_var_name}}\"\n\
         SecRule TX:h \"@streq REQUEST_HEADERS:User-Agent\" \"id:10,phase:1,pass\"\n\
         SecRule TX:a \"@streq ARGS_NAMES:Foo\" \"id:11,phase:1,pass\"\n\
         SecRule TX:f \"@streq REQUEST_FILENAME\" \"id:12,phase:1,pass\"\n\
         SecRule TX:m \"@streq ARGS:Bar\" \"id:13,phase:1,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = engine_with(&set, CompileOptions::default());
    let off = engine_with(&set, SOURCES_OFF);
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/p?Foo=1&Bar=V", &[("User-Agent", "UA")], ""), &["4", "10", "11", "12", "13"]),
        (req("GET", "/q?foo=1&Bar=x", &[("User-Agent", "ub")], ""), &[]),
    ];
    assert_same_decisions("source names", &on, &off, cases);
}

/// One value read through several chains, in an order that makes each chain's output the
/// first, a repeat, or the raw bytes themselves: every rule sees its own chain's output (the
/// source cache links each chain's output from the raw bytes' record), and a second value
/// of the same list gets none of the first one's.
#[test]
fn each_chain_over_a_value_keeps_its_own_output() {
    use super::compile::CompileOptions;
    let rules = format!(
        "{HEAD}SecRule ARGS \"@streq ABC%41\" \"id:10,phase:2,pass,t:none\"\n\
         SecRule ARGS \"@streq abc%41\" \"id:11,phase:2,pass,t:none,t:lowercase\"\n\
         SecRule ARGS \"@streq ABCA\" \"id:12,phase:2,pass,t:none,t:urlDecode\"\n\
         SecRule ARGS \"@streq abca\" \"id:13,phase:2,pass,t:none,t:urlDecode,t:lowercase\"\n\
         SecRule ARGS \"@streq abc%41\" \"id:14,phase:2,pass,t:none,t:lowercase\"\n\
         SecRule ARGS \"@streq ABC%41\" \"id:15,phase:2,pass,t:none,t:trim\"\n\
         SecRule ARGS \"@streq xyz\" \"id:16,phase:2,pass,t:none,t:urlDecode,t:lowercase\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = engine_with(&set, CompileOptions::default());
    let off = engine_with(&set, SOURCES_OFF);
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/?a=ABC%2541", &[], ""), &["10", "11", "12", "13", "14", "15"]),
        (req("GET", "/?a=ABC%2541&b=XYZ", &[], ""), &["10", "11", "12", "13", "14", "15", "16"]),
        (req("GET", "/?b=XYZ&a=abc", &[], ""), &["16"]),
    ];
    assert_same_decisions("chains", &on, &off, cases);
}

/// `rules` compiled with value sources and plans (checking that `plans` rules have a
/// prefilter plan) and without sources, as two engines.
fn planned_and_unplanned(rules: &str, plans: usize) -> (NativeEngine, NativeEngine) {
    use super::compile::{CompileOptions, CompiledRuleSet};
    let set = crate::seclang::parse_str(rules, "t.conf").expect("rules parse");
    let on = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    let n = on.fast.iter().flatten().filter(|f| f.is_some()).count();
    assert_eq!(n, plans, "rules with a prefilter plan");
    (NativeEngine::from_compiled(std::sync::Arc::new(on)), engine_with(&set, SOURCES_OFF))
}

/// Rules the prefilter plans skip, checked against per-rule reads: a plan that is the first
/// reader of its list builds it (regex and key exclusions applied from the table's copy), an
/// `@pm` with mixed-case phrases (one of them a single byte) skips on its phrase table's
/// masks, and two plans over one list whose union of bits says "may match" (a short value
/// with the literal, a long one without) still decide per value.
#[test]
fn prefilter_plans_match_per_rule_reads() {
    let rules = format!(
        "{HEAD}SecRule ARGS|!ARGS:/^skip/|!ARGS:keep \"@rx evil\" \"id:10,phase:2,pass,t:none,t:urlDecodeUni\"\n\
         SecRule REQUEST_COOKIES|!REQUEST_COOKIES:/^_ga/ \"@rx evil\" \"id:11,phase:2,pass,t:none\"\n\
         SecRule ARGS|REQUEST_HEADERS:User-Agent \"@pm NiKto sqlMAP ;\" \"id:12,phase:2,pass,t:none,t:lowercase\"\n\
         SecRule ARGS \"@rx xyz.{{5}}\" \"id:13,phase:2,pass,t:none\"\n\
         SecRule ARGS \"@rx xyz..\" \"id:14,phase:2,pass,t:none\"\n"
    );
    let (on, off) = planned_and_unplanned(&rules, 5);
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/?a=EVIL&skip1=evil", &[], ""), &[]),
        (req("GET", "/?a=%65vil", &[], ""), &["10"]),
        (req("GET", "/?skipme=evil&keep=evil&b=x", &[], ""), &[]),
        (req("GET", "/", &[("Cookie", "_ga1=evil; sid=ok")], ""), &[]),
        (req("GET", "/", &[("Cookie", "_ga1=ok; sid=evil")], ""), &["11"]),
        (req("GET", "/", &[("User-Agent", "Mozilla/5.0 (nIkTo)")], ""), &["12"]),
        (req("GET", "/?q=a%3bb", &[], ""), &["12"]),
        (req("GET", "/?q=sqlma", &[], ""), &[]),
        (req("GET", "/?a=xyz&b=aaaaaaaaaaaa", &[], ""), &[]),
        (req("GET", "/?a=xyz12&b=aaaaaaaaaaaa", &[], ""), &["14"]),
        (req("GET", "/?a=xyz12345", &[], ""), &["13", "14"]),
    ];
    assert_same_decisions("plans", &on, &off, cases);
    // Past the phrase table's per-transaction budget (16 KiB) values count as holding every
    // list: the `@pm` rule then runs on them, and still finds a phrase after a long value.
    let long = "x".repeat(20 << 10);
    let cases: &[(Request, &[&str])] = &[
        (req("GET", &format!("/?a={long}&q=NIKTO"), &[], ""), &["12"]),
        (req("GET", &format!("/?a={long}sqlmap"), &[], ""), &["12"]),
        (req("GET", &format!("/?a={long}&q=sqlma"), &[], ""), &[]),
    ];
    assert_same_decisions("plans past the phrase budget", &on, &off, cases);
}

/// Plans over sources whose chains change values in ASCII case at most are answered from the
/// raw lists (the prefilter's scans ignore case); other chains, values that a decoder would
/// change, exclusions, `@pm` lists and lists a rule already built take the list's own union.
#[test]
fn case_only_chains_answer_from_the_raw_list() {
    let rules = format!(
        "{HEAD}SecRule REQUEST_HEADERS|!REQUEST_HEADERS:X-Skip \"@rx select\\s+from\" \"id:20,phase:1,pass,t:none,t:lowercase\"\n\
         SecRule REQUEST_HEADERS \"@rx SELECT\" \"id:21,phase:1,pass,t:none,t:urlDecodeUni,t:uppercase\"\n\
         SecRule REQUEST_HEADERS \"@rx evil\" \"id:22,phase:1,pass,t:none,t:cmdLine\"\n\
         SecRule REQUEST_HEADERS:Referer \"@pm attack\" \"id:23,phase:1,pass,t:none,t:lowercase\"\n\
         SecRule REQUEST_HEADERS \"@rx select\\s+from\" \"id:24,phase:1,pass,t:none,t:lowercase\"\n"
    );
    let (on, off) = planned_and_unplanned(&rules, 5);
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/", &[("X-A", "SeLeCt  FrOm")], ""), &["20", "21", "24"]),
        (req("GET", "/", &[("X-Skip", "SELECT FROM")], ""), &["21", "24"]),
        (req("GET", "/", &[("X-A", "%73elect")], ""), &["21"]),
        (req("GET", "/", &[("X-A", "%53ELECT from")], ""), &["21"]),
        (req("GET", "/", &[("X-A", "E^vil")], ""), &["22"]),
        (req("GET", "/", &[("X-A", "EVIL")], ""), &["22"]),
        (req("GET", "/", &[("X-A", "evil")], ""), &["22"]),
        (req("GET", "/", &[("X-A", "ev il")], ""), &[]),
        (req("GET", "/", &[("Referer", "http://x/ATTACK")], ""), &["23"]),
        (req("GET", "/", &[("Referer", "http://x/att%61ck")], ""), &[]),
        (req("GET", "/", &[("X-A", "select"), ("X-B", "from")], ""), &["21"]),
    ];
    assert_same_decisions("raw unions", &on, &off, cases);
}

/// Values met again in later transactions are answered from the value memo (prefilter bits,
/// `@pm` masks, the verdicts of regexes that ran), while another rule set decides on the
/// same thread in between (each takes back its own scratch): the same requests, three times
/// over, decide as without sources and plans.
#[test]
fn repeated_values_decide_as_the_first_time() {
    let rules = format!(
        "{HEAD}SecRule REQUEST_HEADERS \"@rx select\\s+from\" \"id:30,phase:1,pass,t:none,t:lowercase\"\n\
         SecRule REQUEST_HEADERS:User-Agent \"@pm nikto\" \"id:31,phase:1,pass,t:none\"\n\
         SecRule ARGS \"@rx evil\" \"id:32,phase:2,pass,t:none,t:urlDecodeUni\"\n\
         SecRule REQUEST_HEADERS:Accept \"!@rx ^[a-z*/,.;=0-9]+$\" \"id:33,phase:1,pass,t:none\"\n\
         SecRule ARGS:c \"@rx ^([a-z]+)[0-9a-f]+$\" \"id:34,phase:2,pass,nolog,capture,setvar:tx.cap=%{{tx.1}}\"\n\
         SecRule TX:cap \"@streq abcdefgh\" \"id:35,phase:2,pass\"\n\
         SecRule REQUEST_HEADERS|ARGS \"@rx (?:^|/)\\.\\.(?:/|$)\" \"id:36,phase:2,pass,t:none,t:urlDecodeUni,t:lowercase,multiMatch\"\n\
         SecRule REQUEST_COOKIES|ARGS \"@detectSQLi\" \"id:37,phase:2,pass,t:none,t:urlDecodeUni,multiMatch\"\n\
         SecRule ARGS \"@detectXSS\" \"id:38,phase:2,pass,t:none,t:htmlEntityDecode,multiMatch\"\n\
         SecRule ARGS_NAMES|ARGS \"@rx (?:new\\s+Function|\\beval)\\s*\\(\" \"id:39,phase:2,pass,t:none,t:urlDecodeUni,t:base64Decode,multiMatch\"\n"
    );
    let (on, off) = planned_and_unplanned(&rules, 3);
    // The `multiMatch` regexes (36, 39) filter each value on their required literals: on
    // in the planned set, off in the other, so the cases below compare the two.
    let filtered = |e: &NativeEngine, id: u64| {
        e.compiled().phases.iter().flatten().any(|it| {
            matches!(it, super::compile::Item::Rule(r)
                if r.hot.id() == Some(id) && r.value_filter.is_some())
        })
    };
    assert!(filtered(&on, 36) && filtered(&on, 39));
    assert!(!filtered(&off, 36) && !filtered(&off, 39));
    let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/?q=harmless+words", &[("User-Agent", ua)], ""), &[]),
        (req("GET", "/?q=evil+words", &[("User-Agent", ua)], ""), &["32"]),
        (req("GET", "/?q=harmless+words", &[("User-Agent", "Nikto/2.1.6 (X11)")], ""), &["31"]),
        (req("GET", "/?q=harmless+words", &[("X-A", "SELECT  FROM users")], ""), &["30"]),
        (req("GET", "/?q=harmless+words", &[("X-A", "select from")], ""), &["30"]),
        // The literals are there, the regex does not match: it runs once, then the memo
        // answers for these bytes.
        (req("GET", "/?q=evi", &[("X-A", "select nothing from")], ""), &[]),
        // A regex with no literal to prefilter on: its verdicts, match or not, are kept too
        // (here negated: the rule matches where the regex does not).
        (req("GET", "/", &[("Accept", "text/html,*/*;q=0.8")], ""), &[]),
        (req("GET", "/", &[("Accept", "text/html (x)")], ""), &["33"]),
        // A kept match does not stand in for a run that must capture.
        (req("GET", "/?c=abcdefgh123", &[], ""), &["35"]),
        (req("GET", "/?c=xyzxyzxyz123", &[], ""), &[]),
        // `multiMatch`: a value no step matched is kept as such, one that matches after a
        // decode is not, and each step's match is logged.
        (req("GET", "/", &[("X-B", "path/to/file.txt")], ""), &[]),
        (req("GET", "/", &[("X-B", "a/%2e%2e/b/..")], ""), &["36"]),
        (req("GET", "/?f=x/%2e%2e/y", &[("X-B", "path/to/file.txt")], ""), &["36"]),
        // The libinjection detectors under `multiMatch` are kept the same way: a value that
        // is an injection only once decoded is not kept as "no match".
        (req("GET", "/?s=plain%20words%20here", &[("Cookie", "k=some-cookie-val")], ""), &[]),
        (req("GET", "/?s=1%2527%2520OR%2520%25271%2527%253D%25271", &[], ""), &["37"]),
        (req("GET", "/", &[("Cookie", "k=1%27%20OR%20%271%27%3D%271")], ""), &["37"]),
        (req("GET", "/?x=%26lt%3Bscript%26gt%3Balert(1)%26lt%3B/script%26gt%3B", &[], ""), &["38"]),
        (req("GET", "/?x=a%20harmless%20sentence", &[], ""), &[]),
        // A match only in the base64-decoded step (`eval(1)`), in the raw value, and in a
        // name; then values none of whose steps holds a literal (`hello`, names, empty).
        (req("GET", "/?p=ZXZhbCgxKQ%3D%3D", &[], ""), &["39"]),
        (req("GET", "/?p=eval%20(1)", &[], ""), &["39"]),
        // The filter ignores case, the regex does not.
        (req("GET", "/?p=EVAL%20(1)", &[], ""), &[]),
        (req("GET", "/?eval(x)=1", &[], ""), &["39"]),
        (req("GET", "/?p=aGVsbG8%3D&q=&sid=abc", &[], ""), &[]),
    ];
    for _ in 0..3 {
        assert_same_decisions("repeats", &on, &off, cases);
    }
}

/// More rule sets than a thread keeps scratches for, in rotation: each transaction takes a
/// scratch another rule set filled, whose memo must then start empty for it. The rule sets
/// number their regexes differently (rule set `i` has `i` others first), so an answer kept
/// for another rule set's numbering would skip the rule that matches.
#[test]
fn rule_sets_in_rotation_decide_as_alone() {
    let engines: Vec<_> = (0..6)
        .map(|i| {
            let mut rules = HEAD.to_string();
            for n in 0..i {
                rules.push_str(&format!(
                    "SecRule REQUEST_HEADERS \"@rx zz{n}q\" \"id:6{n},phase:1,pass,t:none\"\n"
                ));
            }
            rules.push_str(
                "SecRule REQUEST_HEADERS \"@rx select\\s+from\" \"id:49,phase:1,pass,t:none,t:lowercase\"\n",
            );
            planned_and_unplanned(&rules, i + 1)
        })
        .collect();
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/", &[("X-A", "SELECT  FROM users")], ""), &["49"]),
        (req("GET", "/", &[("X-A", "SELECT nothing FROM users")], ""), &[]),
    ];
    // The planned engines alone in turn, so that each takes over a memo another one filled.
    for _ in 0..3 {
        for (on, _) in &engines {
            for (r, want) in cases {
                assert_eq!(on.evaluate(r).matched_ids, *want, "{:?}", r.headers);
            }
        }
    }
    for (on, off) in &engines {
        assert_same_decisions("rotation", on, off, cases);
    }
}

/// The phase-1 initialisation snapshot against running the rules: the run is found after a
/// request-dependent rule, its outcome replaces it only when the transaction reaches it in
/// the state the snapshot was taken from (here: an earlier rule that wrote TX, or jumped into
/// it, forces the rules to run), and later rules see the same TX either way.
#[test]
fn init_snapshot_matches_running_the_rules() {
    use super::compile::{CompileOptions, CompiledRuleSet};
    use std::sync::Arc;
    let rules = format!(
        "{HEAD}SecRule ARGS:pre \"@streq tx\" \"id:1,phase:1,pass,nolog,setvar:tx.extra=1\"\n\
         SecRule ARGS:pre \"@streq jump\" \"id:2,phase:1,pass,nolog,skipAfter:MID\"\n\
         SecAction \"id:3,phase:1,pass,nolog,setvar:tx.score=0,setvar:tx.level=1\"\n\
         SecRule &TX:limit \"@eq 0\" \"id:4,phase:1,pass,nolog,setvar:tx.limit=%{{tx.level}}5\"\n\
         SecRule &TX:missing \"@eq 1\" \"id:5,phase:1,deny,status:500\"\n\
         SecMarker MID\n\
         SecAction \"id:6,phase:1,pass,nolog,setvar:tx.score=+1\"\n\
         SecRule ARGS:q \"@rx a\" \"id:7,phase:1,pass,setvar:tx.score=+10\"\n\
         SecRule TX:score \"@ge 11\" \"id:8,phase:2,pass\"\n\
         SecRule TX:score \"@ge 101\" \"id:9,phase:2,pass\"\n\
         SecRule TX:limit \"@streq 15\" \"id:10,phase:2,pass\"\n\
         SecRule TX:extra \"@eq 1\" \"id:11,phase:2,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    // Items 0-1: rules 1 and 2 (they read ARGS). The run is items 2-6: rules 3, 4, 5, the
    // marker and rule 6 (no target, TX only). Item 7, rule 7, reads ARGS and ends it.
    assert_eq!(on.init.as_ref().map(|s| s.run.clone()), Some(2..7));
    let on = NativeEngine::from_compiled(Arc::new(on));
    let off =
        engine_with(&set, CompileOptions { no_init_snapshot: true, ..CompileOptions::default() });
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/", &[], ""), &["10"]),
        (req("GET", "/?q=a", &[], ""), &["7", "8", "10"]),
        (req("GET", "/?pre=tx&q=a", &[], ""), &["7", "8", "10", "11"]),
        (req("GET", "/?pre=jump&q=a", &[], ""), &["7", "8"]),
    ];
    assert_same_decisions("snapshot", &on, &off, cases);
}

/// A rule that reads the request between two TX-only runs (CRS: a user's exclusion rule in
/// REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf, between crs-setup.conf and the 901
/// initialisation): the snapshot stands for the longer run, from the TX the items before it
/// leave. It applies when an exclusion removed other rules' targets or the rules themselves,
/// not when it removed one of the run's rules or a target of one, or wrote TX; either way the
/// decisions are those of running every rule, and libmodsecurity3's on the same six requests.
#[test]
fn init_snapshot_takes_the_longest_run_past_exclusion_rules() {
    use super::compile::{CompileOptions, CompiledRuleSet};
    use std::sync::Arc;
    let rules = format!(
        "{HEAD}SecAction \"id:1,phase:1,pass,nolog,setvar:tx.level=1\"\n\
         SecRule ARGS:x \"@streq other\" \"id:2,phase:1,pass,nolog,\
         ctl:ruleRemoveTargetById=20;ARGS:q,ctl:ruleRemoveById=21\"\n\
         SecRule ARGS:x \"@streq mine\" \"id:3,phase:1,pass,nolog,ctl:ruleRemoveById=5\"\n\
         SecRule ARGS:x \"@streq tag\" \"id:4,phase:1,pass,nolog,\
         ctl:ruleRemoveTargetByTag=init;TX:level\"\n\
         SecRule ARGS:x \"@streq tx\" \"id:9,phase:1,pass,nolog,setvar:tx.level=2\"\n\
         SecRule REQUEST_URI \"@rx .\" \"id:10,phase:1,pass,nolog,\
         ctl:ruleRemoveTargetById=21;ARGS:z\"\n\
         SecAction \"id:5,phase:1,pass,nolog,setvar:tx.score=0\"\n\
         SecRule TX:level \"@eq 1\" \"id:6,phase:1,pass,nolog,tag:init,setvar:tx.score=+5\"\n\
         SecRule &TX:limit \"@eq 0\" \"id:7,phase:1,pass,nolog,setvar:tx.limit=9\"\n\
         SecRule TX:level \"@eq 3\" \"id:8,phase:1,pass,nolog\"\n\
         SecRule ARGS:q \"@rx a\" \"id:20,phase:2,pass,setvar:tx.score=+10\"\n\
         SecRule ARGS:q \"@rx b\" \"id:21,phase:2,pass\"\n\
         SecRule TX:score \"@ge 5\" \"id:30,phase:2,pass\"\n\
         SecRule TX:score \"@ge 15\" \"id:31,phase:2,pass\"\n\
         SecRule TX:limit \"@eq 9\" \"id:32,phase:2,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    // Items 0-5: rule 1 (a run of one), then rules 2, 3, 4, 9 and 10 (they read the
    // request; 10 matches any request, the empty one the snapshot is taken on too). The
    // snapshot's run is rules 5 to 8, the last of which fails: what rule 10 left in
    // MATCHED_VARS does not outlive the run.
    assert_eq!(on.init.as_ref().map(|s| s.run.clone()), Some(6..10));
    let on = Arc::new(on);
    let cases: [(&str, bool, &[&str]); 6] = [
        ("/?q=ab", true, &["20", "21", "30", "31", "32"]),
        ("/?q=ab&x=other", true, &["30", "32"]),
        ("/?q=ab&x=mine", false, &["20", "21", "30", "31", "32"]),
        ("/?q=ab&x=tag", false, &["20", "21", "30", "32"]),
        ("/?q=ab&x=tx", false, &["20", "21", "30", "32"]),
        ("/?q=b", true, &["21", "30", "32"]),
    ];
    for (uri, applied, _) in &cases {
        let r = req("GET", uri, &[], "");
        let mut t = super::run::Transaction::new(&on, &r);
        t.run_phases(&r);
        assert_eq!(t.init_applied(), *applied, "{uri}: snapshot applied");
    }
    let on = NativeEngine::from_compiled(on);
    let off =
        engine_with(&set, CompileOptions { no_init_snapshot: true, ..CompileOptions::default() });
    let cases: Vec<(Request, &[&str])> =
        cases.iter().map(|(uri, _, ids)| (req("GET", uri, &[], ""), *ids)).collect();
    assert_same_decisions("snapshot past exclusions", &on, &off, &cases);
}

/// `SecRuleUpdateTargetBy*` updates that only exclude (`!ARGS:pwd`, the usual way to exclude
/// a field from CRS) keep the rules' skip plans: the excluded values are out of the rules'
/// value sources already. Decisions as without plans, and as libmodsecurity3's on the same
/// requests (a cookie of the excluded name still counts).
#[test]
fn exclusion_only_updates_keep_skip_plans() {
    use super::compile::{CompileOptions, CompiledRuleSet, Item};
    use std::sync::Arc;
    let rules = format!(
        "{HEAD}SecRule ARGS|REQUEST_COOKIES \"@rx union\\s+select\" \"id:10,phase:2,pass,t:lowercase\"\n\
         SecRule ARGS \"@rx <script\" \"id:11,phase:2,pass,t:lowercase,tag:xss\"\n\
         SecRule ARGS \"@rx etc/passwd\" \"id:12,phase:2,pass\"\n\
         SecRule ARGS \"@rx etc/passwd\" \"id:13,phase:2,pass\"\n\
         SecRuleUpdateTargetById 10 \"!ARGS:pwd\"\n\
         SecRuleUpdateTargetByTag \"xss\" \"!ARGS:/^html_/\"\n\
         SecRuleUpdateTargetById 12 \"!ARGS\"\n\
         SecRuleUpdateTargetById 13 \"REQUEST_HEADERS:x-file\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    let planned: Vec<u64> = on.phases[1]
        .iter()
        .zip(&on.fast[1])
        .filter_map(|(item, f)| match (item, f) {
            (Item::Rule(r), Some(_)) => r.id(),
            _ => None,
        })
        .collect();
    // 13's update adds a target, which no source reads: it keeps no plan.
    assert_eq!(planned, [10, 11, 12]);
    let on = NativeEngine::from_compiled(Arc::new(on));
    let off =
        engine_with(&set, CompileOptions { no_rx_prefilter: true, ..CompileOptions::default() });
    let get = |uri: &str, headers: &[(&str, &str)]| req("GET", uri, headers, "");
    let cases: Vec<(Request, &[&str])> = vec![
        (get("/?pwd=UNION%20SELECT", &[]), &[]),
        (get("/?pwd=UNION%20SELECT", &[("Cookie", "pwd=union select")]), &["10"]),
        (get("/?q=union%20select", &[]), &["10"]),
        (get("/?html_body=%3Cscript", &[]), &[]),
        (get("/?body=%3CSCRIPT", &[]), &["11"]),
        (get("/?f=etc/passwd", &[]), &["13"]),
        (get("/?x=1", &[("X-File", "etc/passwd")]), &["13"]),
    ];
    assert_same_decisions("exclusion-only updates", &on, &off, &cases);
}

/// Rules folded after the init snapshot (`SkipPlan::AfterInit`) against running them: only
/// first links that read TX keys no later rule writes (exactly, by a macro key's literal
/// prefix, by deletion, or by `capture` into TX:0-9) and that fail on the snapshot's values
/// are folded; a transaction that did not take the snapshot runs them all.
#[test]
fn init_folding_matches_running_the_rules() {
    use super::compile::{CompileOptions, CompiledRuleSet, Item, SkipPlan};
    use std::sync::Arc;
    let rules = format!(
        "{HEAD}SecRule ARGS:pre \"@streq tx\" \"id:1,phase:1,pass,nolog,setvar:tx.level=0\"\n\
         SecAction \"id:2,phase:1,pass,nolog,setvar:tx.hdr_a=1,setvar:tx.gone=1,setvar:tx.limit=3\"\n\
         SecRule &TX:level \"@eq 0\" \"id:5,phase:1,pass,nolog,setvar:tx.level=1\"\n\
         SecRule TX:limit \"@eq 0\" \"id:4,phase:1,pass,nolog\"\n\
         SecRule ARGS:never \"@rx .\" \"id:3,phase:1,pass\"\n\
         SecRule TX:level \"@lt 1\" \"id:10,phase:1,pass,nolog,skipAfter:END-A\"\n\
         SecRule TX:level \"@lt 2\" \"id:11,phase:1,pass,nolog,skipAfter:END-A\"\n\
         SecRule ARGS \"@rx .\" \"id:12,phase:1,pass\"\n\
         SecMarker END-A\n\
         SecRule &TX:unset \"@eq 1\" \"id:13,phase:2,pass,chain\"\n\
         SecRule ARGS \"@rx .\"\n\
         SecRule TX:limit \"@eq 3\" \"id:14,phase:2,pass,chain\"\n\
         SecRule ARGS:q \"@rx b\"\n\
         SecRule TX:limit \"@gt %{{tx.level}}5\" \"id:15,phase:2,pass\"\n\
         SecRule TX:hdr_a \"@eq 2\" \"id:16,phase:2,pass\"\n\
         SecRule TX:gone \"@eq 0\" \"id:17,phase:2,pass\"\n\
         SecRule TX:0 \"@streq zz\" \"id:18,phase:2,pass\"\n\
         SecRule ARGS:h \"@rx ^(.*)$\" \"id:19,phase:2,pass,nolog,capture,setvar:tx.hdr_%{{tx.1}}=2\"\n\
         SecRule ARGS:d \"@rx ^y$\" \"id:20,phase:2,pass,nolog,setvar:!tx.gone\"\n\
         SecRule ARGS:z \"@rx ^(zz)$\" \"id:21,phase:2,pass,nolog,capture\"\n\
         SecRule TX:hdr_a \"@eq 2\" \"id:22,phase:2,pass\"\n\
         SecRule &TX:gone \"@eq 0\" \"id:23,phase:2,pass\"\n\
         SecRule TX:0 \"@streq zz\" \"id:24,phase:2,pass\"\n\
         SecRule TX:limit \"@eq 3\" \"id:25,phase:2,pass,skip:1\"\n\
         SecRule ARGS \"@rx .\" \"id:26,phase:2,pass\"\n\
         SecRule TX:limit \"@eq 3\" \"id:27,phase:2,pass,nolog,skip:1\"\n\
         SecRule ARGS \"@rx .\" \"id:28,phase:2,pass\"\n\
         SecRule ARGS \"@rx .\" \"id:29,phase:2,pass\"\n\
         SecRule &TX:unset \"@eq 0\" \"id:30,phase:2,pass,nolog,skipAfter:END-B,chain\"\n\
         SecRule &TX:unset2 \"@eq 0\"\n\
         SecRule ARGS \"@rx .\" \"id:31,phase:2,pass\"\n\
         SecMarker END-B\n\
         SecRule &TX:unset \"@eq 0\" \"id:32,phase:2,pass,nolog,skipAfter:END-C,chain\"\n\
         SecRule TX:hdr_a \"@eq 1\"\n\
         SecRule ARGS \"@rx .\" \"id:33,phase:2,pass\"\n\
         SecMarker END-C\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    // The run is rules 2, 5 and 4 (TX only); rule 3 reads ARGS and ends it.
    assert_eq!(on.init.as_ref().map(|s| s.run.clone()), Some(1..4));
    let folded = |want: fn(&SkipPlan) -> bool| {
        let mut ids: Vec<u64> = (0..5)
            .flat_map(|p| on.phases[p].iter().zip(&on.fast[p]))
            .filter_map(|(item, f)| match (item, f) {
                (Item::Rule(r), Some(f)) if want(&f.plan) => r.id(),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids
    };
    // 10 fails on level 1; 13 and 15 fail on an unset key and on 3 > 15. Folded as matched:
    // 11 (a jump), 27 (a skip, nolog) and 30 (a chain of constant links). Not folded: 14
    // matches and its chain reads the request, 25 logs, 16/22 read a key `tx.hdr_%{tx.1}`
    // may write, 17/23 one that `setvar:!tx.gone` deletes, 18/24 TX:0 that `capture`
    // writes, 32's chain reads `tx.hdr_a`.
    assert_eq!(folded(|p| *p == SkipPlan::AfterInit), [10, 13, 15]);
    assert_eq!(folded(SkipPlan::is_folded_match), [11, 27, 30]);
    assert_eq!(on.folds.len(), 3);
    assert_eq!(on.folds.marker(0), Some("END-A"));
    assert_eq!((on.folds.marker(1), on.folds.skip(1)), (None, 1));
    // Rule 30's chain appends a pair per link.
    let names: Vec<&str> = on.folds.pairs(2).map(|(n, _)| n).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let on = NativeEngine::from_compiled(Arc::new(on));
    let off =
        engine_with(&set, CompileOptions { no_init_snapshot: true, ..CompileOptions::default() });
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/", &[], ""), &["25"]),
        (req("GET", "/?q=b", &[], ""), &["14", "25", "29"]),
        (req("GET", "/?h=a&d=y&z=zz", &[], ""), &["22", "23", "24", "25", "29", "33"]),
        // Rule 1 writes TX before the snapshot: no snapshot, every rule runs (10 matches
        // on level 0 and jumps over 11 and 12, which would match `pre`).
        (req("GET", "/?pre=tx", &[], ""), &["25", "29"]),
        (req("GET", "/?pre=tx&q=b", &[], ""), &["14", "25", "29"]),
    ];
    assert_same_decisions("folding", &on, &off, cases);
}

/// Rules that touch only TX keys the snapshot holds (`SkipPlan::CleanTx`), as CRS's score
/// sums and checks: decided from the snapshot while those keys hold its values, run as
/// written once a rule changed one of them (here the request's), and run in a transaction
/// that did not take the snapshot. Against an engine without the snapshot.
#[test]
fn rules_on_clean_tx_keys_decide_as_running_them() {
    use super::compile::{CompileOptions, CompiledRuleSet, Item, SkipPlan};
    use std::sync::Arc;
    let rules = format!(
        "{HEAD}SecRule ARGS:pre \"@streq tx\" \"id:1,phase:1,pass,nolog,setvar:tx.score=9\"\n\
         SecAction \"id:2,phase:1,pass,nolog,setvar:tx.level=1,setvar:tx.score=0,setvar:tx.score_pl1=0,setvar:tx.limit=5,setvar:tx.sum=0\"\n\
         SecRule TX:level \"@eq 7\" \"id:3,phase:1,pass,nolog\"\n\
         SecRule ARGS:a \"@rx x\" \"id:10,phase:2,pass,nolog,setvar:tx.score_pl1=+5\"\n\
         SecRule ARGS:z \"@rx y\" \"id:11,phase:2,pass,nolog,setvar:tx.score_pl1=+0\"\n\
         SecRule TX:level \"@ge 1\" \"id:20,phase:2,pass,nolog,setvar:tx.score=+%{{tx.score_pl1}}\"\n\
         SecRule TX:score \"@ge %{{tx.limit}}\" \"id:21,phase:2,deny,status:403,setvar:tx.sum=%{{tx.score}}\"\n\
         SecRule TX:score \"@lt %{{tx.limit}}\" \"id:22,phase:5,pass,chain\"\n\
         SecRule TX:level \"@gt 1\"\n\
         SecRule TX:score \"@eq 0\" \"id:23,phase:5,pass,log\"\n\
         SecRule TX:sum \"@gt 0\" \"id:24,phase:5,pass\"\n\
         SecRule ARGS:e \"@rx .\" \"id:12,phase:2,pass,nolog,setvar:tx.exec=7\"\n\
         SecAction \"id:25,phase:5,pass,nolog,setvar:tx.exec=%{{tx.score_pl1}},setvar:tx.exec=+%{{tx.score}}\"\n\
         SecRule TX:exec \"@gt 0\" \"id:26,phase:5,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    let clean: Vec<u64> = (0..5)
        .flat_map(|p| on.phases[p].iter().zip(&on.fast[p]))
        .filter_map(|(item, f)| match (item, f) {
            (Item::Rule(r), Some(f)) if matches!(f.plan, SkipPlan::CleanTx { .. }) => r.id(),
            _ => None,
        })
        .collect();
    // The run is rules 2 and 3; a SecAction alone would leave MATCHED_VARS as it found it.
    assert_eq!(on.init.as_ref().map(|s| s.run.clone()), Some(1..3));
    // 20 matches and adds 0 (a fold); 21 and 24 fail, 22 fails in its chain; 25 sets
    // `exec` to the sum of two checked keys (a fold that writes). 23 matches and logs, which
    // is an effect, and 26 reads `exec`, which the snapshot does not hold: they run.
    assert_eq!(clean, [20, 21, 22, 24, 25]);
    let on = NativeEngine::from_compiled(Arc::new(on));
    let off =
        engine_with(&set, CompileOptions { no_init_snapshot: true, ..CompileOptions::default() });
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/", &[], ""), &["23"]),
        // 10 raises the score: 20, 21 and 24 must run.
        (req("GET", "/?a=x", &[], ""), &["21", "24", "26"]),
        // `exec` set by the request before 25: the fold sets it back to 0.
        (req("GET", "/?e=1", &[], ""), &["23"]),
        // Written with the same value: still clean.
        (req("GET", "/?z=y", &[], ""), &["23"]),
        // The score set before the snapshot: no snapshot, every rule runs.
        (req("GET", "/?pre=tx", &[], ""), &["23"]),
    ];
    assert_same_decisions("clean TX", &on, &off, cases);
}

/// TX lives in the reused transaction scratch: what one transaction set, in the init run or
/// from the request, is gone in the next one.
#[test]
fn tx_does_not_leak_into_the_next_transaction() {
    let rules = "SecRuleEngine On\n\
         SecAction \"id:1,phase:1,pass,nolog,setvar:tx.count=+1\"\n\
         SecRule ARGS:a \"@streq x\" \"id:2,phase:1,pass,nolog,setvar:tx.from_request=1\"\n\
         SecRule TX:count \"@gt 1\" \"id:3,phase:1,deny,status:403\"\n\
         SecRule &TX:from_request \"@eq 1\" \"id:4,phase:1,deny,status:401\"\n";
    let set = crate::seclang::parse_str(rules, "t.conf").expect("rules parse");
    let e = NativeEngine::new(&set).expect("rules compile");
    let with = req("GET", "/?a=x", &[], "");
    let without = req("GET", "/", &[], "");
    assert_eq!(e.evaluate(&with).status, 401);
    for _ in 0..3 {
        assert_eq!(e.evaluate(&without).status, 200);
        assert_eq!(e.evaluate(&with).status, 401);
    }
}

/// A key regex on TX answers the init snapshot's keys from positions found once
/// (`CTarget::snapshot_hits`) and tests only the keys added after them: the same values, in
/// the same order, as testing every key, with keys added by the request, after a snapshot
/// key is removed (positions shift), and in a transaction that did not take the snapshot.
#[test]
fn tx_key_selectors_answer_snapshot_keys_as_a_full_scan() {
    use super::compile::CompileOptions;
    let rules = format!(
        "{HEAD}SecRule ARGS:pre \"@streq tx\" \"id:1,phase:1,pass,nolog,setvar:tx.hdr_pre=1\"\n\
         SecAction \"id:2,phase:1,pass,nolog,setvar:tx.hdr_a=1,setvar:tx.other=2,setvar:tx.hdr_b=x\"\n\
         SecRule &TX:other \"@eq 9\" \"id:5,phase:1,pass,nolog\"\n\
         SecRule ARGS:add \"@rx .\" \"id:3,phase:1,pass,nolog,setvar:tx.hdr_new=%{{matched_var}}\"\n\
         SecRule ARGS:del \"@streq a\" \"id:4,phase:1,pass,nolog,setvar:!tx.hdr_a\"\n\
         SecRule TX:/^hdr_/ \"@streq 1\" \"id:20,phase:2,pass\"\n\
         SecRule TX:/^hdr_/ \"@streq new\" \"id:21,phase:2,pass\"\n\
         SecRule &TX:/^hdr_/ \"@eq 3\" \"id:22,phase:2,pass\"\n\
         SecRule TX:/hdr_/ \"@rx .\" \"id:23,phase:2,pass,nolog,setvar:tx.seen=%{{matched_var_name}}\"\n\
         SecRule TX:seen \"@streq TX:hdr_new\" \"id:24,phase:2,pass\"\n\
         SecRule TX:seen \"@streq TX:hdr_b\" \"id:25,phase:2,pass\"\n\
         SecRule TX:/^other$/ \"@eq 2\" \"id:26,phase:2,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = engine_with(&set, CompileOptions::default());
    assert!(on.compiled().init.is_some(), "rules 2.. are the snapshot's run");
    let off =
        engine_with(&set, CompileOptions { no_init_snapshot: true, ..CompileOptions::default() });
    let cases: &[(Request, &[&str])] = &[
        (req("GET", "/", &[], ""), &["20", "25", "26"]),
        (req("GET", "/?add=new", &[], ""), &["20", "21", "22", "24", "26"]),
        (req("GET", "/?del=a", &[], ""), &["25", "26"]),
        (req("GET", "/?del=a&add=new", &[], ""), &["21", "24", "26"]),
        (req("GET", "/?add=new&del=a", &[], ""), &["21", "24", "26"]),
        (req("GET", "/?pre=tx", &[], ""), &["20", "22", "25", "26"]),
        (req("GET", "/?pre=tx&del=a", &[], ""), &["20", "25", "26"]),
    ];
    assert_same_decisions("snapshot key hits", &on, &off, cases);
}

/// A rule whose `skipAfter` names one marker jumps straight to that marker's position
/// (`CompiledRuleSet::jumps`), deciding as walking past every item would: rules and markers of
/// other names in between, a jump set by a chain link, a rule naming two markers (no entry:
/// it walks) with a `skip`, and jumps in the next phase.
#[test]
fn skip_after_jumps_decide_as_the_walk() {
    let rules = format!(
        "{HEAD}SecRule ARGS:a \"@streq 1\" \"id:1,phase:1,pass,nolog,skipAfter:M1\"\n\
         SecRule ARGS \"@rx .\" \"id:2,phase:1,pass\"\n\
         SecMarker OTHER\n\
         SecRule ARGS \"@rx .\" \"id:3,phase:1,pass\"\n\
         SecMarker M1\n\
         SecRule ARGS \"@rx .\" \"id:4,phase:1,pass\"\n\
         SecRule ARGS:b \"@streq 1\" \"id:5,phase:1,pass,nolog,chain\"\n\
         SecRule ARGS:b \"@rx 1\" \"skipAfter:M2\"\n\
         SecRule ARGS \"@rx .\" \"id:6,phase:1,pass\"\n\
         SecMarker M2\n\
         SecRule ARGS:c \"@streq 1\" \"id:7,phase:1,pass,nolog,skip:1,skipAfter:M3,skipAfter:M2\"\n\
         SecRule ARGS \"@rx .\" \"id:8,phase:1,pass\"\n\
         SecRule ARGS:d \"@streq 1\" \"id:9,phase:2,pass,nolog,skipAfter:M3\"\n\
         SecRule ARGS \"@rx .\" \"id:10,phase:2,pass\"\n\
         SecMarker M3\n\
         SecRule ARGS \"@rx .\" \"id:11,phase:2,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let e = NativeEngine::new(&set).expect("rules compile");
    let rs = e.compiled();
    // Phase 1 items: 1, 2, OTHER, 3, M1, 4, 5, 6, M2, 7, 8, M3; phase 2: 9, 10, M3 (with
    // every marker of the file), 11.
    let at = |p: usize, id: u64| {
        rs.phases[p]
            .iter()
            .position(|i| matches!(i, super::compile::Item::Rule(r) if r.id() == Some(id)))
            .expect("rule in phase")
    };
    let marker = |p: usize, name: &str| {
        rs.phases[p]
            .iter()
            .position(|i| matches!(i, super::compile::Item::Marker(m) if m == name))
            .expect("marker in phase") as u32
    };
    assert_eq!(rs.jumps[0][at(0, 1)], marker(0, "M1"));
    assert_eq!(rs.jumps[0][at(0, 5)], marker(0, "M2"));
    assert_eq!(rs.jumps[0][at(0, 7)], u32::MAX, "two names: no entry");
    assert_eq!(rs.jumps[1][at(1, 9)], marker(1, "M3"));
    let cases: &[(&str, &[&str])] = &[
        ("/?x=1", &["2", "3", "4", "6", "8", "10", "11"]),
        ("/?a=1", &["4", "6", "8", "10", "11"]),
        ("/?b=1", &["2", "3", "4", "8", "10", "11"]),
        // 7 names two markers (no table entry): its jump and its skip:1 take 8 and 9.
        ("/?c=1", &["2", "3", "4", "6", "10", "11"]),
        ("/?d=1", &["2", "3", "4", "6", "8", "11"]),
        ("/?a=1&d=1", &["4", "6", "8", "11"]),
        ("/?c=1&d=1", &["2", "3", "4", "6", "10", "11"]),
        ("/?b=1&c=1", &["2", "3", "4", "10", "11"]),
    ];
    // The same ids as the build before the table (c7240ea: every item walked) and as
    // libmodsecurity3 (`wafbench eval --engine modsec` on these rules and requests).
    for (uri, want) in cases {
        let d = e.evaluate(&req("GET", uri, &[], ""));
        assert_eq!(d.matched_ids, *want, "{uri}");
    }
}

/// Rules folded as matched append their MATCHED_VARS pairs only when a rule next runs (the
/// pairs are kept pending until then, and dropped with MATCHED_VARS when a link fails): a
/// rule reading MATCHED_VARS, MATCHED_VAR_NAME or `&MATCHED_VARS` right after one or several
/// folds sees what running every rule shows it, on the native loop and both Lua backends.
#[test]
fn folded_matches_leave_their_matched_vars_for_the_next_rule() {
    use super::compile::{CompileOptions, CompiledRuleSet, Item};
    use crate::lua::{Backend, LuaEngine, LuaOptions};
    use std::sync::Arc;
    let rules = format!(
        "{HEAD}SecAction \"id:1,phase:1,pass,nolog,setvar:tx.level=1\"\n\
         SecAction \"id:3,phase:1,pass,nolog,setvar:tx.limit=3\"\n\
         SecAction \"id:4,phase:1,pass,nolog,setvar:tx.a=1\"\n\
         SecAction \"id:5,phase:1,pass,nolog,setvar:tx.b=1\"\n\
         SecRule TX:b \"@eq 5\" \"id:6,phase:1,pass,nolog\"\n\
         SecRule ARGS:never \"@rx .\" \"id:2,phase:1,pass\"\n\
         SecRule TX:level \"@lt 2\" \"id:10,phase:1,pass,nolog,skipAfter:END-A\"\n\
         SecRule ARGS \"@rx .\" \"id:11,phase:1,pass\"\n\
         SecMarker END-A\n\
         SecRule MATCHED_VARS \"@streq 1\" \"id:12,phase:1,pass,setvar:tx.seen=%{{MATCHED_VAR_NAME}}\"\n\
         SecRule TX:level \"@lt 3\" \"id:13,phase:1,pass,nolog,skipAfter:END-B\"\n\
         SecMarker END-B\n\
         SecRule TX:limit \"@lt 4\" \"id:14,phase:1,pass,nolog,skipAfter:END-C\"\n\
         SecMarker END-C\n\
         SecRule &MATCHED_VARS \"@eq 4\" \"id:15,phase:1,pass\"\n\
         SecRule TX:seen \"@streq MATCHED_VARS:TX:level\" \"id:16,phase:1,pass\"\n\
         SecRule TX:level \"@lt 2\" \"id:17,phase:1,pass,nolog,skipAfter:END-D\"\n\
         SecMarker END-D\n\
         SecRule TX:level \"@eq 7\" \"id:18,phase:1,pass,nolog\"\n\
         SecRule &MATCHED_VARS \"@eq 0\" \"id:19,phase:1,pass\"\n\
         SecRule TX:limit \"@lt 4\" \"id:20,phase:2,pass,nolog,skipAfter:END-E\"\n\
         SecRule ARGS \"@rx .\" \"id:21,phase:2,pass\"\n\
         SecMarker END-E\n\
         SecRule ARGS|MATCHED_VARS \"@rx ^[13]$\" \"id:22,phase:2,pass\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let on = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    let mut folded: Vec<u64> = (0..5)
        .flat_map(|p| on.phases[p].iter().zip(&on.fast[p]))
        .filter_map(|(item, f)| match (item, f) {
            (Item::Rule(r), Some(f)) if f.plan.is_folded_match() => r.id(),
            _ => None,
        })
        .collect();
    folded.sort_unstable();
    assert_eq!(folded, [10, 13, 14, 17, 20]);
    let on = Arc::new(on);
    let off =
        engine_with(&set, CompileOptions { no_init_snapshot: true, ..CompileOptions::default() });
    let cases: Vec<(Request, &[&str])> = vec![
        // 12 sees fold 10's pair (TX:level = 1) and appends its own; 13 and 14 add two
        // more: four; 18 fails and forgets them all. 22 sees fold 20's pair (TX:limit = 3).
        (req("GET", "/", &[], ""), &["12", "15", "16", "19", "22"]),
        (req("GET", "/?a=1", &[], ""), &["12", "15", "16", "19", "22"]),
        (req("GET", "/?a=2", &[], ""), &["12", "15", "16", "19", "22"]),
    ];
    assert_same_decisions("pending folds", &NativeEngine::from_compiled(on.clone()), &off, &cases);
    for backend in [Backend::Mlua, Backend::Ffi] {
        let opts = LuaOptions { backend, ..Default::default() };
        let mut lua = LuaEngine::from_compiled(on.clone(), opts).expect("lua engine");
        for (r, want) in &cases {
            let d = lua.evaluate(r).expect("lua decision");
            assert_eq!(d.matched_ids, *want, "{backend:?} on {:?}", r.uri);
        }
    }
}

/// A link's hot copy of its targets' value sources answers as the targets do, past the
/// copy's length too (eight targets, some without a source).
#[test]
fn hot_sources_answer_as_the_targets() {
    use super::compile::{CompileOptions, CompiledRuleSet, HOT_SOURCES};
    let rules = format!(
        "{HEAD}SecRule ARGS|ARGS_NAMES|TX:a|REQUEST_HEADERS|REQUEST_COOKIES|REQUEST_URI|\
         &ARGS|REQUEST_FILENAME|REQUEST_LINE \"@rx x\" \"id:1,phase:2,pass,t:lowercase\"\n"
    );
    let set = crate::seclang::parse_str(&rules, "t.conf").expect("rules parse");
    let rs = CompiledRuleSet::compile_with(&set, CompileOptions::default()).expect("compile");
    let rule = rs.rules().next().expect("one rule");
    assert!(rule.targets.len() > HOT_SOURCES);
    assert!(rule.targets.iter().any(|t| t.source.is_none()));
    assert!(rule.targets[HOT_SOURCES..].iter().any(|t| t.source.is_some()));
    for (i, t) in rule.targets.iter().enumerate() {
        assert_eq!(rule.hot.source(i, t), t.source, "target {i}");
    }
}

/// The hot copy keeps 16-bit source numbers, and is not used at all when one does not fit.
#[test]
fn hot_sources_fit_16_bits_or_are_not_kept() {
    use super::compile::{HOT_SOURCES, LinkHot};
    let none = u16::MAX;
    assert_eq!(
        LinkHot::sources_of([Some(3), None, Some(65_534)].into_iter()),
        Some([3, none, 65_534, none, none, none])
    );
    // Past the copy's length nothing is looked at.
    let many = (0..HOT_SOURCES as u32).map(Some).chain([Some(1 << 20)]);
    assert_eq!(LinkHot::sources_of(many), Some([0, 1, 2, 3, 4, 5]));
    assert_eq!(LinkHot::sources_of([Some(1), Some(65_535)].into_iter()), None);
    assert_eq!(LinkHot::sources_of([Some(70_000)].into_iter()), None);
}

/// What a link over value sources reads when no value matches (`link_target_source`): the
/// rule's first cache line only (`hot`, the removal and update flags, the verdict number,
/// the prefilter slot and the target list), not the exclusions or the operator after them.
#[test]
fn a_failing_link_reads_one_line() {
    use super::compile::{CRule, CTarget, LinkHot};
    use std::mem::{offset_of, size_of};
    let line = |start: usize, len: usize| {
        assert!(start / 64 == (start + len - 1) / 64, "{start}+{len} crosses a line");
        start / 64
    };
    assert_eq!(std::mem::align_of::<CRule>(), 64);
    assert_eq!(size_of::<LinkHot>(), 32);
    assert_eq!(line(offset_of!(CRule, hot), size_of::<LinkHot>()), 0);
    for (at, len) in [
        (offset_of!(CRule, removed), 1),
        (offset_of!(CRule, updated), 1),
        (offset_of!(CRule, update_adds), 1),
        (offset_of!(CRule, verdict_code), 4),
        (offset_of!(CRule, rx), size_of::<super::sources::RxSlot>()),
        (offset_of!(CRule, targets), size_of::<Box<[CTarget]>>()),
    ] {
        assert_eq!(line(at, len), 0);
    }
    assert!(offset_of!(CRule, exclusions) >= 64);
    assert!(offset_of!(CRule, operator) >= 64);
}
