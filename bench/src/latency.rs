//! The latency harness behind `wafbench latency` and `wafbench gate`: per-request decision
//! latency of several engines on one corpus, measured side by side.
//!
//! Data flow: corpus -> [`differential`] (every engine decides every request once, untimed;
//! decisions are compared with the reference engine, because timings are only comparable on
//! equal work) -> [`time_decisions`] (warm-up passes, then timed passes; within a pass the
//! engines take turns request by request, so that drift in CPU frequency or machine load hits
//! every engine alike, in orders that change per request so that each engine runs right after
//! each other one equally often: [`order::balanced`]) -> one `hdrhistogram` per engine
//! (nanoseconds) -> [`EngineStats`] -> [`LatencyReport`] (table or JSON).
//!
//! Each sample is also filed under the participant whose turn came just before it
//! ([`EngineTimings::after`]): a decision after the peer starts from caches the peer filled,
//! one after an engine that shares code or data with it starts warmer. The report's `after`
//! table shows how much of an engine's median is that cold start, and `--samples` writes
//! every timed sample ([`Sample`]) for a closer look.
//!
//! One timed sample is one `Engine::decide` call: the request view is built, every phase
//! runs, the decision comes out. The clock is read once per request, not per rule: an
//! `Instant` pair costs ~40-80 ns on these VMs, which per rule would swamp the native engine.
//!
//! [`calibration`] is a fixed CPU workload that can be timed in the same interleaved loop
//! as one more participant; `wafbench gate` uses it (or the ModSecurity peer) as the yardstick.
//! [`Slowdown`] is the gate's test knob: it makes one engine busy-wait a fraction of its own
//! measured decision time inside the timed region.

pub mod calibration;
pub mod inputs;
pub mod order;

use crate::report_render::fmt_ns;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Instant;
use waf_engine::{Decision, Engine, Request};

/// Environment variable holding the test-only slowdown, `ENGINE:FRACTION` (e.g. `native:0.2`).
pub const SLOWDOWN_ENV: &str = "WAFBENCH_INJECT_SLOWDOWN";

/// Name under which the calibration workload appears in timings.
pub const CALIBRATION: &str = "calibration";

/// Largest sample the histograms hold: 60 s. Longer decisions are clamped (and counted in
/// `max_ns` as 60 s); a WAF decision that slow is a finding in itself.
const MAX_NS: u64 = 60_000_000_000;

/// A sample as the histograms hold it: 1 ns to [`MAX_NS`].
fn histogram_ns(ns: u128) -> u64 {
    u64::try_from(ns).unwrap_or(MAX_NS).clamp(1, MAX_NS)
}

/// What went wrong in the harness (not in an engine: engines always return a decision).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LatencyError {
    #[error("{SLOWDOWN_ENV}={value}: {reason} (expected ENGINE:FRACTION, e.g. native:0.2)")]
    BadSlowdown { value: String, reason: String },
    #[error("no engine to measure")]
    NoEngines,
    #[error("the corpus holds no request")]
    EmptyCorpus,
    #[error("engine `{name}` is listed twice")]
    DuplicateEngine { name: String },
    #[error("calibration workload returned a wrong answer: {0}")]
    Calibration(String),
    #[error("histogram: {0}")]
    Histogram(String),
}

/// Makes one engine slower by busy-waiting `fraction` of each of its measured decision
/// times, inside the timed region. Only for proving that the gate trips.
#[derive(Debug, Clone, PartialEq)]
pub struct Slowdown {
    pub engine: String,
    pub fraction: f64,
}

impl Slowdown {
    /// Parses `ENGINE:FRACTION`; the fraction is in (0, 10].
    pub fn parse(value: &str) -> Result<Slowdown, LatencyError> {
        let bad =
            |reason: &str| LatencyError::BadSlowdown { value: value.into(), reason: reason.into() };
        let (engine, frac) = value.split_once(':').ok_or_else(|| bad("no `:`"))?;
        if engine.is_empty() {
            return Err(bad("empty engine name"));
        }
        let fraction: f64 = frac.trim().parse().map_err(|_| bad("fraction is not a number"))?;
        if !(fraction > 0.0 && fraction <= 10.0) {
            return Err(bad("fraction must be in (0, 10]"));
        }
        Ok(Slowdown { engine: engine.into(), fraction })
    }

