//! The Lua backend seen by the profilers: its source map as a [`LineMap`], the per-rule table
//! summed from a line profile, and the runs of a corpus through a [`LuaEngine`] under the
//! line hook ([`profile_engine_lines`]) and under `jit.profile` ([`sample_engine`]).
//!
//! Flow: [`ChunkRules::new`] reads the generated program's [`SourceMap`]: every rule's block
//! becomes one line range (from its entry line up to the next rule, marker or phase-function
//! boundary, so the unmapped lines inside a block, such as `local h, m = 0, 0` or the
//! `if f ~= 0 then return end` after the rule's end call, count for the rule), and the lines
//! whose executions count evaluations and matches are noted. [`lua_rule_profile`] then folds
//! a [`LineProfile`] into a [`RuleProfile`] with the same rows as the native table, so the
//! two backends compare rule by rule.
//!
//! Counts come from line counts, not from counters added to the generated code (the code
//! profiled is the code benchmarked):
//! - evaluated = executions of the rule's end line (`done`/`uncond`/`cdone`), which runs
//!   exactly when the entry check `pre` let the rule run: the native evaluator counts the
//!   same event (`rule_should_run` true). Both profilers turn the prefilter skip off for
//!   this, or a rule it rules out would not count as evaluated
//!   (`LuaEngine::set_count_every_rule`);
//! - matched = executions of the first link's action line (`after`), reached only when the
//!   whole chain matched; a rule without operator (`SecAction`) always matches (native
//!   `eval_rule` returns true for it); a Cloudflare-style condition sets its match flag
//!   within one line, which a line hook cannot see: its `matched` is reported unknown.

use crate::lua_lines::{LineMap, LineProfile, RuleRef};
use crate::lua_sample::SampleProfile;
use crate::rules::{RuleInfo, RuleProfile, RuleRow, rule_infos, share_and_sort};
use crate::{Folded, ProfileError};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use waf_engine::Request;
use waf_engine::eval::CompiledRuleSet;
use waf_engine::eval::compile::Item;
use waf_engine::lua::{LineKind, LuaEngine, LuaProgram};

/// How a rule's matches can be counted from lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchCount {
    /// Executions of the first link's action line.
    ActionLine,
    /// Every evaluation is a match (`SecAction`).
    Always,
    /// Not observable by a line hook (Cloudflare-style condition).
    Unknown,
}

/// The generated chunk's lines grouped into rules (by `CRule::index` of the chain's first
/// link, the key of the native profile).
#[derive(Debug, Clone)]
pub struct ChunkRules {
    /// Chunk name as given to `Chunk::set_name`.
    pub chunk_name: String,
    /// Inclusive line ranges, sorted, not overlapping: (first, last, rule index).
    ranges: Vec<(u32, u32, usize)>,
    /// Rule index -> description (id, msg, phase, operator, location).
    infos: HashMap<usize, RuleInfo>,
    /// Lines whose executions are evaluations of the rule.
    eval_lines: Vec<(u32, usize)>,
    /// Lines whose executions are matches of the rule.
    match_lines: Vec<(u32, usize)>,
    matches: HashMap<usize, MatchCount>,
    /// Entry line of each phase function's first rule, with the phase.
    phase_first: Vec<(u32, u8)>,
}

