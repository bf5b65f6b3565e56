//! `CompiledRuleSet` -> one Lua chunk, in Cloudflare's "assembly language" style.
//!
//! The chunk decides control flow only: one function per phase that calls the phase's part
//! functions in turn (see `partition`; one part per phase for the mlua engine), one block
//! per rule, nested `if`s for chain links, `goto` to a label for a `skipAfter` whose marker
//! follows in the same part (a part's return value for one in a later part), `return -1`
//! when a rule interrupted. All the work (collecting a target's values, transformations,
//! operators, setvar, actions, logging) is done by the Rust primitives of
//! [`super::runtime`], called with integer handles into the [`Plan`] built here; the
//! generated code never builds a string per request and creates no closure per request.
//!
//! Operator passes: `operator-replacement` and `regex-prefilter` switch the `@rx` stand-ins
//! of every operator of the compiled set (`crate::opt::set_rx_optimisations`); the values
//! never reach Lua (they are collected and transformed in Rust), so the cheap string op runs
//! behind the same `tgt` call. An engine built from a shared `Arc<CompiledRuleSet>` shares
//! those switches with every engine using that set. `clause-reordering` emits the children
//! of a condition cheapest first (`crate::opt::reorder`).
//!
//! Layout of the chunk: the primitives are received as the chunk's argument (a table) and
//! bound to locals once; `local P2 = {}`, `P2[1] = function(ctx) ... end`, ...;
//! `return { phase1, ..., phase5 }`. Every rule's locals live inside its own block, so a
//! forward `goto` never jumps into the scope of a local.

use super::passes::{Pass, PassSet};
use crate::eval::compile::{
    CCondition, CRule, CTarget, CompiledRuleSet, FastSkip, Item, PLAN_NONE, SkipPlan, named_whole,
};
use crate::eval::run::link_targets;
use crate::ir::Action;
use serde::Serialize;
use std::sync::Arc;

/// Rules per part function of a phase (see [`partition`]).
const PART_RULES: usize = 16;

/// Where a rule's structured `skipAfter` goes: a label in its own part function, or the
/// start of a later part (the part returns its number to the phase function).
#[derive(Debug, Clone, Copy)]
enum JumpTo {
    Label(usize),
    Part(usize),
}

impl JumpTo {
    /// The Lua statement that takes the jump.
    fn statement(self) -> String {
        match self {
            JumpTo::Label(k) => format!("goto m{k}"),
            JumpTo::Part(k) => format!("return {k}"),
        }
    }
}