    /// The slowdown from [`SLOWDOWN_ENV`], if set and not empty.
    pub fn from_env() -> Result<Option<Slowdown>, LatencyError> {
        match std::env::var(SLOWDOWN_ENV) {
            Ok(v) if !v.trim().is_empty() => Slowdown::parse(v.trim()).map(Some),
            _ => Ok(None),
        }
    }
}

/// Two engines decided one request differently.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub request_id: String,
    pub engine: String,
    pub reference: String,
    pub got: Decision,
    pub want: Decision,
}

/// The engine others are compared with: `modsec` when present, else the first.
pub fn reference_index(engines: &[Box<dyn Engine>]) -> Option<usize> {
    engines.iter().position(|e| e.name() == "modsec").or(if engines.is_empty() {
        None
    } else {
        Some(0)
    })
}

/// Same work: status, disruptive flag and matched rule ids (the score is derived from them).
fn same_decision(a: &Decision, b: &Decision) -> bool {
    a.status == b.status && a.disruptive == b.disruptive && a.matched_ids == b.matched_ids
}

/// Runs every engine once over the corpus (untimed) and lists every request on which an
/// engine's decision differs from the reference engine's ([`reference_index`]).
pub fn differential(engines: &mut [Box<dyn Engine>], reqs: &[Request]) -> Vec<Disagreement> {
    let Some(r) = reference_index(engines) else {
        return Vec::new();
    };
    let ref_name = engines[r].name().to_string();
    let mut out = Vec::new();
    for req in reqs {
        let want = engines[r].decide(req);
        for (i, e) in engines.iter_mut().enumerate() {
            if i == r {
                continue;
            }
            let got = e.decide(req);
            if !same_decision(&got, &want) {
                out.push(Disagreement {
                    request_id: req.id.clone(),
                    engine: e.name().to_string(),
                    reference: ref_name.clone(),
                    got,
                    want: want.clone(),
                });
            }
        }
    }
    out
}

/// How the timed loop runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Untimed passes over the corpus before timing (caches, lazily built regexes).
    pub warmup: u32,
    /// Timed passes over the corpus.
    pub repeat: u32,
    /// Time the calibration workload as one more participant.
    pub calibration: bool,
    pub slowdown: Option<Slowdown>,
    /// Progress on stderr (only when stderr is a terminal; callers decide).
    pub progress: bool,
    /// Keep every timed sample ([`EngineTimings::samples`]): 24 bytes each.
    pub keep_samples: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            warmup: 1,
            repeat: 3,
            calibration: false,
            slowdown: None,
            progress: false,
            keep_samples: false,
        }
    }
}

/// One participant's samples.
pub struct EngineTimings {
    pub name: String,
    pub hist: Histogram<u64>,
    pub total_ns: u128,
    /// Per request (corpus order), the smallest of its timed samples. Interference from the
    /// rest of the machine (preemption, a neighbour's cache traffic) only ever adds time, so
    /// the minimum over passes is the sample closest to the code's own cost; the gate uses it.
    pub min_ns: Vec<u64>,
    /// The timed samples by the participant whose turn came just before (index into the
    /// participants of the run; the run's very first turn has none and is filed nowhere).
    pub after: Vec<Option<Histogram<u64>>>,
    /// Every timed sample in the order taken, when [`Options::keep_samples`] asks for them.
    pub samples: Vec<Sample>,
}

/// One timed decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Timed pass, from 0 (warm-up passes are not counted).
    pub pass: u32,
    /// Request index in the corpus.
    pub request: u32,
    /// Place of this turn among the request's turns, from 0.
    pub slot: u16,
    /// The participant whose turn came just before (index), if any.
    pub after: Option<u16>,
    pub ns: u64,
}

/// An engine's samples taken right after one other participant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AfterStats {
    pub count: u64,
    pub p50_ns: u64,
}

/// Per-engine latency summary (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EngineStats {
    pub count: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    /// Decisions per second of this engine's own time (1 / mean).
    pub requests_per_s: f64,
}

impl EngineTimings {
    /// No samples yet, for a corpus of `requests` requests.
    pub fn new(name: &str, requests: usize) -> Result<EngineTimings, LatencyError> {
        let hist = Histogram::new_with_bounds(1, MAX_NS, 3)
            .map_err(|e| LatencyError::Histogram(e.to_string()))?;
        Ok(EngineTimings {
            name: name.to_string(),
            hist,
            total_ns: 0,
            min_ns: vec![u64::MAX; requests],
            after: Vec::new(),
            samples: Vec::new(),
        })
    }

