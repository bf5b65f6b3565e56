//! Per-rule profile of the native evaluator: which rules cost the time.
//!
//! [`rule_infos`] reads id, msg, file:line, phase and operator of every compiled rule once;
//! [`profile_native`] runs a corpus through `NativeEngine::evaluate_profiled` (the evaluator
//! wraps each rule, chain links included, in an `Instant` pair and adds evaluated / matched /
//! nanoseconds by rule index); [`RuleProfile::from_stats`] joins both, subtracts the timer's
//! own bias and sorts by total time. Output: [`RuleProfile::to_text`] (`rules.txt`), serde
//! JSON (`rules.json`) and synthetic folded stacks [`RuleProfile::folded`] for a flamegraph
//! whose frames name rules.

use crate::Folded;
use serde::Serialize;
use std::time::Instant;
use waf_engine::Request;
use waf_engine::eval::run::RuleStat;
use waf_engine::eval::{CompiledRuleSet, NativeEngine, compile::Item};

/// What the profile shows about one compiled rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub index: usize,
    /// The rule id, or `#<index>` for a rule without one.
    pub id: String,
    pub msg: String,
    /// `file:line` where the rule was defined, when known.
    pub loc: Option<String>,
    pub phase: u8,
    /// `@rx`, `@pm`, ...; `condition` for a Cloudflare-style expression.
    pub operator: String,
}

/// Reads every rule of a compiled set (first chain links; a chain is timed as one rule).
pub fn rule_infos(rs: &CompiledRuleSet) -> Vec<RuleInfo> {
    let mut out = Vec::new();
    for (p, items) in rs.phases.iter().enumerate() {
        for item in items {
            let Item::Rule(r) = item else { continue };
            out.push(RuleInfo {
                index: r.index,
                id: r.id().map_or_else(|| format!("#{}", r.index), |i| i.to_string()),
                msg: r.actions.msg.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                loc: r.loc.as_ref().map(|l| l.to_string()),
                phase: p as u8 + 1,
                operator: match &r.operator {
                    Some((_, _, op)) => {
                        let neg = if op.negated { "!" } else { "" };
                        format!("{neg}@{}", waf_engine::seclang::operator_name(&op.kind))
                    }
                    None => "condition".into(),
                },
            });
        }
    }
    out
}

/// The timer's own cost, measured on this machine.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TimerOverhead {
    /// What an empty `Instant::now()` .. `elapsed()` interval reads as (median, ns): the bias
    /// inside every per-rule measurement, subtracted once per evaluation.
    pub bias_ns: f64,
    /// Wall time one `Instant` pair costs (ns): what profiling adds per rule evaluation.
    pub pair_cost_ns: f64,
}

/// Measures [`TimerOverhead`]: 31 batches of 2,000 empty intervals, medians.
pub fn measure_timer_overhead() -> TimerOverhead {
    const N: usize = 2_000;
    let mut bias = Vec::with_capacity(31);
    let mut cost = Vec::with_capacity(31);
    for _ in 0..31 {
        let mut reads = Vec::with_capacity(N);
        let wall = Instant::now();
        for _ in 0..N {
            let t0 = Instant::now();
            reads.push(std::hint::black_box(t0).elapsed().as_nanos() as u64);
        }
        cost.push(wall.elapsed().as_nanos() as f64 / N as f64);
        reads.sort_unstable();
        bias.push(reads[N / 2] as f64);
    }
    TimerOverhead { bias_ns: median(&mut bias), pair_cost_ns: median(&mut cost) }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One row of the per-rule table.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    #[serde(flatten)]
    pub rule: RuleInfo,
    pub evaluated: u64,
    pub matched: u64,
    /// False when the profiler cannot observe matches of this rule (the Lua line profile of
    /// a Cloudflare-style condition: its match happens inside one line), `matched` is then 0.
    pub matched_known: bool,
    /// Measured time minus `bias_ns` per evaluation (never below zero).
    pub total_ns: u64,
    /// Measured time as read.
    pub raw_ns: u64,
    pub ns_per_eval: f64,
    /// `total_ns` over the sum of every row's `total_ns`.
    pub share: f64,
}

/// A per-rule profile of one engine over one corpus.
#[derive(Debug, Clone, Serialize)]
pub struct RuleProfile {
    pub engine: String,
    pub requests: usize,
    /// The per-rule timer's cost (native engine: an `Instant` pair per rule evaluation).
    pub timer: Option<TimerOverhead>,
    /// The line hook's cost (Lua engines: the table is summed from a line profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_hook: Option<crate::lua_lines::HookOverhead>,
    pub overhead_subtracted: bool,
    /// Wall time of the profiled pass (request setup and decisions included).
    pub wall_ns: u64,
    /// Sum of the rows' `total_ns`.
    pub rules_ns: u64,
    /// Sorted by `total_ns`, largest first; rules never evaluated are left out.
    pub rows: Vec<RuleRow>,
}

