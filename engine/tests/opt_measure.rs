//! How much the `@rx` stand-ins save on the native path (ignored by default: it times).
//!
//! `cargo test --release -p waf-engine --test opt_measure -- --ignored --nocapture`
//!
//! Every distinct CRS 3.3.4 `@rx` pattern runs over the values of `corpora/benign.jsonl`
//! (URI, each header value, body, and the `&`-separated parts of query and body, lower-cased
//! as most CRS rules see them) with the regex alone, with the literal replacement and with
//! the prefilter. Before timing, every configuration's verdicts are checked equal to the
//! regex's: a wrong answer is not timed. Medians of 5 rounds per configuration, rounds
//! interleaved so machine noise hits all of them alike.

use std::time::Instant;
use waf_engine::eval::compile::CompiledRuleSet;
use waf_engine::load::{RuleSpec, load_rules};
use waf_engine::operator::RxMatcher;
use waf_engine::operator::fast::{FastRx, RxOptimisations};
use waf_engine::opt::{self, rxclass::RxClass};

fn values() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/benign.jsonl");
    let text = std::fs::read_to_string(path).expect("benign corpus");
    let (reqs, _) = waf_engine::request::read_corpus(text.as_bytes(), "benign");
    let mut out = Vec::new();
    for r in reqs {
        out.push(r.uri.clone());
        for (_, v) in &r.headers {
            out.push(v.as_bytes().to_vec());
        }
        out.push(r.body.clone());
        let q = r.uri.splitn(2, |&b| b == b'?').nth(1).unwrap_or_default().to_vec();
        for part in q.split(|&b| b == b'&').chain(r.body.split(|&b| b == b'&')) {
            out.push(part.to_vec());
        }
    }
    out.iter_mut().for_each(|v| v.make_ascii_lowercase());
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "timing; run explicitly in release"]
fn rx_stand_ins_on_the_native_path() {
    if !std::path::Path::new("/usr/share/modsecurity-crs/rules").is_dir() {
        eprintln!("skipping: CRS not installed");
        return;
    }
    let set = load_rules(&RuleSpec::from_args(&["crs"], Some(4), None)).expect("CRS");
    let rs = CompiledRuleSet::compile(&set).expect("compile");
    let mut patterns: Vec<String> = Vec::new();
    opt::for_each_operator(&rs, |_, op| {
        if let (Some(_), Some(re), "rx") = (op.rx_fast(), op.regex(), op.name()) {
            if !patterns.iter().any(|p| p == re.pattern()) {
                patterns.push(re.pattern().to_string());
            }
        }
    });
    let vals = values();
    // (group, regex, fast)
    let mut groups: Vec<(&'static str, RxMatcher, FastRx)> = Vec::new();
    for p in &patterns {
        let (Ok(re), Some(f)) = (RxMatcher::new(p), FastRx::build(p, RxOptimisations::ALL)) else {
            continue;
        };
        let g = match (f.class(), re.is_backtracking()) {
            (RxClass::Keep, true) => "kept, backtracking",
            (RxClass::Keep, false) => "kept, linear",
            _ => "replaced",
        };
        groups.push((g, re, f));
    }
    let configs = [
        ("regex", RxOptimisations::NONE),
        ("replace", RxOptimisations { replace: true, prefilter: false }),
        ("prefilter", RxOptimisations { replace: false, prefilter: true }),
    ];
    // Answers first.
    for (_, re, f) in &groups {
        for (_, o) in configs {
            f.set(o);
            for v in &vals {
                assert_eq!(f.matches(re, v, None), re.matches(v, None), "{}", re.pattern());
            }
        }
    }
    let names = ["replaced", "kept, linear", "kept, backtracking"];
    let mut times: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); configs.len()]; names.len()];
    for _round in 0..5 {
        for (ci, (_, o)) in configs.iter().enumerate() {
            for (gi, g) in names.iter().enumerate() {
                let t = Instant::now();
                let mut hits = 0usize;
                for (_, re, f) in groups.iter().filter(|x| x.0 == *g) {
                    f.set(*o);
                    for v in &vals {
                        hits += usize::from(f.matches(re, v, None).unwrap_or(false));
                    }
                }
                std::hint::black_box(hits);
                times[gi][ci].push(t.elapsed().as_secs_f64());
            }
        }
    }
    eprintln!("{} values; ns per (pattern, value) call, median of 5 rounds", vals.len());
    for (gi, g) in names.iter().enumerate() {
        let n = groups.iter().filter(|x| x.0 == *g).count();
        if n == 0 {
            eprintln!("  {g:<20} (  0 patterns)");
            continue;
        }
        let calls = (n * vals.len()) as f64;
        let cells: Vec<String> = configs
            .iter()
            .enumerate()
            .map(|(ci, (name, _))| {
                format!("{name} {:.1}", median(times[gi][ci].clone()) * 1e9 / calls)
            })
            .collect();
        eprintln!("  {g:<20} ({n:>3} patterns): {}", cells.join(" | "));
    }
}
