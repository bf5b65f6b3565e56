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
//! Gaps are interleaved request by request (each request's decision is timed after every gap
//! in turn, in balanced orders), as `latency` interleaves engines: a change of the host's
//! state during the pass hits every gap alike. Measured one gap after the other, the same
//! gap's p50 moved by 2x between runs minutes apart.
//!
//! `--probe` adds an engine-free row per gap: a dependent walk over 4,096 lines of a 256 KiB
//! buffer ([`Chase`]), which shows what a gap does to memory the process touched just before
//! it, with no rule engine in the way. On 2026-12-02 its p50 went from about 17 µs back to
//! back to 110-600 µs after a 5 ms busy loop that touches no memory: the host, not the engine,
//! empties the caches while a vCPU computes something else.
//!
//! Decisions are checked before anything is timed: each engine decides every request once,
//! and every timed decision must equal that one (an engine whose answer depends on what ran
//! before it would make the comparison meaningless). The probe checks its walk too.

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
    /// The measured engine itself decides the previous request again: after `modsec`,
    /// `modsec+warm` shows how much of the peer's cost one decision of the same rule set
    /// takes back (with the probe: another walk).
    Warm,
    /// A second instance of the measured engine, built from the same rules (same code,
    /// its own rule-set memory and value memo), decides the previous request: after
    /// `modsec`, `modsec+twin` warms what the code and the CPU's predictors keep, not the
    /// rule set's data. Nothing for the probe.
    Twin,
    /// Several gaps one after the other (`sleep:5ms+spin:200us`: does a short busy time
    /// after the sleep give the speed back?).
    Seq(Vec<Gap>),
}

/// A gap that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "bad gap `{0}`: expected none, spin:<N>us|ms, sleep:<N>us|ms, touch:<N>KiB|MiB, modsec, warm or twin, or several joined by +"
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
            "warm" => return Ok(Gap::Warm),
            "twin" => return Ok(Gap::Twin),
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
        self.any(&|g| *g == Gap::Peer)
    }

    /// Whether running this gap needs a twin of each measured engine.
    pub fn uses_twin(&self) -> bool {
        self.any(&|g| *g == Gap::Twin)
    }

    fn any(&self, f: &dyn Fn(&Gap) -> bool) -> bool {
        match self {
            Gap::Seq(v) => v.iter().any(|g| g.any(f)),
            g => f(g),
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
            Gap::Warm => "warm".into(),
            Gap::Twin => "twin".into(),
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
    /// The memory probe's walk did not close its cycle (memory corruption, or a bug here).
    #[error("the memory probe's walk did not come back to its start")]
    Probe,
    #[error(transparent)]
    Latency(#[from] LatencyError),
}

/// The memory probe: a cycle through every 64-byte line of a 256 KiB buffer in an order
/// fixed by a seed, each step's address read from the line before (no overlap, no hardware
/// prefetch), so that its time is the latency of 4,096 reads where the buffer then is.
pub struct Chase {
    next: Vec<u64>,
}

impl Chase {
    /// Row name of the probe.
    pub const NAME: &'static str = "probe:chase-256KiB";
    const LINES: usize = 4096;
    const WORDS_PER_LINE: usize = 8;

    pub fn new() -> Chase {
        use rand::{SeedableRng, seq::SliceRandom};
        let mut order: Vec<usize> = (1..Self::LINES).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed));
        order.insert(0, 0);
        let mut next = vec![0u64; Self::LINES * Self::WORDS_PER_LINE];
        for (i, &line) in order.iter().enumerate() {
            let to = order[(i + 1) % Self::LINES];
            next[line * Self::WORDS_PER_LINE] = (to * Self::WORDS_PER_LINE) as u64;
        }
        Chase { next }
    }

    /// Walks the whole cycle from line 0; true when it came back to line 0 after exactly
    /// one visit of every line.
    pub fn walk(&self) -> bool {
        let mut i = 0usize;
        for step in 1..=Self::LINES {
            i = self.next[i] as usize;
            if i == 0 {
                return step == Self::LINES;
            }
        }
        false
    }
}

impl Default for Chase {
    fn default() -> Self {
        Chase::new()
    }
}

/// Runs the gaps. `peer` is needed only for [`Gap::Peer`], `twin` for [`Gap::Twin`] (the
/// caller builds them).
struct GapRunner<'p> {
    buf: Vec<u8>,
    peer: Option<&'p mut Box<dyn Engine>>,
    twin: Option<Box<dyn Engine>>,
    sink: u64,
}