impl RuleProfile {
    /// Joins counters (indexed by rule index) with rule descriptions.
    pub fn from_stats(
        engine: &str,
        infos: &[RuleInfo],
        stats: &[RuleStat],
        requests: usize,
        timer: TimerOverhead,
        wall_ns: u64,
    ) -> RuleProfile {
        let mut rows: Vec<RuleRow> = infos
            .iter()
            .filter_map(|info| {
                let s = stats.get(info.index)?;
                if s.evaluated == 0 {
                    return None;
                }
                let bias = (timer.bias_ns * s.evaluated as f64) as u64;
                let total = s.nanos.saturating_sub(bias);
                Some(RuleRow {
                    rule: info.clone(),
                    evaluated: s.evaluated,
                    matched: s.matched,
                    matched_known: true,
                    total_ns: total,
                    raw_ns: s.nanos,
                    ns_per_eval: total as f64 / s.evaluated as f64,
                    share: 0.0,
                })
            })
            .collect();
        let rules_ns = share_and_sort(&mut rows);
        RuleProfile {
            engine: engine.into(),
            requests,
            timer: Some(timer),
            line_hook: None,
            overhead_subtracted: true,
            wall_ns,
            rules_ns,
            rows,
        }
    }

    /// The `rules.txt` table; `top` limits the rows (the JSON always has them all).
    pub fn to_text(&self, top: Option<usize>) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "# per-rule profile: engine {}, {} requests, {} rules evaluated\n",
            self.engine,
            self.requests,
            self.rows.len()
        ));
        if let Some(t) = &self.timer {
            s.push_str(&format!(
                "# timer: an empty Instant pair reads {:.0} ns (subtracted once per evaluation); \
                 a pair costs {:.0} ns of wall time\n",
                t.bias_ns, t.pair_cost_ns,
            ));
        }
        if let Some(h) = &self.line_hook {
            s.push_str(&format!(
                "# summed from a line profile, JIT off: the hook costs {:.0} ns per line event, \
                 {:.0} ns/event of it charged to lines ({}); evaluated and matched counted from \
                 the executions of each rule's end and action lines\n",
                h.per_event_ns,
                h.bias_ns,
                if self.overhead_subtracted { "subtracted" } else { "not subtracted" },
            ));
        }
        s.push_str(&format!(
            "# time in rules {:.3} ms of {:.3} ms wall ({:.1}%)\n",
            self.rules_ns as f64 / 1e6,
            self.wall_ns as f64 / 1e6,
            if self.wall_ns > 0 { 100.0 * self.rules_ns as f64 / self.wall_ns as f64 } else { 0.0 },
        ));
        s.push_str(&format!(
            "{:>10} {:>5} {:>13} {:>10} {:>10} {:>12} {:>7}  {:<12} {:<28} {}\n",
            "rule",
            "phase",
            "operator",
            "evaluated",
            "matched",
            "total(ms)",
            "ns/eval",
            "share",
            "file:line",
            "msg"
        ));
        for r in self.rows.iter().take(top.unwrap_or(usize::MAX)) {
            s.push_str(&format!(
                "{:>10} {:>5} {:>13} {:>10} {:>10} {:>12.3} {:>7.0}  {:<12} {:<28} {}\n",
                r.rule.id,
                r.rule.phase,
                r.rule.operator,
                r.evaluated,
                if r.matched_known { r.matched.to_string() } else { "?".into() },
                r.total_ns as f64 / 1e6,
                r.ns_per_eval,
                format!("{:.2}%", 100.0 * r.share),
                short_loc(r.rule.loc.as_deref().unwrap_or("-")),
                r.rule.msg
            ));
        }
        s
    }

    /// Synthetic stacks `native;phase_<n>;rule_<id>;<operator>` weighted by nanoseconds:
    /// pprof samples real Rust stacks, which cannot say which rule a frame belongs to, so
    /// the rule-level flamegraph is drawn from the measured per-rule times instead.
    pub fn folded(&self) -> Folded {
        let mut f = Folded::new();
        for r in &self.rows {
            f.add(
                [
                    self.engine.clone(),
                    format!("phase_{}", r.rule.phase),
                    format!("rule_{}", r.rule.id),
                    r.rule.operator.clone(),
                ],
                r.total_ns,
            );
        }
        f
    }
}

/// Fills every row's `share` of the rows' total, sorts by total time (largest first, then
/// rule index) and returns the total.
pub(crate) fn share_and_sort(rows: &mut [RuleRow]) -> u64 {
    let rules_ns: u64 = rows.iter().map(|r| r.total_ns).sum();
    for r in rows.iter_mut() {
        r.share = if rules_ns > 0 { r.total_ns as f64 / rules_ns as f64 } else { 0.0 };
    }
    rows.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.rule.index.cmp(&b.rule.index)));
    rules_ns
}

