//! The Lua engines against the native evaluator on EVERY request of the standard corpora
//! (`corpora/*.jsonl`) and of the CRS 3.3.4 regression corpus, with CRS at paranoia 1 and 4:
//! `status`, `disruptive` and `matched_ids` (and the anomaly score) must be identical.
//! The native evaluator with its backend-neutral passes off must decide the same as with them
//! on. Run it in release: `cargo test --release -p waf-engine --test lua_differential`.

use std::path::{Path, PathBuf};
use waf_engine::eval::NativeEngine;
use waf_engine::load::{RuleSpec, load_rules};
use waf_engine::lua::{Backend, LuaEngine, LuaOptions, PassSet};
use waf_engine::request::{Request, read_corpus};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// `WAF_CRS_TESTS`, `<workspace>/../shared/crs-tests`, then /work/shared/crs-tests.
fn crs_tests_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WAF_CRS_TESTS") {
        return PathBuf::from(d);
    }
    let near = workspace().join("../shared/crs-tests");
    if near.is_dir() { near } else { PathBuf::from("/work/shared/crs-tests") }
}

fn corpus(path: &Path) -> Vec<Request> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (reqs, errs) = read_corpus(std::io::BufReader::new(f), &path.display().to_string());
    assert!(errs.is_empty(), "{}: {} bad lines", path.display(), errs.len());
    reqs
}

fn all_requests() -> Vec<(String, Request)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace().join("corpora"))
        .expect("corpora/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files.push(crs_tests_dir().join("crs-3.3.4-regression.jsonl"));
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for r in corpus(&f) {
            out.push((name.clone(), r));
        }
    }
    out
}

fn differential(paranoia: u8) {
    let set = load_rules(&RuleSpec::from_args(&["crs"], Some(paranoia), None)).expect("CRS");
    let native = NativeEngine::new(&set).expect("native");
    let mk = |backend, level| {
        LuaEngine::from_compiled(
            native.compiled().clone(),
            LuaOptions { backend, passes: PassSet::level(level), ..LuaOptions::default() },
        )
        .expect("lua engine")
    };
    // mlua at level 3: every pass, the transformation cache included (which makes every rule
    // run). lua-ffi at level 2, as `wafbench latency` runs it: the init snapshot, the
    // prefilter plans.
    let mut lua = mk(Backend::Mlua, 3);
    let mut ffi = mk(Backend::Ffi, 2);
    let reqs = all_requests();
    assert!(reqs.len() > 6000, "only {} requests", reqs.len());
    let mut disagreements = Vec::new();
    for (file, r) in &reqs {
        let want = native.evaluate(r);
        for (name, e) in [("lua", &mut lua), ("lua-ffi", &mut ffi)] {
            match e.evaluate(r) {
                Ok(got) => {
                    if (got.status, got.disruptive, &got.matched_ids, got.anomaly_score)
                        != (want.status, want.disruptive, &want.matched_ids, want.anomaly_score)
                    {
                        disagreements.push(format!(
                            "{file} {} {name}: native {} {:?}, got {} {:?}",
                            r.id, want.status, want.matched_ids, got.status, got.matched_ids
                        ));
                    }
                }
                Err(err) => disagreements.push(format!("{file} {} {name}: error {err}", r.id)),
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "PL{paranoia}: {} disagreements over {} requests, first: {:#?}",
        disagreements.len(),
        reqs.len(),
        &disagreements[..disagreements.len().min(10)]
    );
}

#[test]
fn lua_engines_match_native_at_pl1() {
    differential(1);
}

#[test]
fn lua_engines_match_native_at_pl4() {
    differential(4);
}

/// The backend-neutral passes (`value-sources`, `shared-prefilter`) against the evaluator
/// without them, on the same requests: switching either off must not change a decision.
fn native_passes(paranoia: u8) {
    use std::sync::Arc;
    use waf_engine::eval::compile::{CompileOptions, CompiledRuleSet};
    let set = load_rules(&RuleSpec::from_args(&["crs"], Some(paranoia), None)).expect("CRS");
    let full = NativeEngine::new(&set).expect("native");
    let variants = [
        (
            "no shared-prefilter",
            CompileOptions {
                no_value_sources: false,
                no_rx_prefilter: true,
                no_init_snapshot: true,
            },
        ),
        (
            "no value-sources",
            CompileOptions {
                no_value_sources: true,
                no_rx_prefilter: true,
                no_init_snapshot: true,
            },
        ),
    ];
    let reqs = all_requests();
    for (label, opts) in variants {
        let plain = NativeEngine::from_compiled(Arc::new(
            CompiledRuleSet::compile_with(&set, opts).expect("compiles"),
        ));
        let mut bad = Vec::new();
        for (file, r) in &reqs {
            let (a, b) = (full.evaluate(r), plain.evaluate(r));
            if (a.status, a.disruptive, &a.matched_ids, a.anomaly_score)
                != (b.status, b.disruptive, &b.matched_ids, b.anomaly_score)
            {
                bad.push(format!("{file} {}: {:?} vs {:?}", r.id, a.matched_ids, b.matched_ids));
            }
        }
        assert!(
            bad.is_empty(),
            "PL{paranoia} {label}: {} differ, first {:#?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
    }
}

#[test]
fn native_passes_change_no_decision_at_pl1() {
    native_passes(1);
}

#[test]
fn native_passes_change_no_decision_at_pl4() {
    native_passes(4);
}