    /// Files a sample (already recorded) under the participant `prev` that ran just before.
    pub fn record_after(&mut self, prev: usize, ns: u128) -> Result<(), LatencyError> {
        let h = self.record_after_init(prev)?;
        h.saturating_record(histogram_ns(ns));
        Ok(())
    }

    /// The histogram of the samples after participant `prev`, made empty when missing.
    fn record_after_init(&mut self, prev: usize) -> Result<&mut Histogram<u64>, LatencyError> {
        if self.after.len() <= prev {
            self.after.resize_with(prev + 1, || None);
        }
        Ok(match &mut self.after[prev] {
            Some(h) => h,
            slot => slot.insert(
                Histogram::new_with_bounds(1, MAX_NS, 3)
                    .map_err(|e| LatencyError::Histogram(e.to_string()))?,
            ),
        })
    }

    /// Count and p50 of the samples after each other participant (`names` by index), for
    /// those that preceded this one at least once.
    pub fn after_stats(&self, names: &[String]) -> BTreeMap<String, AfterStats> {
        self.after
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let h = h.as_ref().filter(|h| !h.is_empty())?;
                let name = names.get(i)?.clone();
                Some((name, AfterStats { count: h.len(), p50_ns: h.value_at_quantile(0.5) }))
            })
            .collect()
    }

    /// One timed decision of request `ri` (corpus order).
    pub fn record(&mut self, ri: usize, ns: u128) {
        let v = histogram_ns(ns);
        self.total_ns += ns;
        self.hist.saturating_record(v);
        self.min_ns[ri] = self.min_ns[ri].min(v);
    }

    pub fn stats(&self) -> EngineStats {
        let h = &self.hist;
        let count = h.len();
        let mean_ns = if count == 0 { 0.0 } else { self.total_ns as f64 / count as f64 };
        EngineStats {
            count,
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns,
            requests_per_s: if mean_ns > 0.0 { 1e9 / mean_ns } else { 0.0 },
        }
    }

    /// Median over requests of each request's fastest timed sample (0 when nothing was timed).
    pub fn p50_of_min(&self) -> u64 {
        let mut v = self.min_ns.clone();
        if v.is_empty() {
            return 0;
        }
        let mid = v.len() / 2;
        *v.select_nth_unstable(mid).1
    }
}