/// `/usr/share/modsecurity-crs/rules/REQUEST-942-...conf:123` -> `REQUEST-942-...conf:123`.
fn short_loc(loc: &str) -> &str {
    loc.rsplit('/').next().unwrap_or(loc)
}

/// Runs every request through the engine with per-rule timing and builds the profile.
pub fn profile_native(engine: &NativeEngine, requests: &[Request]) -> RuleProfile {
    let timer = measure_timer_overhead();
    let infos = rule_infos(engine.compiled());
    let mut stats = Vec::new();
    let wall = Instant::now();
    for r in requests {
        std::hint::black_box(engine.evaluate_profiled(r, &mut stats));
    }
    let wall_ns = wall.elapsed().as_nanos() as u64;
    RuleProfile::from_stats("native", &infos, &stats, requests.len(), timer, wall_ns)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn engine(rules: &str) -> NativeEngine {
        let set = waf_engine::seclang::parse_str(rules, "t.conf").unwrap();
        NativeEngine::new(&set).unwrap()
    }

    /// A GET of `uri` with a Host header (also used by the Lua profiler's tests).
    pub(crate) fn req(uri: &str) -> Request {
        Request {
            id: uri.into(),
            method: "GET".into(),
            uri: uri.as_bytes().to_vec(),
            headers: vec![("Host".into(), "h".into())],
            ..Request::default()
        }
    }

    #[test]
    fn counts_evaluations_and_matches_per_rule() {
        let e = engine(
            "SecRuleEngine On\nSecRequestBodyAccess On\n\
             SecRule ARGS \"@rx attack\" \"id:1,phase:2,pass,msg:'found attack'\"\n\
             SecRule REQUEST_URI \"@contains /admin\" \"id:2,phase:1,pass\"\n\
             SecRule ARGS \"@rx a+\" \"id:3,phase:2,pass,chain\"\n\
             SecRule ARGS \"@rx b\" \"t:none\"\n",
        );
        let reqs = [req("/x?q=attack"), req("/admin?q=ok"), req("/x?q=aaab")];
        let p = profile_native(&e, &reqs);
        let row = |id: &str| p.rows.iter().find(|r| r.rule.id == id).unwrap();
        assert_eq!((row("1").evaluated, row("1").matched), (3, 1));
        assert_eq!((row("2").evaluated, row("2").matched), (3, 1));
        assert_eq!(row("2").rule.phase, 1);
        assert_eq!(row("1").rule.msg, "found attack");
        assert_eq!(row("1").rule.operator, "@rx");
        assert_eq!(row("1").rule.loc.as_deref(), Some("t.conf:3"));
        // The chain counts under its first link, matched only when the whole chain did.
        assert_eq!((row("3").evaluated, row("3").matched), (3, 1));
        assert_eq!(p.rows.len(), 3);
        assert!(p.rows.windows(2).all(|w| w[0].total_ns >= w[1].total_ns));
        let share: f64 = p.rows.iter().map(|r| r.share).sum();
        assert!(p.rules_ns == 0 || (share - 1.0).abs() < 1e-9, "{share}");
        let text = p.to_text(Some(2));
        assert!(text.contains("subtracted once per evaluation"), "{text}");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 3, "{text}");
    }

    #[test]
    fn bias_is_subtracted_and_never_underflows() {
        let infos = vec![RuleInfo {
            index: 0,
            id: "7".into(),
            msg: String::new(),
            loc: None,
            phase: 2,
            operator: "@rx".into(),
        }];
        let timer = TimerOverhead { bias_ns: 40.0, pair_cost_ns: 50.0 };
        for (nanos, evaluated, want) in [(1000, 10, 600), (100, 10, 0), (0, 1, 0)] {
            let stats = [RuleStat { evaluated, matched: 0, nanos }];
            let p = RuleProfile::from_stats("native", &infos, &stats, 1, timer, 5000);
            assert_eq!(p.rows[0].total_ns, want);
            assert_eq!(p.rows[0].raw_ns, nanos);
        }
    }

    #[test]
    fn folded_stacks_name_rules() {
        let e =
            engine("SecRequestBodyAccess On\nSecRule ARGS \"@rx x\" \"id:942100,phase:2,pass\"\n");
        let p = profile_native(&e, &vec![req("/?a=x"); 50]);
        let f = p.folded();
        // A rule that ran is in the stacks unless its time rounded to zero after the bias.
        if p.rows[0].total_ns > 0 {
            assert!(f.to_text().starts_with("native;phase_2;rule_942100;@rx "), "{}", f.to_text());
        }
    }

    #[test]
    fn timer_overhead_is_plausible() {
        let t = measure_timer_overhead();
        assert!(t.pair_cost_ns > 0.0 && t.pair_cost_ns < 100_000.0, "{t:?}");
        assert!(t.bias_ns < 100_000.0, "{t:?}");
    }
}