/// Splits a phase's items into part functions of about [`PART_RULES`] rules: LuaJIT
/// compiles each part to traces of its own, while one trace through a whole phase overflows
/// its limits (too many snapshots: measured on CRS PL1, phase 2 then ran in the
/// interpreter). A `goto` cannot leave its function, so a jump spanning more than two parts'
/// worth of rules makes its label start a part, and jumps by returning that part's number;
/// no cut separates a shorter jump from its label, nor the snapshot's jump over the range
/// `keep` from its end. Returns the part (from 1) of each item, the number of parts and
/// whether `keep` could be honoured.
fn partition(
    items: &[Item],
    jumps: &[Option<String>],
    labels: &[(usize, String, usize)],
    keep: Option<std::ops::Range<usize>>,
) -> (Vec<usize>, usize, bool) {
    // (rule position, label position, rules between them) of every structured jump.
    let rule_pos: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i, Item::Rule(_)))
        .map(|(p, _)| p)
        .collect();
    let spans: Vec<(usize, usize, usize)> = rule_pos
        .iter()
        .zip(jumps)
        .filter_map(|(&a, jump)| {
            let name = jump.as_ref()?;
            let &(q, _, _) = labels.iter().find(|(p, n, _)| *p > a && n == name)?;
            let rules = items[a..q].iter().filter(|i| matches!(i, Item::Rule(_))).count();
            Some((a, q, rules))
        })
        .collect();
    let mut long: Vec<bool> = spans.iter().map(|s| s.2 > 2 * PART_RULES).collect();
    // A cut forced at a long jump's label must not separate a short jump from its label:
    // such a jump becomes long too, until nothing changes.
    loop {
        let forced: Vec<usize> =
            spans.iter().zip(&long).filter(|(_, l)| **l).map(|(s, _)| s.1).collect();
        let mut changed = false;
        for (s, l) in spans.iter().zip(long.iter_mut()) {
            if !*l && forced.iter().any(|&c| s.0 < c && c <= s.1) {
                *l = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let forced: Vec<usize> =
        spans.iter().zip(&long).filter(|(_, l)| **l).map(|(s, _)| s.1).collect();
    let mut short: Vec<(usize, usize)> =
        spans.iter().zip(&long).filter(|(_, l)| !**l).map(|(s, _)| (s.0, s.1)).collect();
    // The snapshot's jump over its run (see `generate_with`) stays in one part, like a short
    // jump: no cut after its first item up to and including the item it lands on. Unless a
    // long jump's label, which must start a part, lies there: then the run has no jump.
    let kept = keep.is_some_and(|r| {
        let free = !forced.iter().any(|&c| r.start < c && c <= r.end);
        if free {
            short.push((r.start, r.end));
        }
        free
    });
    let mut part_of = Vec::with_capacity(items.len());
    let (mut part, mut in_part) = (usize::from(!items.is_empty()), 0usize);
    for (pos, item) in items.iter().enumerate() {
        let crosses_short = short.iter().any(|&(a, q)| a < pos && pos <= q);
        if pos > 0 && !crosses_short && (forced.contains(&pos) || in_part >= PART_RULES) {
            part += 1;
            in_part = 0;
        }
        part_of.push(part);
        in_part += usize::from(matches!(item, Item::Rule(_)));
    }
    (part_of, part, kept)
}

/// Name given to the chunk, so tracebacks and line profilers say where a line comes from.
pub const CHUNK_NAME: &str = "=wafbench-rules.lua";

/// Which `CTarget` of a link a target handle means.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TRef {
    Own(usize),
    Excl(usize),
    Update(usize),
}

/// A rule (first link) handle: what `pre` reads for every rule, kept small (the marker of a
/// local jump, read only after a match, is in [`Plan::local_jumps`]).
#[derive(Debug)]
pub(crate) struct RulePlan {
    pub(crate) rule: Arc<CRule>,
    /// The rule's skip plan: `pre` answers a rule it proves cannot match (or whose folded
    /// outcome it applies) by itself, as the native evaluator does, and the generated code
    /// skips the block.
    pub(crate) fast: Option<FastSkip>,
}

/// A chain link handle: the root rule and how deep in its chain the link is.
#[derive(Debug)]
pub(crate) struct LinkPlan {
    pub(crate) rule: usize,
    pub(crate) depth: usize,
    pub(crate) targets: Vec<TRef>,
    pub(crate) exclusions: Vec<TRef>,
    /// The link is begun (`lbegin`: operator macro, exclusions) before its targets are read
    /// with `tgt`; otherwise they are read with `tgt0`. Decided once here for both the
    /// separate calls and the fused `link` call.
    pub(crate) begin: bool,
    /// Bit `k`: target `k` is named whole by one of `exclusions` (it reads nothing). With
    /// more than 64 targets, `None`: the runtime compares the names itself.
    pub(crate) named_whole: Option<u64>,
}

/// A clause of a Cloudflare-style condition: the root rule and the path of child indexes.
#[derive(Debug)]
pub(crate) struct ClausePlan {
    pub(crate) rule: usize,
    pub(crate) path: Vec<usize>,
}

/// What the handles in the generated code refer to.
#[derive(Debug)]
pub struct Plan {
    pub(crate) rs: Arc<CompiledRuleSet>,
    pub(crate) rules: Vec<RulePlan>,
    /// Parallel to `rules`: the marker a `skipAfter` of the rule jumps to with a `goto` (when
    /// the structured jumps pass proved it local and forward).
    pub(crate) local_jumps: Vec<Option<String>>,
    pub(crate) links: Vec<LinkPlan>,
    pub(crate) clauses: Vec<ClausePlan>,
    pub(crate) markers: Vec<String>,
}

impl Plan {
    pub(crate) fn link(&self, l: usize) -> Option<(&CRule, &CRule, &LinkPlan)> {
        let lp = self.links.get(l)?;
        let root: &CRule = &self.rules.get(lp.rule)?.rule;
        let mut link = root;
        for _ in 0..lp.depth {
            link = link.chain.as_deref()?;
        }
        Some((root, link, lp))
    }

    pub(crate) fn target<'a>(&'a self, link: &'a CRule, r: TRef) -> Option<&'a CTarget> {
        match r {
            TRef::Own(i) => link.targets.get(i),
            TRef::Excl(i) => link.exclusions.get(i),
            TRef::Update(i) => self.rs.target_updates.get(i).map(|u| u.target.as_ref()),
        }
    }

    pub(crate) fn clause(&self, c: usize) -> Option<(&CRule, &crate::eval::compile::CClause)> {
        let cp = self.clauses.get(c)?;
        let root: &CRule = &self.rules.get(cp.rule)?.rule;
        let mut cond = root.condition.as_ref()?;
        for &i in &cp.path {
            cond = match cond {
                CCondition::All(v) | CCondition::Any(v) => v.get(i)?,
                CCondition::Not(c) => c,
                CCondition::Clause(_) => return None,
            };
        }
        match cond {
            CCondition::Clause(cl) => Some((root, cl)),
            _ => None,
        }
    }
}

/// What one line of the chunk does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LineKind {
    /// Rule entry: skip/skipAfter/allow/removal checks.
    RuleEntry,
    /// Start of a chain link (operator macro, exclusions).
    LinkBegin,
    /// One target of a link: collect, transform, match, setvar.
    Target,
    /// End of a link's targets: on to the next link or not.
    LinkEnd,
    /// A link's actions after the whole chain matched.
    Actions,
    /// Logging and the control-flow outcome of a rule.
    RuleEnd,
    /// A rule without operator (`SecAction`).
    Unconditional,
    /// A Cloudflare-style condition.
    Condition,
    /// A `SecMarker`.
    Marker,
}