/// Times every engine's decisions (see the module doc). Returns one [`EngineTimings`] per
/// engine in the given order, then the calibration workload when asked for.
pub fn time_decisions(
    engines: &mut [Box<dyn Engine>],
    reqs: &[Request],
    opts: &Options,
) -> Result<Vec<EngineTimings>, LatencyError> {
    if engines.is_empty() {
        return Err(LatencyError::NoEngines);
    }
    if reqs.is_empty() {
        return Err(LatencyError::EmptyCorpus);
    }
    for (i, e) in engines.iter().enumerate() {
        if engines[..i].iter().any(|o| o.name() == e.name()) {
            return Err(LatencyError::DuplicateEngine { name: e.name().into() });
        }
    }
    let mut calib = if opts.calibration { Some(calibration::Workload::new()) } else { None };
    if let Some(c) = &calib {
        c.check().map_err(LatencyError::Calibration)?;
    }
    let n = engines.len() + usize::from(calib.is_some());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = engines.get(i).map_or(CALIBRATION, |e| e.name());
        let mut t = EngineTimings::new(name, reqs.len())?;
        // The histogram of every participant that can run just before this one now, not at
        // its first sample: a few hundred KiB from the allocator between two timed decisions
        // would be one more thing the next decision pays for. That is every other one (the
        // balanced orders never repeat a participant), and itself when it runs alone.
        for q in (0..n).filter(|&q| q != i || n == 1) {
            t.record_after_init(q)?;
        }
        out.push(t);
    }
    let slow: Vec<f64> = out
        .iter()
        .map(|t| match &opts.slowdown {
            Some(s) if s.engine == t.name => s.fraction,
            _ => 0.0,
        })
        .collect();
    let passes = opts.warmup + opts.repeat;
    let progress = opts.progress && std::io::stderr().is_terminal();
    let orders = order::balanced(n);
    let mut turn = 0usize;
    let mut prev: Option<usize> = None;
    for pass in 0..passes {
        let timed = pass >= opts.warmup;
        for (ri, req) in reqs.iter().enumerate() {
            if progress && ri % 64 == 0 {
                let _ = write!(
                    std::io::stderr(),
                    "\r{} pass {}/{passes}: {ri}/{}   ",
                    if timed { "timed" } else { "warm-up" },
                    pass + 1,
                    reqs.len()
                );
            }
            // Balanced orders: no engine runs right after the heavy one (whose cache
            // footprint the next one pays for) more often than the others do.
            let order = &orders[turn % orders.len()];
            turn = turn.wrapping_add(1);
            for (slot, &p) in order.iter().enumerate() {
                let t0 = Instant::now();
                if p < engines.len() {
                    std::hint::black_box(engines[p].decide(std::hint::black_box(req)));
                } else if let Some(c) = calib.as_mut() {
                    std::hint::black_box(c.run());
                }
                let mut ns = t0.elapsed().as_nanos();
                if slow[p] > 0.0 {
                    let target = ns as f64 * (1.0 + slow[p]);
                    while (t0.elapsed().as_nanos() as f64) < target {
                        std::hint::spin_loop();
                    }
                    ns = t0.elapsed().as_nanos();
                }
                if timed {
                    let t = &mut out[p];
                    t.record(ri, ns);
                    if let Some(q) = prev {
                        t.record_after(q, ns)?;
                    }
                    if opts.keep_samples {
                        t.samples.push(Sample {
                            pass: pass - opts.warmup,
                            request: u32::try_from(ri).unwrap_or(u32::MAX),
                            slot: u16::try_from(slot).unwrap_or(u16::MAX),
                            after: prev.and_then(|q| u16::try_from(q).ok()),
                            ns: u64::try_from(ns).unwrap_or(u64::MAX),
                        });
                    }
                }
                prev = Some(p);
            }
        }
    }
    if progress {
        let _ = writeln!(std::io::stderr(), "\r{:60}\r", "");
    }
    Ok(out)
}

/// An engine's p50 and p99 divided by the reference engine's (below 1: faster).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub p50_vs_modsec: f64,
    pub p99_vs_modsec: f64,
}

/// Ratios of every engine to `modsec`, when `modsec` was measured.
pub fn ratios_vs_modsec(stats: &BTreeMap<String, EngineStats>) -> BTreeMap<String, Ratio> {
    let Some(m) = stats.get("modsec") else {
        return BTreeMap::new();
    };
    stats
        .iter()
        .filter(|(name, _)| name.as_str() != "modsec")
        .map(|(name, s)| {
            let r = |a: u64, b: u64| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
            (
                name.clone(),
                Ratio {
                    p50_vs_modsec: r(s.p50_ns, m.p50_ns),
                    p99_vs_modsec: r(s.p99_ns, m.p99_ns),
                },
            )
        })
        .collect()
}

pub use crate::stamp::{Machine, git_rev, utc_now};

/// Hex SHA-256 of the corpus bytes the run read.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The disagreement part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreements {
    pub count: usize,
    pub list: Vec<Disagreement>,
}

/// Everything `wafbench latency --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    pub engines: BTreeMap<String, EngineStats>,
    /// Engine order as asked for (the JSON map is sorted by name).
    pub engine_order: Vec<String>,
    pub ratios: BTreeMap<String, Ratio>,
    /// Per engine, its count and p50 over the samples taken right after each other
    /// participant ([`EngineTimings::after`]).
    pub after: BTreeMap<String, BTreeMap<String, AfterStats>>,
    pub disagreements: Disagreements,
    pub requests: usize,
    pub bad_lines: usize,
    pub warmup: u32,
    pub repeat: u32,
    pub rules: String,
    pub paranoia: Option<u8>,
    pub corpus: String,
    pub corpus_sha256: String,
    pub git_rev: String,
    /// [`crate::stamp::build`]: plain release, or profile-guided and laid out by BOLT.
    #[serde(default)]
    pub build: String,
    pub command: String,
    pub machine: Machine,
    pub date: String,
}

