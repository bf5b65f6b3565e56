//! Microbenchmarks of the building blocks (issue 7): the cost of an FFI call path
//! ([`ffi`]), IP prefix sets for `@ipMatch` ([`ip`]) and multi-phrase search for `@pm`
//! ([`pm`]).
//!
//! Data flow: each suite builds a list of [`Bench`]es (workload + engine + expected answer).
//! The same list feeds two drivers: the criterion benches in `bench/benches/*.rs` (one
//! `BenchmarkId` per bench, timed through `iter_custom`) and `wafbench microbench`, which uses
//! [`measure`] here (medians of repeated batches) and writes `reports/microbench.{json,md}`.
//! Every driver calls [`Case::check`] first and refuses to time a wrong answer.

pub mod alloc;
pub mod ffi;
pub mod ip;
pub mod pm;

use serde::Serialize;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One timed operation with a known answer.
pub trait Case {
    /// Runs the operation once and compares with the expected answer.
    fn check(&mut self) -> Result<(), String>;
    /// Runs the operation `iters` times and returns the time the operations took.
    fn run(&mut self, iters: u64) -> Duration;
}

/// What one iteration processes, for rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Calls (ns/call).
    Calls(u64),
    /// Haystack bytes (GB/s).
    Bytes(u64),
    /// Lookups (M lookups/s).
    Lookups(u64),
}

/// A workload run by one engine: criterion's `group/function/input`.
pub struct Bench {
    pub group: String,
    pub function: String,
    pub input: String,
    pub unit: Unit,
    /// Extra facts shown in reports (build time, memory), already measured.
    pub notes: Vec<(String, f64)>,
    pub case: Box<dyn Case>,
}

impl Bench {
    pub fn new(
        group: impl Into<String>,
        function: impl Into<String>,
        input: impl Into<String>,
        unit: Unit,
        case: Box<dyn Case>,
    ) -> Bench {
        Bench {
            group: group.into(),
            function: function.into(),
            input: input.into(),
            unit,
            notes: Vec::new(),
            case,
        }
    }

    pub fn note(mut self, key: &str, value: f64) -> Bench {
        self.notes.push((key.to_string(), value));
        self
    }
}

/// A Rust closure with its expected answer.
pub struct FnCase<F, R> {
    f: F,
    expected: R,
}

/// Boxes `f` as a [`Case`] whose every call must return `expected`.
pub fn fn_case<F, R>(expected: R, f: F) -> Box<dyn Case>
where
    F: FnMut() -> R + 'static,
    R: PartialEq + std::fmt::Debug + 'static,
{
    Box::new(FnCase { f, expected })
}

impl<F: FnMut() -> R, R: PartialEq + std::fmt::Debug> Case for FnCase<F, R> {
    fn check(&mut self) -> Result<(), String> {
        let got = (self.f)();
        if got == self.expected {
            Ok(())
        } else {
            Err(format!("expected {:?}, got {:?}", self.expected, got))
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let t = Instant::now();
        for _ in 0..iters {
            black_box((self.f)());
        }
        t.elapsed()
    }
}

/// How long [`measure`] runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Target duration of one batch.
    pub batch: Duration,
    /// Batches whose median is reported.
    pub batches: usize,
}

impl Budget {
    pub fn quick() -> Budget {
        Budget { batch: Duration::from_millis(5), batches: 5 }
    }
    pub fn normal() -> Budget {
        Budget { batch: Duration::from_millis(25), batches: 11 }
    }
}

/// One measured bench.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub group: String,
    pub function: String,
    pub input: String,
    pub unit: Unit,
    /// Median nanoseconds per iteration over the batches.
    pub ns_per_iter: f64,
    /// Fastest and slowest batch, ns per iteration.
    pub ns_min: f64,
    pub ns_max: f64,
    pub iters_per_batch: u64,
    pub notes: Vec<(String, f64)>,
}

impl Measurement {
    /// The rate in the unit's natural scale: ns/call, GB/s or M lookups/s.
    pub fn rate(&self) -> (f64, &'static str) {
        match self.unit {
            Unit::Calls(n) => (self.ns_per_iter / n as f64, "ns/call"),
            Unit::Bytes(n) => (n as f64 / self.ns_per_iter, "GB/s"),
            Unit::Lookups(n) => (n as f64 * 1e3 / self.ns_per_iter, "M lookups/s"),
        }
    }
}

/// Checks the answer, calibrates a batch size to `budget.batch`, then times
/// `budget.batches` batches and keeps the median.
pub fn measure(b: &mut Bench, budget: Budget) -> Result<Measurement, String> {
    b.case
        .check()
        .map_err(|e| format!("{}/{}/{}: wrong answer: {e}", b.group, b.function, b.input))?;
    // Calibrate: double until one batch takes a tenth of the target, then scale.
    let mut iters = 1u64;
    loop {
        let t = b.case.run(iters);
        if t >= budget.batch / 10 || iters >= 1 << 30 {
            let per = t.as_secs_f64() / iters as f64;
            iters = ((budget.batch.as_secs_f64() / per.max(1e-10)) as u64).clamp(1, 1 << 32);
            break;
        }
        iters *= 2;
    }
    let mut per_iter: Vec<f64> = (0..budget.batches.max(1))
        .map(|_| b.case.run(iters).as_nanos() as f64 / iters as f64)
        .collect();
    per_iter.sort_by(f64::total_cmp);
    Ok(Measurement {
        group: b.group.clone(),
        function: b.function.clone(),
        input: b.input.clone(),
        unit: b.unit,
        ns_per_iter: per_iter[per_iter.len() / 2],
        ns_min: per_iter[0],
        ns_max: per_iter[per_iter.len() - 1],
        iters_per_batch: iters,
        notes: b.notes.clone(),
    })
}

/// Size of a suite's workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// `cargo bench -- --test` and `wafbench microbench --quick`: small inputs only.
    Quick,
    /// Everything, including 1M-prefix IP sets and 100k-phrase dictionaries.
    Full,
}

impl Scale {
    /// `Quick` when criterion runs in `--test` mode (or `--quick`/`WAFBENCH_QUICK=1`).
    pub fn from_args() -> Scale {
        let quick = std::env::args().any(|a| a == "--test" || a == "--quick")
            || std::env::var_os("WAFBENCH_QUICK").is_some_and(|v| v == "1");
        if quick { Scale::Quick } else { Scale::Full }
    }
}

/// Runs every bench of a suite under criterion: one group per `Bench::group`, one
/// `BenchmarkId(function, input)` each, the answer checked before timing.
pub fn criterion_run(c: &mut criterion::Criterion, benches: Vec<Bench>) {
    use criterion::{BenchmarkId, Throughput};
    let mut by_group: Vec<(String, Vec<Bench>)> = Vec::new();
    for b in benches {
        match by_group.iter_mut().find(|(g, _)| *g == b.group) {
            Some((_, v)) => v.push(b),
            None => by_group.push((b.group.clone(), vec![b])),
        }
    }
    for (name, benches) in by_group {
        let mut group = c.benchmark_group(&name);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for mut b in benches {
            if let Err(e) = b.case.check() {
                panic!("{}/{}/{}: wrong answer: {e}", b.group, b.function, b.input);
            }
            group.throughput(match b.unit {
                Unit::Calls(n) | Unit::Lookups(n) => Throughput::Elements(n),
                Unit::Bytes(n) => Throughput::Bytes(n),
            });
            group.bench_function(BenchmarkId::new(&b.function, &b.input), |bencher| {
                bencher.iter_custom(|iters| b.case.run(iters))
            });
        }
        group.finish();
    }
}
