//! The report's latency comparison: a minimal interleaved timing loop over several engines.
//!
//! This is the seam for the latency harness (`wafbench latency`): when its library function
//! lands, [`compare_engines`] is the one function the report calls and the one to swap; the
//! output already uses the harness's field names (`engines.<name>.p50_ns`, `ratios`,
//! `disagreements`, `corpus_sha256`).
//!
//! Flow: one untimed pass per engine (warm-up, and the decisions compared with the first
//! engine's: a measurement whose answers disagree is reported as such), then `rounds` passes
//! in which every request goes through every engine, in orders balanced so that each engine
//! runs right after each other one equally often (so drift on a noisy VM and the caches the
//! previous engine left hit all engines alike: [`crate::latency::order`]), one `Instant`
//! pair per request (never per rule: the clock costs 40-80 ns here), recorded into one
//! hdrhistogram per engine.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;
use waf_engine::{Decision, Engine, Request};

/// Percentiles plotted in the report (the x axis of the percentile curve).
pub const CURVE_PERCENTILES: &[f64] =
    &[1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];

/// One engine's latency over the corpus.
#[derive(Debug, Clone, Serialize)]
pub struct EngineLatency {
    pub samples: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    /// `(percentile, ns)` at [`CURVE_PERCENTILES`].
    pub curve: Vec<(f64, u64)>,
}

/// A request on which an engine decided differently from the first engine.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub engine: String,
    pub request: String,
    pub expected: Decision,
    pub got: Decision,
}

/// The comparison, with the latency harness's field names.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyComparison {
    /// Engine names in the order they were given (the first is the baseline).
    pub order: Vec<String>,
    pub engines: BTreeMap<String, EngineLatency>,
    /// `ratios.<engine>.p50` = the engine's p50 over the baseline's (also p99, mean).
    pub ratios: BTreeMap<String, BTreeMap<String, f64>>,
    pub disagreements: Vec<Disagreement>,
    pub disagreement_count: usize,
    pub requests: usize,
    pub rounds: usize,
    pub method: String,
}

/// Most disagreements kept with their decisions (the count is always exact).
const KEEP_DISAGREEMENTS: usize = 20;

/// Times `engines` on `requests` for `rounds` interleaved passes (see the module docs).
pub fn compare_engines(
    engines: &mut [Box<dyn Engine>],
    requests: &[Request],
    rounds: usize,
) -> LatencyComparison {
    let order: Vec<String> = engines.iter().map(|e| e.name().to_string()).collect();
    let mut disagreements = Vec::new();
    let mut disagreement_count = 0;
    let baseline: Vec<Decision> = match engines.first_mut() {
        Some(e) => requests.iter().map(|r| e.decide(r)).collect(),
        None => Vec::new(),
    };
    for e in engines.iter_mut().skip(1) {
        for (r, want) in requests.iter().zip(&baseline) {
            let got = e.decide(r);
            if &got != want {
                disagreement_count += 1;
                if disagreements.len() < KEEP_DISAGREEMENTS {
                    disagreements.push(Disagreement {
                        engine: e.name().to_string(),
                        request: r.id.clone(),
                        expected: want.clone(),
                        got,
                    });
                }
            }
        }
    }
    // 1 ns to 60 s, 3 significant digits; `saturating_record` keeps a longer one at the top.
    let mut hists: Vec<Histogram<u64>> = engines
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds are valid"))
        .collect();
    let n = engines.len();
    let orders = crate::latency::order::balanced(n);
    let mut turn = 0usize;
    for _ in 0..rounds {
        for r in requests {
            let order = &orders[turn % orders.len()];
            turn += 1;
            for &e in order {
                let t = Instant::now();
                std::hint::black_box(engines[e].decide(r));
                hists[e].saturating_record(t.elapsed().as_nanos().max(1) as u64);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, h) in order.iter().zip(&hists) {
        out.insert(
            name.clone(),
            EngineLatency {
                samples: h.len(),
                mean_ns: h.mean(),
                p50_ns: h.value_at_quantile(0.50),
                p90_ns: h.value_at_quantile(0.90),
                p99_ns: h.value_at_quantile(0.99),
                p999_ns: h.value_at_quantile(0.999),
                max_ns: h.max(),
                curve: CURVE_PERCENTILES
                    .iter()
                    .map(|&p| (p, h.value_at_quantile(p / 100.0)))
                    .collect(),
            },
        );
    }
    let mut ratios = BTreeMap::new();
    if let Some(base) = order.first().and_then(|b| out.get(b)) {
        for name in &order {
            let e = &out[name];
            let r = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
            ratios.insert(
                name.clone(),
                BTreeMap::from([
                    ("p50".to_string(), r(e.p50_ns as f64, base.p50_ns as f64)),
                    ("p99".to_string(), r(e.p99_ns as f64, base.p99_ns as f64)),
                    ("mean".to_string(), r(e.mean_ns, base.mean_ns)),
                ]),
            );
        }
    }
    LatencyComparison {
        order,
        engines: out,
        ratios,
        disagreements,
        disagreement_count,
        requests: requests.len(),
        rounds,
        method: format!(
            "one warm-up pass per engine (decisions compared with the first engine), then {rounds} \
             interleaved round(s): each request through every engine in balanced orders, one \
             Instant pair per request, hdrhistogram (3 significant digits)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine that sleeps-free spins for a fixed number of iterations and answers `status`.
    struct Spin {
        name: &'static str,
        iters: u64,
        status: u16,
    }

    impl Engine for Spin {
        fn name(&self) -> &str {
            self.name
        }
        fn decide(&mut self, req: &Request) -> Decision {
            let mut x = 0u64;
            for i in 0..self.iters {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            Decision {
                id: req.id.clone(),
                status: self.status,
                disruptive: false,
                matched_ids: vec![],
                anomaly_score: i64::from(std::hint::black_box(x) == u64::MAX),
            }
        }
    }

    #[test]
    fn slower_engine_has_higher_ratio_and_disagreements_are_counted() {
        let reqs: Vec<Request> =
            (0..50).map(|i| Request { id: format!("r{i}"), ..Request::default() }).collect();
        let mut engines: Vec<Box<dyn Engine>> = vec![
            Box::new(Spin { name: "fast", iters: 100, status: 200 }),
            Box::new(Spin { name: "slow", iters: 20_000, status: 403 }),
        ];
        let c = compare_engines(&mut engines, &reqs, 3);
        assert_eq!(c.order, ["fast", "slow"]);
        assert_eq!(c.engines["fast"].samples, 150);
        assert!(c.ratios["slow"]["p50"] > 2.0, "{:?}", c.ratios);
        assert!((c.ratios["fast"]["p50"] - 1.0).abs() < 1e-9);
        assert_eq!(c.disagreement_count, 50);
        assert_eq!(c.disagreements.len(), KEEP_DISAGREEMENTS);
        let e = &c.engines["slow"];
        assert!(e.p50_ns <= e.p99_ns && e.p99_ns <= e.max_ns);
        assert!(e.curve.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