/// One line of the chunk that belongs to a rule.
#[derive(Debug, Clone, Serialize)]
pub struct SourceMapEntry {
    /// 1-based line in the chunk.
    pub line: u32,
    pub phase: u8,
    pub rule_id: Option<u64>,
    /// `CRule::index` of the link (the same index the native profiler uses).
    pub rule_index: usize,
    /// 0 for the first link of a chain.
    pub link: u8,
    pub kind: LineKind,
    /// Target (for `Target` lines) or marker name.
    pub detail: Option<String>,
}

/// Lua line -> rule, for the profiler.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceMap {
    pub chunk_name: String,
    pub entries: Vec<SourceMapEntry>,
}

impl SourceMap {
    /// The entry of a 1-based line, if the line belongs to a rule.
    pub fn lookup(&self, line: u32) -> Option<&SourceMapEntry> {
        self.entries.binary_search_by_key(&line, |e| e.line).ok().map(|i| &self.entries[i])
    }
}

/// The generated program: Lua text, its source map and the handle plan.
#[derive(Debug)]
pub struct LuaProgram {
    pub source: String,
    pub source_map: SourceMap,
    pub plan: Arc<Plan>,
}

/// The primitive names bound to locals at the top of the chunk.
pub(crate) const PRIMITIVES: &[&str] = &[
    "pre", "scan", "lbegin", "tgt", "tgt0", "lend", "link", "after", "done", "uncond", "clause",
    "cdone", "marker", "init",
];

/// Where a mapped line belongs: the link's `CRule::index`, the chain's id, the link depth.
#[derive(Clone, Copy)]
struct At {
    index: usize,
    id: Option<u64>,
    link: usize,
}

fn at(rule: &CRule, id: Option<u64>, link: usize) -> At {
    At { index: rule.index, id, link }
}

struct Gen<'a> {
    out: String,
    line: u32,
    map: Vec<SourceMapEntry>,
    passes: &'a PassSet,
    plan: Plan,
    phase: u8,
    /// Emit condition children cheapest first.
    reorder: bool,
}

impl Gen<'_> {
    fn emit(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
        self.line += 1;
    }

    fn emit_mapped(
        &mut self,
        indent: usize,
        text: &str,
        at: At,
        kind: LineKind,
        detail: Option<String>,
    ) {
        self.emit(indent, text);
        self.map.push(SourceMapEntry {
            line: self.line,
            phase: self.phase,
            rule_id: at.id,
            rule_index: at.index,
            link: u8::try_from(at.link).unwrap_or(u8::MAX),
            kind,
            detail,
        });
    }

    /// A primitive call: a local when constants are hoisted, a table field otherwise.
    fn f(&self, name: &str) -> String {
        if self.passes.enabled(Pass::HoistLocals) {
            format!("w_{name}")
        } else {
            format!("waf.{name}")
        }
    }
}

/// Generates the chunk for a compiled rule set, with phases split into part functions (the
/// shape for the FFI engine; see `partition`).
pub fn generate(rs: Arc<CompiledRuleSet>, passes: &PassSet) -> LuaProgram {
    generate_with(rs, passes, true)
}