impl LatencyReport {
    /// The human table: one row per engine, then the disagreements.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rules {}{} | corpus {} ({} requests, sha256 {}) | warmup {} repeat {} | {} ({} build) | {} ({} cores) | {}",
            self.rules,
            self.paranoia.map(|p| format!(" PL{p}")).unwrap_or_default(),
            self.corpus,
            self.requests,
            &self.corpus_sha256[..self.corpus_sha256.len().min(12)],
            self.warmup,
            self.repeat,
            self.git_rev,
            self.build,
            self.machine.cpu_model,
            self.machine.cores,
            self.date,
        );
        let has_ratio = !self.ratios.is_empty();
        let _ = write!(
            s,
            "| engine | count | p50 | p90 | p99 | p99.9 | max | mean | req/s |{}\n|---|---:|---:|---:|---:|---:|---:|---:|---:|{}\n",
            if has_ratio { " p50 vs modsec | p99 vs modsec |" } else { "" },
            if has_ratio { "---:|---:|" } else { "" }
        );
        for name in &self.engine_order {
            let Some(e) = self.engines.get(name) else { continue };
            let _ = write!(
                s,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                e.count,
                fmt_ns(e.p50_ns as f64),
                fmt_ns(e.p90_ns as f64),
                fmt_ns(e.p99_ns as f64),
                fmt_ns(e.p999_ns as f64),
                fmt_ns(e.max_ns as f64),
                fmt_ns(e.mean_ns),
                e.requests_per_s
            );
            if has_ratio {
                match self.ratios.get(name) {
                    Some(r) => {
                        let _ = write!(
                            s,
                            " {} | {} |",
                            fmt_ratio(r.p50_vs_modsec),
                            fmt_ratio(r.p99_vs_modsec)
                        );
                    }
                    None => s.push_str(" 1 | 1 |"),
                }
            }
            s.push('\n');
        }
        self.render_after(&mut s);
        let _ = writeln!(s, "disagreements: {}", self.disagreements.count);
        for d in self.disagreements.list.iter().take(50) {
            let _ = writeln!(
                s,
                "  {} {}: status {} disruptive {} ids {:?} | {}: status {} disruptive {} ids {:?}",
                d.request_id,
                d.engine,
                d.got.status,
                d.got.disruptive,
                d.got.matched_ids,
                d.reference,
                d.want.status,
                d.want.disruptive,
                d.want.matched_ids
            );
        }
        if self.disagreements.list.len() > 50 {
            let _ = writeln!(s, "  ... {} more (see --json)", self.disagreements.list.len() - 50);
        }
        s
    }
}

impl LatencyReport {
    /// The p50 of each engine by the participant that ran just before it, when there were
    /// several: one row per engine, one column per predecessor, `-` where it never ran first.
    fn render_after(&self, s: &mut String) {
        use std::fmt::Write as _;
        let cols: Vec<&String> = self
            .engine_order
            .iter()
            .filter(|c| self.after.values().any(|m| m.contains_key(*c)))
            .collect();
        if cols.len() < 2 {
            return;
        }
        let _ = writeln!(s, "p50 by the participant that ran just before (samples):");
        s.push_str("| engine |");
        for c in &cols {
            let _ = write!(s, " after {c} |");
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(cols.len()));
        s.push('\n');
        for name in &self.engine_order {
            let Some(m) = self.after.get(name) else { continue };
            let _ = write!(s, "| {name} |");
            for c in &cols {
                match m.get(*c) {
                    Some(a) => {
                        let _ = write!(s, " {} ({}) |", fmt_ns(a.p50_ns as f64), a.count);
                    }
                    None => s.push_str(" - |"),
                }
            }
            s.push('\n');
        }
    }
}