impl GapRunner<'_> {
    /// `gap` before the decision of `req`; `warm` runs the measured subject on `prev`.
    fn run(&mut self, gap: &Gap, req: &Request, prev: &Request, warm: &mut dyn FnMut(&Request)) {
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
            Gap::Warm => warm(prev),
            Gap::Twin => {
                if let Some(t) = self.twin.as_mut() {
                    std::hint::black_box(t.decide(prev));
                }
            }
            Gap::Seq(v) => v.iter().for_each(|g| self.run(g, req, prev, warm)),
        }
    }
}

/// For each engine: one untimed pass (every gap before every request, like the timed one),
/// then the [`timed_pass`], every decision checked against the engine's reference decision.
/// With `probe`, a timed pass of [`Chase`] too (one walk per request and gap).
/// `twins`: for [`Gap::Twin`], a second instance of each engine, in the same order (empty
/// otherwise).
pub fn measure(
    engines: &mut [Box<dyn Engine>],
    twins: Vec<Box<dyn Engine>>,
    peer: Option<&mut Box<dyn Engine>>,
    reqs: &[Request],
    gaps: &[Gap],
    probe: bool,
    mut progress: impl FnMut(&str, &Gap),
) -> Result<Vec<Row>, ColdstartError> {
    let mut runner = GapRunner { buf: Vec::new(), peer, twin: None, sink: 0 };
    let mut rows = Vec::new();
    let mut twins = twins.into_iter();
    for e in engines.iter_mut() {
        runner.twin = twins.next();
        let reference: Vec<Decision> = reqs.iter().map(|r| e.decide(r)).collect();
        for (ri, r) in reqs.iter().enumerate() {
            let prev = previous(reqs, ri);
            for gap in gaps {
                runner.run(gap, r, prev, &mut |p| {
                    std::hint::black_box(e.decide(p));
                });
                std::hint::black_box(e.decide(r));
            }
        }
        progress(e.name(), &Gap::Seq(gaps.to_vec()));
        let name = e.name().to_string();
        let times = timed_pass(
            e,
            &name,
            &mut runner,
            reqs,
            gaps,
            |e, r| e.decide(std::hint::black_box(r)),
            |ri, gap, got| {
                let want = &reference[ri];
                if &got == want {
                    return Ok(());
                }
                Err(ColdstartError::Unstable {
                    engine: name.clone(),
                    gap: gap.label(),
                    id: want.id.clone(),
                    got: Box::new(got),
                    want: Box::new(want.clone()),
                })
            },
        )?;
        push_rows(&mut rows, &name, gaps, &times);
    }
    if probe {
        runner.twin = None;
        progress(Chase::NAME, &Gap::Seq(gaps.to_vec()));
        let times = timed_pass(
            &mut Chase::new(),
            Chase::NAME,
            &mut runner,
            reqs,
            gaps,
            |c, _| std::hint::black_box(&*c).walk(),
            |_, _, ok| if ok { Ok(()) } else { Err(ColdstartError::Probe) },
        )?;
        push_rows(&mut rows, Chase::NAME, gaps, &times);
    }
    std::hint::black_box(runner.sink);
    Ok(rows)
}

/// The timed pass every row comes from, engines and probe alike: per gap, the times of
/// `timed` (a decision, a walk) on each request, each answer judged by `check` (request
/// index, gap, answer) before the next step.
///
/// Gaps are interleaved request by request, as `latency` interleaves engines: a change of
/// the host's state during the pass hits every gap alike. Every timed step follows the same
/// step on the previous request (untimed), then the gap, so that `none` means back to back.
/// What ran a few steps earlier still shows (the first decisions after the peer stay slow),
/// so the gaps' order changes with each request such that every gap follows every other
/// equally often ([`crate::latency::order::balanced`]).
fn timed_pass<S: ?Sized, T>(
    subject: &mut S,
    name: &str,
    runner: &mut GapRunner<'_>,
    reqs: &[Request],
    gaps: &[Gap],
    timed: impl Fn(&mut S, &Request) -> T,
    mut check: impl FnMut(usize, &Gap, T) -> Result<(), ColdstartError>,
) -> Result<Vec<EngineTimings>, ColdstartError> {
    let mut times =
        gaps.iter().map(|_| EngineTimings::new(name, reqs.len())).collect::<Result<Vec<_>, _>>()?;
    let orders = crate::latency::order::balanced(gaps.len());
    for (ri, r) in reqs.iter().enumerate() {
        let prev = previous(reqs, ri);
        for &gi in &orders[ri % orders.len()] {
            std::hint::black_box(timed(subject, prev));
            runner.run(&gaps[gi], r, prev, &mut |p| {
                std::hint::black_box(timed(subject, p));
            });
            let t0 = Instant::now();
            let answer = timed(subject, r);
            times[gi].record(ri, t0.elapsed().as_nanos());
            check(ri, &gaps[gi], answer)?;
        }
    }
    Ok(times)
}

