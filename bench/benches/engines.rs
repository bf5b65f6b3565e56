//! Criterion group `engines`: native, lua and lua-ffi on the same requests (CRS at PL1, the
//! first `WAF_BENCH_REQUESTS` (default 200) requests of `corpora/mixed.jsonl`), per request,
//! plus the ablation of the Lua compiler: lua-ffi with every pass off (`O0`), all on (`O3`)
//! and with each pass off in turn from `O3`. Before anything is timed, every engine's decisions are checked against
//! native's on the whole sample; a wrong answer aborts the bench.
//! `cargo bench -p wafbench --bench engines -- --test` runs each once, checked.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use waf_engine::eval::NativeEngine;
use waf_engine::lua::{Backend, LuaEngine, LuaOptions, Pass, PassSet};
use waf_engine::request::{Request, read_corpus};
use waf_engine::{Decision, Engine};

/// The allocator `wafbench` runs with, so these figures match its `latency` runs.
#[global_allocator]
static ALLOC: wafbench::microbench::alloc::CountingAlloc =
    wafbench::microbench::alloc::CountingAlloc;

fn requests() -> Vec<Request> {
    let n: usize =
        std::env::var("WAF_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/mixed.jsonl");
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut reqs, errs) = read_corpus(std::io::BufReader::new(f), path);
    assert!(errs.is_empty(), "{path}: bad lines");
    reqs.truncate(n);
    reqs
}

fn key(d: &Decision) -> (u16, bool, Vec<String>) {
    (d.status, d.disruptive, d.matched_ids.clone())
}

fn benches(c: &mut Criterion) {
    let set = wafbench::load_rule_set("crs", Some(1)).unwrap_or_else(|e| panic!("CRS: {e}"));
    let native = NativeEngine::new(&set).unwrap_or_else(|e| panic!("native: {e}"));
    let compiled = native.compiled().clone();
    let reqs = requests();
    let want: Vec<_> = reqs.iter().map(|r| key(&native.evaluate(r))).collect();

    let lua = |backend, passes: PassSet| -> Box<dyn Engine> {
        let o = LuaOptions { backend, passes, ..LuaOptions::default() };
        Box::new(LuaEngine::from_compiled(Arc::clone(&compiled), o).expect("lua engine"))
    };
    let mut engines: Vec<(String, Box<dyn Engine>)> = vec![
        ("native".into(), Box::new(native.clone())),
        ("lua".into(), lua(Backend::Mlua, PassSet::default())),
        ("lua-ffi".into(), lua(Backend::Ffi, PassSet::default())),
        ("lua-ffi-O0".into(), lua(Backend::Ffi, PassSet::level(0))),
        ("lua-ffi-O3".into(), lua(Backend::Ffi, PassSet::level(3))),
    ];
    for p in Pass::ALL {
        engines.push((format!("lua-ffi-no-{p}"), lua(Backend::Ffi, PassSet::level(3).disable(*p))));
    }

    let mut g = c.benchmark_group("engines");
    g.sample_size(10);
    g.throughput(Throughput::Elements(reqs.len() as u64));
    for (name, e) in engines.iter_mut() {
        for (r, w) in reqs.iter().zip(&want) {
            assert_eq!(&key(&e.decide(r)), w, "{name} disagrees with native on {}", r.id);
        }
        g.bench_function(BenchmarkId::new(name.as_str(), reqs.len()), |b| {
            b.iter(|| {
                for r in &reqs {
                    black_box(e.decide(black_box(r)));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(engines, benches);
criterion_main!(engines);