/// `0.031 (32.3x faster)` style.
fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        return "n/a".into();
    }
    if r < 1.0 { format!("{r:.4} ({:.1}x faster)", 1.0 / r) } else { format!("{r:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowdown_parses_and_refuses() {
        let table: &[(&str, Option<(&str, f64)>)] = &[
            ("native:0.2", Some(("native", 0.2))),
            ("lua-ffi:1", Some(("lua-ffi", 1.0))),
            ("native", None),
            (":0.2", None),
            ("native:x", None),
            ("native:0", None),
            ("native:-1", None),
            ("native:NaN", None),
            ("native:11", None),
        ];
        for (input, want) in table {
            let got = Slowdown::parse(input).ok().map(|s| (s.engine.clone(), s.fraction));
            assert_eq!(got, want.map(|(e, f)| (e.to_string(), f)), "{input}");
        }
    }

    #[test]
    fn utc_dates_are_civil() {
        let s = utc_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }

    /// An engine with a fixed cost and a fixed answer, to test the harness alone.
    struct Fake {
        name: &'static str,
        spin_ns: u64,
        status: u16,
    }
    impl Engine for Fake {
        fn name(&self) -> &str {
            self.name
        }
        fn decide(&mut self, req: &Request) -> Decision {
            let t = Instant::now();
            while (t.elapsed().as_nanos() as u64) < self.spin_ns {
                std::hint::spin_loop();
            }
            Decision {
                id: req.id.clone(),
                status: self.status,
                disruptive: self.status != 200,
                matched_ids: Vec::new(),
                anomaly_score: 0,
            }
        }
    }

    fn reqs(n: usize) -> Vec<Request> {
        (0..n).map(|i| Request { id: format!("r{i}"), ..Request::default() }).collect()
    }

    #[test]
    fn differential_lists_each_disagreeing_request() {
        let mut engines: Vec<Box<dyn Engine>> = vec![
            Box::new(Fake { name: "native", spin_ns: 0, status: 403 }),
            Box::new(Fake { name: "modsec", spin_ns: 0, status: 200 }),
        ];
        let d = differential(&mut engines, &reqs(3));
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].engine, "native");
        assert_eq!(d[0].reference, "modsec");
        assert_eq!((d[0].got.status, d[0].want.status), (403, 200));
        engines[0] = Box::new(Fake { name: "native", spin_ns: 0, status: 200 });
        assert!(differential(&mut engines, &reqs(3)).is_empty());
    }

    #[test]
    fn timings_count_every_timed_sample_and_order_engines() {
        let mut engines: Vec<Box<dyn Engine>> = vec![
            Box::new(Fake { name: "fast", spin_ns: 2_000, status: 200 }),
            Box::new(Fake { name: "slow", spin_ns: 40_000, status: 200 }),
        ];
        let opts = Options { warmup: 1, repeat: 2, calibration: true, ..Options::default() };
        let t = time_decisions(&mut engines, &reqs(20), &opts).unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["fast", "slow", CALIBRATION]);
        let s: Vec<EngineStats> = t.iter().map(|t| t.stats()).collect();
        assert!(s.iter().all(|s| s.count == 40));
        assert!(s[0].p50_ns >= 2_000 && s[1].p50_ns >= 40_000);
        assert!(s[1].p50_ns > 5 * s[0].p50_ns, "{s:?}");
        assert!(s[1].p50_ns <= s[1].p99_ns && s[1].p99_ns <= s[1].max_ns);
        assert_eq!(t[1].min_ns.len(), 20);
        let m = t[1].p50_of_min();
        assert!((40_000..=s[1].p50_ns).contains(&m), "{m}");
    }

    /// Busy for `cold_ns` when the shared flag says a heavy neighbour ran since its last
    /// turn; `heavy` sets the flag, anyone else clears it (as running warms the caches).
    struct Neighbour {
        inner: Fake,
        heavy: bool,
        cold_ns: u64,
        dirty: std::rc::Rc<std::cell::Cell<bool>>,
    }
    impl Engine for Neighbour {
        fn name(&self) -> &str {
            self.inner.name
        }
        fn decide(&mut self, req: &Request) -> Decision {
            if self.dirty.replace(self.heavy) {
                let t = Instant::now();
                while (t.elapsed().as_nanos() as u64) < self.cold_ns {
                    std::hint::spin_loop();
                }
            }
            self.inner.decide(req)
        }
    }

    #[test]
    fn samples_are_filed_under_the_participant_that_ran_before() {
        let dirty = std::rc::Rc::new(std::cell::Cell::new(false));
        let mk = |name, heavy, cold_ns| -> Box<dyn Engine> {
            let inner = Fake { name, spin_ns: 0, status: 200 };
            Box::new(Neighbour { inner, heavy, cold_ns, dirty: dirty.clone() })
        };
        let mut engines =
            vec![mk("victim", false, 200_000), mk("peer", true, 0), mk("other", false, 0)];
        let opts = Options { warmup: 1, repeat: 2, keep_samples: true, ..Options::default() };
        let n = 40;
        let t = time_decisions(&mut engines, &reqs(n), &opts).unwrap();
        let names: Vec<String> = t.iter().map(|t| t.name.clone()).collect();
        let victim = t[0].after_stats(&names);
        // Three participants take two orders that hold each of the six arcs once, and the
        // warm-up pass leaves a predecessor for the first timed turn: every arc n times.
        assert_eq!(victim.keys().collect::<Vec<_>>(), ["other", "peer"]);
        assert!(victim.values().all(|a| a.count == n as u64), "{victim:?}");
        assert!(victim["peer"].p50_ns >= 200_000, "{victim:?}");
        assert!(victim["other"].p50_ns < 200_000, "{victim:?}");
        assert_eq!(t[1].after_stats(&names).len(), 2);

        // The kept samples, merged in the order taken, name the turn before each.
        let mut all: Vec<(usize, Sample)> = t
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.samples.iter().map(move |s| (i, *s)))
            .collect();
        assert_eq!(all.len(), 3 * 2 * n);
        all.sort_by_key(|(_, s)| (s.pass, s.request, s.slot));
        assert!(all[0].1.after.is_some(), "the warm-up pass ran before");
        for w in all.windows(2) {
            assert_eq!(w[1].1.after, Some(w[0].0 as u16), "{w:?}");
        }
        let cold: Vec<_> = all.iter().filter(|(i, s)| *i == 0 && s.after == Some(1)).collect();
        assert_eq!(cold.len(), n);
        assert!(cold.iter().all(|(_, s)| s.ns >= 200_000), "{cold:?}");
        // Without `keep_samples` nothing is kept, but the table is the same shape.
        let t = time_decisions(&mut engines, &reqs(4), &Options::default()).unwrap();
        assert!(t.iter().all(|t| t.samples.is_empty()));
        assert_eq!(t[0].after_stats(&names).len(), 2);
    }

    #[test]
    fn slowdown_is_inside_the_timed_region() {
        let mk = || -> Vec<Box<dyn Engine>> {
            vec![Box::new(Fake { name: "native", spin_ns: 50_000, status: 200 })]
        };
        let plain = time_decisions(&mut mk(), &reqs(40), &Options::default()).unwrap();
        let opts = Options { slowdown: Slowdown::parse("native:1").ok(), ..Options::default() };
        let slowed = time_decisions(&mut mk(), &reqs(40), &opts).unwrap();
        let (a, b) = (plain[0].stats().p50_ns, slowed[0].stats().p50_ns);
        assert!(b as f64 >= 1.9 * 50_000.0 && b > a, "plain {a} slowed {b}");
    }

    #[test]
    fn harness_refuses_empty_and_duplicate_input() {
        let opts = Options::default();
        assert!(matches!(time_decisions(&mut [], &reqs(1), &opts), Err(LatencyError::NoEngines)));
        let mut one: Vec<Box<dyn Engine>> =
            vec![Box::new(Fake { name: "a", spin_ns: 0, status: 200 })];
        assert!(matches!(time_decisions(&mut one, &[], &opts), Err(LatencyError::EmptyCorpus)));
        one.push(Box::new(Fake { name: "a", spin_ns: 0, status: 200 }));
        assert!(matches!(
            time_decisions(&mut one, &reqs(1), &opts),
            Err(LatencyError::DuplicateEngine { .. })
        ));
    }

    #[test]
    fn ratios_need_modsec() {
        let st = |p50: u64| EngineStats {
            count: 1,
            p50_ns: p50,
            p90_ns: p50,
            p99_ns: 2 * p50,
            p999_ns: 2 * p50,
            max_ns: 2 * p50,
            mean_ns: p50 as f64,
            requests_per_s: 1.0,
        };
        let mut m = BTreeMap::from([("native".to_string(), st(10))]);
        assert!(ratios_vs_modsec(&m).is_empty());
        m.insert("modsec".into(), st(1000));
        let r = ratios_vs_modsec(&m);
        assert_eq!(r.len(), 1);
        assert!((r["native"].p50_vs_modsec - 0.01).abs() < 1e-12);
        assert_eq!(fmt_ratio(0.01), "0.0100 (100.0x faster)");
    }
}
