//! Ablation of the Lua compiler's passes as an interleaved timing loop (less sensitive to a
//! noisy shared machine than criterion's one-engine-after-another): every round times each
//! engine once over the same requests, answers checked first; medians over the rounds.
//! `cargo test --release -p wafbench --test lua_ablation -- --ignored --nocapture`

use std::sync::Arc;
use std::time::Instant;
use waf_engine::eval::NativeEngine;
use waf_engine::lua::{Backend, LuaEngine, LuaOptions, Pass, PassSet};
use waf_engine::request::read_corpus;
use waf_engine::{Decision, Engine};

fn key(d: &Decision) -> (u16, bool, Vec<String>) {
    (d.status, d.disruptive, d.matched_ids.clone())
}

#[test]
#[ignore = "timing run; prints a table"]
fn lua_pass_ablation() {
    let n: usize =
        std::env::var("WAF_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let rounds: usize =
        std::env::var("WAF_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/mixed.jsonl");
    let f = std::fs::File::open(path).expect("corpus");
    let (mut reqs, _) = read_corpus(std::io::BufReader::new(f), path);
    reqs.truncate(n);
    let set = wafbench::load_rule_set("crs", Some(1)).expect("CRS");
    let native = NativeEngine::new(&set).expect("native");
    let compiled = native.compiled().clone();
    let want: Vec<_> = reqs.iter().map(|r| key(&native.evaluate(r))).collect();
    let lua = |backend, passes: PassSet| -> Box<dyn Engine> {
        let o = LuaOptions { backend, passes, ..LuaOptions::default() };
        Box::new(LuaEngine::from_compiled(Arc::clone(&compiled), o).expect("lua engine"))
    };
    let mut engines: Vec<(String, Box<dyn Engine>)> = vec![
        ("native".into(), Box::new(native.clone())),
        ("lua".into(), lua(Backend::Mlua, PassSet::default())),
        ("lua-O0".into(), lua(Backend::Mlua, PassSet::level(0))),
        ("lua-ffi".into(), lua(Backend::Ffi, PassSet::default())),
        ("lua-ffi-O0".into(), lua(Backend::Ffi, PassSet::level(0))),
        ("lua-ffi-O3".into(), lua(Backend::Ffi, PassSet::level(3))),
    ];
    let no_hook = waf_engine::lua::Limits {
        instructions_per_request: None,
        ..waf_engine::lua::Limits::default()
    };
    engines.push((
        "lua-ffi-no-count-hook".into(),
        Box::new(
            LuaEngine::from_compiled(
                Arc::clone(&compiled),
                LuaOptions { backend: Backend::Ffi, limits: no_hook, ..LuaOptions::default() },
            )
            .expect("lua engine"),
        ),
    ));
    for p in Pass::ALL {
        engines.push((format!("lua-ffi-no-{p}"), lua(Backend::Ffi, PassSet::level(3).disable(*p))));
    }
    for (name, e) in engines.iter_mut() {
        for (r, w) in reqs.iter().zip(&want) {
            assert_eq!(&key(&e.decide(r)), w, "{name} disagrees on {}", r.id);
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); engines.len()];
    for _ in 0..rounds {
        for (i, (_, e)) in engines.iter_mut().enumerate() {
            let t0 = Instant::now();
            for r in &reqs {
                std::hint::black_box(e.decide(r));
            }
            times[i].push(t0.elapsed().as_secs_f64() * 1e6 / reqs.len() as f64);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let medians: Vec<f64> = times.iter_mut().map(med).collect();
    let base = medians[3];
    println!("engine\tmedian us/request\tvs lua-ffi\tvs native");
    for ((name, _), m) in engines.iter().zip(&medians) {
        println!("{name}\t{m:.1}\t{:.3}\t{:.3}", m / base, m / medians[0]);
    }
    assert!(medians.iter().all(|m| *m > 0.0));
}