/// The request before `reqs[ri]`, the last one before the first: what a timed step follows,
/// and what [`Gap::Warm`] and [`Gap::Twin`] decide again.
fn previous(reqs: &[Request], ri: usize) -> &Request {
    &reqs[ri.checked_sub(1).unwrap_or(reqs.len() - 1)]
}

/// One row per gap for `name`, with each p50 over the `none` gap's when it was measured.
fn push_rows(rows: &mut Vec<Row>, name: &str, gaps: &[Gap], times: &[EngineTimings]) {
    let first = rows.len();
    let mut none_p50 = None;
    for (gap, t) in gaps.iter().zip(times) {
        let st = t.stats();
        if *gap == Gap::None {
            none_p50 = Some(st.p50_ns);
        }
        rows.push(Row {
            engine: name.to_string(),
            gap: gap.label(),
            count: st.count as usize,
            p50_ns: st.p50_ns,
            p90_ns: st.p90_ns,
            p50_vs_none: None,
        });
    }
    if let Some(base) = none_p50.filter(|&b| b > 0) {
        for row in &mut rows[first..] {
            row.p50_vs_none = Some(row.p50_ns as f64 / base as f64);
        }
    }
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
        for s in [
            "none",
            "spin:5ms",
            "spin:250us",
            "sleep:1ms",
            "touch:16MiB",
            "touch:512KiB",
            "modsec",
            "warm",
            "twin",
            "modsec+twin",
        ] {
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
        assert!(Gap::parse("modsec+twin").unwrap().uses_twin());
        assert!(!Gap::parse("modsec+warm").unwrap().uses_twin());
    }

    /// Records the id of every request it decides, in a log shared with the test.
    struct Recorder(&'static str, std::rc::Rc<std::cell::RefCell<Vec<String>>>);

    impl Engine for Recorder {
        fn name(&self) -> &str {
            self.0
        }
        fn decide(&mut self, req: &Request) -> Decision {
            self.1.borrow_mut().push(format!("{}:{}", self.0, req.id));
            Decision {
                id: req.id.clone(),
                status: 200,
                disruptive: false,
                matched_ids: Vec::new(),
                anomaly_score: 0,
            }
        }
    }

    /// `warm` has the measured engine decide the previous request, `twin` its twin; both
    /// before the timed decision, and after whatever precedes them in a `+` sequence.
    #[test]
    fn warm_and_twin_gaps_decide_the_previous_request() {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let reqs: Vec<Request> = ["a", "b"]
            .iter()
            .map(|id| Request { id: id.to_string(), ..Request::default() })
            .collect();
        let mut engines: Vec<Box<dyn Engine>> = vec![Box::new(Recorder("e", log.clone()))];
        let twins: Vec<Box<dyn Engine>> = vec![Box::new(Recorder("twin", log.clone()))];
        let gaps = [Gap::parse("twin+warm").unwrap()];
        let rows = measure(&mut engines, twins, None, &reqs, &gaps, false, |_, _| {}).unwrap();
        assert_eq!(rows.len(), 1);
        // The timed pass, the last 8 decisions: per request, the previous one (untimed),
        // the gap (twin, then the engine, on the previous request), then the timed one.
        let log = log.borrow();
        let timed = &log[log.len() - 8..];
        assert_eq!(timed, ["e:b", "twin:b", "e:b", "e:a", "e:a", "twin:a", "e:a", "e:b"]);
    }

    #[test]
    fn the_probe_walks_one_cycle_through_every_line() {
        let c = Chase::new();
        assert!(c.walk());
        let mut seen = vec![false; Chase::LINES];
        let mut i = 0usize;
        for _ in 0..Chase::LINES {
            assert!(!seen[i / Chase::WORDS_PER_LINE], "line visited twice");
            seen[i / Chase::WORDS_PER_LINE] = true;
            i = c.next[i] as usize;
        }
        assert_eq!(i, 0);
        assert!(seen.iter().all(|&s| s));
        // A broken cycle is reported, not walked forever.
        let mut broken = Chase::new();
        let to = broken.next[0] as usize;
        broken.next[to] = to as u64;
        assert!(!broken.walk());
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
