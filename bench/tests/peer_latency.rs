//! Per-request cost of the ModSecurity peer with CRS at paranoia 1 on a sample of the CRS
//! regression requests. Ignored by default (a measurement, not a check); run with
//! `cargo test --release -p wafbench --test peer_latency -- --ignored --nocapture`.
//! The answer is checked before it is timed: the timed pass must repeat the first pass's
//! decisions exactly.

use std::time::Instant;
use waf_engine::{Engine, Request};
use wafbench::modsec::ModSecPeer;

const JSONL: &str = "crs-3.3.4-regression.jsonl";

#[test]
#[ignore]
fn peer_ms_per_request_crs_pl1() {
    let path = std::env::var("WAF_PEER_CORPUS").unwrap_or_else(|_| {
        let dir = waf_engine::crs::regression_suite_dir().unwrap_or_default();
        dir.join(JSONL).display().to_string()
    });
    let text = std::fs::read_to_string(&path).unwrap();
    // Every 8th line: ~300 requests spread over all rule families.
    let reqs: Vec<Request> =
        text.lines().step_by(8).map(|l| Request::from_json_line(l).unwrap()).collect();
    let t0 = Instant::now();
    let mut peer = ModSecPeer::from_spec("crs", Some(1)).unwrap();
    let load = t0.elapsed();
    let first: Vec<_> = reqs.iter().map(|r| peer.decide(r)).collect();
    let mut times = Vec::with_capacity(reqs.len());
    for (r, want) in reqs.iter().zip(&first) {
        let t = Instant::now();
        let d = peer.decide(r);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(&d, want, "decision changed between passes");
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let blocked = first.iter().filter(|d| d.disruptive).count();
    println!(
        "modsec CRS PL1: {} requests ({blocked} blocked), rule load {:.0} ms, per request median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {:.3} ms",
        times.len(),
        load.as_secs_f64() * 1e3,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        times.iter().sum::<f64>() / times.len() as f64
    );
    assert!(times.len() >= 250);
}
