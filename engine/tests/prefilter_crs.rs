//! Soundness of the shared `@rx` prefilter on the real CRS 3.3.4 (Debian package, read at
//! test time): for every CRS `@rx` that got a prefilter slot, whenever the operator matches
//! a subject, one of its required literals occurs in it (ASCII case-insensitively) and the
//! subject is at least the minimum length. Subjects: every string of the CRS regression
//! suite (attack payloads, which match many of these patterns), their URL-decoded and
//! lower-cased forms, and random strings spliced from the literals themselves.
//!
//! A failure here means the evaluator would skip a regex that matches, so decisions would
//! change: the differential tests would catch it on their corpora, this test on every
//! pattern. Without CRS the test says so and passes, except under `CI=true`.

use proptest::prelude::*;
use waf_engine::eval::compile::CompiledRuleSet;
use waf_engine::eval::prefilter::{Requirement, required};
use waf_engine::eval::sources::PM_SLOT;
use waf_engine::load::{RuleSpec, load_rules};
use waf_engine::operator::RxMatcher;

mod common;
use common::crs_present;

/// (rule id, matcher, requirement) of every CRS `@rx` link with a prefilter slot.
fn slotted() -> Vec<(Option<u64>, RxMatcher, Requirement)> {
    let set = load_rules(&RuleSpec::from_args(&["crs"], Some(4), None)).expect("CRS loads");
    let rs = CompiledRuleSet::compile(&set).expect("CRS compiles");
    let mut out = Vec::new();
    for r in rs.rules() {
        let mut link = Some(r.as_ref());
        while let Some(l) = link {
            // `@pm` links have slots too (their phrases, exact literals by construction).
            if l.rx_slot().is_some_and(|s| s.slot & PM_SLOT == 0) {
                let re = l.operator.as_ref().and_then(|(_, op, _)| op.regex()).expect("@rx");
                let req = required(re.translated()).expect("a slot has a requirement");
                let m = RxMatcher::new(re.pattern()).expect("compiles again");
                out.push((r.id(), m, req));
            }
            link = l.chain.as_deref();
        }
    }
    out
}

fn holds(req: &Requirement, s: &[u8]) -> bool {
    let low = s.to_ascii_lowercase();
    s.len() >= req.min_len
        && req.literals.iter().any(|l| low.windows(l.len()).any(|w| w == l.as_slice()))
}

fn strings(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
    match v {
        serde_json::Value::String(s) => {
            let b = s.as_bytes().to_vec();
            out.push(waf_engine::transform::url_decode(&b).into_owned());
            out.push(b.to_ascii_lowercase());
            out.push(b);
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[test]
fn prefilter_never_rejects_a_crs_match() {
    if !crs_present() {
        return;
    }
    let pats = slotted();
    assert!(pats.len() > 150, "expected most CRS @rx to have a prefilter, got {}", pats.len());
    let mut subjects: Vec<Vec<u8>> = Vec::new();
    if let Some(dir) = waf_engine::crs::regression_suite_for_test() {
        let text = std::fs::read_to_string(dir.join("crs-3.3.4-regression.jsonl"))
            .expect("regression corpus readable");
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                strings(&v, &mut subjects);
            }
        }
    }
    subjects.sort();
    subjects.dedup();
    let mut matched = 0usize;
    for (id, m, req) in &pats {
        for s in &subjects {
            if m.matches(s, None).unwrap_or(false) {
                matched += 1;
                assert!(
                    holds(req, s),
                    "rule {id:?}: {:?} matches {:?} without any of {:?}",
                    m.pattern(),
                    String::from_utf8_lossy(s),
                    req.literals
                );
            }
        }
    }
    eprintln!("{} patterns, {} subjects, {matched} matches checked", pats.len(), subjects.len());
    assert!(subjects.is_empty() || matched > 1000, "too few matches to mean anything: {matched}");

    // Random subjects spliced from each pattern's own literals.
    for (id, m, req) in &pats {
        let pieces: Vec<Vec<u8>> = req
            .literals
            .iter()
            .cloned()
            .chain([b" ".to_vec(), b"(".to_vec(), b"'".to_vec(), b"=".to_vec(), b"\n".to_vec()])
            .collect();
        let strat = proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(pieces.clone()),
                proptest::collection::vec(any::<u8>(), 0..4),
            ],
            0..8,
        );
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&strat, |parts| {
                let s: Vec<u8> = parts.concat();
                for subject in [s.clone(), s.to_ascii_uppercase()] {
                    if m.matches(&subject, None).unwrap_or(false) {
                        prop_assert!(
                            holds(req, &subject),
                            "rule {:?}: {:?} on {:?}",
                            id,
                            m.pattern(),
                            String::from_utf8_lossy(&subject)
                        );
                    }
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
