//! `wafbench coldstart`: how much slower a decision is when something else ran, or nothing
//! ran, just before it.
//!
//! `wafbench latency` interleaves engines request by request, so each decision starts after
//! another engine's. On the 2-core VMs this project runs on, that start costs a short
//! decision far more than a long one, and not only through the caches the other engine
//! evicts: measured on 2026-12-02, native's p50 on the benign corpus rose from about 110-150
//! µs back to back to about 800 µs after 5 ms of sleep, and to about 790 µs after 5 ms of a
//! busy loop that touches no memory. This command measures that effect per engine: each
//! gap kind runs before every timed decision, untimed, and the table gives each gap's p50
//! and p90 and its p50 as a multiple of back-to-back.
//!
//! Decisions are checked before anything is timed: each engine decides every request once,
//! and every timed decision must equal that one (an engine whose answer depends on what ran
//! before it would make the comparison meaningless).

use crate::latency::{EngineTimings, LatencyError};
use serde::Serialize;
use std::time::{Duration, Instant};
use waf_engine::{Decision, Engine, Request};

/// What runs between two decisions, untimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// Nothing: decisions back to back.
    None,
    /// A busy loop for this long, touching no memory.
    Spin(Duration),
    /// `thread::sleep` for this long: the CPU idles (a VM's vCPU may be descheduled).
    Sleep(Duration),
    /// Writes one byte per 64-byte line of a buffer this large: evicts caches.
    Touch(usize),
    /// The ModSecurity peer decides the same request, as in `wafbench latency`.
    Peer,
    /// Several gaps one after the other (`sleep:5ms+spin:200us`: does a short busy time
    /// after the sleep give the speed back?).
    Seq(Vec<Gap>),
}

/// A gap that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "bad gap `{0}`: expected none, spin:<N>us|ms, sleep:<N>us|ms, touch:<N>KiB|MiB or modsec, or several joined by +"
)]
pub struct GapError(pub String);

/// Largest `touch:` buffer, so that a typo cannot ask for all memory.
const MAX_TOUCH: usize = 1 << 30;
/// Longest `spin:`/`sleep:`, so that a typo cannot make a run take days.
const MAX_WAIT: Duration = Duration::from_secs(1);

impl Gap {
    pub fn parse(s: &str) -> Result<Gap, GapError> {
        if s.contains('+') {
            let parts = s.split('+').map(Gap::parse_one).collect::<Result<Vec<_>, _>>();
            return parts.map(Gap::Seq).map_err(|_| GapError(s.to_string()));
        }
        Gap::parse_one(s)
    }

    fn parse_one(s: &str) -> Result<Gap, GapError> {
        let bad = || GapError(s.to_string());
        let s = s.trim();
        match s {
            "none" => return Ok(Gap::None),
            "modsec" => return Ok(Gap::Peer),
            _ => {}
        }
        let (kind, arg) = s.split_once(':').ok_or_else(bad)?;
        let num = |suffixes: &[(&str, u64)]| -> Result<u64, GapError> {
            for (suf, mul) in suffixes {
                if let Some(n) = arg.strip_suffix(suf) {
                    let n: u64 = n.parse().map_err(|_| bad())?;
                    return n.checked_mul(*mul).filter(|&v| v > 0).ok_or_else(bad);
                }
            }
            Err(bad())
        };
        match kind {
            "spin" | "sleep" => {
                let us = num(&[("us", 1), ("ms", 1000)])?;
                let d = Duration::from_micros(us);
                if d > MAX_WAIT {
                    return Err(bad());
                }
                Ok(if kind == "spin" { Gap::Spin(d) } else { Gap::Sleep(d) })
            }
            "touch" => {
                let bytes = num(&[("KiB", 1 << 10), ("MiB", 1 << 20)])?;
                let bytes = usize::try_from(bytes).map_err(|_| bad())?;
                if bytes > MAX_TOUCH {
                    return Err(bad());
                }
                Ok(Gap::Touch(bytes))
            }
            _ => Err(bad()),
        }
    }

    /// Whether running this gap needs the ModSecurity peer.
    pub fn uses_peer(&self) -> bool {
        match self {
            Gap::Peer => true,
            Gap::Seq(v) => v.iter().any(Gap::uses_peer),
            _ => false,
        }
    }

    /// The spelling `parse` reads back.
    pub fn label(&self) -> String {
        let dur = |d: &Duration| {
            let us = d.as_micros();
            if us % 1000 == 0 { format!("{}ms", us / 1000) } else { format!("{us}us") }
        };
        match self {
            Gap::None => "none".into(),
            Gap::Spin(d) => format!("spin:{}", dur(d)),
            Gap::Sleep(d) => format!("sleep:{}", dur(d)),
            Gap::Touch(b) if b % (1 << 20) == 0 => format!("touch:{}MiB", b >> 20),
            Gap::Touch(b) => format!("touch:{}KiB", b >> 10),
            Gap::Peer => "modsec".into(),
            Gap::Seq(v) => v.iter().map(Gap::label).collect::<Vec<_>>().join("+"),
        }
    }
}

/// One engine after one gap kind.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub engine: String,
    pub gap: String,
    pub count: usize,
    pub p50_ns: u64,
    pub p90_ns: u64,
    /// p50 over the same engine's back-to-back p50, when `none` was measured.
    pub p50_vs_none: Option<f64>,
}

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ColdstartError {
    /// A timed decision differed from the engine's reference decision.
    #[error(
        "engine {engine} decided request {id} differently after gap {gap}: {got:?} vs {want:?}"
    )]
    Unstable { engine: String, gap: String, id: String, got: Box<Decision>, want: Box<Decision> },
    #[error(transparent)]
    Latency(#[from] LatencyError),
}