impl ChunkRules {
    /// Reads the program's source map; `compiled` is the set it was generated from.
    pub fn new(program: &LuaProgram, compiled: &CompiledRuleSet) -> ChunkRules {
        let infos: HashMap<usize, RuleInfo> =
            rule_infos(compiled).into_iter().map(|i| (i.index, i)).collect();
        let mut matches = HashMap::new();
        for items in &compiled.phases {
            for item in items {
                let Item::Rule(r) = item else { continue };
                let how = if r.condition.is_some() {
                    MatchCount::Unknown
                } else if r.operator.is_none() {
                    MatchCount::Always
                } else {
                    MatchCount::ActionLine
                };
                matches.insert(r.index, how);
            }
        }
        // Lines where a rule's block ends at the latest: the next rule's entry, a marker
        // call, and the phase functions' own first and last lines (written at column 0).
        let mut bounds: Vec<u32> = Vec::new();
        for (i, text) in program.source.lines().enumerate() {
            if text == "end" || text.starts_with("local function ") || text.starts_with("return ") {
                bounds.push(i as u32 + 1);
            }
        }
        let entries = &program.source_map.entries;
        let mut starts: Vec<(u32, usize)> = Vec::new();
        let mut eval_lines = Vec::new();
        let mut match_lines = Vec::new();
        let mut phase_first: Vec<(u32, u8)> = Vec::new();
        for e in entries {
            match e.kind {
                LineKind::RuleEntry => {
                    if phase_first.last().is_none_or(|&(_, p)| p != e.phase) {
                        phase_first.push((e.line, e.phase));
                    }
                    starts.push((e.line, e.rule_index));
                    bounds.push(e.line);
                }
                LineKind::Marker => bounds.push(e.line),
                LineKind::RuleEnd => {
                    if let Some(&(_, root)) = starts.last() {
                        eval_lines.push((e.line, root));
                    }
                }
                LineKind::Actions if e.link == 0 => {
                    if let Some(&(_, root)) = starts.last() {
                        match_lines.push((e.line, root));
                    }
                }
                _ => {}
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let ranges = starts
            .iter()
            .map(|&(start, root)| {
                let next = bounds.partition_point(|&b| b <= start);
                let end = bounds.get(next).map_or(u32::MAX, |b| b - 1);
                (start, end, root)
            })
            .collect();
        ChunkRules {
            chunk_name: program.source_map.chunk_name.clone(),
            ranges,
            infos,
            eval_lines,
            match_lines,
            matches,
            phase_first,
        }
    }

    /// The rule index a line belongs to.
    pub fn index_of(&self, line: u32) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.0 <= line).checked_sub(1)?;
        let (_, end, root) = self.ranges[i];
        (line <= end).then_some(root)
    }

    /// Number of rule blocks in the chunk.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    fn id_of(&self, index: usize) -> String {
        self.infos.get(&index).map_or_else(|| format!("#{index}"), |i| i.id.clone())
    }
}

impl LineMap for ChunkRules {
    fn rule_of(&self, line: u32) -> Option<RuleRef> {
        self.index_of(line).map(|i| RuleRef { id: self.id_of(i) })
    }
}

/// The per-rule table of a line profile: same rows as the native table (`rules.txt`).
/// `wall_ns` is the wall time of the profiled pass.
pub fn lua_rule_profile(
    engine: &str,
    lines: &LineProfile,
    map: &ChunkRules,
    requests: usize,
    wall_ns: u64,
) -> RuleProfile {
    #[derive(Default)]
    struct Acc {
        evaluated: u64,
        matched: u64,
        total_ns: u64,
        raw_ns: u64,
    }
    let by_line: HashMap<u32, u64> = lines.rows.iter().map(|r| (r.line, r.count)).collect();
    let mut acc: HashMap<usize, Acc> = HashMap::new();
    for r in &lines.rows {
        if let Some(root) = map.index_of(r.line) {
            let a = acc.entry(root).or_default();
            a.total_ns += r.elapsed_ns;
            a.raw_ns += r.raw_ns;
        }
    }
    for &(line, root) in &map.eval_lines {
        acc.entry(root).or_default().evaluated += by_line.get(&line).copied().unwrap_or(0);
    }
    for &(line, root) in &map.match_lines {
        acc.entry(root).or_default().matched += by_line.get(&line).copied().unwrap_or(0);
    }
    let mut rows: Vec<RuleRow> = acc
        .into_iter()
        .filter(|(_, a)| a.evaluated > 0)
        .map(|(root, a)| {
            let how = map.matches.get(&root).copied().unwrap_or(MatchCount::Unknown);
            let info = map.infos.get(&root).cloned().unwrap_or_else(|| RuleInfo {
                index: root,
                id: format!("#{root}"),
                msg: String::new(),
                loc: None,
                phase: 0,
                operator: String::new(),
            });
            RuleRow {
                rule: info,
                evaluated: a.evaluated,
                matched: match how {
                    MatchCount::ActionLine => a.matched,
                    MatchCount::Always => a.evaluated,
                    MatchCount::Unknown => 0,
                },
                matched_known: how != MatchCount::Unknown,
                total_ns: a.total_ns,
                raw_ns: a.raw_ns,
                ns_per_eval: a.total_ns as f64 / a.evaluated as f64,
                share: 0.0,
            }
        })
        .collect();
    let rules_ns = share_and_sort(&mut rows);
    RuleProfile {
        engine: engine.into(),
        requests,
        timer: None,
        line_hook: Some(lines.hook),
        overhead_subtracted: lines.overhead_subtracted,
        wall_ns,
        rules_ns,
        rows,
    }
}

