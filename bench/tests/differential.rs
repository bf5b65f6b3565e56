//! Differential test: one corpus, every engine, every disagreement a failure.
//!
//! Runs the native engine and the ModSecurity peer (libmodsecurity3 3.0.9) over every request
//! of the committed corpora and the CRS 3.3.4 regression corpus, at paranoia 1 and 4, and
//! requires the same `status`, `disruptive` and `matched_ids` for each request. Needs
//! libmodsecurity3 and modsecurity-crs (installed by `.ci/run`); outside CI their absence
//! skips the test with a notice.

use std::path::PathBuf;
use waf_engine::request::read_corpus;
use waf_engine::{Decision, Request};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus(path: &std::path::Path) -> Vec<Request> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (reqs, errs) = read_corpus(std::io::BufReader::new(f), &path.display().to_string());
    assert!(errs.is_empty(), "{errs:?}");
    reqs
}

fn peer_available() -> bool {
    let crs = waf_engine::crs::CrsLayout::locate().is_ok();
    let lib = wafbench::modsec::ModSecPeer::from_seclang("SecRuleEngine On\n").is_ok();
    if crs && lib {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must have libmodsecurity3 and CRS");
    eprintln!("SKIPPED: libmodsecurity3 or modsecurity-crs missing");
    false
}

/// Requests on which libmodsecurity3 itself is not deterministic, so no engine can agree
/// with it: a multipart `Content-Disposition` with an unterminated quoted `filename`, where
/// v3.0.9's `Multipart::parse_content_disposition` steps over the string's NUL and parses
/// whatever heap bytes follow (undefined behaviour). Seen both ways in this very test: the
/// peer refused the body (400) in one process and accepted it in another. wafbench refuses
/// it (see `txn::multipart`).
const V3_UNDEFINED: &[&str] = &["attack-000095", "attack-000651", "attack-000929"];

fn differences(a: &[Decision], b: &[Decision]) -> Vec<String> {
    a.iter()
        .zip(b)
        .filter(|(x, _)| !V3_UNDEFINED.contains(&x.id.as_str()))
        .filter(|(x, y)| {
            (x.status, x.disruptive, &x.matched_ids) != (y.status, y.disruptive, &y.matched_ids)
        })
        .map(|(x, y)| format!("{}: native {x:?} / modsec {y:?}", x.id))
        .collect()
}

fn check(rules: &str, paranoia: u8, files: &[PathBuf]) {
    let mut native = wafbench::build_engine("native", rules, Some(paranoia)).expect("native");
    let mut peer = wafbench::build_engine("modsec", rules, Some(paranoia)).expect("modsec");
    let mut failures = Vec::new();
    let mut total = 0;
    for f in files {
        let reqs = corpus(f);
        total += reqs.len();
        let a: Vec<Decision> = reqs.iter().map(|r| native.decide(r)).collect();
        let b: Vec<Decision> = reqs.iter().map(|r| peer.decide(r)).collect();
        failures.extend(differences(&a, &b).into_iter().map(|d| format!("{}: {d}", f.display())));
    }
    assert!(total >= 4000, "only {total} requests");
    assert!(
        failures.is_empty(),
        "{rules} PL{paranoia}: {} of {total} requests disagree:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn files() -> Option<Vec<PathBuf>> {
    let suite = waf_engine::crs::regression_suite_for_test()?;
    let ws = workspace();
    Some(vec![
        ws.join("corpora/benign.jsonl"),
        ws.join("corpora/attack.jsonl"),
        ws.join("corpora/mixed.jsonl"),
        suite.join("crs-3.3.4-regression.jsonl"),
    ])
}

#[test]
fn native_agrees_with_modsecurity_at_paranoia_1() {
    if !peer_available() {
        return;
    }
    let Some(files) = files() else { return };
    check("crs", 1, &files);
}

#[test]
fn native_agrees_with_modsecurity_at_paranoia_4() {
    if !peer_available() {
        return;
    }
    let Some(files) = files() else { return };
    check("crs", 4, &files);
}

/// The embedded default rule set (both languages, printed as SecLang for the peer).
#[test]
fn native_agrees_with_modsecurity_on_the_default_rule_set() {
    if !peer_available() {
        return;
    }
    let ws = workspace();
    let files: Vec<PathBuf> = ["benign", "attack", "mixed"]
        .iter()
        .map(|c| ws.join(format!("corpora/{c}.jsonl")))
        .collect();
    check("default", 1, &files);
}

/// `wafbench ftw` with the native engine reaches at least the score it reached when this
/// test was written (libmodsecurity3 3.0.9 itself: 2,343 of 2,393 scored stages, 97.91%).
#[test]
fn ftw_suite_through_the_native_engine() {
    let Some(dir) = waf_engine::crs::regression_suite_for_test() else { return };
    if waf_engine::crs::CrsLayout::locate().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must have modsecurity-crs");
        return;
    }
    use wafbench::ftw;
    let dir = dir.join("v3.3.4");
    let stages = ftw::plan(&ftw::load_all(&[dir]).unwrap());
    let mut engine = wafbench::build_engine("native", "crs", Some(4)).unwrap();
    let report = ftw::run(&stages, engine.as_mut());
    let t = &report.totals;
    let scored = t.passed + t.failed;
    assert!(t.passed >= 2343, "native ftw score fell: {} of {scored}", t.passed);
}

/// Rule files that leave the base directives unset (`SecRequestBodyAccess`,
/// `SecResponseBodyAccess`, even `SecRuleEngine`), so that the engines' defaults decide, and
/// one that turns the response body phase on. It also caught the response variables
/// (`RESPONSE_BODY`, `RESPONSE_STATUS`, ...) having no value before their phase, where v3's
/// have an empty one.
/// Each file logs, per phase, whether a request or body variable has a value; native, lua, lua-ffi
/// and the peer must see the same on the committed corpora. It caught an unset
/// `SecRequestBodyAccess` skipping phase 2 in our engines (v3 runs it).
#[test]
fn engines_agree_with_modsecurity_on_unset_directives() {
    if !peer_available() {
        return;
    }
    let vars = [
        "ARGS",
        "ARGS_POST",
        "ARGS_NAMES",
        "REQUEST_BODY",
        "REQUEST_BODY_LENGTH",
        "FULL_REQUEST_LENGTH",
        "FILES",
        "FILES_NAMES",
        "REQBODY_PROCESSOR",
        "REQBODY_ERROR",
        "XML:/*",
        "RESPONSE_BODY",
        "RESPONSE_STATUS",
        "RESPONSE_PROTOCOL",
        "RESPONSE_CONTENT_TYPE",
        "RESPONSE_CONTENT_LENGTH",
        "OUTBOUND_DATA_ERROR",
    ];
    let headers = [
        "",
        "SecRuleEngine On\n",
        "SecRuleEngine On\nSecRequestBodyAccess Off\n",
        "SecRuleEngine On\nSecResponseBodyAccess On\n",
        "SecRuleEngine On\nSecRule REQUEST_METHOD \"@streq PUT\" \
         \"id:1,phase:1,pass,nolog,ctl:requestBodyAccess=Off\"\n",
    ];
    let ws = workspace();
    let mut reqs = Vec::new();
    for c in ["benign", "attack", "mixed"] {
        reqs.extend(corpus(&ws.join(format!("corpora/{c}.jsonl"))).into_iter().take(300));
    }
    let dir = std::env::temp_dir().join(format!("wafbench-unset-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (k, head) in headers.iter().enumerate() {
        let mut text = head.to_string();
        let mut id = 100;
        for v in vars {
            // A value, an empty value, and how many (v3's anchored variables always have
            // one, empty until set).
            for phase in 1..=5 {
                for (target, op) in [(v.to_string(), "@rx ."), (v.to_string(), "@rx ^$")]
                    .into_iter()
                    .chain((!v.contains(':')).then(|| (format!("&{v}"), "@eq 1")))
                {
                    id += 1;
                    text.push_str(&format!(
                        "SecRule {target} \"{op}\" \"id:{id},phase:{phase},pass,log\"\n"
                    ));
                }
            }
        }
        let path = dir.join(format!("unset-{k}.conf"));
        std::fs::write(&path, &text).unwrap();
        let rules = path.to_str().unwrap();
        let mut peer = wafbench::build_engine("modsec", rules, None).expect("modsec");
        let want: Vec<Decision> = reqs.iter().map(|r| peer.decide(r)).collect();
        for engine in ["native", "lua", "lua-ffi"] {
            let mut e = wafbench::build_engine(engine, rules, None).expect(engine);
            let got: Vec<Decision> = reqs.iter().map(|r| e.decide(r)).collect();
            let diff = differences(&got, &want);
            assert!(
                diff.is_empty(),
                "{engine}, rules:\n{head}\n{}",
                diff[..diff.len().min(5)].join("\n")
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