/// Runs the gaps. `peer` is needed only for [`Gap::Peer`] (the caller builds it).
struct GapRunner<'p> {
    buf: Vec<u8>,
    peer: Option<&'p mut Box<dyn Engine>>,
    sink: u64,
}

impl GapRunner<'_> {
    fn run(&mut self, gap: &Gap, req: &Request) {
        match gap {
            Gap::None => {}
            Gap::Spin(d) => {
                let t = Instant::now();
                // No `pause` (`spin_loop`): a VM may exit on pause loops, and this gap is
                // meant to be plain computation.
                while t.elapsed() < *d {
                    self.sink = std::hint::black_box(self.sink.wrapping_add(1));
                }
            }
            Gap::Sleep(d) => std::thread::sleep(*d),
            Gap::Touch(n) => {
                if self.buf.len() < *n {
                    self.buf.resize(*n, 0);
                }
                for i in (0..*n).step_by(64) {
                    self.buf[i] = self.buf[i].wrapping_add(1);
                }
                self.sink = self.sink.wrapping_add(u64::from(self.buf[0]));
            }
            Gap::Peer => {
                if let Some(p) = self.peer.as_mut() {
                    std::hint::black_box(p.decide(req));
                }
            }
            Gap::Seq(v) => v.iter().for_each(|g| self.run(g, req)),
        }
    }
}

/// For each engine and each gap: one untimed pass (after the gap, like the timed one), then
/// one timed pass in which every request's decision follows the gap. Every decision is
/// checked against the engine's reference decision.
pub fn measure(
    engines: &mut [Box<dyn Engine>],
    peer: Option<&mut Box<dyn Engine>>,
    reqs: &[Request],
    gaps: &[Gap],
    mut progress: impl FnMut(&str, &Gap),
) -> Result<Vec<Row>, ColdstartError> {
    let mut runner = GapRunner { buf: Vec::new(), peer, sink: 0 };
    let mut rows = Vec::new();
    for e in engines.iter_mut() {
        let reference: Vec<Decision> = reqs.iter().map(|r| e.decide(r)).collect();
        let mut none_p50 = None;
        for gap in gaps {
            progress(e.name(), gap);
            for r in reqs {
                runner.run(gap, r);
                std::hint::black_box(e.decide(r));
            }
            let mut times = EngineTimings::new(e.name(), reqs.len())?;
            for (ri, (r, want)) in reqs.iter().zip(&reference).enumerate() {
                runner.run(gap, r);
                let t0 = Instant::now();
                let got = e.decide(std::hint::black_box(r));
                times.record(ri, t0.elapsed().as_nanos());
                if &got != want {
                    return Err(ColdstartError::Unstable {
                        engine: e.name().to_string(),
                        gap: gap.label(),
                        id: want.id.clone(),
                        got: Box::new(got),
                        want: Box::new(want.clone()),
                    });
                }
            }
            let st = times.stats();
            if *gap == Gap::None {
                none_p50 = Some(st.p50_ns);
            }
            rows.push(Row {
                engine: e.name().to_string(),
                gap: gap.label(),
                count: st.count as usize,
                p50_ns: st.p50_ns,
                p90_ns: st.p90_ns,
                p50_vs_none: None,
            });
        }
        if let Some(base) = none_p50.filter(|&b| b > 0) {
            for row in rows.iter_mut().filter(|r| r.engine == e.name()) {
                row.p50_vs_none = Some(row.p50_ns as f64 / base as f64);
            }
        }
    }
    std::hint::black_box(runner.sink);
    Ok(rows)
}

/// The Markdown table `wafbench coldstart` prints.
pub fn render(rows: &[Row]) -> String {
    let us = |ns: u64| format!("{:.1} µs", ns as f64 / 1000.0);
    let mut s = String::from(
        "| engine | gap | count | p50 | p90 | p50 vs none |\n|---|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let ratio = r.p50_vs_none.map_or("n/a".to_string(), |x| format!("{x:.2}x"));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.engine,
            r.gap,
            r.count,
            us(r.p50_ns),
            us(r.p90_ns),
            ratio
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_parse_and_print_back() {
        for s in
            ["none", "spin:5ms", "spin:250us", "sleep:1ms", "touch:16MiB", "touch:512KiB", "modsec"]
        {
            let g = Gap::parse(s).unwrap();
            assert_eq!(g.label(), s);
            assert_eq!(Gap::parse(&g.label()).unwrap(), g);
        }
        assert_eq!(Gap::parse("spin:2ms").unwrap(), Gap::Spin(Duration::from_millis(2)));
        assert_eq!(Gap::parse("touch:1MiB").unwrap(), Gap::Touch(1 << 20));
        assert_eq!(
            Gap::parse("modsec+sleep:1ms").unwrap(),
            Gap::Seq(vec![Gap::Peer, Gap::Sleep(Duration::from_millis(1))])
        );
        assert!(Gap::parse("sleep:1ms+modsec").unwrap().uses_peer());
        assert!(!Gap::parse("sleep:1ms+spin:1ms").unwrap().uses_peer());
    }

    #[test]
    fn bad_gaps_are_refused() {
        for s in [
            "",
            "spin",
            "spin:",
            "spin:5",
            "spin:5s",
            "spin:0ms",
            "spin:-1ms",
            "sleep:2000ms",
            "touch:2GiB",
            "touch:4096MiB",
            "touch:1MB",
            "nap:1ms",
            "spin:99999999999999999999ms",
        ] {
            assert_eq!(Gap::parse(s), Err(GapError(s.to_string())), "{s}");
        }
    }
}