/// What one pass of a corpus through a Lua engine did besides being profiled.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PassStats {
    /// Times the whole corpus went through.
    pub rounds: u64,
    pub requests: u64,
    /// Requests the engine could not finish (limit, runtime fault): answered 500.
    pub failed: u64,
    pub first_error: Option<String>,
    pub wall_ns: u64,
}

fn run_corpus(engine: &mut LuaEngine, requests: &[Request], stats: &mut PassStats) {
    for r in requests {
        stats.requests += 1;
        if let Err(e) = engine.evaluate(r) {
            stats.failed += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(format!("request {}: {e}", r.id));
            }
        }
    }
    stats.rounds += 1;
}

/// A line profile of the engine's chunk over one pass of `requests` (JIT off, hook cost
/// measured and subtracted), with the per-rule table summed from it.
pub struct LinePass {
    pub lines: LineProfile,
    pub rules: RuleProfile,
    pub map: ChunkRules,
    pub stats: PassStats,
}

/// Runs `requests` once through `engine` under the line hook. The engine should be built
/// without an instruction budget (`Limits::instructions_per_request: None`): a state has
/// one hook, and the line hook replaces the budget's count hook for the run and removes it
/// after.
pub fn profile_engine_lines(
    engine: &mut LuaEngine,
    engine_name: &str,
    requests: &[Request],
) -> Result<LinePass, ProfileError> {
    let map = ChunkRules::new(engine.program(), engine.compiled());
    let source = engine.program().source.clone();
    // `Lua` is a shared handle: cloning it lets the closure borrow the engine mutably.
    let lua = engine.lua().clone();
    let mut stats = PassStats::default();
    // Evaluations count as the native profiler counts them (see `set_count_every_rule`).
    engine.set_count_every_rule(true);
    let profiled = crate::lua_lines::profile_lines(&lua, &map.chunk_name.clone(), &source, |_| {
        // Timed inside: `profile_lines` calibrates the hook first, which is not the pass.
        let t = Instant::now();
        run_corpus(engine, requests, &mut stats);
        stats.wall_ns = t.elapsed().as_nanos() as u64;
        Ok(())
    });
    engine.set_count_every_rule(false);
    let ((), mut lines) = profiled?;
    lines.attach_rules(&map);
    let rules = lua_rule_profile(engine_name, &lines, &map, requests.len(), stats.wall_ns);
    Ok(LinePass { lines, rules, map, stats })
}

/// A `jit.profile` pass (JIT on): whole rounds of `requests` until `min_time` has passed
/// (at least one), samples every [`crate::lua_sample::SAMPLE_INTERVAL_MS`] folded into rule
/// frames.
pub struct SamplePass {
    pub sample: SampleProfile,
    pub stats: PassStats,
}

/// Frame name (followed by the phase) of samples taken in Rust outside any Lua call and
/// delivered when the next phase function starts.
pub const OUTSIDE_LUA: &str = "outside_lua_before_phase";

/// Samples `engine` over `requests`, repeated for at least `min_time`: at a few ms per sample,
/// one 50 ms corpus pass would give a picture of a dozen samples.
pub fn sample_engine(
    engine: &mut LuaEngine,
    requests: &[Request],
    min_time: Duration,
) -> Result<SamplePass, ProfileError> {
    let map = ChunkRules::new(engine.program(), engine.compiled());
    let lua = engine.lua().clone();
    let mut stats = PassStats::default();
    let t = Instant::now();
    // LuaJIT takes a sample at the VM's next instruction after the timer fired, with the VM
    // state of the moment it fired. A tick that lands while Rust works outside any Lua call
    // (request set-up, body parsing, the phase prologue) is therefore recorded in state C at
    // the first instruction of the next phase function: the entry line of its first rule
    // (CRS: 200000 in phase 1, 200002 in phase 2). Such samples get their own frame; what
    // the first rule's own `pre` check costs in state C there is a few ns, lost with them.
    let name = |state: &str, line: u32| -> Option<String> {
        if state == "C" {
            if let Some(&(_, phase)) = map.phase_first.iter().find(|(l, _)| *l == line) {
                return Some(format!("{OUTSIDE_LUA}{phase}"));
            }
        }
        map.rule_of(line).map(|r| format!("rule_{}", r.id))
    };
    let chunk = map.chunk_name.clone();
    let ((), sample) = crate::lua_sample::sample_named(
        &lua,
        &chunk,
        crate::lua_sample::SAMPLE_INTERVAL_MS,
        &name,
        |_| {
            while stats.rounds == 0 || t.elapsed() < min_time {
                run_corpus(engine, requests, &mut stats);
            }
            Ok(())
        },
    )?;
    stats.wall_ns = t.elapsed().as_nanos() as u64;
    Ok(SamplePass { sample, stats })
}