/// Generates the chunk; `split` false keeps each phase in one function. The mlua engine
/// wants that: LuaJIT cannot compile through its `lua_CFunction` calls, so its chunk runs
/// interpreted, where parts only add calls (callgrind, CRS PL1, 100 benign requests:
/// 2.40M instructions per request in one function, 2.50M in parts).
pub fn generate_with(rs: Arc<CompiledRuleSet>, passes: &PassSet, split: bool) -> LuaProgram {
    let plan = Plan {
        rs: rs.clone(),
        rules: Vec::new(),
        local_jumps: Vec::new(),
        links: Vec::new(),
        clauses: Vec::new(),
        markers: Vec::new(),
    };
    crate::opt::set_rx_optimisations(
        &rs,
        crate::opt::RxOptimisations {
            replace: passes.enabled(Pass::OperatorReplacement),
            prefilter: passes.enabled(Pass::RegexPrefilter),
        },
    );
    let reorder =
        passes.enabled(Pass::ClauseReordering) && crate::opt::reorder::reorder_is_safe(&rs);
    let mut g =
        Gen { out: String::new(), line: 0, map: Vec::new(), passes, plan, phase: 1, reorder };
    g.emit(0, "-- wafbench: rules compiled to Lua (generated; do not edit)");
    g.emit(0, "local waf = ...");
    if passes.enabled(Pass::HoistLocals) {
        for p in PRIMITIVES {
            g.emit(0, &format!("local w_{p} = waf.{p}"));
        }
    }

    // Which skipAfter can become a structured jump: every rule's candidate marker must be
    // unique and found later in the same phase. If any is not, marker items must tell the
    // runtime they were passed (the generic, v3-exact path).
    let jumps = passes.enabled(Pass::StructuredJumps);
    let mut local_jumps: Vec<Vec<Option<String>>> = Vec::new();
    let mut generic_markers = !passes.enabled(Pass::ElideMarkers);
    for (pi, items) in rs.phases.iter().enumerate() {
        let mut v = Vec::new();
        for (pos, item) in items.iter().enumerate() {
            let Item::Rule(r) = item else { continue };
            let names = skip_after_names(&rs, pi, r);
            let target = if jumps && names.len() == 1 {
                let name = &names[0];
                let later =
                    items[pos + 1..].iter().any(|i| matches!(i, Item::Marker(m) if m == name));
                later.then(|| name.clone())
            } else {
                None
            };
            if !names.is_empty() && target.is_none() {
                generic_markers = true;
            }
            v.push(target);
        }
        local_jumps.push(v);
    }

    let mut phase_fns = Vec::new();
    for (pi, items) in rs.phases.iter().enumerate() {
        g.phase = pi as u8 + 1;
        let fname = format!("phase{}", pi + 1);
        phase_fns.push(fname.clone());
        let mut rule_no = 0usize;
        // Marker labels in this phase: the first label for a name after each position.
        let mut labels: Vec<(usize, String, usize)> = Vec::new(); // (position, name, handle)
        for (pos, item) in items.iter().enumerate() {
            if let Item::Marker(name) = item {
                let k = g.plan.markers.len();
                g.plan.markers.push(name.clone());
                labels.push((pos, name.clone(), k));
            }
        }
        // CRS's request-independent initialisation, computed once at compile time
        // (`InitSnapshot`): `init` applies it and the code jumps past the run's items.
        let snap = if pi == 0 { rs.init.as_ref().map(|s| s.run.clone()) } else { None };
        let snap = snap.filter(|r| r.start < r.end && r.end <= items.len());
        let (part_of, parts, kept) = if split {
            partition(items, &local_jumps[pi], &labels, snap.clone())
        } else {
            (vec![1; items.len()], usize::from(!items.is_empty()), true)
        };
        let snap = snap.filter(|_| kept);
        // Rules `pre` may skip by their plan, run together (see `Pass::SkipRuns`): not a
        // folded match (its `pre` may ask for a jump), nothing between them (a marker's
        // label, the snapshot's call or label, a part boundary).
        let runnable = |q: usize| {
            g.passes.enabled(Pass::SkipRuns)
                && matches!(items[q], Item::Rule(_))
                && rs.fast[pi].get(q).copied().flatten().is_some_and(|f| !f.plan.is_folded_match())
        };
        let starts_block = |q: usize| {
            q == 0
                || part_of[q] != part_of[q - 1]
                || snap.as_ref().is_some_and(|r| q == r.start || q == r.end)
        };
        // The run being generated: its last position and the handle of its last rule.
        let mut run: Option<(usize, usize)> = None;
        let table = format!("P{}", pi + 1);
        g.emit(0, &format!("local {table} = {{}}"));
        for (pos, item) in items.iter().enumerate() {
            if pos == 0 || part_of[pos] != part_of[pos - 1] {
                if pos > 0 {
                    g.emit(1, "return 0");
                    g.emit(0, "end");
                }
                g.emit(0, &format!("{table}[{}] = function(ctx)", part_of[pos]));
            }
            if let Some(r) = &snap {
                if pos == r.start {
                    let call = format!(
                        "if {}(ctx, 0) ~= 0 then goto init_done end -- request-independent run",
                        g.f("init")
                    );
                    g.emit(1, &call);
                }
                if pos == r.end {
                    g.emit(1, "::init_done::");
                }
            }
            match item {
                Item::Marker(name) => {
                    let Some(&(_, _, k)) = labels.iter().find(|(p, _, _)| *p == pos) else {
                        continue;
                    };
                    g.emit(1, &format!("::m{k}:: -- SecMarker {}", lua_comment(name)));
                    if generic_markers {
                        let call = format!("{}(ctx, {k})", g.f("marker"));
                        g.emit(1, &call);
                        g.map.push(SourceMapEntry {
                            line: g.line,
                            phase: g.phase,
                            rule_id: None,
                            rule_index: usize::MAX,
                            link: 0,
                            kind: LineKind::Marker,
                            detail: Some(name.clone()),
                        });
                    }
                }
                Item::Rule(rule) => {
                    let jump = local_jumps[pi][rule_no].clone();
                    rule_no += 1;
                    let label = jump
                        .as_ref()
                        .and_then(|name| labels.iter().find(|(p, n, _)| *p > pos && n == name));
                    let to = label.map(|&(q, _, k)| {
                        if part_of[q] == part_of[pos] {
                            JumpTo::Label(k)
                        } else {
                            JumpTo::Part(part_of[q])
                        }
                    });
                    let fast = rs.fast[pi].get(pos).copied().flatten();
                    if run.is_none() && runnable(pos) {
                        let mut end = pos;
                        while end + 1 < items.len() && runnable(end + 1) && !starts_block(end + 1) {
                            end += 1;
                        }
                        if end > pos {
                            let first = g.plan.rules.len();
                            let last = first + (end - pos);
                            g.emit(1, "do");
                            g.emit(1, &format!("local k = {}(ctx, {first}, {last})", g.f("scan")));
                            run = Some((end, last));
                        }
                    }
                    gen_rule(&mut g, rule, jump, to, fast, run.map(|(_, last)| last));
                    if run.is_some_and(|(end, _)| end == pos) {
                        g.emit(1, "end");
                        run = None;
                    }
                }
            }
        }
        if parts == 0 {
            g.emit(0, &format!("{table}[1] = function(ctx)"));
        }
        if snap.as_ref().is_some_and(|r| r.end == items.len()) {
            g.emit(1, "::init_done::");
        }
        g.emit(1, "return 0");
        g.emit(0, "end");
        // Part k runs unless an earlier part jumped past it (returned a later part number).
        g.emit(0, &format!("local function {fname}(ctx)"));
        g.emit(1, &format!("local j = {table}[1](ctx)"));
        g.emit(1, "if j < 0 then return end");
        for k in 2..=parts {
            g.emit(
                1,
                &format!("if j <= {k} then j = {table}[{k}](ctx) if j < 0 then return end end"),
            );
        }
        g.emit(0, "end");
    }
    g.emit(0, &format!("return {{ {} }}", phase_fns.join(", ")));
    let source_map = SourceMap { chunk_name: CHUNK_NAME.to_string(), entries: g.map };
    LuaProgram { source: g.out, source_map, plan: Arc::new(g.plan) }
}

