//! Criterion bench `decision`: one `Engine::decide` per iteration (request view built, every
//! phase run, decision out), cycling through a corpus; one `BenchmarkId` per engine and
//! corpus (`native/benign`, `modsec/regression`, ...). Rules: CRS at paranoia 1, or the
//! embedded `default` set when CRS is absent (said on stderr).
//!
//! The answer is checked: a first untimed pass records every decision, and every timed
//! decision is compared with it outside the timed region; a difference aborts the bench.
//! `-- --test` cuts each corpus to 20 requests so the whole bench runs in seconds.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use wafbench::latency::inputs;

/// The allocator `wafbench` runs with, so these figures match its `latency` runs.
#[global_allocator]
static ALLOC: wafbench::microbench::alloc::CountingAlloc =
    wafbench::microbench::alloc::CountingAlloc;

fn decision(c: &mut Criterion) {
    let quick = std::env::args().any(|a| a == "--test");
    let (rules, paranoia, what) = inputs::bench_rules();
    eprintln!("decision bench: rules {what}");
    let corpora = inputs::bench_corpora(quick.then_some(20))
        .unwrap_or_else(|e| panic!("decision bench corpus: {e}"));
    let mut engines = inputs::bench_engines(rules, paranoia)
        .unwrap_or_else(|e| panic!("decision bench engines: {e}"));
    let mut group = c.benchmark_group("decision");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for engine in engines.iter_mut() {
        for corpus in &corpora {
            if corpus.requests.is_empty() {
                continue;
            }
            let expected: Vec<_> = corpus.requests.iter().map(|r| engine.decide(r)).collect();
            let name = engine.name().to_string();
            let mut next = 0usize;
            group.bench_function(BenchmarkId::new(&name, &corpus.name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let i = next % corpus.requests.len();
                        next = next.wrapping_add(1);
                        let t0 = Instant::now();
                        let d = engine.decide(std::hint::black_box(&corpus.requests[i]));
                        total += t0.elapsed();
                        assert_eq!(
                            d, expected[i],
                            "{name}/{}: request {} decided differently than in the first pass",
                            corpus.name, corpus.requests[i].id
                        );
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
