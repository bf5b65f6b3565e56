//! Criterion bench `compile`: the cost of turning the rule set into a ready engine, per
//! backend, one `BenchmarkId` per engine: parse + compile for `native` (what
//! `wafbench::build_engine` does: load the SecLang, resolve it into a `CompiledRuleSet`),
//! `msc_rules_add` of the same configuration for `modsec`, and whatever `lua`/`lua-ffi` do
//! once `build_engine` knows them. Rules: CRS at paranoia 1, or `default` when CRS is absent.
//!
//! The answer is checked: each freshly built engine must decide a probe request (the first of
//! the benign corpus, else a plain GET) as the first build did.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use waf_engine::Request;
use wafbench::latency::inputs;

/// The allocator `wafbench` runs with, so these figures match its `latency` runs.
#[global_allocator]
static ALLOC: wafbench::microbench::alloc::CountingAlloc =
    wafbench::microbench::alloc::CountingAlloc;

fn compile(c: &mut Criterion) {
    let (rules, paranoia, what) = inputs::bench_rules();
    eprintln!("compile bench: rules {what}");
    let probe = inputs::bench_corpora(Some(1))
        .ok()
        .and_then(|cs| cs.into_iter().find_map(|c| c.requests.into_iter().next()))
        .unwrap_or_else(|| Request { id: "probe".into(), ..Request::default() });
    let engines = inputs::bench_engines(rules, paranoia)
        .unwrap_or_else(|e| panic!("compile bench engines: {e}"));
    let mut group = c.benchmark_group("compile");
    // A CRS build takes tens to hundreds of milliseconds: criterion's minimum of 10 samples.
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    for mut first in engines {
        let name = first.name().to_string();
        let expected = first.decide(&probe);
        drop(first);
        group.bench_function(BenchmarkId::new(&name, rules), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    let built = wafbench::build_engine(&name, rules, paranoia);
                    total += t0.elapsed();
                    let mut e = built.unwrap_or_else(|e| panic!("compile {name}: {e}"));
                    assert_eq!(
                        e.decide(&probe),
                        expected,
                        "{name}: a rebuilt engine decides differently"
                    );
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