/// Samples per rule in folded stacks: a stack counts once for every distinct `rule_<id>`
/// frame in it (inclusive), sorted by samples, largest first.
pub fn samples_by_rule(folded: &Folded) -> Vec<(String, u64)> {
    let mut acc: HashMap<String, u64> = HashMap::new();
    for (stack, count) in folded.iter() {
        let mut seen: Vec<&str> = Vec::new();
        for f in stack.split(';') {
            if let Some(id) = f.strip_prefix("rule_") {
                if !seen.contains(&id) {
                    seen.push(id);
                    *acc.entry(id.to_string()).or_insert(0) += count;
                }
            }
        }
    }
    let mut v: Vec<(String, u64)> = acc.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Whether two rankings of rules agree: the overlap of their first `n`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopAgreement {
    pub n: usize,
    pub a_name: String,
    pub b_name: String,
    pub a: Vec<String>,
    pub b: Vec<String>,
    /// Rules in both top-n lists.
    pub both: Vec<String>,
}

impl TopAgreement {
    pub fn new(
        n: usize,
        a_name: &str,
        a: impl IntoIterator<Item = String>,
        b_name: &str,
        b: impl IntoIterator<Item = String>,
    ) -> TopAgreement {
        let a: Vec<String> = a.into_iter().take(n).collect();
        let b: Vec<String> = b.into_iter().take(n).collect();
        let both = a.iter().filter(|x| b.contains(x)).cloned().collect();
        TopAgreement { n, a_name: a_name.into(), b_name: b_name.into(), a, b, both }
    }

    /// One line: `top 10 by rule: 8/10 in both (lines vs sample); only lines: ...`.
    pub fn summary(&self) -> String {
        let only = |x: &[String], y: &[String]| -> String {
            let v: Vec<&str> = x.iter().filter(|i| !y.contains(i)).map(String::as_str).collect();
            if v.is_empty() { "-".into() } else { v.join(" ") }
        };
        format!(
            "top {} by rule: {}/{} in both ({} vs {}); only {}: {}; only {}: {}",
            self.n,
            self.both.len(),
            self.a.len().max(self.b.len()),
            self.a_name,
            self.b_name,
            self.a_name,
            only(&self.a, &self.b),
            self.b_name,
            only(&self.b, &self.a),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::req;
    use waf_engine::lua::{Backend, Limits, LuaOptions};

    const RULES: &str = "SecRuleEngine On\nSecRequestBodyAccess On\n\
        SecRule ARGS \"@rx attack\" \"id:1,phase:2,pass,msg:'found attack'\"\n\
        SecRule REQUEST_URI \"@contains /admin\" \"id:2,phase:1,pass,skipAfter:END\"\n\
        SecRule ARGS \"@rx a+\" \"id:3,phase:1,pass,chain\"\n\
        SecRule ARGS \"@rx b\" \"t:none\"\n\
        SecMarker END\n\
        SecAction \"id:4,phase:2,pass,nolog\"\n";

    fn engine(rules: &str, backend: Backend) -> LuaEngine {
        let set = waf_engine::seclang::parse_str(rules, "t.conf").unwrap();
        let limits = Limits { instructions_per_request: None, ..Limits::default() };
        LuaEngine::new(&set, LuaOptions { backend, limits, ..LuaOptions::default() }).unwrap()
    }

    #[test]
    fn ranges_cover_each_rule_block_and_nothing_else() {
        let e = engine(RULES, Backend::Mlua);
        let map = ChunkRules::new(e.program(), e.compiled());
        assert_eq!(map.len(), 4);
        let src: Vec<&str> = e.program().source.lines().collect();
        for (i, text) in src.iter().enumerate() {
            let line = i as u32 + 1;
            let rule = map.rule_of(line).map(|r| r.id);
            // Every call into the runtime with a handle (`pre(ctx, 0)`, `w_tgt(ctx, 1, 0)`).
            if text.contains("(ctx, ") {
                assert!(rule.is_some(), "line {line} `{text}` has no rule");
            }
            if *text == "end" || text.starts_with("local function") || text.starts_with("local w_")
            {
                assert_eq!(rule, None, "line {line} `{text}`");
            }
        }
        // Every mapped line of the source map lands in the rule of its own id.
        for entry in &e.program().source_map.entries {
            if let Some(id) = entry.rule_id {
                assert_eq!(map.rule_of(entry.line).map(|r| r.id), Some(id.to_string()));
            }
        }
    }

    #[test]
    fn counts_from_lines_equal_the_native_counts() {
        let reqs = [req("/x?q=attack"), req("/admin?q=aab"), req("/x?q=aaab"), req("/?q=zz")];
        let native = {
            let set = waf_engine::seclang::parse_str(RULES, "t.conf").unwrap();
            crate::rules::profile_native(&waf_engine::eval::NativeEngine::new(&set).unwrap(), &reqs)
        };
        for backend in [Backend::Mlua, Backend::Ffi] {
            let mut e = engine(RULES, backend);
            let p = profile_engine_lines(&mut e, "lua", &reqs).unwrap();
            assert_eq!(p.stats.failed, 0);
            let got: Vec<(String, u64, u64)> = {
                let mut v: Vec<_> = p
                    .rules
                    .rows
                    .iter()
                    .map(|r| (r.rule.id.clone(), r.evaluated, r.matched))
                    .collect();
                v.sort();
                v
            };
            let want: Vec<(String, u64, u64)> = {
                let mut v: Vec<_> = native
                    .rows
                    .iter()
                    .map(|r| (r.rule.id.clone(), r.evaluated, r.matched))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(got, want, "{backend:?}\n{}", p.lines.to_text(None));
            assert!(p.rules.rows.iter().all(|r| r.matched_known));
            assert!(p.rules.line_hook.is_some() && p.rules.timer.is_none());
            assert!(p.rules.to_text(None).contains("line profile, JIT off"));
        }
    }

    #[test]
    fn samples_count_once_per_rule_and_top_lists_compare() {
        let f = Folded::parse("vm_N;rule_1;rule_2 5\nvm_I;rule_1 3\nvm_C;x:1 4\n").unwrap();
        assert_eq!(samples_by_rule(&f), vec![("1".to_string(), 8), ("2".to_string(), 5)]);
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = TopAgreement::new(2, "lines", ids(&["1", "2", "3"]), "sample", ids(&["2", "4"]));
        assert_eq!(a.both, ids(&["2"]));
        assert_eq!(
            a.summary(),
            "top 2 by rule: 1/2 in both (lines vs sample); only lines: 1; only sample: 4"
        );
    }

    fn map_of(e: &LuaEngine) -> ChunkRules {
        ChunkRules::new(e.program(), e.compiled())
    }

    #[test]
    fn sampling_a_sandboxed_engine_names_rules() {
        let mut e = engine(RULES, Backend::Ffi);
        let reqs: Vec<Request> =
            (0..20).map(|i| req(&format!("/x?q={}attack&r={i}", "a".repeat(200)))).collect();
        let p = sample_engine(&mut e, &reqs, Duration::from_millis(300)).unwrap();
        assert!(p.stats.rounds >= 1 && p.stats.failed == 0);
        assert!(p.sample.samples > 0);
        let by = samples_by_rule(&p.sample.folded);
        assert!(!by.is_empty(), "{}", p.sample.folded.to_text());
        let ids = ["1", "2", "3", "4"];
        assert!(by.iter().all(|(id, _)| ids.contains(&id.as_str())), "{by:?}");
        // Chunk frames are rules or the outside-Lua frame; nothing is left as `chunk:line`
        // inside a rule's range.
        for (stack, _) in p.sample.folded.iter() {
            for f in stack.split(';').skip(1) {
                if let Some(l) = f.strip_prefix("wafbench-rules.lua:") {
                    let line: u32 = l.parse().unwrap();
                    assert!(map_of(&e).rule_of(line).is_none(), "{stack}");
                } else {
                    assert!(
                        f.starts_with("rule_") || f.starts_with(OUTSIDE_LUA) || f.starts_with('['),
                        "{stack}"
                    );
                }
            }
        }
        // The sandbox did not get `jit` back in its globals.
        let jit: mlua::Value = e.lua().globals().get("jit").unwrap();
        assert!(jit.is_nil());
    }
}