/// Every `skipAfter` marker a full match of this rule can leave pending (defaults of the
/// phase and every link's own actions).
fn skip_after_names(rs: &CompiledRuleSet, phase_idx: usize, r: &CRule) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |a: &Action| {
        if let Action::SkipAfter(m) = a {
            if !names.contains(m) {
                names.push(m.clone());
            }
        }
    };
    rs.defaults[phase_idx].runtime.iter().for_each(&mut push);
    let mut link = Some(r);
    while let Some(l) = link {
        l.actions.runtime.iter().for_each(&mut push);
        link = l.chain.as_deref();
    }
    names
}

fn lua_comment(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn gen_rule(
    g: &mut Gen<'_>,
    rule: &Arc<CRule>,
    jump: Option<String>,
    to: Option<JumpTo>,
    fast: Option<FastSkip>,
    run_last: Option<usize>,
) {
    let ri = g.plan.rules.len();
    // Only keep the jump when its label exists (it always does when the pass chose it).
    let jump = if to.is_some() { jump } else { None };
    // `pre` applies a fold and answers "jump" by itself (`past` kept) only when this code's
    // own jump goes to the fold's marker, the first of that name after the rule.
    let fast = fast.map(|f| match f.plan {
        SkipPlan::AfterInitMatch { fold, .. }
            if jump.is_none() || jump.as_deref() != g.plan.rs.folds.marker(usize::from(fold)) =>
        {
            FastSkip { plan: SkipPlan::AfterInitMatch { fold, past: PLAN_NONE } }
        }
        _ => f,
    });
    g.plan.rules.push(RulePlan { rule: rule.clone(), fast });
    g.plan.local_jumps.push(jump);
    let id = rule.id();
    let idtxt = id.map_or_else(|| "(no id)".to_string(), |i| i.to_string());
    g.emit(1, &format!("-- rule {idtxt}"));
    // A rule folded as matched (`SkipPlan::AfterInitMatch`) is decided in `pre`, which then
    // answers 2 when its `skipAfter` is this code's own jump.
    let folded = fast.is_some_and(|f| f.plan.is_folded_match());
    let pre_jump = to.filter(|_| folded).map(JumpTo::statement);
    if run_last.is_some() {
        // In a run: the run's `scan` did this rule's `pre` and named it (or a later rule).
        let entry = format!("if k == {ri} then");
        g.emit_mapped(1, &entry, at(rule, id, 0), LineKind::RuleEntry, None);
    } else if let Some(j) = &pre_jump {
        g.emit(1, "do");
        let pre = format!("local p = {}(ctx, {ri})", g.f("pre"));
        g.emit_mapped(1, &pre, at(rule, id, 0), LineKind::RuleEntry, None);
        g.emit(1, &format!("if p == 2 then {j} end"));
        g.emit(1, "if p ~= 0 then");
    } else {
        let pre = format!("if {}(ctx, {ri}) ~= 0 then", g.f("pre"));
        g.emit_mapped(1, &pre, at(rule, id, 0), LineKind::RuleEntry, None);
    }
    let end_call;
    if let Some(cond) = &rule.condition {
        let mut path = Vec::new();
        let expr = gen_condition(g, ri, cond, &mut path);
        g.emit(2, "local m = 0");
        g.emit_mapped(
            2,
            &format!("if {expr} then m = 1 end"),
            at(rule, id, 0),
            LineKind::Condition,
            None,
        );
        end_call = format!("local f = {}(ctx, {ri}, m)", g.f("cdone"));
    } else if rule.operator.is_none() {
        end_call = format!("local f = {}(ctx, {ri})", g.f("uncond"));
    } else {
        // `h`: whether some target of the link matched (no fused `link` call).
        let locals =
            if g.passes.enabled(Pass::FusedLinks) { "local m = 0" } else { "local h, m = 0, 0" };
        g.emit(2, locals);
        let mut chain: Vec<(usize, &CRule)> = Vec::new();
        gen_link(g, ri, rule, rule, 0, 2, &mut chain);
        end_call = format!("local f = {}(ctx, {ri}, m)", g.f("done"));
    }
    g.emit_mapped(2, &end_call, at(rule, id, 0), LineKind::RuleEnd, None);
    match to.map(JumpTo::statement) {
        Some(jump) => {
            g.emit(2, "if f ~= 0 then");
            g.emit(3, &format!("if f == 2 then {jump} end"));
            g.emit(3, "return -1");
            g.emit(2, "end");
        }
        None => g.emit(2, "if f ~= 0 then return -1 end"),
    }
    if let Some(last) = run_last.filter(|&last| ri < last) {
        g.emit(2, &format!("k = {}(ctx, {}, {last})", g.f("scan"), ri + 1));
    }
    g.emit(1, "end");
    if pre_jump.is_some() {
        g.emit(1, "end");
    }
}

/// One chain link at `depth`, with the links after it nested inside.
fn gen_link<'r>(
    g: &mut Gen<'_>,
    ri: usize,
    root: &'r CRule,
    link: &'r CRule,
    depth: usize,
    indent: usize,
    chain: &mut Vec<(usize, &'r CRule)>,
) {
    let id = root.id();
    if link.operator.is_none() {
        // `RuleWithOperator::evaluate` on a link without operator: matched, no actions of
        // its own and its chain is not looked at.
        g.emit(indent, "-- chain link without operator: matched");
        emit_actions_and_match(g, root, chain, indent);
        return;
    }
    let l = g.plan.links.len();
    let (targets, exclusions) = link_targets(&g.plan.rs, root, link);
    let to_ref = |t: &CTarget| -> TRef {
        if let Some(i) = link.targets.iter().position(|x| std::ptr::eq(x, t)) {
            TRef::Own(i)
        } else if let Some(i) = link.exclusions.iter().position(|x| std::ptr::eq(x, t)) {
            TRef::Excl(i)
        } else {
            let i = g
                .plan
                .rs
                .target_updates
                .iter()
                .position(|u| std::ptr::eq(u.target.as_ref(), t))
                .unwrap_or(usize::MAX);
            TRef::Update(i)
        }
    };
    let trefs: Vec<TRef> = targets.iter().map(|t| to_ref(t)).collect();
    let erefs: Vec<TRef> = exclusions.iter().map(|t| to_ref(t)).collect();
    let needs_expansion = link.operator.as_ref().is_some_and(|(_, op, _)| op.needs_expansion());
    let needs_begin = !g.passes.enabled(Pass::LeanLinks) || needs_expansion || !erefs.is_empty();
    let names: Vec<String> = targets.iter().map(|t| t.full_name.clone()).collect();
    let named_whole = named_whole(targets.iter().copied(), &exclusions);
    g.plan.links.push(LinkPlan {
        rule: ri,
        depth,
        targets: trefs,
        exclusions: erefs,
        begin: needs_begin,
        named_whole,
    });
    if depth > 0 && !g.passes.enabled(Pass::FusedLinks) {
        g.emit(indent, "h = 0");
    }
    if g.passes.enabled(Pass::OperatorReplacement) {
        let class = link.operator.as_ref().and_then(|(_, op, _)| op.rx_fast()).map(|f| f.class());
        if let Some(c) = class.filter(|c| *c != crate::opt::rxclass::RxClass::Keep) {
            g.emit(indent, &format!("-- @rx replaced by a literal search ({})", c.name()));
        }
    }
    if g.passes.enabled(Pass::FusedLinks) {
        // One call for the link: the runtime begins it when `needs_begin` says so, reads
        // every target and ends it. The line stands for all the targets.
        let s = format!("if {}(ctx, {l}) ~= 0 then", g.f("link"));
        let name = Some(names.join("|"));
        g.emit_mapped(indent, &s, at(link, id, depth), LineKind::Target, name);
    } else {
        if needs_begin {
            let s = format!("{}(ctx, {l})", g.f("lbegin"));
            g.emit_mapped(indent, &s, at(link, id, depth), LineKind::LinkBegin, None);
        }
        let tfn = if needs_begin { g.f("tgt") } else { g.f("tgt0") };
        for (k, name) in names.into_iter().enumerate() {
            let s = format!("if {tfn}(ctx, {l}, {k}) ~= 0 then h = 1 end");
            g.emit_mapped(indent, &s, at(link, id, depth), LineKind::Target, Some(name));
        }
        let s = format!("if {}(ctx, {l}, h) ~= 0 then", g.f("lend"));
        g.emit_mapped(indent, &s, at(link, id, depth), LineKind::LinkEnd, None);
    }
    chain.push((l, link));
    match (&link.chain, link.actions.chained) {
        (Some(child), true) => gen_link(g, ri, root, child, depth + 1, indent + 1, chain),
        _ => emit_actions_and_match(g, root, chain, indent + 1),
    }
    chain.pop();
    g.emit(indent, "end");
}

/// The innermost matched link reached: every link's actions, innermost first (v3 runs them
/// as the recursion of `RuleWithOperator::evaluate` unwinds), then the rule matched.
fn emit_actions_and_match(g: &mut Gen<'_>, root: &CRule, chain: &[(usize, &CRule)], indent: usize) {
    for (depth, (l, link)) in chain.iter().enumerate().rev() {
        let s = format!("{}(ctx, {l})", g.f("after"));
        g.emit_mapped(indent, &s, at(link, root.id(), depth), LineKind::Actions, None);
    }
    g.emit(indent, "m = 1");
}

fn gen_condition(g: &mut Gen<'_>, ri: usize, c: &CCondition, path: &mut Vec<usize>) -> String {
    match c {
        CCondition::Clause(_) => {
            let k = g.plan.clauses.len();
            g.plan.clauses.push(ClausePlan { rule: ri, path: path.clone() });
            format!("({}(ctx, {k}) ~= 0)", g.f("clause"))
        }
        CCondition::All(v) | CCondition::Any(v) => {
            let (op, empty) =
                if matches!(c, CCondition::All(_)) { (" and ", "true") } else { (" or ", "false") };
            if v.is_empty() {
                return empty.to_string();
            }
            let order: Vec<usize> = if g.reorder {
                crate::opt::reorder::condition_order(v)
            } else {
                (0..v.len()).collect()
            };
            let mut parts = Vec::new();
            for i in order {
                let sub = &v[i];
                // The handle path keeps the written index: the runtime finds the clause by it.
                path.push(i);
                parts.push(gen_condition(g, ri, sub, path));
                path.pop();
            }
            format!("({})", parts.join(op))
        }
        CCondition::Not(sub) => {
            path.push(0);
            let s = gen_condition(g, ri, sub, path);
            path.pop();
            format!("(not {s})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::NativeEngine;
    use crate::lua::{Backend, LuaEngine, LuaOptions, compile_to_lua};
    use crate::request::Request;

    const OR_RULE: &str = "rule 7 probe\n\
        ARGS matches \"(?i)union.*select\" or REQUEST_METHOD is POST or ARGS:x contains zz\n\
        deny\n";

    fn clause_paths(p: &LuaProgram) -> Vec<Vec<usize>> {
        p.plan.clauses.iter().map(|c| c.path.clone()).collect()
    }

    #[test]
    fn condition_children_run_cheapest_first_when_unobservable() {
        let set = crate::cfrule::parse(OR_RULE, "t.rules").expect("parse");
        let on = compile_to_lua(&set, &PassSet::level(2)).expect("compile");
        // Emission order: REQUEST_METHOD is (1), then contains (2), then the regex (0).
        assert_eq!(clause_paths(&on), vec![vec![1], vec![2], vec![0]], "{}", on.source);
        let off = compile_to_lua(&set, &PassSet::level(2).disable(Pass::ClauseReordering)).unwrap();
        assert_eq!(clause_paths(&off), vec![vec![0], vec![1], vec![2]]);

        // A rule reading MATCHED_VAR could see which clause matched: no reordering.
        let text = format!("{OR_RULE}\nrule 8 echo\n  MATCHED_VAR contains a\n  deny\n");
        let set = crate::cfrule::parse(&text, "t.rules").expect("parse");
        let p = compile_to_lua(&set, &PassSet::level(2)).expect("compile");
        assert_eq!(clause_paths(&p)[..3], [vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn reordered_conditions_decide_as_native() {
        let config =
            crate::seclang::parse_str("SecRuleEngine On\nSecRequestBodyAccess On\n", "c.conf")
                .expect("config");
        let rules = crate::cfrule::parse(OR_RULE, "t.rules").expect("parse");
        let set = crate::default_rules::merge(config, rules);
        let native = NativeEngine::new(&set).expect("native");
        let reqs: Vec<Request> = [
            ("GET", "/?a=union+all+select", ""),
            ("POST", "/", "a=b"),
            ("GET", "/?x=azzb", ""),
            ("GET", "/?x=fine", ""),
        ]
        .iter()
        .map(|(m, u, b)| Request {
            id: "t".into(),
            method: (*m).into(),
            uri: u.as_bytes().to_vec(),
            headers: vec![
                ("Host".into(), "h".into()),
                ("Content-Type".into(), "application/x-www-form-urlencoded".into()),
            ],
            body: b.as_bytes().to_vec(),
            ..Request::default()
        })
        .collect();
        for backend in [Backend::Mlua, Backend::Ffi] {
            let mut lua =
                LuaEngine::new(&set, LuaOptions { backend, ..Default::default() }).unwrap();
            for r in &reqs {
                let (a, b) = (native.evaluate(r), lua.evaluate(r).unwrap());
                assert_eq!((a.status, &a.matched_ids), (b.status, &b.matched_ids), "{:?}", r.uri);
            }
        }
        assert!(native.evaluate(&reqs[3]).matched_ids.is_empty(), "the benign request passes");
        for r in &reqs[..3] {
            assert_eq!(native.evaluate(r).matched_ids, vec!["7".to_string()], "{:?}", r.uri);
        }
    }

    #[test]
    fn operator_passes_switch_the_rx_stand_ins() {
        let set = crate::seclang::parse_str(
            "SecRuleEngine On\nSecRule ARGS \"@rx ^admin$\" \"id:1,phase:1,deny\"\n",
            "t.conf",
        )
        .unwrap();
        let rs = Arc::new(CompiledRuleSet::compile(&set).unwrap());
        let op = |rs: &CompiledRuleSet| {
            let Item::Rule(r) = &rs.phases[0][0] else { panic!("a rule") };
            r.operator.as_ref().and_then(|(_, op, _)| op.rx_fast().map(|f| f.class()))
        };
        assert_eq!(op(&rs), Some(crate::opt::rxclass::RxClass::Exact));
        let src = |ps: &PassSet| generate(rs.clone(), ps).source;
        assert!(src(&PassSet::level(2)).contains("-- @rx replaced by a literal search (exact)"));
        assert!(!src(&PassSet::level(1)).contains("-- @rx replaced"));
        // Off and on give the same decisions (the fast path is the regex).
        for ps in [PassSet::level(2), PassSet::level(2).disable(Pass::OperatorReplacement)] {
            let mut e = LuaEngine::from_compiled(
                rs.clone(),
                LuaOptions { backend: Backend::Ffi, passes: ps, ..Default::default() },
            )
            .unwrap();
            let d = e
                .evaluate(&Request {
                    uri: b"/?u=admin".to_vec(),
                    method: "GET".into(),
                    ..Request::default()
                })
                .unwrap();
            assert!(d.disruptive);
            let d = e
                .evaluate(&Request {
                    uri: b"/?u=admin%0a".to_vec(),
                    method: "GET".into(),
                    ..Request::default()
                })
                .unwrap();
            assert!(d.disruptive, "a line anchor matches before the newline");
        }
    }
}
